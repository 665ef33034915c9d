"""Timed steps on a heap that keeps its pages, so a step's time does not depend on allocation history.

glibc serves a block above its mmap threshold with a fresh mapping and hands freed memory at the top
of the heap back to the kernel above its trim threshold; both thresholds move with what the process
allocated before. Every fresh page costs a page fault on first touch (6,272 for a 25 MiB feature map),
so one model's step time depended on the process it ran in: ResNet26 inference at batch 8 on a 2-core
VM took 142 ms in one run of `python -m suite.ops.benchmark` and 199 ms in another, unchanged (up to
47,000 page faults a step). Inside `steady_heap` glibc maps nothing afresh and trims nothing, so once
`WARMUP` steps have grown the heap every timed step runs without page faults, as in a warm serving or training process (and as with jemalloc or
tcmalloc, which PyTorch's CPU tuning guide recommends). Afterwards the thresholds stay at the maxima glibc's
own adjustment reaches (32 MiB mmap, 64 MiB trim) and the kept memory is given back, so a memory
measurement that follows starts from a trimmed heap. Other C libraries: a no-op.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import platform
from collections.abc import Iterator

# mallopt(3) parameters and glibc's defaults for 64-bit
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_MMAP_MAX_DEFAULT = 65536
_MMAP_THRESHOLD_MAX = 32 * 2**20  # DEFAULT_MMAP_THRESHOLD_MAX: where the dynamic threshold stops
_NEVER = 2**31 - 1  # mallopt takes an int
# untimed steps that grow the steady heap to a step's size: the second or third may still grow it
# (a block freed before can be split so that the next request just misses it; seen with 40 MiB tensors)
WARMUP = 3


@contextlib.contextmanager
def steady_heap() -> Iterator[bool]:
    """Within: no fresh mappings, no trimming (yields whether glibc's allocator was set so)."""
    libc = _glibc()
    if libc is None:
        yield False
        return
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, _NEVER)
    try:
        yield True
    finally:
        libc.mallopt(_M_MMAP_MAX, _MMAP_MAX_DEFAULT)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
        libc.mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_THRESHOLD_MAX)
        libc.malloc_trim(0)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL("libc.so.6")
