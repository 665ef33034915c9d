"""The `amp` setting: the autocast a run trains, is attacked and is timed under, and the loss scaling
its training steps take. One place, so that training and the throughput measurement can never
disagree on what `bf16` or `fp16` means."""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable
from typing import Any

import torch

from suite.errors import SuiteError, SuiteWarning

AMP_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(amp: str, device: torch.device) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """A factory of the contexts to run `amp` on `device` under; a clear error where this torch
    cannot (torch itself only warns and runs in float32)."""
    if amp not in AMP_DTYPES:
        raise SuiteError(f"unknown amp {amp!r}", key="amp", choices=list(AMP_DTYPES))
    dtype = AMP_DTYPES[amp]
    if dtype is None:
        return contextlib.nullcontext
    gpu = device.type == "cuda" and torch.cuda.is_available()
    try:
        # torch asks the current GPU whether it takes bf16: make that the run's (cuda:1 on a mixed node)
        with torch.cuda.device(device) if gpu else contextlib.nullcontext(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns and disables autocast for unsupported dtypes
            with torch.autocast(device.type, dtype=dtype):
                supported = torch.is_autocast_enabled(device.type)
            emulated = gpu and supported and amp == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False)
    except RuntimeError:
        supported = False
    if not supported:
        raise SuiteError(f"amp={amp} is not supported on {device.type} by torch {torch.__version__}",
                         key="amp", choices=list(AMP_DTYPES))
    if emulated:  # before Ampere bf16 runs, correctly but slowly: a timed run should say why
        warnings.warn(f"amp=bf16 is emulated on {torch.cuda.get_device_name(device)} (no native bfloat16 before "
                      "compute capability 8.0): slower than fp32; amp=fp16 is native there", SuiteWarning, stacklevel=2)
    return functools.partial(torch.autocast, device.type, dtype=dtype)


def grad_scaler(amp: str, device: torch.device) -> torch.amp.GradScaler:
    """The loss scaler of a training step under `amp`: fp16's gradients underflow without one; a
    disabled scaler (fp32, bf16) passes the loss and the optimizer step through."""
    return torch.amp.GradScaler(device.type, enabled=amp == "fp16")
