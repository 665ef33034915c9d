"""Cross-process locks on a file in a folder that must be there: the lock never makes its folder.

A run's `.lock` is taken by the process executing the run and by whatever writes there from outside
(a runner recording a run's end, a submitter its pending status). `filelock` made the lock file's
folders as it took a lock, so a run's folder deleted (`rm -rf`) just before came back holding the
lock file alone, though no write makes a folder (`files.replace`). Taking a `Lock` in a folder not
there raises `files.Gone` naming it, and makes nothing; what may make its folder (the store's
`.submit.lock`) makes it first.

The lock is `fcntl.flock` on the file, which stays in place when released (waiters share its
inode), as filelock's is: a process of an older suite (a SLURM job running its snapshot's code)
and this one exclude each other. flock locks an open file, not a process: a second `Lock` of the
same file in one process waits for the first, as another process would; and a forked child (a
DataLoader worker) would keep its parent's lock after the parent's death (the OOM killer), so
its copies are closed as it starts, as filelock's are.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from suite import files

POLL_S = 0.05  # between tries while waiting: a probe holds a run's lock for an instant
_HELD: set[int] = set()  # the descriptors of the locks this process holds


def _none_held_in_child() -> None:
    """A forked child holds none of its parent's locks: its copies of their descriptors closed."""
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_none_held_in_child)


class Held(Exception):
    """The lock stayed held by another holder for as long as the taker would wait."""


class Lock:
    """An exclusive lock on the file `path`, made if need be (in a folder that is there)."""

    def __init__(self, path: Path) -> None:
        self.lock_file = str(path)
        self._fd: int | None = None

    def acquire(self, timeout: float = -1) -> None:
        """Take the lock, waiting up to `timeout` seconds (for ever if negative): Held when it
        stays taken, files.Gone when the folder is not there, OSError when the file cannot be
        opened (another user's lock)."""
        path = Path(self.lock_file)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            raise files.Gone.at(path.parent) from None
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if 0 <= timeout and deadline <= time.monotonic():
                        raise Held(self.lock_file) from None
                    time.sleep(POLL_S)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        _HELD.add(fd)

    def release(self) -> None:
        """Give the lock up (in the process that took it: a forked child's copy is closed already)."""
        fd, self._fd = self._fd, None
        if fd is not None and fd in _HELD:
            _HELD.discard(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
