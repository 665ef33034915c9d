"""Which implementation the local-attention ops use: 'shift' (default) or the naive 'unfold'.

'unfold' materialises the k^2-expanded neighbourhood (N, C, K, H*W) and lets autograd keep it, and
SAN models built on it skip their inference shortcuts: it is the straightforward, obviously-correct
reference that tests and the benchmark compare against, not a model option. Switch it for a block
of code with `with use_backend("unfold"): ...`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

from suite.errors import unknown

BACKENDS: tuple[str, ...] = ("shift", "unfold")

_current: ContextVar[str] = ContextVar("suite_ops_backend", default="shift")


def current_backend() -> str:
    """The backend in force; 'unfold' while torch.export traces, whatever was asked: an exported
    program should be plain differentiable aten ops, and the shift ops write into tensors they
    made (out=), which an exported graph rejects when it runs with autograd on."""
    return "unfold" if torch.compiler.is_exporting() else _current.get()


@contextmanager
def use_backend(name: str) -> Iterator[None]:
    if name not in BACKENDS:
        raise unknown("ops backend", name, BACKENDS, key="backend")
    token = _current.set(name)
    try:
        yield
    finally:
        _current.reset(token)
