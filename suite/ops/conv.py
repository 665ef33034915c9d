"""1x1 convolutions as matrix products, for SAN's ops that run outside autograd's bookkeeping.

On CPU, PyTorch's convolution (oneDNN, NCHW) is 3-60x slower than one matrix product per image for
few channels over many pixels, as in gamma (4 to 130 channels over K*H*W pixels) and the stem
(3 -> 64 channels at full resolution). Measured on 2 cores, batch 8: 18 -> 16 channels over
49 x 56 x 56 pixels, forward 94 vs 27 ms, backward 189 vs 42 ms. Under autograd, torch.matmul
would keep a transposed copy of the input, so modules keep nn.Conv2d. Other devices use F.conv2d.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from suite.ops.window import channels_last


def conv1x1(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """F.conv2d(x, weight, bias) for a (C_out, C_in, 1, 1) weight and x (N, C_in, *spatial)."""
    if x.device.type != "cpu":
        return F.conv2d(x, weight, bias)
    matrix = weight.flatten(1)
    if channels_last(x):  # (N, H, W, C) in memory: one product over all pixels, output NHWC too
        out = torch.matmul(x.permute(0, 2, 3, 1), matrix.t())
        return (out if bias is None else out + bias).permute(0, 3, 1, 2)
    out = torch.matmul(matrix, x.flatten(2)).view(x.shape[0], -1, *x.shape[2:])
    return out if bias is None else out + bias.view(-1, *[1] * (x.dim() - 2))
