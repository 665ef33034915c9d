"""Relation functions delta of SAN (paper Sec. 3) and the coordinate grids of its position term.

Pairwise delta(x_i, x_j) for every j in the footprint R(i), as an (N, width, K, H*W) tensor:
summation phi_i + psi_j, subtraction phi_i - psi_j (the official `Subtraction2`), concatenation
[phi_i, psi_j], Hadamard phi_i * psi_j, dot product phi_i^T psi_j (width 1).

Patchwise delta(x_R(i)) as an (N, width, H, W) tensor (the input of gamma, one vector per pixel):
star product [phi_i^T psi_j]_j (width K), clique product [phi_j^T psi_k]_{j,k} (width K^2, j-major)
and concatenation [phi_i, psi_j for all j] (width (K+1)*C, the official layout: phi's channels,
then nn.Unfold's (c, j) channel-major order).

Rounding in half and bfloat16 (u = 2^-11 and 2^-8): the backward passes' sums over the footprint
run in float32 and round once. The dot and star products multiply in the dtype, each product
rounding, and sum over the channels in float32, rounding once: within 2 u of sum_c |phi_c psi_c|
(test_channel_sum_rounding). Products in float32 would make that 1 u, but took 7 to 37 % more CPU
time on the channels-last layout the inference path runs (SAN10's stages, batch 8, one thread;
less in NCHW), so they stay in the dtype. The clique product's matrix products multiply and add
in float32: 1 u.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any, Literal

import torch

from suite.ops.autograd import first_order_backward
from suite.ops.backend import current_backend
from suite.ops.tracing import cached_outside_traces, opaque_to_tracer
from suite.ops.window import Padding, Window, accumulator_dtype, channels_last, empty_window_tensor

PairwiseRelation = Literal["summation", "subtraction", "concatenation", "hadamard", "dot"]
PatchwiseRelation = Literal["star", "clique", "concatenation"]
PAIRWISE_RELATIONS: tuple[str, ...] = typing.get_args(PairwiseRelation)
PATCHWISE_RELATIONS: tuple[str, ...] = typing.get_args(PatchwiseRelation)


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
    position: torch.Tensor | None = None,
) -> torch.Tensor:
    """delta(phi_i, psi_j) for every pixel i and footprint position j -> (N, width, K, H*W).

    phi gives the centre (query) pixel, psi the neighbour; both (N, C, H, W). With `position`, the
    position term (1 or N, P, K, H*W), p_i - p_j or p_j (`suite.models.san.SelfAttention._position_term`),
    follows delta's channels -> (N, width + P, K, H*W): gamma's input in the paper, written in
    place rather than concatenated (a K-fold wide copy).
    """
    if relation not in PAIRWISE_RELATIONS:
        raise ValueError(f"unknown pairwise relation {relation!r}; valid: {PAIRWISE_RELATIONS}")
    if phi.shape != psi.shape:
        raise ValueError(f"phi {tuple(phi.shape)} and psi {tuple(psi.shape)} must have the same shape")
    window = Window(kernel_size, dilation, padding)
    if current_backend() == "unfold":
        delta = pairwise_relation_unfold(phi, psi, relation, window)
        return delta if position is None else torch.cat([delta, position.expand(delta.shape[0], -1, -1, -1)], 1)
    return local_relation(phi, psi, relation, window, position=position)


def local_relation(
    phi: torch.Tensor,
    psi: torch.Tensor,
    relation: str,
    window: Window,
    position: torch.Tensor | None = None,
) -> torch.Tensor:
    """The shift implementation, whatever the backend -> (N, width [+ P], K, H*W)."""
    return LocalRelation.apply(phi, psi, position, relation, window)


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


def relation_into(
    out: torch.Tensor, phi: torch.Tensor, psi_padded: torch.Tensor, relation: str, offsets: Sequence[tuple[int, int]]
) -> None:
    """delta(phi_i, psi_j) into out (N, width, len(offsets), H, W) for the neighbours j at `offsets`
    of the padded psi (each position one shifted view: nothing K-fold but out)."""
    c, h, w = phi.shape[1:]
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


class LocalRelation(torch.autograd.Function):
    """Shift formulation of the pairwise relations: writes each footprint slice in place.

    Pads psi itself, so that its backward folds the reflected border back in the float32
    accumulator of a half or bfloat16 psi (autograd's padding backward would add in psi's dtype);
    saves nothing for the additive relations and only (phi, psi) for the multiplicative ones. The
    position term, if any, is copied into the channels after delta's.
    """

    @staticmethod
    @opaque_to_tracer
    def forward(
        ctx: Any,
        phi: torch.Tensor,
        psi: torch.Tensor,
        position: torch.Tensor | None,
        relation: str,
        window: Window,
    ) -> torch.Tensor:
        ctx.relation, ctx.window = relation, window
        if relation in ("hadamard", "dot"):
            ctx.save_for_backward(phi, psi)
        ctx.phi_shape, ctx.psi_channels_last = phi.shape, channels_last(psi)
        psi_padded, offsets = window.pad_input(psi), window.offsets()
        c, h, w = phi.shape[1:]
        ctx.width = width = pairwise_width(relation, c)
        ctx.position_shape = None if position is None else position.shape
        extra = 0 if position is None else position.shape[1]
        out = empty_window_tensor(phi, width + extra, len(offsets))
        if position is not None:
            out[:, width:].copy_(position.unflatten(-1, (h, w)).expand_as(out[:, width:]))
        relation_into(out[:, :width], phi, psi_padded, relation, offsets)
        return out.flatten(-2)

    @staticmethod
    @first_order_backward
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        relation: str = ctx.relation
        window: Window = ctx.window
        need_phi, need_psi, need_position = ctx.needs_input_grad[:3]
        _, c, h, w = ctx.phi_shape
        grad = grad.unflatten(-1, (h, w))
        grad_position = None
        if need_position:  # summed over the images it was broadcast to
            g = grad[:, ctx.width :].flatten(-2)
            grad_position = g.sum(0, keepdim=True) if ctx.position_shape[0] == 1 else g
        grad = grad[:, : ctx.width]
        acc = accumulator_dtype(grad.dtype)
        phi, psi = ctx.saved_tensors if relation in ("hadamard", "dot") else (None, None)
        psi_padded = None if psi is None else window.pad_input(psi)
        grad_phi = grad_psi = None
        if need_phi and relation in ("summation", "subtraction"):
            grad_phi = grad.sum(2)
        elif need_phi and relation == "concatenation":
            grad_phi = grad[:, :c].sum(2)
        elif need_phi:
            grad_phi = torch.zeros_like(phi, dtype=acc)
        if need_psi:
            grad_psi = window.padded_zeros(ctx.phi_shape, ctx.psi_channels_last, acc, grad.device)
        for j, (dy, dx) in enumerate(window.offsets()):
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
            None if grad_psi is None else window.unpad_grad(grad_psi).to(grad.dtype),
            grad_position,
            None,
            None,
        )


@cached_outside_traces()
def position_grid(height: int, width: int, *, device: Any = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Normalised pixel coordinates (1, 2, H, W), channels [x, y], each linspace(-1, 1) (official).

    Cached (treat as read-only): the same few sizes recur in every forward. Made outside inference
    mode, so a grid first built under torch.inference_mode can still be used in training.
    """
    with torch.inference_mode(False):
        xs = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype).expand(height, width)
        ys = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype).unsqueeze(1).expand(height, width)
        return torch.stack([xs, ys]).unsqueeze(0)


@cached_outside_traces()
def relative_grid(height: int, width: int, window: Window, *, device: Any = None,
                  dtype: torch.dtype | None = None) -> torch.Tensor:
    """g_i - g_j of `position_grid` for every pixel i and footprint position j: (2, K, H*W).

    The position encoding p = A g + b is affine, so with reflection padding p_i - p_j = A (g_i - g_j):
    one 2x2 product on this instead of K shifted differences per layer (with zero padding an outside
    g_j reads 0, and p_j = 0 is not A 0 + b). Cached and read-only, as position_grid.
    """
    with torch.inference_mode(False):
        grid = position_grid(height, width, device=device, dtype=dtype)
        return local_relation(grid, grid, "subtraction", window)[0]


def patchwise_relation(
    phi: torch.Tensor,
    psi: torch.Tensor,
    relation: PatchwiseRelation,
    kernel_size: int,
    dilation: int = 1,
    padding: Padding = "reflect",
) -> torch.Tensor:
    """delta(x_R(i)) for every pixel i -> (N, width, H, W) (widths in `patchwise_width`)."""
    if phi.shape != psi.shape:
        raise ValueError(f"phi {tuple(phi.shape)} and psi {tuple(psi.shape)} must have the same shape")
    window = Window(kernel_size, dilation, padding)
    n, c, h, w = phi.shape
    if relation == "star":
        return pairwise_relation(phi, psi, "dot", kernel_size, dilation, padding).view(n, window.size, h, w)
    if relation == "clique":
        gram = torch.einsum("ncjl,nckl->njkl", window.unfold(phi), window.unfold(psi))
        return gram.reshape(n, window.size**2, h, w)
    if relation == "concatenation" and current_backend() == "unfold":
        return torch.cat([phi, window.unfold(psi).view(n, c * window.size, h, w)], 1)
    if relation == "concatenation":
        return PatchConcatenation.apply(phi, psi, window)
    raise ValueError(f"unknown patchwise relation {relation!r}; valid: {PATCHWISE_RELATIONS}")


class PatchConcatenation(torch.autograd.Function):
    """[phi_i, psi_j for all j in R(i)] in nn.Unfold's (c, j) channel order, as K shifted copies
    into one buffer: no unfold output to concatenate (a second K-fold wide copy), and a backward of
    K shifted sums instead of col2im. Pads psi itself, so that the reflected border folds back in
    the float32 accumulator of a half or bfloat16 psi.
    """

    @staticmethod
    @opaque_to_tracer
    def forward(ctx: Any, phi: torch.Tensor, psi: torch.Tensor, window: Window) -> torch.Tensor:
        ctx.window = window
        n, c, h, w = phi.shape
        psi_padded = window.pad_input(psi)
        fmt = torch.channels_last if channels_last(phi) else torch.contiguous_format
        out = torch.empty((n, c * (window.size + 1), h, w), dtype=phi.dtype, device=phi.device, memory_format=fmt)
        out[:, :c].copy_(phi)
        neighbours = out[:, c:].unflatten(1, (c, window.size))
        for j, (dy, dx) in enumerate(window.offsets()):
            neighbours[:, :, j].copy_(psi_padded[..., dy : dy + h, dx : dx + w])
        return out

    @staticmethod
    @first_order_backward
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        window: Window = ctx.window
        n, _, h, w = grad.shape
        c = grad.shape[1] // (window.size + 1)
        grad_psi = None
        if ctx.needs_input_grad[1]:
            acc = accumulator_dtype(grad.dtype)
            grad_psi = window.padded_zeros((n, c, h, w), channels_last(grad), acc, grad.device)
            neighbours = grad[:, c:].unflatten(1, (c, window.size))
            for j, (dy, dx) in enumerate(window.offsets()):
                grad_psi[..., dy : dy + h, dx : dx + w].add_(neighbours[:, :, j])
            grad_psi = window.unpad_grad(grad_psi).to(grad.dtype)
        return grad[:, :c] if ctx.needs_input_grad[0] else None, grad_psi, None
