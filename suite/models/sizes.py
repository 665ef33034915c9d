"""Whether a model takes an input size, said where its first forward fails.

A model's check (suite.models.registry) refuses the sizes it knows it cannot take before anything
is built. A model without one (a plugin's network with a fixed Linear after a flatten) finds out in
its first forward, deep in torch: "mat1 and mat2 shapes cannot be multiplied (1x1568 and 2048x10)",
naming neither the model nor the size. `FirstForward` guards the forward where a model first meets
its inputs (the complexity count's trace, a timed measurement's first steps, training's first
batch), so `suite profile`, `suite run` and `suite train` say it alike: which model, which size,
where the size came from (the error's key, and the data set when the size is its own) and the
original error. Only a failure the size causes is said so: the model must fail on one blank image
of that size and run on one of its own size; anything else (a bug in its forward) is raised as it
came, with its traceback.
"""

from __future__ import annotations

from types import TracebackType

import torch
from torch import nn

from suite.data.catalog import DATASETS
from suite.errors import SuiteError
from suite.models.registry import get_model_info


def probe_input(model: nn.Module, size: int, in_chans: int = 3) -> torch.Tensor:
    """One blank image of `size` px on the model's device, in its floating dtype: what a complexity
    count traces, and what the probes here feed it."""
    tensors = [*model.parameters(), *model.buffers()]
    floating = next((t.dtype for t in tensors if t.is_floating_point()), None)
    return torch.zeros(1, in_chans, size, size, device=tensors[0].device if tensors else None, dtype=floating)


def data_whence(dataset: str, size: int) -> str:
    """How a run came by its input size, for FirstForward's message: a data set's own size is said
    as that (`data.input_size` alone reads as set when it was not)."""
    return f"the image size of {dataset}" if DATASETS[dataset].input_size == size else ""


class FirstForward:
    """Context manager around a model's forwards: until one block has passed, a failure there that
    inputs of `size` px cause (the model fails on one such image and runs on one of its own size)
    is raised as a SuiteError keyed `key` (the argument or config key that set the size; `whence`
    says how, when the key alone does not), naming the model `name` and keeping the original error.
    Other failures, and every failure after a block has passed, go through as they are."""

    def __init__(self, model: nn.Module, name: str, size: int, *, key: str, whence: str = "") -> None:
        self.model, self.name, self.size, self.key, self.whence = model, name, size, key, whence
        self.passed = False

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            self.passed = True
            return
        if self.passed or not isinstance(exc, Exception) or isinstance(exc, (SuiteError, torch.cuda.OutOfMemoryError)):
            return
        natural = get_model_info(self.name).input_size
        if self.size == natural or _runs(self.model, self.size) or not _runs(self.model, natural):
            return  # not the size: the model's own error, with its traceback
        # its first line: a C++ error may go on for pages
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        whence = f", {self.whence}" if self.whence else ""
        raise SuiteError(f"model {self.name!r} does not take inputs of {self.size} px{whence} (it runs at its own "
                         f"size, {natural} px): {type(exc).__name__}: {first}".rstrip(": "), key=self.key) from exc


def _runs(model: nn.Module, size: int) -> bool:
    """Whether `model` runs on one blank image of `size` px (in eval mode, without gradients: the
    probe changes no BatchNorm statistics; its mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(probe_input(model, size))
    except Exception:  # noqa: BLE001 - any failure means it does not run at that size
        return False
    finally:
        model.train(was_training)
    return True
