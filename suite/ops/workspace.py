"""Scratch buffers a model reuses for the large temporaries of SAN's ops, from call to call.

glibc serves a large allocation with a fresh mmap (always above 32 MiB; below that too, depending
on what was freed before), and the kernel faults its pages in one by one on first touch: 6,272
faults for 25 MiB, on every call. A buffer kept and reused from layer to layer is faulted in once.

The buffers belong to a `Workspace` that a model owns (one set per thread, so DataParallel's
replicas and concurrent callers never share one): they go when the model goes, and a model frees
them when it starts training, since only inference uses them. An op called outside any model's
workspace gets a fresh tensor each time.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
from torch import Tensor


class Workspace:
    """Named buffers, one set per thread, each grown to its largest request and kept."""

    def __init__(self) -> None:
        self._threads = threading.local()

    def release(self) -> None:
        """Drop every thread's buffers (the memory returns once no tensor views them)."""
        self._threads = threading.local()

    def buffers(self) -> dict[str, Tensor]:
        """This thread's buffers by name."""
        if not hasattr(self._threads, "by_name"):
            self._threads.by_name = {}
        return self._threads.by_name

    def get(self, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        numel = math.prod(shape)
        by_name = self.buffers()
        buffer = by_name.get(name)
        if buffer is None or buffer.numel() < numel or buffer.dtype != like.dtype or buffer.device != like.device:
            by_name.pop(name, None)  # free the old buffer before allocating the new one
            with torch.inference_mode(False):
                buffer = by_name[name] = like.new_empty(numel)
        return buffer[:numel].view(shape)

    def __reduce__(self) -> tuple[Any, ...]:  # a copied or pickled model starts with no buffers
        return (Workspace, ())


_active: ContextVar[Workspace | None] = ContextVar("suite_ops_workspace", default=None)


@contextmanager
def using(space: Workspace) -> Iterator[None]:
    """Serve `workspace()` requests from `space` inside the block (a model's forward)."""
    token = _active.set(space)
    try:
        yield
    finally:
        _active.reset(token)


def workspace(name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """An uninitialised tensor of `shape` (like's dtype and device), from the active workspace's
    buffer `name` for this thread, or fresh outside any.

    Valid until the next request for `name` in the same thread: for a temporary that its caller
    consumes before any other layer runs. Buffers are made outside inference mode, so calls under
    torch.inference_mode and torch.no_grad share them.
    """
    space = _active.get()
    if space is None:
        return like.new_empty(shape)
    return space.get(name, shape, like)
