"""Building blocks shared by the model families (residual units, initialisation).

`PreActBottleneck` follows He et al. 2016b ("Identity mappings in deep residual networks") exactly
as the official Residual Attention Network prototxt instantiates it: BN-ReLU before every conv,
bottleneck width C/4, stride on the 3x3 conv, no conv biases, and a 1x1 projection shortcut taken
from the *pre-activated* input whenever the shape changes.

`ResNeXtBottleneck` is the post-activation ResNeXt unit (Xie et al. 2017) as the official
AttentionNeXt prototxts instantiate it: conv-BN(-ReLU) three times, bottleneck width C/2 with a
grouped 3x3 (32 groups at ImageNet width), stride on the 3x3, a 1x1 conv + BN projection on the
raw input when the shape changes, and ReLU after the sum.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from suite.errors import SuiteError
from suite.models.registry import Check

# Caffe's BN defaults (moving-average factor 0.9, eps 1e-5) in PyTorch terms.
BN_MOMENTUM = 0.1
BN_EPS = 1e-5


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class PreActBottleneck(nn.Module):
    """BN-ReLU-1x1 / BN-ReLU-3x3(stride) / BN-ReLU-1x1, width `out_channels // 4`, plus a shortcut.

    `preact=False` leaves out the first BN-ReLU, for a unit right after a stem that ends in BN-ReLU
    (fb.resnet.torch's `preresnet.lua` 'no_preact' first unit): the input is used as it comes.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *, preact: bool = True) -> None:
        super().__init__()
        width = out_channels // 4
        self.bn1 = batch_norm(in_channels) if preact else None
        self.conv1 = conv1x1(in_channels, width)
        self.bn2 = batch_norm(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn3 = batch_norm(width)
        self.conv3 = conv1x1(width, out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = (
            conv1x1(in_channels, out_channels, stride) if stride != 1 or in_channels != out_channels else None
        )

    def forward(self, x: Tensor) -> Tensor:
        preact = x if self.bn1 is None else self.relu(self.bn1(x))
        # The projection sees the pre-activated input (as in the prototxt); identity keeps raw x.
        shortcut = x if self.shortcut is None else self.shortcut(preact)
        out = self.conv1(preact)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + shortcut


class ResNeXtBottleneck(nn.Module):
    """1x1-BN-ReLU / grouped 3x3(stride)-BN-ReLU / 1x1-BN, width `out_channels // 2`, + shortcut, ReLU.

    Post-activation: the output is already ReLU'd, so nothing downstream adds a BN-ReLU before use.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *, groups: int = 32) -> None:
        super().__init__()
        width = out_channels // 2
        self.conv1 = conv1x1(in_channels, width)
        self.bn1 = batch_norm(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = batch_norm(width)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = batch_norm(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = (
            nn.Sequential(conv1x1(in_channels, out_channels, stride), batch_norm(out_channels))
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


def init_weights(model: nn.Module) -> None:
    """He init (normal, fan_out) for convs, BN scale 1 / shift 0; linear layers keep PyTorch's init."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def positive(*keys: str) -> Check:
    """A registry check: these integer options must be >= 1 (type hints cannot say so)."""

    def check(options: Mapping[str, Any], input_size: int | None) -> None:
        for key in keys:
            if options[key] < 1:
                raise SuiteError(f"invalid value {options[key]!r}: must be a positive integer", key=key,
                                 choices=["1, 2, 3, ..."])

    return check
