"""Fixtures of the throughput benchmarks: the reference workload, interleaved timing, machine info.

Plain `pytest` runs every benchmark once without timing (pyproject.toml sets --benchmark-disable);
`suite bench` (or `pytest tests/benchmarks --benchmark-enable`) measures them. See the README,
"Throughput regression testing".
"""

from collections.abc import Callable

import pytest
import torch

from suite.bench import interleave
from suite.bench.interleave import benchmark_interleaved
from suite.bench.reference import reference_id, reference_step
from suite.measure.env import environment
from suite.measure.throughput import Step


@pytest.fixture(scope="session")
def bench_device() -> torch.device:
    """CUDA (autotuned) when available, else CPU (hide GPUs with CUDA_VISIBLE_DEVICES= for CPU figures)."""
    return interleave.bench_device()


@pytest.fixture(scope="session")
def reference_steps(bench_device: torch.device) -> Callable[[str], Step]:
    """The reference workload's step per mode, built once per session."""
    steps: dict[str, Step] = {}

    def get(mode: str) -> Step:
        if mode not in steps:
            steps[mode] = reference_step(mode, bench_device)
        return steps[mode]

    return get


@pytest.fixture
def interleaved_benchmark(benchmark, request, reference_steps) -> Callable[[Step, str], None]:
    """`interleaved_benchmark(step, mode)`: time `step` through pytest-benchmark, alternating in
    every round with the reference's `mode` step ("infer" or "train"); --benchmark-min-rounds
    rounds, or more if more fit in --benchmark-max-time. The time / reference ratios go into
    extra_info (suite.bench.interleave)."""
    rounds = request.config.getoption("benchmark_min_rounds")
    max_time = float(request.config.getoption("benchmark_max_time"))

    def run(step: Step, mode: str) -> None:
        benchmark_interleaved(benchmark, step, reference_steps(mode), reference_id=reference_id(mode), rounds=rounds,
                              max_time=max_time)

    return run


def pytest_benchmark_update_machine_info(config, machine_info):
    """Absolute times depend on these: device, device_name, torch_version, threads."""
    machine_info.update(environment())
