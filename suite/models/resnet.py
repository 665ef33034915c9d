"""ResNet baselines: the bottleneck ResNets SAN is compared with (and RAN's ResNet-164 on CIFAR).

ResNet26/38/50 are the SASA definitions ([1,2,4,1], [2,3,5,2], [3,4,6,3] bottlenecks) used by the
SAN paper; torchvision's builder with these layer counts reproduces the paper's params and FLOPs
exactly (13.7 M / 2.4 G, 19.6 M / 3.2 G, 25.6 M / 4.1 G). timm's `resnet26` is [2,2,2,2], a
different network.
"""

from __future__ import annotations

from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from suite.models.registry import register_model

_SAN_TABLE = "SAN (Zhao et al. 2020) Table 2"


def _bottleneck_resnet(layers: list[int], num_classes: int, zero_init_residual: bool) -> nn.Module:
    return ResNet(Bottleneck, layers, num_classes=num_classes, zero_init_residual=zero_init_residual)


@register_model(paper={"params_m": 13.7, "gmacs": 2.4, "top1_err": 26.4, "top5_err": 8.3, "source": _SAN_TABLE})
def resnet26(*, num_classes: int = 1000, zero_init_residual: bool = False) -> nn.Module:
    return _bottleneck_resnet([1, 2, 4, 1], num_classes, zero_init_residual)


@register_model(paper={"params_m": 19.6, "gmacs": 3.2, "top1_err": 24.0, "top5_err": 7.0, "source": _SAN_TABLE})
def resnet38(*, num_classes: int = 1000, zero_init_residual: bool = False) -> nn.Module:
    return _bottleneck_resnet([2, 3, 5, 2], num_classes, zero_init_residual)


@register_model(paper={"params_m": 25.6, "gmacs": 4.1, "top1_err": 23.1, "top5_err": 6.5, "source": _SAN_TABLE})
def resnet50(*, num_classes: int = 1000, zero_init_residual: bool = False) -> nn.Module:
    return _bottleneck_resnet([3, 4, 6, 3], num_classes, zero_init_residual)
