"""The k x k footprint R(i) of local self-attention: offsets, padding and its gradient.

Conventions follow the official CUDA kernels (hszhao/SAN `lib/sa/functions/*.py`): footprint
position j = kh * k + kw (row-major), padding d * (k - 1) // 2 so the window centre is the query
pixel itself, stride 1, and an outside neighbour reads the reflected pixel ('reflect', the official
default, identical to ReflectionPad2d when pad < size) or zero ('zeros').
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from suite.errors import SuiteError
from suite.ops.tracing import cached_outside_traces

Padding = Literal["reflect", "zeros"]
PADDINGS: tuple[str, ...] = ("reflect", "zeros")


@dataclass(frozen=True)
class Window:
    """A k x k footprint with dilation d and a padding mode."""

    kernel_size: int
    dilation: int = 1
    padding: Padding = "reflect"

    def __post_init__(self) -> None:
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise SuiteError(f"footprint must be an odd integer >= 1, got {self.kernel_size}", key="footprint")
        if self.dilation < 1:
            raise SuiteError(f"dilation must be >= 1, got {self.dilation}", key="dilation")
        if self.padding not in PADDINGS:
            raise SuiteError(f"unknown padding {self.padding!r}", key="padding", choices=PADDINGS)

    @property
    def size(self) -> int:
        """K, the number of footprint positions."""
        return self.kernel_size**2

    @property
    def pad(self) -> int:
        return self.dilation * (self.kernel_size - 1) // 2

    def offsets(self) -> tuple[tuple[int, int], ...]:
        """(row, column) of footprint position j inside the padded input, in the kernels' order."""
        return _offsets(self.kernel_size, self.dilation)

    def pad_input(self, x: torch.Tensor) -> torch.Tensor:
        """x padded by `pad` on every side (keeps x's memory format)."""
        p = self.pad
        if p == 0:
            return x
        if self.padding == "zeros":
            return F.pad(x, (p, p, p, p))
        height, width = x.shape[-2:]
        if p >= height or p >= width:
            raise SuiteError(
                f"reflection padding of {p} px needs feature maps larger than {p} px, got {height}x{width} "
                f"(footprint {self.kernel_size}, dilation {self.dilation}); use padding='zeros' or a larger input",
                key="padding",
            )
        return F.pad(x, (p, p, p, p), mode="reflect")

    def padded_zeros(self, shape: Sequence[int], nhwc: bool, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """Zeros of the padded shape of an (N, C, H, W) input, NHWC or not: the accumulator for a
        gradient w.r.t. pad_input(x). Takes x's shape and layout, not x: a backward that saved
        nothing (the additive relations) has no x to pass."""
        n, c, h, w = shape
        p = self.pad
        fmt = torch.channels_last if nhwc else torch.contiguous_format
        return torch.empty((n, c, h + 2 * p, w + 2 * p), dtype=dtype, device=device, memory_format=fmt).zero_()

    def unpad_grad(self, grad: torch.Tensor) -> torch.Tensor:
        """The gradient w.r.t. the unpadded input from the gradient w.r.t. the padded one.

        For reflection the border rows/columns fold back onto the pixels they mirror (what the
        official backward does with torch.flip), up to four values added per border pixel: pass
        the float32 accumulator of a half or bfloat16 op and cast after, so each sum rounds once.
        """
        p = self.pad
        if p == 0:
            return grad
        if self.padding == "zeros":
            return grad[..., p:-p, p:-p]
        n, c, h, w = grad.shape
        fmt = torch.channels_last if channels_last(grad) else torch.contiguous_format
        like = torch.empty((n, c, h - 2 * p, w - 2 * p), dtype=grad.dtype, device=grad.device, memory_format=fmt)
        return torch.ops.aten.reflection_pad2d_backward(grad, like, [p, p, p, p])

    def unfold(self, x: torch.Tensor) -> torch.Tensor:
        """Naive neighbourhood tensor (N, C, K, H*W): x_j for every j in R(i), materialised.

        Channel order (c, j) when flattened to (N, C*K, L), exactly nn.Unfold's: the patchwise
        concatenation relation depends on it.

        For a half or bfloat16 x that autograd records, the backward adds the K overlapping windows'
        gradients and folds the reflected border back in float32 and rounds each sum once
        (`_UnfoldSummingInFloat32`); autograd's own col2im in x's dtype rounded every addition
        (dL/dx of the clique product and of the unfold backend 4 to 7 units of rounding off).
        """
        n, c, h, w = x.shape
        if x.requires_grad and torch.is_grad_enabled() and accumulator_dtype(x.dtype) != x.dtype:
            cols = _UnfoldSummingInFloat32.apply(x, self)
        else:
            cols = F.unfold(self.pad_input(x), self.kernel_size, dilation=self.dilation)
        return cols.view(n, c, self.size, h * w)


class _UnfoldSummingInFloat32(torch.autograd.Function):
    """Window.unfold of a half or bfloat16 x whose backward sums in float32 without a float32 copy
    of the K-wide tensor: each footprint row's k gradient windows are widened and folded (col2im)
    into a float32 accumulator of the padded map's size, row after row. An unfold made in float32,
    as before, held a float32 copy of the K-wide tensor (twice the unfolded x's size) in the
    forward, and autograd widened the K-wide gradient likewise for its col2im."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, window: Window) -> torch.Tensor:
        ctx.window, ctx.shape, ctx.nhwc, ctx.dtype = window, x.shape, channels_last(x), x.dtype
        return F.unfold(window.pad_input(x), window.kernel_size, dilation=window.dilation)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        window: Window = ctx.window
        n, c, h, w = ctx.shape
        k, d = window.kernel_size, window.dilation
        rows = grad.reshape(n, c, k, k * h * w)
        total = window.padded_zeros(ctx.shape, ctx.nhwc, accumulator_dtype(ctx.dtype), grad.device)
        for kh in range(k):  # one footprint row (k windows) at a time: 1/k of the K-wide gradient widened
            row = rows[:, :, kh].to(total.dtype).reshape(n, c * k, h * w)  # under autocast grad may be float32
            total[..., kh * d : kh * d + h, :] += F.fold(row, (h, total.shape[-1]), (1, k), dilation=(1, d))
        return window.unpad_grad(total).to(ctx.dtype), None


@cached_outside_traces(maxsize=None)
def _offsets(kernel_size: int, dilation: int) -> tuple[tuple[int, int], ...]:
    return tuple((kh * dilation, kw * dilation) for kh in range(kernel_size) for kw in range(kernel_size))


def accumulator_dtype(dtype: torch.dtype) -> torch.dtype:
    """Sums over the K footprint positions run in float32 for half and bfloat16 inputs."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def channels_last(x: torch.Tensor) -> bool:
    """Whether x is laid out NHWC (and not also plain contiguous, as for 1x1 maps)."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def empty_window_tensor(like: torch.Tensor, channels: int, size: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Uninitialised (N, channels, K, H, W) tensor in `like`'s layout.

    For an NHWC `like` the memory order is (N, K, H, W, channels), so both the per-offset slice
    [:, :, j] and the (N, channels, K, H*W) view are NHWC-style and 1x1 convs on it need no
    reorder.
    """
    n, _, h, w = like.shape
    dtype = like.dtype if dtype is None else dtype
    if channels_last(like):
        return like.new_empty((n, size, h, w, channels), dtype=dtype).permute(0, 4, 1, 2, 3)
    return like.new_empty((n, channels, size, h, w), dtype=dtype)
