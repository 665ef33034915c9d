"""ResNet baselines: the ResNets SAN and RAN are compared with.

SAN Table 2 (ImageNet, 224): ResNet26/38/50 are the SASA definitions ([1,2,4,1], [2,3,5,2],
[3,4,6,3] bottlenecks) used by the SAN paper; torchvision's builder with these layer counts
reproduces the paper's params and FLOPs exactly (13.7 M / 2.4 G, 19.6 M / 3.2 G, 25.6 M / 4.1 G).
timm's `resnet26` is [2,2,2,2], a different network.

RAN Table 6 (CIFAR, 32x32; counts below at 10 classes):
- `resnet164_cifar`, `resnet1001_cifar`: the pre-activation bottleneck ResNets of He et al. 2016b
  ("Identity mappings"): 3x3 stem of 16 channels, 18 / 111
  `PreActBottleneck` units per stage at widths 64/128/256 (32/16/8 px), BN-ReLU head. 1,703,258 /
  10,327,706 parameters against the 1.7 / 10.3 M RAN prints. A down-sampling unit strides its 3x3
  conv, as RAN's prototxt units do, so baseline and attention network share one unit; the official
  ResNet-1001 code (KaimingHe/resnet-1k-layers, resnet-pre-act.lua) strides the first 1x1 instead
  (same parameters, about 3 M fewer multiply-adds).
- `wrn16_8_cifar`, `wrn28_10_cifar`: Wide ResNets (Zagoruyko & Komodakis 2016) as the official
  code builds them (szagoruyko/wide-residual-networks, models/wide-resnet.lua and pytorch/resnet.py):
  3x3 stem of 16 channels, 3 groups of (depth - 4) / 6 `PreActBasic` blocks at widths 16k/32k/64k
  (stride 2 at groups 2 and 3), convs without bias, 1x1 projection from the pre-activated input
  when the shape changes, BN-ReLU head. 10,961,370 / 36,479,194 parameters against 11.0 / 36.5 M.
  RAN's WRN figures (4.81 / 22.07 and 4.17 / 20.50) are the WRN paper's first-version width table
  (ZCA-whitened CIFAR, no dropout; the WRN-28-10 *with* dropout 0.3 was 4.39 / 20.0 there, and
  3.89 / 18.85 in the final mean/std version), so `dropout` defaults to 0 for both rows.
  Initialisation is the suite's (`init_weights`, He fan-out), as for every model here.

RAN Table 7 (ImageNet; complexity counted at 224, GMACs = fvcore multiply-adds, which is what the
paper's "FLOPs" are):
- `resnet152` ([3,8,36,3]) and `resnext101_32x4d` ([3,4,23,3], 32 groups of width 4 in stage 1):
  torchvision's builder. Both put the stride on the 3x3 conv ("ResNet v1.5", as fb.resnet.torch
  and fb.resnext.torch do); the original Caffe ResNet-152 strides the first 1x1 instead, hence
  11.56 GMACs here against the paper's 11.3 (11.33 with the stride moved to the 1x1; the
  parameters are the same either way: 60,192,808 vs 60.2 M). ResNeXt-101 (32x4d): 44,177,704
  parameters and 8.01 GMACs (7.55 strided at the 1x1) against 7.8 G and an unverified 44.5 M;
  both printed figures are ResNet-101's own (44.55 M, 7.8 G), which the ResNeXt paper matches its
  32x4d design to, so they are probably nominal rather than counted.
- `resnet200`: the *pre-activation* ResNet-200 of He et al. 2016b that RAN compares with, as
  fb.resnet.torch's `preresnet.lua` builds it: conv 7x7/2 - BN-ReLU - max-pool 3x3/2, then
  [3,24,36,3] `PreActBottleneck` units at widths 256/512/1024/2048 (stride on the 3x3 conv, as there;
  plain 1x1 projection shortcuts), the first unit without its own BN-ReLU since the stem ends in
  one ('no_preact'), and a BN-ReLU head. 64,666,152 parameters vs 64.7 M; 15.07 GMACs at 224 vs
  15.0. The paper tests it on 320x320 crops (`eval_size`). No `zero_init_residual`: a
  pre-activation unit ends in a conv, not in a BN to zero.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from suite.errors import SuiteError
from suite.models.layers import PreActBottleneck, batch_norm, conv1x1, conv3x3, init_weights, positive
from suite.models.papers import RAN_TABLE7, SAN_TABLE2, ran_cifar_paper
from suite.models.registry import register_model

_POSITIVE = positive("num_classes")


def _bottleneck_resnet(layers: list[int], num_classes: int, zero_init_residual: bool, **kwargs: int) -> nn.Module:
    # Imported here, not at the top: importing torchvision loads torch._dynamo (~2 s), which every
    # process that only registers the models (each local run, each SLURM task) would pay.
    from torchvision.models.resnet import Bottleneck, ResNet

    return ResNet(Bottleneck, layers, num_classes=num_classes, zero_init_residual=zero_init_residual, **kwargs)


@register_model(
    label="ResNet26",
    check=_POSITIVE, paper={"params_m": 13.7, "gmacs": 2.4, "top1_err": 26.4, "top5_err": 8.3, "source": SAN_TABLE2}
)
def resnet26(*, num_classes: int = 1000, zero_init_residual: bool = False) -> nn.Module:
    """ResNet26, SAN Table 2's baseline for SAN10: torchvision's bottleneck ResNet with [1, 2, 4, 1]
    blocks, as SASA defines it (timm's resnet26, [2, 2, 2, 2], is another network)."""
    return _bottleneck_resnet([1, 2, 4, 1], num_classes, zero_init_residual)


@register_model(
    label="ResNet38",
    check=_POSITIVE, paper={"params_m": 19.6, "gmacs": 3.2, "top1_err": 24.0, "top5_err": 7.0, "source": SAN_TABLE2}
)
def resnet38(*, num_classes: int = 1000, zero_init_residual: bool = False) -> nn.Module:
    """ResNet38, SAN Table 2's baseline for SAN15: torchvision's bottleneck ResNet with [2, 3, 5, 2]
    blocks, as SASA defines it."""
    return _bottleneck_resnet([2, 3, 5, 2], num_classes, zero_init_residual)


@register_model(
    label="ResNet50",
    check=_POSITIVE, paper={"params_m": 25.6, "gmacs": 4.1, "top1_err": 23.1, "top5_err": 6.5, "source": SAN_TABLE2}
)
def resnet50(*, num_classes: int = 1000, zero_init_residual: bool = False) -> nn.Module:
    """ResNet50, SAN Table 2's baseline for SAN19: torchvision's bottleneck ResNet with [3, 4, 6, 3]
    blocks (the standard ResNet-50)."""
    return _bottleneck_resnet([3, 4, 6, 3], num_classes, zero_init_residual)


@register_model(
    label="ResNet-152",
    check=_POSITIVE,
    paper={"params_m": 60.2, "gmacs": 11.3, "top1_err": 22.16, "top5_err": 6.16, "source": RAN_TABLE7},
)
def resnet152(*, num_classes: int = 1000, zero_init_residual: bool = False) -> nn.Module:
    """ResNet-152 (torchvision; stride on the 3x3, so 11.56 GMACs against the paper's 11.3)."""
    return _bottleneck_resnet([3, 8, 36, 3], num_classes, zero_init_residual)


@register_model(
    label="ResNeXt-101 (32x4d)",
    check=_POSITIVE,
    paper={"params_m": 44.5, "gmacs": 7.8, "top1_err": 21.2, "top5_err": 5.6, "source": RAN_TABLE7},
)
def resnext101_32x4d(*, num_classes: int = 1000, zero_init_residual: bool = False) -> nn.Module:
    """ResNeXt-101 (32x4d): torchvision's ResNet with 32 groups of 4 channels per group in stage 1.
    The paper's 44.5 M is unverified (ran.md) and equals ResNet-101's count; ours is 44.2 M."""
    return _bottleneck_resnet([3, 4, 23, 3], num_classes, zero_init_residual, groups=32, width_per_group=4)


# ------------------------------------------------------------------------- pre-activation nets
class PreActBasic(nn.Module):
    """WRN's block: BN-ReLU-3x3(stride) / BN-ReLU-dropout-3x3, plus a shortcut.

    Like `PreActBottleneck`, a 1x1 projection (when the width or stride changes) takes the
    *pre-activated* input, as the official WRN code does; the identity keeps the raw input.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = batch_norm(in_channels)
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn2 = batch_norm(out_channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = conv3x3(out_channels, out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = (
            conv1x1(in_channels, out_channels, stride) if stride != 1 or in_channels != out_channels else None
        )

    def forward(self, x: Tensor) -> Tensor:
        preact = self.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(preact)
        out = self.conv1(preact)
        out = self.conv2(self.dropout(self.relu(self.bn2(out))))
        return out + shortcut


Block = Callable[..., nn.Module]  # (in_channels, out_channels, stride, **kwargs) -> unit


class PreActResNet(nn.Module):
    """Pre-activation ResNet (He et al. 2016b): `stem`, stages of `block` units (the first of each
    stage changes the width, strided from the second stage on), BN-ReLU head, global pool, FC.

    `stem_activated`: the stem ends in BN-ReLU, so the very first unit skips its own (ImageNet).
    """

    def __init__(
        self,
        stem: nn.Module,
        stem_width: int,
        widths: Sequence[int],
        units: Sequence[int],
        *,
        num_classes: int,
        block: Block = PreActBottleneck,
        stem_activated: bool = False,
    ) -> None:
        super().__init__()
        self.stem = stem
        layers: list[nn.Module] = []
        in_width = stem_width
        for i, (width, n) in enumerate(zip(widths, units)):
            first = {"preact": False} if stem_activated and i == 0 else {}
            layers.append(block(in_width, width, 1 if i == 0 else 2, **first))
            layers += [block(width, width) for _ in range(n - 1)]
            in_width = width
        self.features = nn.Sequential(*layers)
        self.head_norm = nn.Sequential(batch_norm(in_width), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_width, num_classes)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.head_norm(self.features(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def _preact_cifar(units_per_stage: int, base_width: int, num_classes: int) -> PreActResNet:
    """He et al. 2016b's CIFAR bottleneck ResNet: 3x3 stem, widths 4/8/16 x `base_width`."""
    widths = [4 * base_width * 2**i for i in range(3)]
    return PreActResNet(conv3x3(3, base_width), base_width, widths, [units_per_stage] * 3, num_classes=num_classes)


def _wide_resnet(depth: int, k: int, dropout: float, num_classes: int) -> PreActResNet:
    """WRN-depth-k: (depth - 4) / 6 basic blocks per group at widths 16k/32k/64k after a 16-channel stem."""
    n = (depth - 4) // 6
    block = functools.partial(PreActBasic, dropout=dropout)
    return PreActResNet(conv3x3(3, 16), 16, [16 * k, 32 * k, 64 * k], [n] * 3, num_classes=num_classes, block=block)


def _check_dropout(options: Mapping[str, Any], input_size: int | None) -> None:
    _POSITIVE(options, input_size)
    if not 0 <= options["dropout"] < 1:
        raise SuiteError(f"invalid value {options['dropout']!r}: must be in [0, 1)", key="dropout",
                         choices=["0 <= dropout < 1"])


@register_model(label="ResNet-164", check=positive("num_classes", "base_width"), input_size=32,
                paper=ran_cifar_paper(1.7, 5.46, 24.33))
def resnet164_cifar(*, num_classes: int = 10, base_width: int = 16) -> nn.Module:
    """ResNet-164 (18 bottlenecks per stage, widths 64/128/256): RAN's CIFAR baseline (Tables 5, 6)."""
    return _preact_cifar(18, base_width, num_classes)


@register_model(label="ResNet-1001", check=positive("num_classes", "base_width"), input_size=32,
                paper=ran_cifar_paper(10.3, 4.64, 22.71))
def resnet1001_cifar(*, num_classes: int = 10, base_width: int = 16) -> nn.Module:
    """ResNet-1001 (111 bottlenecks per stage, widths 64/128/256; He et al. 2016b). RAN's 4.64 is the
    figure the WRN paper quotes for its batch-64 training (4.92 at batch 128)."""
    return _preact_cifar(111, base_width, num_classes)


@register_model(label="WRN-16-8", check=_check_dropout, input_size=32, paper=ran_cifar_paper(11.0, 4.81, 22.07))
def wrn16_8_cifar(*, num_classes: int = 10, dropout: float = 0.0) -> nn.Module:
    """WRN-16-8 (2 blocks per group, widths 128/256/512). `dropout` in [0, 1) between each block's two
    convs; 0 by default: RAN's row is the WRN paper's no-dropout result. Its CIFAR-100 22.07 is
    unverified in RAN's Table 6 (ran.md); it is the WRN paper's own figure."""
    return _wide_resnet(16, 8, dropout, num_classes)


@register_model(label="WRN-28-10", check=_check_dropout, input_size=32, paper=ran_cifar_paper(36.5, 4.17, 20.50))
def wrn28_10_cifar(*, num_classes: int = 10, dropout: float = 0.0) -> nn.Module:
    """WRN-28-10 (4 blocks per group, widths 160/320/640). `dropout` in [0, 1) between each block's two
    convs; 0 by default: RAN's 4.17 / 20.50 is the WRN paper's (first version) no-dropout result, its
    dropout-0.3 run being 4.39 / 20.0."""
    return _wide_resnet(28, 10, dropout, num_classes)


@register_model(
    label="ResNet-200",
    check=_POSITIVE,
    paper={"params_m": 64.7, "gmacs": 15.0, "top1_err": 20.1, "top5_err": 4.8, "eval_size": 320, "source": RAN_TABLE7},
)
def resnet200(*, num_classes: int = 1000) -> nn.Module:
    """Pre-activation ResNet-200 ([3,24,36,3]; He et al. 2016b, fb.resnet.torch `preresnet.lua`);
    the paper tests it on 320x320 crops."""
    stem = nn.Sequential(
        nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
        batch_norm(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
    )
    return PreActResNet(stem, 64, [256, 512, 1024, 2048], [3, 24, 36, 3], num_classes=num_classes,
                        stem_activated=True)
