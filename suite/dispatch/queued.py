"""The runs a local `suite run` planned and has not started yet, for `suite status` in another terminal.

Such a run has its plan (config.json) and no status yet, or the status of its last attempt, so the
store alone counts it missing (or interrupted, failed, cancelled) while the runner is about to start
it. The runner writes the ids it has still to start to `<out>/runs/.queued/<host>-<pid>.json` and
holds `<host>-<pid>.lock` for as long as it runs: a file whose lock nobody holds is a runner that
died (killed -9), and says nothing. `.queued` holds none of a run's records, so it is no run.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

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
        with contextlib.suppress(OSError):  # a runner that cannot announce its queue still runs it
            with files.replace(self.path) as f:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(), "runs": self.ids}, f)


@contextlib.contextmanager
def announced(out: Path, run_ids: Iterable[str]) -> Iterator[Queue]:
    """Announce `run_ids` as queued in this process for the block; the announcement goes with it."""
    folder = Path(out) / "runs" / DIR
    name = f"{socket.gethostname()}-{os.getpid()}"
    lock = FileLock(str(folder / f"{name}.lock"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except (OSError, Timeout):
        yield Queue(Path(os.devnull), ())  # nothing announced: status counts them as before
        return
    queue = Queue(folder / f"{name}.json", run_ids)
    try:
        yield queue
    finally:
        for path in (queue.path, folder / f"{name}.lock"):
            with contextlib.suppress(OSError):
                path.unlink()
        lock.release()


def queued(out: Path) -> dict[str, str]:
    """The runs the live local runners of the store have still to start: run id -> which runner
    ('pid N on HOST')."""
    folder = Path(out) / "runs" / DIR
    found: dict[str, str] = {}
    try:
        announcements = sorted(folder.glob("*.json"))
    except OSError:
        return found
    for path in announcements:
        try:
            record = json.loads(path.read_text())
            runs, who = record["runs"], f"pid {record['pid']} on {record['host']}"
        except (OSError, ValueError, TypeError, KeyError):
            continue  # half gone with its runner, or not the suite's
        if _alive(path.with_suffix(".lock")) and isinstance(runs, list):
            found.update(dict.fromkeys(map(str, runs), who))
    return found


def _alive(lock_path: Path) -> bool:
    """Whether a runner holds `lock_path` (False when it can be taken, or is gone)."""
    if not lock_path.exists():
        return False
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:
        return False
    lock.release()  # taken: its runner died without removing its files
    return False
