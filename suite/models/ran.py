"""Residual Attention Network (Wang et al., CVPR 2017), following the official Caffe prototxts.

An attention module is p pre-processing units, then a trunk of t units and a soft-mask branch
side by side, fused as (1 + M) * T (attention residual learning, ARL) or M * T (naive attention
learning, NAL), then p post-processing units. Attention-N is built from pre-activation
bottlenecks (`suite.models.layers.PreActBottleneck`), AttentionNeXt-N from post-activation ResNeXt
units (`ResNeXtBottleneck`; see below); the unit is a parameter (`Unit`) of one shared builder.

Soft mask branch (official `Attention-56/92-deploy.prototxt`, e.g. stage 1 with three pools):

    pool -> r units (d1) -> pool -> r units (d2) -> pool -> 2r units
    -> interp(to d2) + skip(d2) -> r units -> interp(to d1) + skip(d1) -> r units -> interp(to input)
    -> BN-ReLU-conv1x1-BN-ReLU-conv1x1 -> mask activation

`skip(d)` is a full residual unit applied to the down-path output; the merge is a plain sum and
there is no skip at full resolution. The popular public ports (tengshaofeng, pytorchcv, gluoncv)
differ: at each skip they add the down-path feature d once more (d + unit(d) + up) and they add the
trunk output to the upsampled mask before the head. We follow the prototxt.

Number of mask pools (paper Sec. 3.2): the mask pools until its map is as small as the network's
smallest trunk map (ImageNet 224: the 7x7 of the last stage, hence 3/2/1 pools in the stages at
56/28/14). The count is fixed when the model is built, from its natural input size, exactly as the
official nets are. At any other input size the same modules run: ceil-mode pools (Caffe rounding)
and interpolation to the exact size of each skip / the module input keep the shapes consistent,
so the model accepts any input on which every pool still sees a map of at least 2x2 (global
average pooling at the end; Attention-92 is evaluated at 320).

Options (every builder): `num_classes`; `base_width`, the stem width and a quarter of the first
stage's width (Attention-N: its bottleneck width; 64 on ImageNet: stages of 256/512/1024 + 2048;
16 on CIFAR: 64/128/256; smaller values give cheap nets for smoke runs); `p`, `t`, `r`; `mask_type` (encoder_decoder | local, Table 4); `mask_norm`
(mixed | channel | spatial, Sec. 3.3 / Table 1); `attention_learning` (arl | nal, Table 3).

AttentionNeXt-56/92 (`ranext56`, `ranext92`; official `AttentionNeXt-56/92-deploy.prototxt`, Table 7
has AttentionNeXt-56 only). The same graph as Attention-56/92: stem, 1/1/1 or 1/2/3 modules with
3/2/1 mask pools, the same mask topology (units on the down path as skips, plain-sum merges, no
full-resolution skip, corner-aligned interpolation), (1 + M) * T fusion, 3 final units at 2048.
What differs is the unit and, following from it, where the BN-ReLUs sit:
- unit: ResNeXt, post-activation: 1x1-BN-ReLU, grouped 3x3 (32 groups)-BN-ReLU, 1x1-BN, plus the
  shortcut, then ReLU after the sum. Bottleneck width C/2 (128 at stage 1, doubling per stage:
  32x4d), stride on the 3x3, projection = 1x1 conv (stride 2 when down-sampling) + BN on the raw
  input, identity otherwise; no conv biases.
- stem: conv 7x7/2-BN-ReLU-max-pool straight into the first unit (no BN-ReLU after the pool).
- mask head: conv1x1-BN-ReLU-conv1x1-activation (the input is a unit's ReLU'd output: no BN-ReLU
  before the first conv).
- end: the last unit's output goes straight to the average pool and the FC (no BN-ReLU).
  `AttentionNeXt-92-deploy.prototxt` feeds its FC from a blob `ave_pool_gather` that no layer
  makes; we take the obvious one, the global average pool of the last unit (its `ave_pool`).
- mask activation: the `imagenet_model/` AttentionNeXt-56 file uses a sigmoid (our `mixed`
  default); the older `model/` copies of AttentionNeXt-56/92 have a TanH there instead (mask in
  (-1, 1)). Parameters and multiply-adds are the same either way.
Counts (1000 classes, 224 px, equal to Caffe shape inference on the prototxts): AttentionNeXt-56
31,318,824 params, 6.47 GMACs (fvcore, eval mode); AttentionNeXt-92 52,102,952, 10.78. The paper's
31.9 M / 6.3 G for AttentionNeXt-56 come to us through SKNet's table. `base_width` (64) sets the
stem and the stage widths as for Attention-N (stages of 4/8/16/32 x base_width channels), so the
ResNeXt bottleneck is 2 x base_width wide in the first stage (128). The grouped convs have
base_width / 2 groups (4 channels per group in the first stage, 32 groups at 64): narrow smoke
nets keep the 32x4d shape, and `base_width` must be even.

CIFAR layout (not in the paper, nor in the official release, which is ImageNet only; chosen
from the parameter counts of its Table 6): a 3x3 stem conv with `base_width` (16) channels, three
stages of widths 4/8/16 x base_width (64/128/256, the ResNet-164 widths) at 32/16/8, each opened
by one (projection) unit and followed by m attention modules, then 3 more units at the last width
and the ImageNet head (BN-ReLU, global average pool, FC); 36m + 20 weighted trunk layers as in the
paper's depth formula. The paper's "two residual units per stage" (6 in all) do not say where they
sit; we place them as the ImageNet prototxts do, one opening each stage and the rest at the end. The trunk ends at 8x8, so the pool rule gives 2/1/0 mask pools: the
stage-3 mask works at 8x8 on its 2r bottom units without pooling. Parameters (10 classes):
Attention-92 1.83 M (paper 1.9 M, -3.9 %), -236 4.80 M (5.1 M, -5.9 %), -452 9.36 M (8.6 M,
+8.9 %). Pooling one level deeper (3/2/1 down to 4x4, below the smallest trunk map) gives
1.96 M / 5.20 M but 10.30 M for Attention-452 (+20 %); the only 8.6 M fit for -452 we found needs
r instead of the prototxt's 2r bottom units. 2/1/0 is the one layout that
follows both the paper's pool rule and the prototxt's mask topology and fits all three figures
within 10 %. By part, everything but the masks (the trunk, which the paper's text fixes once
the widths are chosen) against the masks: Attention-92 1,079,834 + 745,856, -236 2,563,610 +
2,237,568, -452 4,789,274 + 4,572,288. So the paper's counts leave 0.82 / 2.54 / 3.81 M for the
masks: ours are a little small for -92 and -236 (the deeper 3/2/1 pools overshoot by 0.06 and
0.10 M) and 0.76 M large for -452, whose r = 3 masks the paper does not lay out
(`tests/test_ran.py::test_cifar_trunk_and_mask_parts` pins these figures).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from suite.models.layers import (
    PreActBottleneck,
    ResNeXtBottleneck,
    batch_norm,
    conv1x1,
    conv3x3,
    init_weights,
    positive,
)
from suite.errors import SuiteError
from suite.models.papers import RAN_CIFAR_ABLATIONS, RAN_TABLE7, ran_cifar_paper
from suite.models.registry import Check, register_model

MaskNorm = Literal["mixed", "channel", "spatial"]
AttentionLearning = Literal["arl", "nal"]
MaskType = Literal["encoder_decoder", "local"]

_NORM_EPS = 1e-5  # keeps the channel / spatial normalisers finite on all-zero or constant inputs


def pooled_size(size: int) -> int:
    """Output size of a 3x3 / stride-2 max-pool without padding and with Caffe's ceil rounding."""
    return math.ceil((size - 3) / 2) + 1


def strided_size(size: int, stride: int) -> int:
    """Output size of a 'same'-padded conv (3x3 pad 1, 7x7 pad 3) with `stride`."""
    return (size - 1) // stride + 1


def stage_sizes(imagenet: bool, input_size: int, stages: int = 3) -> list[int]:
    """Trunk map side of each stage for inputs of `input_size` px (the ImageNet stem divides by 4)."""
    sizes = [pooled_size(strided_size(input_size, 2)) if imagenet else input_size]
    for _ in range(stages - 1):
        sizes.append(strided_size(sizes[-1], 2))
    return sizes


# The stride of the unit after the last stage: ImageNet halves the map once more (2048 at 7x7).
_FINAL_STRIDE = {True: 2, False: 1}


def stage_pools(imagenet: bool, input_size: int, stages: int = 3) -> list[int]:
    """Mask pools of each stage of a network built for `input_size` px: each brings its stage's map
    down to the smallest trunk map, after the final stride."""
    sizes = stage_sizes(imagenet, input_size, stages)
    bottom = strided_size(sizes[-1], _FINAL_STRIDE[imagenet])
    return [mask_pools(size, bottom) for size in sizes]


def mask_pools(size: int, bottom: int) -> int:
    """Max-pools a mask branch needs to bring a `size` map down to the smallest trunk map `bottom`."""
    pools = 0
    while size > bottom:
        size = pooled_size(size)
        pools += 1
    return pools


def mask_units(pools: int, r: int) -> int:
    """Residual units in an encoder-decoder mask: r per level down and up, 2r at the bottom, 1 per skip."""
    return 2 * r + max(pools - 1, 0) * (2 * r + 1)


@dataclass(frozen=True)
class Unit:
    """The residual unit a network is built from, and whether its output still needs BN-ReLU.

    Pre-activation units (Attention-N) leave their sum un-activated, so the mask head and the
    classifier start with BN-ReLU; post-activation units (AttentionNeXt-N) end in a ReLU already.
    """

    make: Callable[[int, int, int], nn.Module]  # (in_channels, out_channels, stride) -> unit
    preact: bool

    def __call__(self, in_channels: int, out_channels: int, stride: int = 1) -> nn.Module:
        return self.make(in_channels, out_channels, stride)

    def activation(self, channels: int) -> list[nn.Module]:
        """What a plain conv or the pool needs in front of it after such a unit."""
        return [batch_norm(channels), nn.ReLU(inplace=True)] if self.preact else []


PREACT = Unit(PreActBottleneck, preact=True)

# Channels per group of the grouped 3x3 in the first stage (ResNeXt 32x4d: 128 = 32 x 4 at base
# width 64). The cardinality follows the width, so narrow smoke nets keep the 32x4d shape.
RESNEXT_GROUP_WIDTH = 4


def resnext_unit(base_width: int) -> Unit:
    """AttentionNeXt's unit: 2 * base_width / 4 groups (32 at 64), the same in every stage."""
    return Unit(functools.partial(ResNeXtBottleneck, groups=2 * base_width // RESNEXT_GROUP_WIDTH), preact=False)


def _units(unit: Unit, channels: int, n: int) -> nn.Sequential:
    return nn.Sequential(*(unit(channels, channels) for _ in range(n)))


def _resize(x: Tensor, size: Sequence[int]) -> Tensor:
    # Caffe's Interp layer (authors' fork, util/interp.cpp): bilinear with corner alignment.
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class MaskActivation(nn.Module):
    """The paper's f1/f2/f3 (Sec. 3.3): mixed (sigmoid), channel (L2 over C), spatial (per-map z-score + sigmoid)."""

    def __init__(self, kind: MaskNorm, eps: float = _NORM_EPS) -> None:
        super().__init__()
        self.kind = kind
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "mixed":
            return torch.sigmoid(x)
        if self.kind == "channel":
            return F.normalize(x, p=2.0, dim=1, eps=self.eps)
        # Population variance (defined on 1x1 maps) and eps inside the root: constant maps give 0.5.
        var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
        return torch.sigmoid((x - mean) * torch.rsqrt(var + self.eps))

    def extra_repr(self) -> str:
        return self.kind


# Residual units of the local-convolution mask per r (Sec. 4.1: "three Residual Units", at r = 1).
LOCAL_MASK_UNITS = 3


class SoftMaskBranch(nn.Module):
    """Mask logits: bottom-up/top-down hourglass (encoder_decoder) or residual units at full resolution (local)."""

    def __init__(self, channels: int, pools: int, r: int, mask_type: MaskType, unit: Unit = PREACT) -> None:
        super().__init__()
        self.pools = pools if mask_type == "encoder_decoder" else 0
        if mask_type == "local":
            # Local convolutions (paper Table 4, Sec. 4.1): three residual units without down- or
            # up-sampling in every module, as the paper states (scaled with r like the hourglass's
            # units). The paper adds "using the same number of FLOPs"; no layout gives that exactly:
            # ran56_cifar comes to 0.156 GMACs against the hourglass's 0.131 (+19 %), 1.16 M params
            # against 1.08 M, about what the hourglass's own units at full resolution would give.
            self.bottom = _units(unit, channels, LOCAL_MASK_UNITS * r)
        elif self.pools == 0:  # a stage whose map is already the smallest trunk map: its 2r bottom units
            self.bottom = _units(unit, channels, mask_units(pools, r))
        else:
            self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # Caffe: no padding, ceil rounding
            self.down = nn.ModuleList(_units(unit, channels, r) for _ in range(pools - 1))
            self.skips = nn.ModuleList(unit(channels, channels) for _ in range(pools - 1))
            self.bottom = _units(unit, channels, 2 * r)
            self.up = nn.ModuleList(_units(unit, channels, r) for _ in range(pools - 1))  # deepest level first
        # Pre-activation: BN-ReLU-conv-BN-ReLU-conv; post-activation units end in a ReLU: conv-BN-ReLU-conv.
        self.head = nn.Sequential(
            *unit.activation(channels),
            conv1x1(channels, channels),
            batch_norm(channels),
            nn.ReLU(inplace=True),
            conv1x1(channels, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.pools == 0:
            return self.head(self.bottom(x))
        size = x.shape[-2:]
        skips = []
        for down, skip in zip(self.down, self.skips):
            x = down(self.pool(x))
            skips.append(skip(x))
        x = self.bottom(self.pool(x))
        for up, s in zip(self.up, reversed(skips)):
            x = up(_resize(x, s.shape[-2:]) + s)
        return self.head(_resize(x, size))


class AttentionModule(nn.Module):
    """p pre-units, trunk (t units) x soft mask, fusion, p post-units; keeps shape C x H x W."""

    def __init__(
        self,
        channels: int,
        *,
        p: int,
        t: int,
        r: int,
        pools: int,
        mask_type: MaskType,
        mask_norm: MaskNorm,
        attention_learning: AttentionLearning,
        unit: Unit = PREACT,
    ) -> None:
        super().__init__()
        self.pre = _units(unit, channels, p)
        self.trunk = _units(unit, channels, t)
        self.mask = SoftMaskBranch(channels, pools, r, mask_type, unit)
        self.mask_act = MaskActivation(mask_norm)
        self.attention_learning = attention_learning
        self.post = _units(unit, channels, p)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pre(x)
        trunk = self.trunk(x)
        mask = self.mask_act(self.mask(x))
        # ARL keeps the trunk's features where the mask is ~0, so stacked modules do not fade out.
        x = (1 + mask) * trunk if self.attention_learning == "arl" else mask * trunk
        return self.post(x)


class ResidualAttentionNet(nn.Module):
    """Stem, stages of (one unit that changes width/stride + attention modules), final units, head."""

    def __init__(
        self,
        modules_per_stage: Sequence[int],
        *,
        imagenet: bool,
        input_size: int,
        base_width: int,
        p: int,
        t: int,
        r: int,
        mask_type: MaskType,
        mask_norm: MaskNorm,
        attention_learning: AttentionLearning,
        num_classes: int,
        unit: Unit = PREACT,
    ) -> None:
        super().__init__()
        if imagenet:
            # conv 7x7/2 -> BN-ReLU -> max-pool 3x3/2 without padding, ceil rounding (112 -> 56).
            self.stem = nn.Sequential(
                nn.Conv2d(3, base_width, 7, stride=2, padding=3, bias=False),
                batch_norm(base_width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, ceil_mode=True),
            )
        else:
            self.stem = conv3x3(3, base_width)
        widths = [4 * base_width * 2**i for i in range(len(modules_per_stage))]
        # ImageNet: a 4th stage of 3 units at twice the width (2048 at 7x7); CIFAR: 3 units at 256.
        final_width, final_stride = (2 * widths[-1] if imagenet else widths[-1]), _FINAL_STRIDE[imagenet]
        # The natural input size fixes each stage's number of mask pools.
        pools_per_stage = stage_pools(imagenet, input_size, len(widths))

        layers: list[nn.Module] = []
        in_width = base_width
        for i, (width, modules, pools) in enumerate(zip(widths, modules_per_stage, pools_per_stage)):
            layers.append(unit(in_width, width, stride=1 if i == 0 else 2))
            layers += [
                AttentionModule(
                    width,
                    p=p,
                    t=t,
                    r=r,
                    pools=pools,
                    mask_type=mask_type,
                    mask_norm=mask_norm,
                    attention_learning=attention_learning,
                    unit=unit,
                )
                for _ in range(modules)
            ]
            in_width = width
        layers.append(unit(in_width, final_width, stride=final_stride))
        layers += [unit(final_width, final_width) for _ in range(2)]
        self.features = nn.Sequential(*layers)
        # A pre-activation unit's output is not activated yet: BN-ReLU before pooling (none after
        # post-activation units).
        self.head_norm = nn.Sequential(*unit.activation(final_width))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(final_width, num_classes)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.head_norm(self.features(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


# ------------------------------------------------------------------------------------ registry
# Every builder takes the same options; `locals()` at the top of a builder is exactly that set.
_POSITIVE = positive("p", "t", "r", "base_width", "num_classes")


def _check(imagenet: bool) -> Check:
    """Positive counts, and inputs large enough for every max-pool (stem, mask branches) to have a map."""
    def check(options: Mapping[str, Any], input_size: int | None) -> None:
        _POSITIVE(options, input_size)
        smallest = smallest_input(imagenet, options["mask_type"])
        if input_size is not None and input_size < smallest:
            raise SuiteError(f"inputs of {input_size} px are too small: the {'ImageNet' if imagenet else 'CIFAR'} "
                             f"networks with {options['mask_type']} masks need at least {smallest} px (every "
                             "max-pool needs a map of 2 px or more)")
    return check


@functools.cache
def smallest_input(imagenet: bool, mask_type: MaskType) -> int:
    """The smallest input side (px) at which each 3x3/2 max-pool (no padding, ceil rounding) still
    gets a map of at least 2 px: the stem's (ImageNet) and those of the mask branches, whose number
    per stage is fixed by the natural input size (224 or 32 px)."""
    natural = stage_pools(imagenet, 224 if imagenet else 32)
    pools = natural if mask_type == "encoder_decoder" else [0] * len(natural)

    def fits(input_size: int) -> bool:
        if imagenet and strided_size(input_size, 2) < 2:
            return False
        for size, n in zip(stage_sizes(imagenet, input_size), pools):
            for _ in range(n):
                if size < 2:
                    return False
                size = pooled_size(size)
        return True

    return next(size for size in itertools.count(1) if fits(size))


_IMAGENET_CHECK, _CIFAR_CHECK = _check(imagenet=True), _check(imagenet=False)


def _resnext_check(options: Mapping[str, Any], input_size: int | None) -> None:
    """The ImageNet checks, and an even base_width: the grouped 3x3 has base_width / 2 groups."""
    _IMAGENET_CHECK(options, input_size)
    if options["base_width"] % 2:
        raise SuiteError(f"invalid value {options['base_width']!r}: AttentionNeXt needs an even base width (its "
                         f"grouped 3x3 convs have base_width / 2 groups of {RESNEXT_GROUP_WIDTH} channels in the "
                         "first stage, 32 at 64)", key="base_width", choices=["2, 4, 6, ..."])


@register_model(
    label="Attention-56",
    check=_IMAGENET_CHECK,
    input_size=224,
    paper={"params_m": 31.9, "gmacs": 6.3, "top1_err": 21.76, "top5_err": 5.9, "source": RAN_TABLE7},
)
def ran56(
    *,
    num_classes: int = 1000,
    base_width: int = 64,
    p: int = 1,
    t: int = 2,
    r: int = 1,
    mask_type: MaskType = "encoder_decoder",
    mask_norm: MaskNorm = "mixed",
    attention_learning: AttentionLearning = "arl",
) -> nn.Module:
    """Attention-56 (paper Table 2): 1/1/1 modules at 56/28/14 with 3/2/1 mask pools."""
    return ResidualAttentionNet((1, 1, 1), imagenet=True, input_size=224, **locals())


@register_model(
    label="Attention-92",
    check=_IMAGENET_CHECK,
    input_size=224,
    # 51.3 M / 10.4 G are the paper's; the official prototxt has 52.47 M / 10.53 G (see the docstring).
    paper={"params_m": 51.3, "gmacs": 10.4, "top1_err": 19.5, "top5_err": 4.8, "eval_size": 320, "source": RAN_TABLE7},
)
def ran92(
    *,
    num_classes: int = 1000,
    base_width: int = 64,
    p: int = 1,
    t: int = 2,
    r: int = 1,
    mask_type: MaskType = "encoder_decoder",
    mask_norm: MaskNorm = "mixed",
    attention_learning: AttentionLearning = "arl",
) -> nn.Module:
    """Attention-92 (paper Table 2): 1/2/3 modules; the paper tests it on 320x320 crops.

    52,466,344 parameters, the official `Attention-92-deploy.prototxt`'s own count (Caffe shape
    inference; conv and FC weights, BN scale and shift) and graph; the paper prints 51.3 M. By part:
    stem 9,536; stage 1 (56 px) 1,051,008; stage 2 (28 px) 6,471,680; stage 3 (14 px) 27,922,432;
    stage 4 (7 px, 3 units) 14,958,592; BN-ReLU and FC 2,053,096. It is Attention-56 (31,810,728,
    the paper's 31.9 M) plus one stage-2 module (3,046,912) and two stage-3 modules (8,804,352 each).
    Nothing in that graph accounts for the 1.17 M gap, so we keep the prototxt's: counting the BN
    running statistics, which brings Attention-56 to 31.88 M, brings this to 52.60 M; dropping one
    stage-3 unit (1,117,184) would give 51.35 M, but also 0.218 G fewer conv multiply-adds (10.32 G
    against the paper's 10.4; ours 10.53) and a trunk of 89 layers, not 92; dropping one stage-3
    mask-head conv gives 51.42 M. The paper's 10.4 G sits under the prototxt's 10.53 G too.
    `tests/test_ran.py::test_ran92_parts_and_the_papers_51_3_m` pins these figures.
    """
    return ResidualAttentionNet((1, 2, 3), imagenet=True, input_size=224, **locals())


# AttentionNeXt-56's errors are the README's / Table 7's; its 31.9 M / 6.3 G are those SKNet
# (Table 2) quotes. The official prototxt has 31.32 M / 6.42 G (Caffe shape inference).
@register_model(
    label="AttentionNeXt-56",
    check=_resnext_check,
    input_size=224,
    paper={"params_m": 31.9, "gmacs": 6.3, "top1_err": 21.2, "top5_err": 5.6, "source": RAN_TABLE7},
)
def ranext56(
    *,
    num_classes: int = 1000,
    base_width: int = 64,
    p: int = 1,
    t: int = 2,
    r: int = 1,
    mask_type: MaskType = "encoder_decoder",
    mask_norm: MaskNorm = "mixed",
    attention_learning: AttentionLearning = "arl",
) -> nn.Module:
    """AttentionNeXt-56 (paper Table 7): Attention-56's layout built from post-activation ResNeXt units.

    31,318,824 parameters and 6.42 G conv + FC multiply-adds, the official prototxt's. The 31.9 M /
    6.3 G that Table 7 prints (as SKNet quotes it) are Attention-56's to the digit (31,810,728, 31.88 M
    with BN running statistics; 6.27 G), which they most likely repeat: this net's running statistics
    (98,432) bring it to 31.42 M only. Against Attention-56, by part: stem equal; stages 1-3 -1,920 /
    -6,656 / -65,536 and stage 4 (3 units at 2048) -413,696, all from the unit opening each stage
    (-10,624 / -28,672 / -118,784 / -483,328: its grouped 3x3, C/2 wide in 32 groups, holds an eighth
    of the weights of a C/4 dense 3x3), while every other unit has a few more (its 1x1s are twice as
    wide: +9,216 for a unit at 1024, +34,816 at 2048); head -4,096 (no BN before the pool). The wider
    1x1s also make the multiply-adds 0.148 G more, not fewer.
    `tests/test_ran.py::test_ranext56_parts_against_ran56` pins these figures.
    """
    return ResidualAttentionNet((1, 1, 1), imagenet=True, input_size=224, unit=resnext_unit(base_width), **locals())


# In the official release, not in the paper.
@register_model(label="AttentionNeXt-92", check=_resnext_check, input_size=224)
def ranext92(
    *,
    num_classes: int = 1000,
    base_width: int = 64,
    p: int = 1,
    t: int = 2,
    r: int = 1,
    mask_type: MaskType = "encoder_decoder",
    mask_norm: MaskNorm = "mixed",
    attention_learning: AttentionLearning = "arl",
) -> nn.Module:
    """AttentionNeXt-92 (official prototxt only): 1/2/3 modules of post-activation ResNeXt units."""
    return ResidualAttentionNet((1, 2, 3), imagenet=True, input_size=224, unit=resnext_unit(base_width), **locals())


@register_model(
    label="Attention-56",
    check=_CIFAR_CHECK, input_size=32, paper={"cifar10_top1_err": 5.52, "source": RAN_CIFAR_ABLATIONS}
)
def ran56_cifar(
    *,
    num_classes: int = 10,
    base_width: int = 16,
    p: int = 1,
    t: int = 2,
    r: int = 1,
    mask_type: MaskType = "encoder_decoder",
    mask_norm: MaskNorm = "mixed",
    attention_learning: AttentionLearning = "arl",
) -> nn.Module:
    """Attention-56 for 32x32 inputs: 1 module per stage (the net of the paper's CIFAR ablations)."""
    return ResidualAttentionNet((1, 1, 1), imagenet=False, input_size=32, **locals())


@register_model(label="Attention-92", check=_CIFAR_CHECK, input_size=32, paper=ran_cifar_paper(1.9, 4.99, 21.71))
def ran92_cifar(
    *,
    num_classes: int = 10,
    base_width: int = 16,
    p: int = 1,
    t: int = 2,
    r: int = 1,
    mask_type: MaskType = "encoder_decoder",
    mask_norm: MaskNorm = "mixed",
    attention_learning: AttentionLearning = "arl",
) -> nn.Module:
    """Attention-92 for 32x32 inputs: 2 modules per stage (ImageNet's is 1/2/3)."""
    return ResidualAttentionNet((2, 2, 2), imagenet=False, input_size=32, **locals())


@register_model(label="Attention-128", check=_CIFAR_CHECK, input_size=32)
def ran128_cifar(
    *,
    num_classes: int = 10,
    base_width: int = 16,
    p: int = 1,
    t: int = 2,
    r: int = 1,
    mask_type: MaskType = "encoder_decoder",
    mask_norm: MaskNorm = "mixed",
    attention_learning: AttentionLearning = "arl",
) -> nn.Module:
    """Attention-128 for 32x32 inputs: 3 modules per stage (paper Table 3)."""
    return ResidualAttentionNet((3, 3, 3), imagenet=False, input_size=32, **locals())


@register_model(label="Attention-164", check=_CIFAR_CHECK, input_size=32)
def ran164_cifar(
    *,
    num_classes: int = 10,
    base_width: int = 16,
    p: int = 1,
    t: int = 2,
    r: int = 1,
    mask_type: MaskType = "encoder_decoder",
    mask_norm: MaskNorm = "mixed",
    attention_learning: AttentionLearning = "arl",
) -> nn.Module:
    """Attention-164 for 32x32 inputs: 4 modules per stage (paper Table 3)."""
    return ResidualAttentionNet((4, 4, 4), imagenet=False, input_size=32, **locals())


@register_model(label="Attention-236", check=_CIFAR_CHECK, input_size=32, paper=ran_cifar_paper(5.1, 4.14, 21.16))
def ran236_cifar(
    *,
    num_classes: int = 10,
    base_width: int = 16,
    p: int = 1,
    t: int = 2,
    r: int = 1,
    mask_type: MaskType = "encoder_decoder",
    mask_norm: MaskNorm = "mixed",
    attention_learning: AttentionLearning = "arl",
) -> nn.Module:
    """Attention-236 for 32x32 inputs: 6 modules per stage (36 * 6 + 20 layers)."""
    return ResidualAttentionNet((6, 6, 6), imagenet=False, input_size=32, **locals())


@register_model(label="Attention-452", check=_CIFAR_CHECK, input_size=32, paper=ran_cifar_paper(8.6, 3.90, 20.45))
def ran452_cifar(
    *,
    num_classes: int = 10,
    base_width: int = 16,
    p: int = 2,
    t: int = 4,
    r: int = 3,
    mask_type: MaskType = "encoder_decoder",
    mask_norm: MaskNorm = "mixed",
    attention_learning: AttentionLearning = "arl",
) -> nn.Module:
    """Attention-452 for 32x32 inputs: 6 modules per stage with p, t, r = 2, 4, 3 (Table 6 footnote)."""
    return ResidualAttentionNet((6, 6, 6), imagenet=False, input_size=32, **locals())
