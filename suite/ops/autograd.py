"""How the hand-written backward passes of suite's autograd Functions run."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch.autograd.function import once_differentiable

F = TypeVar("F", bound=Callable[..., Any])


def first_order_backward(backward: F) -> F:
    """Decorate a Function's backward (under @staticmethod): autocast off, once differentiable.

    Backward called inside an autocast region would otherwise run its products in the autocast
    dtype and meet the parameters' dtype in the next op; it computes what it computes outside one,
    as PyTorch advises calling it. The passes are written with in-place and out= ops, which autograd
    cannot differentiate again: a second derivative (a gradient penalty) gets PyTorch's clear
    "differentiate twice" error instead of an obscure one from inside.
    """

    @functools.wraps(backward)
    def wrapper(ctx: Any, *grads: Any) -> Any:
        device = next(g.device.type for g in grads if isinstance(g, torch.Tensor))
        with torch.autocast(device, enabled=False):
            return backward(ctx, *grads)

    return once_differentiable(wrapper)  # type: ignore[return-value]
