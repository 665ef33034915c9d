"""1x1 convolutions as matrix products, for SAN's ops outside autograd's bookkeeping and its inference.

On CPU, PyTorch's convolution (oneDNN, NCHW) is 3-60x slower than one matrix product per image for
few channels over many pixels, as in gamma (4 to 48 channels over K*H*W pixels) and the stem
(3 -> 64 channels at full resolution). Measured on 2 cores, batch 8: 18 -> 16 channels over
49 x 56 x 56 pixels, forward 94 vs 27 ms, backward 189 vs 42 ms; on an AVX2 machine, SAN10's
block convs at 112 x 112 (16 -> 64 channels) too. Under autograd, torch.matmul would keep a transposed
copy of the input, so modules use nn.Conv2d there. Other devices use F.conv2d.
Batched products (torch.matmul, bmm) on (N, C, P) copy an operand or the result into another
layout for these shapes, so these are 2-D products, one per image. Below `MIN_PIXELS` pixels per
image the products are too thin and the convolution wins (SAN's 7x7 stage, 512 -> 2048 channels),
so there conv1x1 is F.conv2d; so it is with `WIDE_CHANNELS` channels or more on both sides, where
oneDNN's blocked kernels outrun the matrix product: on a 2-core AVX-512 AMD EPYC, batch 8, 2x for
every such conv of SAN10 (64 -> 64 at 112 x 112: 4.4 vs 8.0 ms; 1024 -> 384 at 14 x 14: 2.9 vs
6.7 ms; gamma's 66 -> 64 over 49 x 14 x 14: 3.7 vs 7.1 ms), while narrower ones lose (gamma's
34 -> 32 over 49 x 28 x 28: 45 vs 17 ms; 64 -> 24 at 112 x 112: even). Except where the whole-batch
way would make a fresh tensor over `FRESH_LIMIT` elements that the per-image products avoid (the
normalised input, an output to add): glibc maps blocks that size afresh and the kernel faults
their pages in one by one, which in SAN10's 112 x 112 and 56 x 56 stages cost more than oneDNN gains
(25,000 page faults a batch in the 56 x 56 stage, against 6,000 with the products in place).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from suite.ops.window import channels_last

MIN_PIXELS = 64
WIDE_CHANNELS = 64
FRESH_LIMIT = 2**22  # elements: 16 MiB of float32


def conv1x1(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    add_to: Tensor | None = None,
    affine_relu: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """F.conv2d(x', weight, bias) for a (C_out, C_in, 1, 1) weight and x (N, C_in, *spatial), where
    x' = ReLU(scale * x + shift) per channel with `affine_relu` = (scale, shift) (an eval-mode BN
    and ReLU), else x; with `add_to`, the result is added to it in place and it is returned.

    Adding inside the product (GEMM's C += A B, into a tensor already in memory) saves a pass over
    the output and a fresh output tensor, whose pages the kernel would fault in one by one (glibc
    maps blocks this size afresh: 6,272 faults per 25 MiB map); the bias is added image by image,
    while the image's output is still in cache; x' is made image by image in one buffer, which
    the product reads from cache (the whole of x' would be written to memory and read back).
    """
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    fresh = max(x.numel(), x.numel() // x.shape[1] * weight.shape[0]) if affine_relu is not None or add_to is not None else 0
    whole = _convolution_wins(x, weight, fresh) or channels_last(x)
    if affine_relu is not None:
        scale, shift = (t.view(-1, *[1] * (x.dim() - 2)) for t in affine_relu)
    if whole or (add_to is not None and (add_to.dtype != dtype or not add_to.is_contiguous())):
        if affine_relu is not None:
            x = torch.addcmul(shift, x, scale).relu_()
        out = _conv1x1_whole(x, weight, bias)
        return out if add_to is None else add_to.add_(out)
    # one 2-D product per image: torch.matmul/bmm on (N, C, P) batches copy an operand or the
    # result into another layout for these shapes (a third of gamma's training time); in
    # autocast's dtype where it is on, as torch.matmul would compute (out= products bypass it)
    matrix = weight.flatten(1).to(dtype)
    bias = None if bias is None else bias.to(dtype)[:, None]
    out = x.new_empty((x.shape[0], matrix.shape[0], *x.shape[2:]), dtype=dtype) if add_to is None else add_to
    if affine_relu is not None:
        normalised = x.new_empty(x.shape[1:])
    for image, target in zip(x, out):
        target = target.view(matrix.shape[0], -1)
        if affine_relu is not None:
            image = torch.addcmul(shift, image, scale, out=normalised).relu_()
        image = image.reshape(matrix.shape[1], -1).to(dtype)
        if add_to is None:
            torch.mm(matrix, image, out=target)
        else:
            target.addmm_(matrix, image)
        if bias is not None:
            target.add_(bias)
    return out


def _convolution_wins(x: Tensor, weight: Tensor, fresh: int = 0) -> bool:
    """Whether F.conv2d is the fastest way: off the CPU, on thin maps, for wide convs unless it
    needs `fresh` elements of temporaries the per-image products do without."""
    if x.device.type != "cpu" or math.prod(x.shape[2:]) < MIN_PIXELS:
        return True
    return min(weight.shape[:2]) >= WIDE_CHANNELS and fresh <= FRESH_LIMIT


def _conv1x1_whole(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """The product for the whole batch at once: F.conv2d, or for a narrow conv on NHWC on CPU one
    matmul over all pixels (output NHWC too)."""
    if _convolution_wins(x, weight) or not channels_last(x):
        return F.conv2d(x, weight, bias)
    out = torch.matmul(x.permute(0, 2, 3, 1), weight.flatten(1).t())
    return (out if bias is None else out.add_(bias)).permute(0, 3, 1, 2)


def conv1x1_relu_backward(grad: Tensor, x: Tensor, weight: Tensor, scale: Tensor,
                          shift: Tensor) -> tuple[Tensor, Tensor]:
    """(grad w.r.t. z, grad w.r.t. weight) of conv1x1(relu(z), weight) with z = scale * x + shift
    per channel: the backward of a BN's affine, ReLU and 1x1 conv down to the BN's output.

    On the CPU, relu(z) is remade image by image in one buffer for the weight's gradient and the
    ReLU's mask (as conv1x1's `affine_relu` does forwards), never whole: a whole one would be a fresh
    map (K-fold wide in gamma) that the kernel faults in page by page at every step. SAN10
    patchwise's training step peaks at 1,064 MiB this way, against 1,195 MiB with whole ones
    (`python -m suite.ops.benchmark` at 795c919 and at 407d09d).
    """
    view = (-1, *[1] * (x.dim() - 2))
    scale, shift = scale.view(view), shift.view(view)
    if x.device.type != "cpu" or channels_last(x):
        rectified = torch.addcmul(shift, x, scale).relu_()
        grad_z, grad_weight = conv1x1_backward(grad, rectified, weight)
        return torch.ops.aten.threshold_backward.grad_input(grad_z, rectified, 0, grad_input=grad_z), grad_weight
    matrix = weight.flatten(1)
    grad_z = conv1x1(grad, matrix.t()[..., None, None])
    grad_weight = torch.zeros_like(matrix)
    rectified = x.new_empty(x.shape[1:])
    for g, image, target in zip(grad, x, grad_z):
        torch.addcmul(shift, image, scale, out=rectified).relu_()
        grad_weight.addmm_(g.reshape(matrix.shape[0], -1), rectified.view(matrix.shape[1], -1).t())
        torch.ops.aten.threshold_backward.grad_input(target, rectified, 0, grad_input=target)
    return grad_z, grad_weight.view_as(weight)


def conv1x1_backward(grad: Tensor, x: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """(grad w.r.t. x, grad w.r.t. weight) of conv1x1(x, weight), as products of the same kind."""
    matrix = weight.flatten(1)
    grad_x = conv1x1(grad, matrix.t()[..., None, None])
    if x.device.type != "cpu":
        return grad_x, torch.einsum("nop,nip->oi", grad.flatten(2), x.flatten(2)).view_as(weight)
    grad_weight = torch.zeros_like(matrix)
    for g, image in zip(grad, x):
        grad_weight.addmm_(g.reshape(matrix.shape[0], -1), image.reshape(matrix.shape[1], -1).t())
    return grad_x, grad_weight.view_as(weight)
