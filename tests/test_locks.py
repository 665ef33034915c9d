"""suite.locks: a run's lock never makes its folder, and outlives no holder."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from suite import files, store


def test_taking_a_runs_lock_makes_no_folder_and_names_the_one_not_there(tmp_path):
    """filelock made the lock file's folders as it took a lock: a run's folder deleted (`rm -rf`)
    just before came back holding the lock file alone."""
    d = tmp_path / "runs" / "r"
    with pytest.raises(files.Gone) as gone:
        store.run_lock(d).acquire(timeout=0)
    assert gone.value.file == str(d) and os.listdir(tmp_path) == []


# Takes the run's lock, forks a child that outlives it (a DataLoader worker, say), prints the
# child's pid, and is killed (the out-of-memory killer).
FORKS_AND_DIES = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    from suite import store

    store.run_lock(Path(sys.argv[1])).acquire(timeout=0)
    child = os.fork()
    if child == 0:  # off the pipe the test reads to its end
        for fd in (1, 2):
            os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
        time.sleep(60)
        os._exit(0)
    print(child, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_forked_child_keeps_no_lock_of_its_dead_parent(tmp_path):
    """flock locks an open file: a child forked while the run's lock was held shares it, and kept
    the run taken for as long as it lived after its parent's death."""
    d = tmp_path / "r"
    d.mkdir()
    proc = subprocess.run([sys.executable, "-c", FORKS_AND_DIES, str(d)], capture_output=True, text=True, timeout=120)
    child = int(proc.stdout)
    try:
        assert proc.returncode == -signal.SIGKILL and os.kill(child, 0) is None  # the child lives
        assert not store.executing(d)
    finally:
        os.kill(child, signal.SIGKILL)
