"""The clock of every throughput benchmark: `time.perf_counter` read after a CUDA synchronise.

CUDA kernels launch asynchronously, so a plain perf_counter around a GPU step times the launches,
not the work. Synchronising only once CUDA is initialised keeps the timer correct on both devices
without knowing which one the benchmark uses, and it costs nothing on CPU. It waits for the current
CUDA device, the one the benchmarks run on (`bench_device` is plain 'cuda'); a benchmark on another
GPU must make that one current first (`torch.cuda.set_device`). Usable on the command
line too: `pytest --benchmark-timer suite.bench.timer.synced_perf_counter`.
"""

from __future__ import annotations

import time

import torch


def synced_perf_counter() -> float:
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter()
