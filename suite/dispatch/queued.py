"""The runs a local `suite run` planned and has not started yet, for `suite status` in another terminal.

Such a run has its plan (config.json) and no status yet, or the status of its last attempt, so the
store alone counts it missing (or interrupted, failed, cancelled) while the runner is about to start
it. The runner writes the ids it has still to start to `<out>/runs/.queued/<host>-<pid>.json` and
holds `<host>-<pid>.lock` for as long as it runs: a file whose lock nobody holds is a runner that
died (killed -9), and says nothing. Such a runner's files are removed by the next runner to start
or `suite status` to read the queues (`_held`): only by a process holding that same lock, so never
a live runner's. `.queued` holds none of a run's records, so it is no run.

The locks are `fcntl.flock`, as `locks.Lock`'s, on a descriptor this module keeps: removing a dead
runner's lock safely needs the held descriptor compared with the file now at the path
(`os.path.samestat`), and a probe that never makes the lock file (`_held`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

from suite import files

DIR = ".queued"


class Queue:
    """A runner's queue as announced: `started` takes a run off it as the runner reaches it."""

    def __init__(self, path: Path, run_ids: Iterable[str]) -> None:
        self.path = path
        self.ids = list(run_ids)
        self._write()

    def started(self, run_id: str) -> None:
        """The runner reached `run_id` (started it, or left it): no longer queued."""
        if run_id in self.ids:
            self.ids.remove(run_id)
            self._write()

    def _write(self) -> None:
        with contextlib.suppress(OSError, files.Gone):  # a runner that cannot announce its queue still runs it
            with files.replace(self.path) as f:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(), "runs": self.ids}, f)


@contextlib.contextmanager
def announced(out: Path, run_ids: Iterable[str]) -> Iterator[Queue]:
    """Announce `run_ids` as queued in this process for the block; the announcement goes with it.
    The lists runners killed -9 left are removed first."""
    folder = Path(out) / "runs" / DIR
    lock = folder / f"{socket.gethostname()}-{os.getpid()}.lock"
    fd = _take(lock)
    if fd is None:
        yield Queue(Path(os.devnull), ())  # nothing announced: status counts them as before
        return
    try:
        with contextlib.suppress(OSError):  # the queue is announced whatever stays of others
            for other in folder.glob("*.lock"):
                if other != lock:
                    _held(other)
        files.sweep(folder)  # and what a runner killed writing its list left
        queue = Queue(lock.with_suffix(".json"), run_ids)
        yield queue
    finally:
        for path in (lock.with_suffix(".json"), lock):  # the list first: a list is never left without its lock
            with contextlib.suppress(OSError):
                path.unlink()
        os.close(fd)


def _take(lock_path: Path) -> int | None:
    """The descriptor holding the lock at `lock_path` (made if need be), or None when it cannot be
    taken. A lock removed by `_held` between its opening and its taking is not the one at the path:
    taken again, so that the lock this runner holds is the one status and runners look at."""
    for _ in range(3):
        try:
            lock_path.parent.mkdir(exist_ok=True)  # in the store's runs/, not made again if the store is gone
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held (by a process of the same name, or one removing it), or no flock here
            os.close(fd)
            return None
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(fd), os.stat(lock_path)):
                return fd
        os.close(fd)  # removed meanwhile: take the one at the path now
    return None


def queued(out: Path) -> dict[str, tuple[str, ...]]:
    """The runs the live local runners of the store have still to start: run id -> which runners
    ('pid N on HOST'). Two `suite run`s of one spec queue the same runs: each is started by the
    first to reach it, so stopping one of them leaves it to the other. The lists of runners that
    died are removed on the way."""
    folder = Path(out) / "runs" / DIR
    found: dict[str, tuple[str, ...]] = {}
    try:
        announcements = sorted(folder.glob("*.json"))
    except OSError:
        return found
    files.sweep(folder)  # what a runner killed writing its list left
    for path in announcements:
        if not _held(path.with_suffix(".lock")):
            continue
        try:
            record = json.loads(path.read_text())
            runs, who = record["runs"], f"pid {record['pid']} on {record['host']}"
        except (OSError, ValueError, TypeError, KeyError):
            continue  # half gone with its runner, or not the suite's
        if isinstance(runs, list):
            for run_id in map(str, runs):
                found[run_id] = (*found.get(run_id, ()), who)
    return found


def _held(lock_path: Path) -> bool:
    """Whether a runner holds `lock_path`. One nobody holds is a runner that died: its list and its
    lock are removed while holding that lock, checked to be the one at `lock_path` now, so a runner
    starting under the same name meanwhile (`_take`) holds the lock at the path, and keeps its list.
    A lock that cannot be opened or locked (gone, another user's, no flock) is no runner's."""
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_NOFOLLOW)  # flock needs no write: a reader of the store sees runners
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        with contextlib.suppress(OSError):  # a store this user may only read keeps them
            if os.path.samestat(os.fstat(fd), os.stat(lock_path)):
                lock_path.with_suffix(".json").unlink(missing_ok=True)
                lock_path.unlink()
        return False
    finally:
        os.close(fd)
