"""Atomic checkpoint files and the pre-emption hook.

A checkpoint is written to a temporary file in the same directory, fsync'ed, then renamed over
the old one (os.replace is atomic on POSIX), so a run killed at any instant leaves either the
previous complete checkpoint or the new complete one, never a torn file.

Pre-emption: `request_checkpoint()` only sets a flag, so it is safe to call from a signal handler
or another thread. The training loop looks at the flag every few iterations (all ranks agree on
it), writes a checkpoint of the exact current state (mid-epoch included) and raises `Preempted`;
`suite.train.run(..., resume=True)` later continues from there bit for bit. Typical wiring:

    signal.signal(signal.SIGUSR2, lambda *_: request_checkpoint())   # e.g. sbatch --signal=USR2@120

then catch `Preempted` around `run()` and requeue. (A handler that exits the process at once,
like submitit's default `checkpoint` path, does not give the loop that chance; the run then resumes
from the last end-of-epoch checkpoint, which is always there.)
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import torch

from suite import files
from suite.errors import SuiteError

FILENAME = "checkpoint.pt"
_requested = threading.Event()


class Preempted(Exception):
    """Training stopped after writing a checkpoint on request; resume to continue."""

    def __init__(self, path: Path | None, iteration: int) -> None:
        self.path, self.iteration = path, iteration
        super().__init__(f"checkpoint requested: stopped at iteration {iteration}"
                         + (f", state saved in {path}" if path else " (no run directory: nothing saved)"))


def request_checkpoint() -> None:
    """Ask the running training loop to checkpoint at its next sync point and stop (signal-safe)."""
    _requested.set()


def checkpoint_requested() -> bool:
    return _requested.is_set()


def clear_request() -> None:
    _requested.clear()


def save(path: Path, state: dict[str, Any]) -> None:
    """Write `state` to `path` atomically and durably. A write that fails (a full disk) is an error
    naming the file and the cause; torch reports one as a cryptic RuntimeError ("unexpected pos
    ...") raised while it handles the OSError underneath, which is the one told."""
    try:
        with files.replace(path, binary=True, durable=True) as f:
            torch.save(state, f)
    except (OSError, RuntimeError) as exc:
        cause = _os_error(exc)
        if cause is None:  # not a failed write (a state torch cannot save): a bug, with its traceback
            raise
        raise SuiteError(f"cannot write the checkpoint: {cause.strerror or cause} (an earlier checkpoint stays "
                         "as it was)", file=str(path)) from None


def _os_error(exc: BaseException | None) -> OSError | None:
    """`exc` if it is an OSError, else the first OSError it was raised from or while handling."""
    while exc is not None:
        if isinstance(exc, OSError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def load(path: Path) -> dict[str, Any] | None:
    """The checkpoint at `path` (tensors on CPU), or None if there is none."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        # Our own file: it holds RNG states (numpy arrays, tuples) that weights_only refuses.
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a corrupt file (pickle, zip, EOF, runtime)
        raise SuiteError(f"cannot read checkpoint ({type(exc).__name__}: {exc}); delete it to start over",
                         file=str(path)) from None
