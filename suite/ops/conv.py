"""1x1 convolutions as matrix products, for SAN's ops outside autograd's bookkeeping and its inference.

On CPU, PyTorch's convolution (oneDNN, NCHW) is 3-60x slower than one matrix product per image for
few channels over many pixels, as in gamma (4 to 130 channels over K*H*W pixels) and the stem
(3 -> 64 channels at full resolution). Measured on 2 cores, batch 8: 18 -> 16 channels over
49 x 56 x 56 pixels, forward 94 vs 27 ms, backward 189 vs 42 ms; on an AVX2 machine, SAN10's
block convs at 112 x 112 (16 -> 64 channels) too. Under autograd, torch.matmul would keep a transposed
copy of the input, so modules use nn.Conv2d there. Other devices use F.conv2d.
Batched products (torch.matmul, bmm) on (N, C, P) copy an operand or the result into another
layout for these shapes, so these are 2-D products, one per image. Below `MIN_PIXELS` pixels per
image the products are too thin and the convolution wins (SAN's 7x7 stage, 512 -> 2048 channels),
so there conv1x1 is F.conv2d.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from suite.ops.window import channels_last

MIN_PIXELS = 64


def conv1x1(x: Tensor, weight: Tensor, bias: Tensor | None = None, residual: Tensor | None = None) -> Tensor:
    """F.conv2d(x, weight, bias) [+ residual] for a (C_out, C_in, 1, 1) weight and x (N, C_in, *spatial).

    Adding the residual inside the product (GEMM's C += A B) saves a pass over the output; the
    bias is added image by image, while the image's output is still in cache.
    """
    if x.device.type != "cpu" or math.prod(x.shape[2:]) < MIN_PIXELS:
        out = F.conv2d(x, weight, bias)
        return out if residual is None else out.add_(residual)
    matrix = weight.flatten(1)
    if channels_last(x):  # (N, H, W, C) in memory: one product over all pixels, output NHWC too
        out = torch.matmul(x.permute(0, 2, 3, 1), matrix.t())
        out = (out if bias is None else out.add_(bias)).permute(0, 3, 1, 2)
        return out if residual is None else out.add_(residual)
    # one 2-D product per image: torch.matmul/bmm on (N, C, P) batches copy an operand or the
    # result into another layout for these shapes (a third of gamma's training time); in
    # autocast's dtype where it is on, as torch.matmul would compute (out= products bypass it)
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    matrix = matrix.to(dtype)
    bias = None if bias is None else bias.to(dtype)[:, None]
    out = x.new_empty((x.shape[0], matrix.shape[0], *x.shape[2:]), dtype=dtype)
    for i, (image, target) in enumerate(zip(x, out)):
        target = target.view(matrix.shape[0], -1)
        image = image.reshape(matrix.shape[1], -1).to(dtype)
        if residual is None:
            torch.mm(matrix, image, out=target)
        else:
            torch.addmm(residual[i].reshape(target.shape).to(dtype), matrix, image, out=target)
        if bias is not None:
            target.add_(bias)
    return out


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
