"""Relation functions delta of SAN (paper Sec. 3) and the relative position term.

Pairwise delta(x_i, x_j) for every j in the footprint R(i), as an (N, width, K, H*W) tensor:
summation phi_i + psi_j, subtraction phi_i - psi_j (the official `Subtraction2`), concatenation
[phi_i, psi_j], Hadamard phi_i * psi_j, dot product phi_i^T psi_j (width 1).

Patchwise delta(x_R(i)) as an (N, width, H, W) tensor (the input of gamma, one vector per pixel):
star product [phi_i^T psi_j]_j (width K), clique product [phi_j^T psi_k]_{j,k} (width K^2, j-major)
and concatenation [phi_i, psi_j for all j] (width (K+1)*C, the official layout: phi's channels,
then nn.Unfold's (c, j) channel-major order).
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import torch

from suite.ops.backend import current_backend
from suite.ops.window import Padding, Window, accumulator_dtype, channels_last, empty_window_tensor

PairwiseRelation = Literal["summation", "subtraction", "concatenation", "hadamard", "dot"]
PatchwiseRelation = Literal["star", "clique", "concatenation"]
PAIRWISE_RELATIONS: tuple[str, ...] = ("summation", "subtraction", "concatenation", "hadamard", "dot")
PATCHWISE_RELATIONS: tuple[str, ...] = ("star", "clique", "concatenation")


def pairwise_width(relation: str, channels: int) -> int:
    """Channels of delta(x_i, x_j) for `channels`-wide phi and psi (official `lib/sa` and `model/san.py`)."""
    return {"concatenation": 2 * channels, "dot": 1}.get(relation, channels)


def patchwise_width(relation: str, channels: int, footprint: int) -> int:
    """Channels of delta(x_R(i)) for a footprint of K = footprint positions."""
    return {"star": footprint, "clique": footprint**2, "concatenation": (footprint + 1) * channels}[relation]


def pairwise_relation(
    phi: torch.Tensor,
    psi: torch.Tensor,
    relation: PairwiseRelation,
    kernel_size: int,
    dilation: int = 1,
    padding: Padding = "reflect",
) -> torch.Tensor:
    """delta(phi_i, psi_j) for every pixel i and footprint position j -> (N, width, K, H*W).

    phi gives the centre (query) pixel, psi the neighbour; both (N, C, H, W).
    """
    if relation not in PAIRWISE_RELATIONS:
        raise ValueError(f"unknown pairwise relation {relation!r}; valid: {PAIRWISE_RELATIONS}")
    if phi.shape != psi.shape:
        raise ValueError(f"phi {tuple(phi.shape)} and psi {tuple(psi.shape)} must have the same shape")
    window = Window(kernel_size, dilation, padding)
    if current_backend() == "unfold":
        return pairwise_relation_unfold(phi, psi, relation, window)
    return local_relation(phi, window.pad_input(psi), relation, window)


def local_relation(
    phi: torch.Tensor,
    psi_padded: torch.Tensor,
    relation: str,
    window: Window,
    positions: range | None = None,
    footprint_major: bool = False,
) -> torch.Tensor:
    """The shift implementation on psi already padded by `window.pad_input`, for the footprint
    positions j in `positions` (default all K) -> (N, width, len(positions), H*W).

    Lets a caller pad once and process the footprint a few positions at a time. With
    `footprint_major` the result is a view of a (len(positions), N, width, H, W) tensor.
    """
    positions = range(window.size) if positions is None else positions
    return LocalRelation.apply(phi, psi_padded, relation, window, positions, footprint_major)


def pairwise_relation_unfold(phi: torch.Tensor, psi: torch.Tensor, relation: str, window: Window) -> torch.Tensor:
    """Naive reference: unfold psi's neighbourhood and broadcast phi over it."""
    neighbours = window.unfold(psi)
    centre = phi.flatten(2).unsqueeze(2)
    if relation == "summation":
        return centre + neighbours
    if relation == "subtraction":
        return centre - neighbours
    if relation == "hadamard":
        return centre * neighbours
    if relation == "dot":
        return (centre * neighbours).sum(1, keepdim=True)
    return torch.cat([centre.expand_as(neighbours), neighbours], 1)


class LocalRelation(torch.autograd.Function):
    """Shift formulation of the pairwise relations: writes each footprint slice in place.

    Works on the padded psi (autograd differentiates the padding); saves nothing for the
    additive relations and only (phi, padded psi) for the multiplicative ones.
    """

    @staticmethod
    def forward(
        ctx: Any,
        phi: torch.Tensor,
        psi_padded: torch.Tensor,
        relation: str,
        window: Window,
        positions: range,
        footprint_major: bool,
    ) -> torch.Tensor:
        ctx.relation, ctx.positions = relation, positions
        if relation in ("hadamard", "dot"):
            ctx.save_for_backward(phi, psi_padded)
        ctx.phi_shape, ctx.psi_padded_shape = phi.shape, psi_padded.shape
        ctx.channels_last = channels_last(psi_padded)
        ctx.offsets = offsets = [window.offsets()[j] for j in positions]
        c, h, w = phi.shape[1:]
        out = empty_window_tensor(phi, pairwise_width(relation, c), len(offsets), footprint_major=footprint_major)
        if relation == "concatenation":
            out[:, :c].copy_(phi.unsqueeze(2).expand(-1, -1, len(offsets), -1, -1))
        for j, (dy, dx) in enumerate(offsets):
            neighbour, target = psi_padded[..., dy : dy + h, dx : dx + w], out[:, :, j]
            if relation == "summation":
                torch.add(phi, neighbour, out=target)
            elif relation == "subtraction":
                torch.sub(phi, neighbour, out=target)
            elif relation == "hadamard":
                torch.mul(phi, neighbour, out=target)
            elif relation == "dot":
                torch.sum(phi * neighbour, 1, keepdim=True, out=target)
            else:
                target[:, c:].copy_(neighbour)
        return out.flatten(-2)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        relation: str = ctx.relation
        need_phi, need_psi = ctx.needs_input_grad[:2]
        _, c, h, w = ctx.phi_shape
        grad = grad.unflatten(-1, (h, w))
        acc = accumulator_dtype(grad.dtype)
        phi, psi_padded = ctx.saved_tensors if relation in ("hadamard", "dot") else (None, None)
        grad_phi = grad_psi = None
        if need_phi and relation in ("summation", "subtraction"):
            grad_phi = grad.sum(2)
        elif need_phi and relation == "concatenation":
            grad_phi = grad[:, :c].sum(2)
        elif need_phi:
            grad_phi = torch.zeros_like(phi, dtype=acc)
        if need_psi:
            fmt = torch.channels_last if ctx.channels_last else torch.contiguous_format
            grad_psi = torch.empty(ctx.psi_padded_shape, dtype=acc, device=grad.device, memory_format=fmt).zero_()
        for j, (dy, dx) in enumerate(ctx.offsets):
            g = grad[:, :, j]
            if need_phi and psi_padded is not None:
                grad_phi.addcmul_(g, psi_padded[..., dy : dy + h, dx : dx + w])
            if not need_psi:
                continue
            target = grad_psi[..., dy : dy + h, dx : dx + w]
            if relation == "summation":
                target.add_(g)
            elif relation == "subtraction":
                target.sub_(g)
            elif relation == "concatenation":
                target.add_(g[:, c:])
            else:
                target.addcmul_(g, phi)
        return (
            None if grad_phi is None else grad_phi.to(grad.dtype),
            None if grad_psi is None else grad_psi.to(grad.dtype),
            None,
            None,
            None,
            None,
        )


@functools.lru_cache(maxsize=64)
def position_grid(height: int, width: int, *, device: Any = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Normalised pixel coordinates (1, 2, H, W), channels [x, y], each linspace(-1, 1) (official).

    Cached (treat as read-only): the same few sizes recur in every forward. Made outside inference
    mode, so a grid first built under torch.inference_mode can still be used in training.
    """
    with torch.inference_mode(False):
        xs = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype).expand(height, width)
        ys = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype).unsqueeze(1).expand(height, width)
        return torch.stack([xs, ys]).unsqueeze(0)


def patchwise_relation(
    phi: torch.Tensor,
    psi: torch.Tensor,
    relation: PatchwiseRelation,
    kernel_size: int,
    dilation: int = 1,
    padding: Padding = "reflect",
) -> torch.Tensor:
    """delta(x_R(i)) for every pixel i -> (N, width, H, W) (widths in `patchwise_width`)."""
    window = Window(kernel_size, dilation, padding)
    n, c, h, w = phi.shape
    if relation == "star":
        return pairwise_relation(phi, psi, "dot", kernel_size, dilation, padding).view(n, window.size, h, w)
    if relation == "clique":
        gram = torch.einsum("ncjl,nckl->njkl", window.unfold(phi), window.unfold(psi))
        return gram.reshape(n, window.size**2, h, w)
    if relation == "concatenation":
        return torch.cat([phi, window.unfold(psi).view(n, c * window.size, h, w)], 1)
    raise ValueError(f"unknown patchwise relation {relation!r}; valid: {PATCHWISE_RELATIONS}")
