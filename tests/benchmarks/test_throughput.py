"""Forward and training-step throughput of representative models and of SAN's aggregation op.

Every round times the target and the reference workload side by side (conftest.py), on inputs
small enough for a round to take well under a second on one CPU thread. Ids spell the sizes out:
<model>-<input>px-b<batch>-<infer|train>. The steps are suite.measure.throughput's: inference
under inference_mode; a training step is zero_grad, forward, cross-entropy, backward, SGD step.
"""

from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from suite.bench.timer import synced_perf_counter
from suite.measure.throughput import STEPS, BenchSettings
from suite.models import create_model
from suite.ops import aggregation

# The target's clock; the reference is timed with the same one (suite.bench.interleave).
pytestmark = pytest.mark.benchmark(timer=synced_perf_counter)

MODES = ("infer", "train")


@dataclass(frozen=True)
class Case:
    model: str
    img_size: int
    batch_size: int
    kwargs: dict[str, Any] = field(default_factory=dict)

    def id(self) -> str:
        return f"{self.model}-{self.img_size}px-b{self.batch_size}"


# Batches of 2-4 rather than 1: at 64 px an ImageNet model's time is mostly reading its weights,
# and such a workload slows under load unlike the (compute-bound) reference, so its ratio drifts
# with the machine's load (measured: -11 % at batch 1, -2.5 % at batch 2 for ran56 under 2 extra
# busy processes). At 64 px SAN's last stage has 2x2 maps, too small to reflect-pad a 7x7 window:
# zero padding there (the only change to the default configuration; the costs are the same).
CASES = (
    Case("ran56_cifar", 32, 4),
    Case("ran56", 64, 2),
    Case("san10_pairwise", 64, 2, {"padding": "zeros"}),
    Case("san10_patchwise", 64, 2, {"padding": "zeros"}),
    Case("resnet26", 64, 2),
)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=Case.id)
def test_model(interleaved_benchmark, bench_device, case, mode):
    torch.manual_seed(0)
    model = create_model(case.model, **case.kwargs).to(bench_device)
    interleaved_benchmark(STEPS[mode](model, case.batch_size, BenchSettings(bench_device, case.img_size)), mode)


# SAN10's first stage: 64 value channels at 56x56, a 7x7 footprint, one weight channel per 8.
AGGREGATION = {"batch": 2, "channels": 64, "size": 56, "kernel": 7, "share": 8}
AGGREGATION_ID = "c{channels}-{size}px-k{kernel}-b{batch}".format(**AGGREGATION)


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: f"{AGGREGATION_ID}-{mode}")
def test_aggregation(interleaved_benchmark, bench_device, mode):
    n, c, size, k = (AGGREGATION[key] for key in ("batch", "channels", "size", "kernel"))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, size, size, generator=generator).to(bench_device)
    w = torch.randn(n, c // AGGREGATION["share"], k * k, size * size, generator=generator).softmax(2).to(bench_device)

    def infer() -> None:
        with torch.inference_mode():
            aggregation(x, w, k)

    x_grad, w_grad = x.clone().requires_grad_(), w.clone().requires_grad_()

    def train() -> None:  # forward and both gradients, as in a training step
        torch.autograd.grad(aggregation(x_grad, w_grad, k).sum(), (x_grad, w_grad))

    interleaved_benchmark(infer if mode == "infer" else train, mode)
