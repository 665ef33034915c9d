"""Timed steps on a heap that keeps its pages, so a step's time does not depend on allocation history.

glibc serves a block above its mmap threshold with a fresh mapping and hands freed memory at the top
of the heap back to the kernel above its trim threshold; both thresholds move with what the process
allocated before. Every fresh page costs a page fault on first touch (6,272 for a 25 MiB feature map),
so one model's step time depended on the process it ran in: ResNet26 inference at batch 8 on a 2-core
VM took 142 ms in one run of `python -m suite.ops.benchmark` and 199 ms in another, unchanged (up to
47,000 page faults a step). Inside `steady_heap` glibc's main arena maps nothing afresh and trims
nothing, so once `settle` has grown the heap every timed step runs without page faults, as in a warm
serving or training process (and as with jemalloc or tcmalloc, which PyTorch's CPU tuning guide
recommends). That covers what the thread running the steps allocates (CPU autograd runs there too);
glibc's other threads' arenas still map blocks over 64 MiB afresh.

The cost: freed memory stays resident while timing, up to about twice a step's peak when the heap
fragments. Afterwards the thresholds stay at the maxima glibc's own adjustment reaches (32 MiB mmap,
64 MiB trim; mallopt cannot give the adjustment back) and the kept memory is returned, so a memory
measurement that follows starts from a trimmed heap. Where the allocator is not glibc's, or the user
tuned it (MALLOC_*_ or GLIBC_TUNABLES in the environment), nothing is changed and `available()` says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
import resource
from collections.abc import Callable, Iterator, Sequence

# mallopt(3) parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_MMAP_MAX_DEFAULT = 65536
_MMAP_THRESHOLD_MAX = 32 * 2**20  # DEFAULT_MMAP_THRESHOLD_MAX: where the dynamic threshold stops
_NO_TRIM = -1  # M_TRIM_THRESHOLD -1: never trim
# `settle`: rounds until two in a row take at most this many page faults each (1 MiB); at most this
# many rounds. One quiet round is not enough: with 40 MiB tensors the heap grew again in the round after.
SETTLED_FAULTS = 256
SETTLE_ROUNDS = 10

_depth = 0  # nesting: only the outermost exit restores


def available() -> bool:
    """Whether `steady_heap` takes effect: glibc's allocator, not tuned by the user."""
    return _glibc() is not None


@contextlib.contextmanager
def steady_heap() -> Iterator[bool]:
    """Within: no fresh mappings, no trimming (yields `available()`). Nests."""
    global _depth
    libc = _glibc()
    if libc is None:
        yield False
        return
    if _depth == 0 and not (libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, _NO_TRIM)):
        raise OSError("mallopt refused to keep the heap's pages")
    _depth += 1
    try:
        yield True
    finally:
        _depth -= 1
        if _depth == 0:
            libc.mallopt(_M_MMAP_MAX, _MMAP_MAX_DEFAULT)
            libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
            libc.mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_THRESHOLD_MAX)
            libc.malloc_trim(0)


def settle(steps: Sequence[Callable[[], object]]) -> int:
    """Call each step, round after round, until two rounds in a row take at most SETTLED_FAULTS page
    faults each (the heap has grown to the steps' size; usually 2 to 4 rounds, up to SETTLE_ROUNDS);
    returns the rounds run. Call inside `steady_heap`, before timing."""
    quiet = 0
    for rounds in range(1, SETTLE_ROUNDS + 1):
        before = page_faults()
        for step in steps:
            step()
        quiet = quiet + 1 if page_faults() - before <= SETTLED_FAULTS else 0
        if quiet == 2:
            return rounds
    return SETTLE_ROUNDS


def page_faults() -> int:
    """Minor page faults of this process so far, all its threads: a fresh page's first touch."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


_USER_TUNING = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
                "MALLOC_TRIM_THRESHOLD_")


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    if any(os.environ.get(name) for name in _USER_TUNING) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return None  # the user's settings stand
    return ctypes.CDLL("libc.so.6")
