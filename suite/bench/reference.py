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

from suite.measure.throughput import Step

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
    """The reference's inference or training step ("infer" or "train"), in fp32, written here in
    plain torch: not with suite.measure.throughput's steps, which the benchmarks time, so that a
    slowdown there moves the ratios instead of stretching both sides alike."""
    model = reference_model().to(device)
    x = torch.randn(BATCH_SIZE, 3, IMG_SIZE, IMG_SIZE, device=device)
    if mode == "infer":
        model.eval()

        def infer() -> None:
            with torch.inference_mode():
                model(x)

        return infer
    if mode != "train":
        raise ValueError(f"reference_step: mode must be 'infer' or 'train', not {mode!r}")
    model.train()
    target = torch.randint(10, (BATCH_SIZE,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def train() -> None:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), target).backward()
        optimizer.step()

    return train


def reference_id(mode: str) -> str:
    return f"{REFERENCE}/{mode}"
