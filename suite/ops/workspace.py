"""Per-thread scratch buffers for the large temporaries of SAN's ops.

glibc serves a large allocation with a fresh mmap (always above 32 MiB; below that too, depending
on what was freed before), and the kernel faults its pages in one by one on first touch: 6,272
faults for 25 MiB, on every call. A buffer kept per thread and reused from layer to layer is
faulted in once.
"""

from __future__ import annotations

import math
import threading

import torch
from torch import Tensor


class _Buffers(threading.local):
    def __init__(self) -> None:
        self.by_name: dict[str, Tensor] = {}


_buffers = _Buffers()


def workspace(name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """An uninitialised tensor of `shape` (like's dtype and device) in this thread's buffer `name`.

    Valid until the next request for `name` in the same thread: for a temporary that its caller
    consumes before any other layer runs. The buffer grows to the largest request and is kept; it
    is made outside inference mode, so calls under torch.inference_mode and torch.no_grad share it.
    """
    numel = math.prod(shape)
    buffer = _buffers.by_name.get(name)
    if buffer is None or buffer.numel() < numel or buffer.dtype != like.dtype or buffer.device != like.device:
        _buffers.by_name.pop(name, None)  # free the old buffer before allocating the new one
        with torch.inference_mode(False):
            buffer = _buffers.by_name[name] = like.new_empty(numel)
    return buffer[:numel].view(shape)
