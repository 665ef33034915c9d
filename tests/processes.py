"""Helpers for tests that start, signal and wait for real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def alive(pid: int) -> bool:
    """Running (a zombie is not: it has ended and waits for whoever reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_for(predicate: Callable[[], bool], what: str, deadline_s: float = 120.0) -> None:
    """Poll: a generous deadline instead of a guess of how long the machine takes."""
    end = time.monotonic() + deadline_s
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


# A process killed (SIGKILL, the out-of-memory killer) in the middle of writing the file argv[1].
KILLED_WRITING = """
import os, signal, sys
from pathlib import Path
from suite import files

with files.replace(Path(sys.argv[1]), binary=True) as f:
    f.write(b"half a file")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_writing(path: Path) -> Path:
    """The temporary file a process SIGKILLed while it wrote `path` (`files.replace`) left beside it."""
    before = set(path.parent.iterdir())
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITING, str(path)], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    [left] = set(path.parent.iterdir()) - before
    return left
