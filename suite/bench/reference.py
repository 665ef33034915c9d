"""The reference workload every throughput benchmark is timed against, interleaved round by round.

A target's time divided by the reference's time, both measured in the same round, cancels most of
what changes between runs and machines: a busier or slower CPU stretches both. The network is
plain torch.nn (nothing from suite.models) and seeded, so it stays the same workload whatever the
suite's own layers become; ratios from runs with different REFERENCE strings are not comparable,
so change the version whenever the workload changes.
"""

from __future__ import annotations

import torch
from torch import nn

from suite.measure.throughput import STEPS, BenchSettings, Step

REFERENCE = "convstack-v1"
IMG_SIZE = 96
BATCH_SIZE = 4


def reference_model() -> nn.Module:
    """Five 3x3 conv-BN-ReLU layers (32-64-64-128-128 channels, two stride-2), pool, linear."""
    torch.manual_seed(0)
    widths = [3, 32, 64, 64, 128, 128]
    strides = [1, 2, 1, 2, 1]
    layers: list[nn.Module] = []
    for c_in, c_out, stride in zip(widths, widths[1:], strides):
        layers += [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], 10))


def reference_step(mode: str, device: torch.device) -> Step:
    """The reference's inference or training step (`mode` in suite.measure.throughput.STEPS)."""
    return STEPS[mode](reference_model().to(device), BATCH_SIZE, BenchSettings(device=device, img_size=IMG_SIZE))


def reference_id(mode: str) -> str:
    return f"{REFERENCE}/{mode}"
