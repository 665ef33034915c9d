"""ResNet baselines: the bottleneck ResNets SAN is compared with (and RAN's ResNet-164 on CIFAR).

ResNet26/38/50 are the SASA definitions ([1,2,4,1], [2,3,5,2], [3,4,6,3] bottlenecks) used by the
SAN paper; torchvision's builder with these layer counts reproduces the paper's params and FLOPs
exactly (13.7 M / 2.4 G, 19.6 M / 3.2 G, 25.6 M / 4.1 G). timm's `resnet26` is [2,2,2,2], a
different network.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from suite.models.layers import PreActBottleneck, batch_norm, conv3x3, init_weights, positive
from suite.models.registry import register_model

_SAN_TABLE = "SAN (Zhao et al. 2020) Table 2"
_POSITIVE = positive("num_classes")


def _bottleneck_resnet(layers: list[int], num_classes: int, zero_init_residual: bool) -> nn.Module:
    # Imported here, not at the top: importing torchvision loads torch._dynamo (~2 s), which every
    # process that only registers the models (each local run, each SLURM task) would pay.
    from torchvision.models.resnet import Bottleneck, ResNet

    return ResNet(Bottleneck, layers, num_classes=num_classes, zero_init_residual=zero_init_residual)


@register_model(
    check=_POSITIVE, paper={"params_m": 13.7, "gmacs": 2.4, "top1_err": 26.4, "top5_err": 8.3, "source": _SAN_TABLE}
)
def resnet26(*, num_classes: int = 1000, zero_init_residual: bool = False) -> nn.Module:
    return _bottleneck_resnet([1, 2, 4, 1], num_classes, zero_init_residual)


@register_model(
    check=_POSITIVE, paper={"params_m": 19.6, "gmacs": 3.2, "top1_err": 24.0, "top5_err": 7.0, "source": _SAN_TABLE}
)
def resnet38(*, num_classes: int = 1000, zero_init_residual: bool = False) -> nn.Module:
    return _bottleneck_resnet([2, 3, 5, 2], num_classes, zero_init_residual)


@register_model(
    check=_POSITIVE, paper={"params_m": 25.6, "gmacs": 4.1, "top1_err": 23.1, "top5_err": 6.5, "source": _SAN_TABLE}
)
def resnet50(*, num_classes: int = 1000, zero_init_residual: bool = False) -> nn.Module:
    return _bottleneck_resnet([3, 4, 6, 3], num_classes, zero_init_residual)


class PreActResNetCifar(nn.Module):
    """Pre-activation bottleneck ResNet for 32x32 inputs (He et al. 2016b): 3x3 stem, 3 stages, BN-ReLU head."""

    def __init__(self, units_per_stage: int, *, base_width: int, num_classes: int) -> None:
        super().__init__()
        self.stem = conv3x3(3, base_width)
        layers: list[nn.Module] = []
        in_width = base_width
        for i in range(3):
            width = 4 * base_width * 2**i
            layers.append(PreActBottleneck(in_width, width, stride=1 if i == 0 else 2))
            layers += [PreActBottleneck(width, width) for _ in range(units_per_stage - 1)]
            in_width = width
        self.features = nn.Sequential(*layers)
        self.head_norm = nn.Sequential(batch_norm(in_width), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_width, num_classes)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.head_norm(self.features(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


@register_model(
    check=positive("num_classes", "base_width"),
    input_size=32,
    paper={"params_m": 1.7, "cifar10_top1_err": 5.46, "cifar100_top1_err": 24.33, "source": "RAN Table 6"},
)
def resnet164_cifar(*, num_classes: int = 10, base_width: int = 16) -> nn.Module:
    """ResNet-164 (18 bottlenecks per stage, widths 64/128/256): RAN's CIFAR baseline (Tables 5, 6)."""
    return PreActResNetCifar(18, base_width=base_width, num_classes=num_classes)
