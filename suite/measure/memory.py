"""Peak memory of one step, in MiB above what the process used before the model was built.

So the figure includes weights, gradients, optimizer state, the batch and the step's transient
activations, on CPU and CUDA alike. How it was measured goes into the `memory_method` column:

- `cuda_max_allocated`: torch.cuda.reset_peak_memory_stats() before the step, synchronize after,
  torch.cuda.max_memory_allocated() minus memory_allocated() at the baseline. Counts tensors only
  (not the caching allocator's reserve, not the CUDA context).
- `cpu_rss_hwm`: the kernel's resident-set high-water mark. Writing "5" to /proc/self/clear_refs
  resets VmHWM to the current RSS (Linux >= 4.0), so VmHWM read after the step is the step's own
  peak, not the process-lifetime maximum that getrusage(ru_maxrss) would give. Less the
  file-backed pages resident after the step (/proc/self/statm's `shared`), so the library code a
  first backward maps in (about 95 MiB of torch) is not counted as the model's; less the anonymous
  memory at the baseline. RSS also counts memory the allocator keeps after freeing, so it is an
  upper bound of the live tensors, as a user's `top` would see it.
- `cpu_rss_sampled`: where clear_refs cannot be written (some sandboxes), the anonymous resident
  memory sampled every millisecond in a thread during the step; can miss peaks shorter than that.

Each model is profiled in its own process, so one model's heap never inflates another's figure.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch

MIB = 2**20
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class MemoryProbe:
    device: torch.device
    baseline: int  # bytes in use when the probe started
    method: str | None  # None: no way to measure on this platform

    @classmethod
    def start(cls, device: torch.device) -> MemoryProbe:
        """Call before building the model: its baseline is what the process used without it."""
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            return cls(device, torch.cuda.memory_allocated(device), "cuda_max_allocated")
        if not os.path.exists("/proc/self/statm"):
            return cls(device, 0, None)
        method = "cpu_rss_hwm" if _reset_hwm() else "cpu_rss_sampled"
        return cls(device, _anonymous(), method)

    def peak_mb(self, step: Callable[[], object]) -> float | None:
        """Run `step` once and return its peak memory in MiB above the baseline."""
        if self.method == "cuda_max_allocated":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            step()
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self.method == "cpu_rss_hwm":
            _reset_hwm()
            step()
            peak = _hwm() - _statm()[1]
        elif self.method == "cpu_rss_sampled":
            peak = _sampled_peak(step)
        else:
            step()
            return None
        # at least 0: memory freed since the baseline (a collection) could make the difference negative,
        # which no step uses
        return max(0.0, (peak - self.baseline) / MIB)


def _statm() -> tuple[int, int]:
    """(resident, file-backed resident) bytes."""
    with open("/proc/self/statm") as f:
        fields = f.read().split()
    return int(fields[1]) * _PAGE, int(fields[2]) * _PAGE


def _anonymous() -> int:
    resident, file_backed = _statm()
    return resident - file_backed


def _hwm() -> int:
    with open("/proc/self/status") as f:
        match = re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.MULTILINE)
    assert match, "VmHWM missing from /proc/self/status"
    return int(match.group(1)) * 1024


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _sampled_peak(step: Callable[[], object], interval: float = 1e-3) -> int:
    peak = _anonymous()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(interval):
            peak = max(peak, _anonymous())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        step()
    finally:
        done.set()
        thread.join()
    return max(peak, _anonymous())
