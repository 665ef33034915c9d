"""How the custom ops look to the tracers: torch.jit's, which fvcore counts from, and dynamo's
(torch.compile, torch.export), which must not meet the ops' caches (`cached_outside_traces`).

A custom autograd Function is traced as one `prim::PythonOp` node, which suite.ops.flops counts
as a whole. By default the tracer also records every op its forward runs (then drops them from the
graph): K slices and products per layer, each far slower to record than to run, so tracing SAN took
many times as long as running it. `opaque_to_tracer` runs a forward with tracing switched off
inside; the graph, and so every count, is the same. Trace under torch.no_grad(): with inputs that
require grad, PyTorch's tracer rejects a Function whose forward it did not see ("Cannot insert a
Tensor that requires grad as a constant").
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])


def opaque_to_tracer(forward: F) -> F:
    """Decorate an autograd Function's forward (under @staticmethod) so a jit trace sees only the Function."""

    @functools.wraps(forward)
    def wrapper(*args: Any) -> Any:
        state = torch._C._get_tracing_state()  # private, but what torch.jit itself uses
        if state is None:
            return forward(*args)
        torch._C._set_tracing_state(None)
        try:
            return forward(*args)
        finally:
            torch._C._set_tracing_state(state)

    return wrapper  # type: ignore[return-value]


def cached_outside_traces(maxsize: int | None = 64) -> Callable[[F], F]:
    """`functools.lru_cache`, bypassed while torch.compile or torch.export traces: there a result
    may be a fake tensor, which a later eager call must not get, and dynamo warns about tracing
    through a cache."""

    def decorate(function: F) -> F:
        cached = functools.lru_cache(maxsize=maxsize)(function)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return (function if torch.compiler.is_compiling() else cached)(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
