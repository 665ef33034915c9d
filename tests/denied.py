"""Another user's file, for tests that run as root: `chmod` binds no root, so `os.open` is refused
on the one path instead, with the error the kernel gives another user."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest


def deny_open(monkeypatch: pytest.MonkeyPatch, path: Path, *, writes_only: bool = False) -> None:
    """`os.open` of `path` fails with EACCES (only for writing, with `writes_only`: mode 644)."""
    real = os.open

    def refused(name, flags, *args, **kwargs):
        if Path(name) == path and (not writes_only or flags & (os.O_RDWR | os.O_WRONLY)):
            raise PermissionError(errno.EACCES, "Permission denied", str(name))
        return real(name, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refused)
