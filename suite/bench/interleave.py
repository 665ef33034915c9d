"""Time a step with pytest-benchmark, interleaved round by round with the reference workload.

pytest-benchmark times the target (its stats stay the target's absolute times); the reference runs
in the same rounds, before the target on even rounds and after it on odd ones (pedantic's setup and
teardown, outside the target's timing), so each target time has a reference time taken right next
to it and neither always goes first. `extra_info` gets the per-round ratios target / reference and
their median: the number `suite bench --compare` judges by default, because load that slows the
machine for a moment slows both halves of the ratio. Enabled, it all runs on a heap that keeps
its pages (suite.measure.heap), as `suite profile` times steps: page faults on fresh memory would
make a step's time depend on what the process allocated before.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch

from suite.bench.stats import Summary
from suite.bench.timer import synced_perf_counter
from suite.measure import heap
from suite.measure.env import resolve_device
from suite.measure.throughput import Step, autotune


def bench_device() -> torch.device:
    """The benchmarks' device: CUDA when available, else CPU. On CUDA with cuDNN autotuning, as
    `suite train` trains and `suite profile` times, so the convolutions timed are the ones those
    run (cuDNN picks them in the untimed rounds before timing)."""
    device = resolve_device(None)
    autotune(device)
    return device


MAX_ROUNDS = 100  # what a short benchmark's `max_time` may raise its rounds to (the rank test is O(rounds^2))


def benchmark_interleaved(benchmark: Any, target: Step, reference: Step, *, reference_id: str, rounds: int,
                          max_time: float) -> None:
    """At least `rounds` rounds of (reference, target) through `benchmark.pedantic`, one call each,
    and as many more as fit in `max_time` seconds (up to MAX_ROUNDS): a benchmark of a few ms
    varies most from round to round, and its extra rounds cost little.

    With benchmarks disabled (plain `pytest`, see pyproject.toml) pytest-benchmark calls setup and
    the target once, without timing: both steps still run, so the benchmark cannot rot unnoticed.
    Enabled, untimed rounds of both come first, until the heap settles (at least two: caches and
    lazy initialisation too); the last of them sizes the rounds.
    """
    with heap.steady_heap() if benchmark.enabled else contextlib.nullcontext():
        if benchmark.enabled:
            times: list[float] = []
            heap.settle([_timed(reference, times), _timed(target, times)])
            rounds = rounds_within(rounds, max_time, times[-2] + times[-1])  # the last untimed round's
        _interleave(benchmark, target, reference, reference_id=reference_id, rounds=rounds)


def rounds_within(rounds: int, max_time: float, round_time: float) -> int:
    """`rounds`, or more if more rounds of `round_time` seconds fit in `max_time` (at most MAX_ROUNDS)."""
    fit = math.floor(max_time / round_time) if round_time > 0 else MAX_ROUNDS
    return max(rounds, min(fit, MAX_ROUNDS))


def _timed(step: Step, times: list[float]) -> Step:
    def timed() -> None:
        start = synced_perf_counter()
        step()
        times.append(synced_perf_counter() - start)

    return timed


def _interleave(benchmark: Any, target: Step, reference: Step, *, reference_id: str, rounds: int) -> None:
    reference_times: list[float] = []
    done = 0

    def time_reference() -> None:
        start = synced_perf_counter()
        reference()
        reference_times.append(synced_perf_counter() - start)

    def setup() -> None:
        if done % 2 == 0:
            time_reference()

    def teardown() -> None:
        nonlocal done
        if done % 2 == 1:
            time_reference()
        done += 1

    benchmark.pedantic(target, setup=setup, teardown=teardown, rounds=rounds)
    if benchmark.enabled:
        benchmark.extra_info.update(relative_info(benchmark.stats.stats.data, reference_times, reference_id))


def relative_info(target_times: list[float], reference_times: list[float], reference_id: str) -> dict[str, Any]:
    """What goes into pytest-benchmark's `extra_info` (and so into the saved JSON)."""
    if len(target_times) != len(reference_times):
        raise ValueError(f"{len(target_times)} target times but {len(reference_times)} reference times")
    ratios = [t / r for t, r in zip(target_times, reference_times)]
    relative = Summary.of(ratios)
    return {
        "reference": reference_id,
        "target_median": Summary.of(target_times).median,
        "reference_median": Summary.of(reference_times).median,
        "ratio": relative.median,
        "ratio_iqr": relative.iqr,
        "ratios": ratios,
    }
