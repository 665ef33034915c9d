"""The queues local runners announce (`<out>/runs/.queued`): read by status, removed with a dead runner."""

import multiprocessing as mp
import os
import signal
from pathlib import Path

from suite.dispatch import queued


def _announce_and_wait(out: str, ids: list[str], ready, done) -> None:
    with queued.announced(Path(out), ids):
        ready.set()
        done.wait(60)


def _runner(out: Path, ids: list[str]):
    """A runner in another process holding its announcement until `done` is set (or it is killed)."""
    ctx = mp.get_context("fork")
    ready, done = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_announce_and_wait, args=(str(out), ids, ready, done))
    proc.start()
    assert ready.wait(30)
    return proc, done


def _files(out: Path) -> set[str]:
    return {p.name for p in (out / "runs" / queued.DIR).iterdir()}


def test_the_list_of_a_runner_killed_9_is_removed_by_the_next_status(tmp_path):
    """A SIGKILLed runner cannot remove its files: they were left for ever (said nothing, as nobody
    holds the lock); the next read of the queues removes them."""
    (tmp_path / "runs").mkdir()  # planned first: a runner makes its .queued in the store's runs/, never the store
    proc, _ = _runner(tmp_path, ["a", "b"])
    name = f"{os.uname().nodename}-{proc.pid}"
    assert queued.queued(tmp_path) == dict.fromkeys(["a", "b"], (f"pid {proc.pid} on {os.uname().nodename}",))
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert _files(tmp_path) == {f"{name}.json", f"{name}.lock"}
    assert queued.queued(tmp_path) == {} and _files(tmp_path) == set()


def test_a_runner_starting_removes_what_dead_runners_left_and_keeps_a_live_ones_list(tmp_path):
    folder = tmp_path / "runs" / queued.DIR
    folder.mkdir(parents=True)
    (folder / "vm-1.lock").touch()  # killed before it wrote its list
    (folder / "vm-2.lock").touch()
    (folder / "vm-2.json").write_text('{"host": "vm", "pid": 2, "runs": ["x"]}')
    live, done = _runner(tmp_path, ["a"])
    mine = f"{os.uname().nodename}-{os.getpid()}"
    theirs = f"{os.uname().nodename}-{live.pid}"
    try:
        assert _files(tmp_path) == {f"{theirs}.json", f"{theirs}.lock"}  # the live runner removed the dead ones'
        with queued.announced(tmp_path, ["b"]):
            assert _files(tmp_path) == {f"{theirs}.json", f"{theirs}.lock", f"{mine}.json", f"{mine}.lock"}
            assert set(queued.queued(tmp_path)) == {"a", "b"}
        assert set(queued.queued(tmp_path)) == {"a"} and _files(tmp_path) == {f"{theirs}.json", f"{theirs}.lock"}
    finally:
        done.set()
        live.join()
    assert _files(tmp_path) == set()


def test_a_runner_whose_lock_is_removed_as_it_takes_it_takes_the_one_at_the_path(tmp_path, monkeypatch):
    """A status removing a dead runner's lock between a new runner's opening it and its locking it
    (the same name: its pid reused) left the runner holding a removed file: its queue unseen."""
    name = f"{os.uname().nodename}-{os.getpid()}"
    folder = tmp_path / "runs" / queued.DIR
    folder.mkdir(parents=True)
    (folder / f"{name}.lock").touch()  # a dead runner's, of the same name
    real, raced = queued.fcntl.flock, []

    def status_first(fd, how):
        if not raced:
            monkeypatch.setattr(queued.fcntl, "flock", real)
            raced.append(queued._held(folder / f"{name}.lock"))  # nobody holds it yet: removed
        return real(fd, how)

    monkeypatch.setattr(queued.fcntl, "flock", status_first)
    with queued.announced(tmp_path, ["a"]):
        assert raced == [False] and queued.queued(tmp_path) == {"a": (f"pid {os.getpid()} on {os.uname().nodename}",)}


def test_a_runner_that_cannot_list_the_other_runners_files_still_announces_its_queue(tmp_path, monkeypatch):
    real = Path.glob

    def refused(self, pattern):
        if pattern == "*.lock":
            raise PermissionError(13, "Permission denied")
        return real(self, pattern)

    monkeypatch.setattr(Path, "glob", refused)
    (tmp_path / "runs").mkdir()
    with queued.announced(tmp_path, ["a"]):
        assert queued.queued(tmp_path) == {"a": (f"pid {os.getpid()} on {os.uname().nodename}",)}


def test_a_runners_list_it_was_killed_writing_goes_with_the_next_status_or_runner(tmp_path):
    """A runner killed (SIGKILL) as it wrote its list of queued runs left the list's temporary file in
    `.queued/` for ever: its lock and list went with the next `suite status` or runner, not that. Both
    now remove it, never the temporary of a runner writing its list that instant."""
    from processes import killed_writing
    from suite import files

    folder = tmp_path / "runs" / queued.DIR
    folder.mkdir(parents=True)
    left = killed_writing(folder / "host-1.json")
    with files.replace(folder / "host-2.json") as live:  # a live runner's, being written
        live.write("{}")
        assert queued.queued(tmp_path) == {} and not left.exists()
        [in_progress] = folder.glob(".host-2.json.*.locked.tmp")
        again = killed_writing(folder / "host-3.json")
        with queued.announced(tmp_path, ["r1"]):
            assert not again.exists() and in_progress.exists()
