"""Local aggregation y_i = sum_{j in R(i)} w_ij (.) x_j, the official `Aggregation` op.

y[n, c, i] = sum_j w[n, c mod Cw, j, i] * x[n, c, j]: value channel c uses attention channel
c mod Cw (interleaved sharing, as the CUDA kernel indexes it), so official weights map 1:1.

The 'shift' implementation never forms the (N, C, K, H, W) neighbourhood of x: it accumulates, for
each of the K offsets, the weighted shifted view of the padded input, and its backward does the
same with the gradient, saving only (x, w) like the fused CUDA kernel. A naive unfold would keep
N*C*K*H*W values alive for backward (131 MiB per image for SAN10).

On narrow maps the forward shifts along rows of the flattened padded planes instead (see
`_aggregate_flat`): PyTorch's elementwise loops vectorise 16 floats at a time (AVX2) and run the
rest of each contiguous row one by one, which for SAN's 14- and 7-pixel rows is all of it.
"""

from __future__ import annotations

from typing import Any

import torch

from suite.ops.autograd import first_order_backward
from suite.ops.backend import current_backend
from suite.ops.tracing import opaque_to_tracer
from suite.ops.window import Padding, Window, accumulator_dtype, channels_last
from suite.ops.workspace import workspace

# Rows narrower than this take the flattened-row forward: PyTorch's CPU loops step 16 floats at a
# time (AVX2), so shorter rows run entirely scalar (at 28 px, measured, both forwards are even).
FLAT_BELOW = 16
# From this many attention channels the CPU forward runs channels-last (`_aggregate_channels_last`).
# Measured on 2 AVX2 cores, batch 8, K = 49, 8 value channels per attention channel, ms per forward
# (NCHW forward / channels-last, weights in each one's layout, x and y converted): Cw = 32 at 7, 14,
# 28 px: 3.4/1.6, 7.9/5.4, 24.8/21.1; Cw = 64: 7.6/2.5, 15.7/7.9, 84/57; Cw = 16 at 14, 28, 56 px:
# 5.4/4.8, 11.7/15.0, 59/73; Cw = 8 at 14, 28 px: 2.2/5.6, 5.7/12.7 (runs of Cw too short to vectorise).
CHANNELS_LAST_FROM = 32


def aggregation(
    x: torch.Tensor, w: torch.Tensor, kernel_size: int, dilation: int = 1, padding: Padding = "reflect"
) -> torch.Tensor:
    """Aggregate x (N, C, H, W) with weights w (N, Cw, k*k, H*W), C % Cw == 0 -> (N, C, H, W).

    w is cast to x's dtype (under autocast the softmax producing w runs in float32).
    """
    window = Window(kernel_size, dilation, padding)
    _check_shapes(x, w, window)
    w = w.to(x.dtype)
    if current_backend() == "unfold":
        return aggregation_unfold(x, w, window)
    return Aggregation.apply(x, w, window)


def aggregation_unfold(x: torch.Tensor, w: torch.Tensor, window: Window) -> torch.Tensor:
    """Naive reference: materialise the neighbourhood, multiply, sum over the footprint."""
    n, c, h, wd = x.shape
    cw = w.shape[1]
    cols = window.unfold(x).view(n, c // cw, cw, window.size, h * wd)
    return (cols * w.unsqueeze(1)).sum(3).view(n, c, h, wd)


class Aggregation(torch.autograd.Function):
    """Shift formulation; K in-place multiply-adds of views, in float32 for half/bfloat16 inputs."""

    @staticmethod
    @opaque_to_tracer
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, window: Window) -> torch.Tensor:
        ctx.window = window
        ctx.save_for_backward(x, w)
        n, c, h, wd = x.shape
        # Not while torch.compile traces: only eager inference lays w out channels-last, and a
        # symbolic stride (after a recompile with dynamic shapes) fails dynamo's trace.
        if not torch.compiler.is_compiling() and w.stride(1) == 1 and weights_channels_last(w.shape[1], x.device):
            return _aggregate_channels_last(x, w, window)
        if wd < FLAT_BELOW and x.device.type == "cpu" and not channels_last(x):
            return _aggregate_flat(x, w, window)
        cw = w.shape[1]
        xp = window.pad_input(x).unflatten(1, (c // cw, cw))
        w5 = w.unflatten(-1, (h, wd)).unsqueeze(1)  # (N, 1, Cw, K, H, W), broadcast over groups
        out = torch.zeros_like(x, dtype=accumulator_dtype(x.dtype)).unflatten(1, (c // cw, cw))
        for j, (dy, dx) in enumerate(window.offsets()):
            out.addcmul_(xp[..., dy : dy + h, dx : dx + wd], w5[:, :, :, j])
        return out.flatten(1, 2).to(x.dtype)

    @staticmethod
    @first_order_backward
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, w = ctx.saved_tensors
        window: Window = ctx.window
        n, c, h, wd = x.shape
        cw = w.shape[1]
        need_x, need_w = ctx.needs_input_grad[:2]
        acc = accumulator_dtype(x.dtype)
        w5 = w.unflatten(-1, (h, wd)).unsqueeze(1)
        grad_x = grad_w = None
        if need_x:
            grad_xp = window.padded_zeros(x.shape, channels_last(x), acc, x.device).unflatten(1, (c // cw, cw))
            grad_groups = grad.unflatten(1, (c // cw, cw))
        if need_w:
            # dL/dw sums G = C / Cw products: from float32 copies of a half or bfloat16 grad and x
            # (no copies otherwise) each product is exact, and the sum rounds once to w's dtype (with
            # products made in the dtype, twice: up to 1.6 u), and no slower (timed in commit 5cf218f).
            grad_wide = grad.to(acc).unflatten(1, (c // cw, cw))
            xp = window.pad_input(x.to(acc)).unflatten(1, (c // cw, cw))
            grad_w = torch.empty_like(w5.squeeze(1), dtype=acc)
        for j, (dy, dx) in enumerate(window.offsets()):
            if need_x:
                grad_xp[..., dy : dy + h, dx : dx + wd].addcmul_(grad_groups, w5[:, :, :, j])
            if need_w:
                torch.sum(grad_wide * xp[..., dy : dy + h, dx : dx + wd], dim=1, out=grad_w[:, :, j])
        if need_x:
            grad_x = window.unpad_grad(grad_xp.flatten(1, 2)).to(x.dtype)
        if need_w:
            grad_w = grad_w.flatten(-2).to(w.dtype)
        return grad_x, grad_w, None


def weights_channels_last(weight_channels: int, device: torch.device) -> bool:
    """Whether producers of w (N, Cw, K, H*W) should lay its channels out contiguously (stride 1,
    e.g. (K, N, H*W, Cw) in memory): the forward then runs channels-last (`_aggregate_channels_last`)."""
    return device.type == "cpu" and weight_channels >= CHANNELS_LAST_FROM


def _aggregate_channels_last(x: torch.Tensor, w: torch.Tensor, window: Window) -> torch.Tensor:
    """The forward with x, y and w channels-last: offset j adds x's shifted window (h runs of
    W * C contiguous values) times w's block j (N, H, W, Cw), broadcast over the C / Cw groups of
    each pixel's channels, so every inner loop is Cw contiguous values whatever the map's width.
    Taken only when w's channels are contiguous already (gamma's inference writes them so): copying
    w into that layout costs about what the layout saves (a training step measured no faster).
    y returns in x's memory format.
    """
    n, c, h, wd = x.shape
    cw = w.shape[1]
    xp = window.pad_input(x.contiguous(memory_format=torch.channels_last))
    xp = xp.permute(0, 2, 3, 1).unflatten(-1, (c // cw, cw))  # (N, Hp, Wp, C / Cw, Cw)
    blocks = w.permute(2, 0, 3, 1).unflatten(2, (h, wd)).unsqueeze(-2)  # (K, N, H, W, 1, Cw)
    out = torch.zeros((n, h, wd, c // cw, cw), dtype=accumulator_dtype(x.dtype), device=x.device)
    for j, (dy, dx) in enumerate(window.offsets()):
        out.addcmul_(xp[:, dy : dy + h, dx : dx + wd], blocks[j])
    fmt = torch.channels_last if channels_last(x) else torch.contiguous_format
    return out.flatten(-2).permute(0, 3, 1, 2).to(x.dtype, memory_format=fmt)


def _aggregate_flat(x: torch.Tensor, w: torch.Tensor, window: Window) -> torch.Tensor:
    """The forward on flattened planes: one contiguous run per plane and offset, not one per row.

    Offset (dy, dx) of every pixel is a fixed shift dy * Wp + dx in the flattened padded plane
    (width Wp), so the output is computed on the padded width, H x Wp, whose last 2 * pad columns
    of each row are discarded; the weights are first laid out on that grid (one copy).
    The run length (H - 1) * Wp + W keeps the last shift inside the padded plane.
    """
    n, c, h, wd = x.shape
    cw, size = w.shape[1], window.size
    xp = window.pad_input(x)
    wp = xp.shape[-1]
    length = (h - 1) * wp + wd
    planes = xp.reshape(n, c // cw, cw, -1)
    grid = workspace("aggregation grid", (n, 1, cw, size, h, wp), w)
    grid[..., wd:].zero_()
    grid[..., :wd].copy_(w.unflatten(-1, (h, wd)).unsqueeze(1))
    grid = grid.flatten(-2)[..., :length]
    out = torch.zeros((n, c // cw, cw, h, wp), dtype=accumulator_dtype(x.dtype), device=x.device)
    runs = out.flatten(-2)[..., :length]
    for j, (dy, dx) in enumerate(window.offsets()):
        start = dy * wp + dx
        runs.addcmul_(planes[..., start : start + length], grid[:, :, :, j])
    return x.new_empty(x.shape).copy_(out.flatten(1, 2)[..., :wd])


def _check_shapes(x: torch.Tensor, w: torch.Tensor, window: Window) -> None:
    if x.dim() != 4 or w.dim() != 4:
        raise ValueError(f"aggregation expects x (N, C, H, W) and w (N, Cw, K, H*W), got {tuple(x.shape)}, {tuple(w.shape)}")
    n, c, h, wd = x.shape
    if w.shape[0] != n or w.shape[2] != window.size or w.shape[3] != h * wd or c % w.shape[1]:
        raise ValueError(
            f"aggregation: w {tuple(w.shape)} does not fit x {tuple(x.shape)} with a "
            f"{window.kernel_size}x{window.kernel_size} footprint (need (N, Cw, {window.size}, {h * wd}), C % Cw == 0)"
        )
