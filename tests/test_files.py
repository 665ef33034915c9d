"""suite.files: whole files or none, and unwritable targets refused up front."""

import errno
import fcntl
import os
import warnings
from pathlib import Path

import pytest

from suite import files
from suite.errors import SuiteError, SuiteWarning


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "table.md"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), files.replace(path) as f:
        f.write("half")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["table.md"]


def test_check_writable_leaves_no_probe_when_stopped_the_instant_it_is_made(tmp_path, monkeypatch):
    """A signal (Ctrl-C) as the probe file was made, before the block that removes it was entered,
    left `.suite-probe-*` in the folder."""
    real = os.open

    def made_then_stopped(path, flags, *args, **kwargs):
        fd = real(path, flags, *args, **kwargs)
        if os.path.basename(path).startswith(".suite-probe-"):
            os.close(fd)
            raise KeyboardInterrupt
        return fd

    monkeypatch.setattr(os, "open", made_then_stopped)
    with pytest.raises(KeyboardInterrupt):
        files.check_writable(tmp_path / "out.csv", key="--out")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_a_write_makes_no_folder_and_names_the_one_gone(tmp_path):
    """A write into a folder not there (a run's, deleted by `rm -rf` while the run ran) made it
    again, holding that file alone; it now fails naming the folder, and makes nothing."""
    folder = tmp_path / "store" / "runs" / "r"
    with pytest.raises(files.Gone) as gone:
        files.write_text(folder / "status.json", "{}")
    assert gone.value.file == str(folder) and "deleted while being written into" in str(gone.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("durable", [False, True])
def test_a_folder_deleted_while_a_file_is_written_into_it_is_named(tmp_path, durable):
    """The instant a check before the write left open: the folder goes while the file is being
    written. The write fails naming the folder (not the temporary file), and the folder stays gone."""
    import shutil

    folder = tmp_path / "r"
    folder.mkdir()
    with pytest.raises(files.Gone) as gone, files.replace(folder / "status.json", durable=durable) as f:
        f.write("{}")
        shutil.rmtree(folder)
    assert gone.value.file == str(folder) and not folder.exists()


@pytest.mark.parametrize("where", ["open", "write"])
def test_a_failed_write_names_the_file_not_its_temporary(tmp_path, monkeypatch, where):
    """A full disk refused the temporary file (`[Errno 28] No space left on device:
    '.../.status.json.<hex>.tmp'`, a file the user never sees), or its writing (an error that names
    no file at all). The error names the file being written, and no temporary file stays."""
    import errno

    path = tmp_path / "status.json"
    opened = os.open

    def full(name, *args, **kwargs):
        if Path(name).name.startswith(".status.json."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(name))
        return opened(name, *args, **kwargs)

    if where == "open":
        monkeypatch.setattr(files.os, "open", full)
    with pytest.raises(OSError) as err, files.replace(path) as f:
        f.write("{}")
        if where == "write":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert (err.value.errno, err.value.filename) == (errno.ENOSPC, str(path)) and os.listdir(tmp_path) == []


def test_new_files_follow_the_umask_and_replaced_ones_keep_their_mode(tmp_path):
    old = os.umask(0o027)
    try:
        files.write_text(tmp_path / "new.txt", "a")
    finally:
        os.umask(old)
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o640
    kept = tmp_path / "script.sh"
    kept.write_text("#!/bin/sh\n")
    kept.chmod(0o750)
    with files.replace(kept, binary=True, durable=True) as f:
        f.write(b"#!/bin/sh\r\necho\r\n")
    assert kept.stat().st_mode & 0o777 == 0o750 and kept.read_bytes() == b"#!/bin/sh\r\necho\r\n"


@pytest.mark.parametrize("target, directory, message", [
    ("a", False, "is a directory; name a file"),  # a file wanted, a folder there
    ("f", True, "not a directory"),  # a folder wanted, a file there
    ("f/sub/out.csv", False, r"not a directory \(.*f is a file\)"),  # a file on the way
])
def test_check_writable_names_the_path_and_the_option(tmp_path, target, directory, message):
    (tmp_path / "a").mkdir()
    (tmp_path / "f").write_text("")
    with pytest.raises(SuiteError, match=message) as info:
        files.check_writable(tmp_path / target, key="--out", directory=directory)
    assert info.value.file == str(tmp_path / target) and info.value.key == "--out"


def unusable(tmp_path: Path, kind: str) -> Path:
    """A path the OS refuses to look up: a name longer than a file system allows, or a symlink loop."""
    if kind == "long":
        return tmp_path / ("a" * 300)
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    return tmp_path / "loop1"


@pytest.mark.parametrize("kind, says", [("long", "File name too long"), ("loop", "Too many levels of symbolic links")])
@pytest.mark.parametrize("directory", [False, True])
@pytest.mark.parametrize("below", ["", "out.csv"])
def test_check_writable_names_a_path_the_os_cannot_look_up(tmp_path, kind, says, directory, below):
    path = unusable(tmp_path, kind) / below
    with pytest.raises(SuiteError, match=f"cannot use this path: {says}") as info:
        files.check_writable(path, key="--out", directory=directory)
    assert info.value.file == str(path) and info.value.key == "--out"


@pytest.mark.parametrize("kind, says", [("long", "File name too long"), ("loop", "Too many levels of symbolic links")])
@pytest.mark.parametrize("command", [["status"], ["status", "quick"], ["run", "quick", "--dry-run"], ["cancel", "quick"],
                                     ["report", "quick"], ["bench", "--list", "--storage"]])
def test_a_store_path_the_os_cannot_look_up_is_an_error_not_a_traceback(tmp_path, capsys, kind, says, command):
    from suite.cli import main

    path = unusable(tmp_path, kind)
    option = [] if command[-1] == "--storage" else ["--out"]
    assert main([*command, *option, str(path)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"cannot use this path: {says}")


@pytest.mark.parametrize("kind, says", [("long", "File name too long"), ("loop", "Too many levels of symbolic links")])
@pytest.mark.parametrize("setting, command, key", [
    ("SUITE_ABLATIONS", ["specs"], "$SUITE_ABLATIONS"),
    ("SUITE_CLUSTER", ["run", "quick", "--dry-run", "--executor", "slurm"], "$SUITE_CLUSTER"),
    ("SUITE_DATA", ["run", "ran_mask_norm", "--dry-run"], "data.root"),  # a dry run notes it
    ("data.root", ["run", "ran_imagenet", "--dry-run"], "data.root"),
])
def test_a_configured_path_the_os_cannot_look_up_is_named_not_a_traceback(tmp_path, monkeypatch, capsys, kind, says,
                                                                         setting, command, key):
    from suite.cli import main

    path = unusable(tmp_path, kind)
    if setting.isupper():
        monkeypatch.setenv(setting, str(path))
    overrides = [f"data.root={path}"] if setting == "data.root" else []
    assert main([*command, "--out", str(tmp_path / "out"), *overrides] if command[0] == "run" else command) in (0, 2)
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err and f"{path}: {key}: cannot use this path: {says}" in printed.out + printed.err


def test_check_writable_accepts_what_can_be_made(tmp_path):
    files.check_writable(tmp_path / "x" / "y" / "out.csv", key="--out")
    files.check_writable(tmp_path / "store", key="--storage", directory=True)
    existing = tmp_path / "out.csv"
    existing.write_text("old")
    files.check_writable(existing, key="--out")


def test_a_symlink_is_followed_and_a_device_written_not_replaced(tmp_path):
    target = tmp_path / "target.csv"
    target.write_text("old")
    (tmp_path / "link.csv").symlink_to(target)
    files.write_text(tmp_path / "link.csv", "new")
    assert (tmp_path / "link.csv").is_symlink() and target.read_text() == "new"
    files.check_writable(Path("/dev/null"), key="--out")
    files.write_text(Path("/dev/null"), "anything")
    assert Path("/dev/null").is_char_device()


def test_a_folder_that_takes_no_files_is_found_before_the_long_part():
    """os.access says yes to root for /proc (and a read-only mount): a file made there says no."""
    with pytest.raises(SuiteError, match=r"cannot write into /proc") as err:
        files.check_writable(Path("/proc/suite-table.csv"), key="--out")
    assert err.value.key == "--out" and err.value.file == "/proc/suite-table.csv"


def test_the_default_store_commits_only_its_tables_and_figures():
    """results/ is also the default run store: what runs and SLURM submissions write there (runs,
    job logs, code snapshots, the submission lock) must not end up in a commit beside the tables."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    written = ["results/runs/0a1b2c3d4e5f/result.json", "results/submitit/12_0_log.out",
               "results/code/3f2e1d/suite/cli.py", "results/.submit.lock"]
    committed = ["results/quick.md", "results/complexity.csv", "results/figures/quick.png"]
    check = subprocess.run(["git", "-C", str(root), "check-ignore", "--no-index", *written, *committed],
                           capture_output=True, text=True)
    assert check.stdout.split() == written, check.stderr


@pytest.mark.parametrize("no_flock", [errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL])
def test_without_flock_writes_go_on_and_killed_writers_temporaries_are_kept_said_once(tmp_path, monkeypatch, no_flock):
    """On a file system without flock (Lustre without its flock mount option, some NFS), a temporary
    file a killed writer left cannot be told from a write in progress, so `sweep` keeps it; it kept
    them without a word, every command, so nobody knew why they stayed. Writes go on; one warning
    says why the temporaries are kept and names one."""
    def flock(fd, operation):
        raise OSError(no_flock, os.strerror(no_flock))

    monkeypatch.setattr(fcntl, "flock", flock)
    monkeypatch.setattr(files, "_said_no_flock", False, raising=False)  # said once a process
    files.write_text(tmp_path / "table.md", "a table")
    assert (tmp_path / "table.md").read_text() == "a table" and os.listdir(tmp_path) == ["table.md"]
    left = [tmp_path / f".table.md.{tag * 12}.locked.tmp" for tag in "ab"]  # two killed writers' (or live ones')
    for tmp in left:
        tmp.write_text("half a table")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert files.sweep(tmp_path) == [] and files.sweep(tmp_path) == []
    assert all(tmp.exists() for tmp in left)
    [said] = [str(w.message) for w in caught if issubclass(w.category, SuiteWarning)]
    assert said.startswith(f"{tmp_path}/.table.md.") and "this file system does not lock files (flock: " \
        f"{os.strerror(no_flock)})" in said, said


def test_without_flock_a_temporary_whose_writer_here_has_ended_is_removed(tmp_path, monkeypatch):
    """On a file system without flock, the temporary file of a writer killed (SIGKILL) mid-write was
    kept for ever: no lock tells its writer is gone. Its name records its writer (this kernel and
    pid namespace, and its pid), so one whose writer has ended is removed; a live writer's stays, and
    so do one of another machine or container and one that names no writer (an older suite's)."""
    from processes import killed_writing

    killed = killed_writing(tmp_path / "table.md")  # its writer locked it (real flock), then was killed

    def flock(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", flock)
    monkeypatch.setattr(files, "_said_no_flock", True)  # its warning is the test above's
    other = "0" * 8 if files._kernel() != "0" * 8 else "1" * 8
    kept = [tmp_path / f".table.md.{'a' * 12}.locked.tmp", tmp_path / f".table.md.{other}-7fffff.{'b' * 12}.locked.tmp"]
    for tmp in kept:
        tmp.write_text("half a table")
    with files.replace(tmp_path / "live.md") as live:  # a write in progress, in this process
        live.write("whole")
        assert files.sweep(tmp_path) == [killed.name]
        [in_progress] = tmp_path.glob(".live.md.*.locked.tmp")
    assert not killed.exists() and all(tmp.exists() for tmp in kept) and not in_progress.exists()
    assert (tmp_path / "live.md").read_text() == "whole"
    assert files.WRITER.search(in_progress.name)["pid"] == f"{os.getpid():x}"


def test_a_device_is_checked_as_it_is_written_without_a_probe_in_its_folder(monkeypatch):
    """A device (/dev/null, /dev/stdout) is written as it is, never replaced, so its folder need
    take no new file: a user who may not make files in /dev can still give --to /dev/null."""
    real = os.open

    def no_new_files(path, flags, *args, **kwargs):  # /dev as a user other than root finds it
        if os.path.basename(path).startswith(".suite-probe-"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_new_files)
    files.check_writable(Path("/dev/null"), key="--to")


def test_a_folder_that_is_only_read_is_not_probed():
    """`write=False` (a benchmark storage that is only listed) checks what the folder is, not that
    files can be made there: a folder that takes none (/proc, a colleague's read-only storage) passes."""
    files.check_writable(Path("/proc/suite-storage"), key="--storage", directory=True, write=False)
    with pytest.raises(SuiteError, match="cannot write into /proc"):
        files.check_writable(Path("/proc/suite-storage"), key="--storage", directory=True)


def test_a_probe_failing_otherwise_than_for_want_of_locks_is_not_said_to_be_a_file_system_without_them(
        tmp_path, monkeypatch):
    """Only flock's no-locks errors (NO_FLOCK) mean a file system that does not lock files; another
    (an I/O error) is raised as it is, not named a missing mount option."""
    def flock(fd, operation):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(fcntl, "flock", flock)
    with pytest.raises(OSError) as err:
        files.check_writable(tmp_path / "runs", key="--out", directory=True, locked=True)
    assert err.value.errno == errno.EIO and not isinstance(err.value, files.Unlockable)
    assert os.listdir(tmp_path) == []
