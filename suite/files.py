"""Writing the suite's files: whole or not at all, and refused early when they cannot be written.

Every record, table and checkpoint goes through `replace` (the per-epoch metrics log is appended
to, a line at a time, and read back tolerating a torn last line): a reader (a collaborator's
`suite report`, a resumed run, SLURM's next attempt) sees the old file or the new one, never half
of one, and a failed write leaves no temporary file behind. A writer killed with SIGKILL cannot
remove its own: it holds a lock on it (flock) while it writes, so `sweep` removes those whose lock
it can take, whoever wrote them (a run, a runner, a planner), knowing their writer is gone. Where
files cannot be locked, the temporary's name records its writer (`_writer`), and one whose
writer was a process of the sweeper's own kernel and pid namespace that has ended is removed.
The temporary name is unique per writer, because two processes (a SLURM requeue beside a lingering
attempt) may write the same file.
A write never makes the folder it writes into: a run's folder deleted while the run runs (`rm -rf`)
would come back holding that file alone. What makes a folder (a run's plan, a report's output) says so.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import os
import re
import stat
import uuid
import warnings
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import IO

from suite.errors import SuiteError, SuiteWarning


@contextlib.contextmanager
def replace(path: Path, *, binary: bool = False, durable: bool = False) -> Iterator[IO]:
    """A file to write that replaces `path` when the block ends without an exception.

    A new file gets the mode the umask gives (as `open` would); a replaced file keeps its own; a
    symlink is followed, and what is not a regular file (/dev/null) is written as it is.
    Text is UTF-8 written as given (no newline translation, so a CRLF file stays CRLF).
    `durable`: fsync the data and the rename, for what a crash must not lose (checkpoints).
    `path`'s folder must be there (Gone otherwise, naming it): this never makes it.
    """
    mode, text = ("wb", {}) if binary else ("w", {"encoding": "utf-8", "newline": ""})
    given = Path(path)  # named as given in an error
    folder = given.parent
    path = Path(os.path.realpath(path))  # a symlink's target is written, not the link replaced
    if path.exists() and not path.is_file():  # /dev/null, a FIFO: written to, never replaced
        with open(path, mode, **text) as f:
            yield f
        return
    tmp, fd = _temporary(path, given)
    try:
        with os.fdopen(fd, mode, **text) as f:  # open, so locked, until it is renamed
            with contextlib.suppress(FileNotFoundError):
                os.fchmod(fd, stat.S_IMODE(path.stat().st_mode))
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
            try:
                os.replace(tmp, path)
            except FileNotFoundError:  # the folder deleted, the temporary file with it, while it was written
                raise Gone.at(folder) from None
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename not in (None, str(tmp)) or exc.errno is None:  # the writer's own, or none to say again
            raise
        raise _named(exc, given) from None  # a write's error (ENOSPC) names no file, the rename's the temporary one
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        try:
            dir_fd = os.open(path.parent, os.O_RDONLY)
        except FileNotFoundError:  # deleted as soon as written: the file went with it
            raise Gone.at(folder) from None
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


TAG = 12  # hex digits of a temporary file's writer tag
# What a temporary's name records of its writer (`_writer`), before its tag: `<kernel>-<pid in hex>`.
WRITER = re.compile(rf"\.(?P<kernel>[0-9a-f]{{8}})-(?P<pid>[0-9a-f]{{1,8}})\.[0-9a-f]{{{TAG}}}\.locked\.tmp")
# A temporary file `replace` writes, locked by its writer (.status.json.<tag>.locked.tmp), and one
# an older version of the suite wrote unlocked (.status.json.<tag>.tmp): its writer may be alive.
LOCKED = re.compile(rf"\.(?P<name>.+)\.[0-9a-f]{{{TAG}}}\.locked\.tmp")
UNLOCKED = re.compile(rf"\.(?P<name>.+)\.[0-9a-f]{{{TAG}}}\.tmp")


def _temporary(path: Path, given: Path) -> tuple[Path, int]:
    """A new temporary file beside `path`, open for writing and locked from the instant it has its
    name on: a `sweep` that took its lock in the instant between (taking it for a killed writer's)
    has removed it, and another is made."""
    while True:
        tmp = path.with_name(f".{path.name}{_writer()}.{uuid.uuid4().hex[:TAG]}.locked.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileNotFoundError:
            raise Gone.at(given.parent) from None
        except OSError as exc:  # a full disk, a read-only folder: said of `path`, not of a temporary file never made
            raise _named(exc, given) from None
        try:
            with contextlib.suppress(OSError):  # a file system without locks: no sweep can lock it either
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.stat(tmp, follow_symlinks=False)  # still there (its name is this writer's alone): locked in time
            return tmp, fd
        except FileNotFoundError:  # swept before it was locked
            pass
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)


@functools.cache
def _kernel() -> str:
    """8 hex digits naming this boot of this machine's kernel and this process's pid namespace, the
    scope in which a pid names one process ('' where /proc does not say): a machine's name would not
    do, as containers of one host (each its own pids) and cloned machines can share one."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    return hashlib.sha256(f"{boot} {namespace}".encode()).hexdigest()[:8]


def _writer() -> str:
    """This process as a temporary's name records it (`WRITER`), for a file system without flock,
    where only that tells a killed writer's temporary (`_writer_gone`): 16 bytes at most, as a
    spec's longest table name leaves room for (ablations.spec.NAME_BYTES)."""
    return f".{_kernel()}-{os.getpid():x}" if _kernel() else ""


def _writer_gone(tmp: Path) -> bool:
    """Whether the temporary `tmp` names a writer (`_writer`) of this kernel and pid namespace that
    is no process now: it cannot be writing. One that is (its pid taken again since: a zombie, another
    user's) or one of another machine, container or older suite (no writer named) may be."""
    found = WRITER.search(tmp.name)
    if found is None or not _kernel() or found["kernel"] != _kernel():
        return False
    try:  # pid 0 (no writer's) is this process's group, always there: not gone
        os.kill(int(found["pid"], 16), 0)  # no signal: only whether the process is there
    except ProcessLookupError:
        return True
    except OSError:  # another user's process
        pass
    return False


def sweep(folder: Path, unlocked: Collection[str] = ()) -> list[str]:
    """Remove the temporary files of writes whose writer was killed (SIGKILL, the OOM killer: it
    cannot remove its own) from `folder`, listed once; the names removed. One is removed when its
    lock can be taken, which its writer holds until it has renamed it, so a live writer's never is.
    `unlocked`: the files whose older, unlocked temporaries (`UNLOCKED`, of an older version's
    writer) are removed too, because the caller knows no writer of them is alive (the holder of a
    run's lock, for a file only that holder writes); the others' stay: their writer may be alive."""
    try:
        with os.scandir(folder) as entries:
            names = [entry.name for entry in entries]
    except OSError:  # the folder gone, or not this user's to list: none to remove
        return []
    removed = []
    for name in names:
        if LOCKED.fullmatch(name):
            if _remove_if_unlocked(folder / name):
                removed.append(name)
        elif (old := UNLOCKED.fullmatch(name)) and old["name"] in unlocked:
            with contextlib.suppress(OSError):  # gone already, or a store this user may only read
                (folder / name).unlink()
                removed.append(name)
    return removed


# flock's answers on a file system without it (Lustre without its flock mount option, some NFS): a
# writer there holds no lock, so only a temporary that names a writer of this kernel that has ended
# (`_writer_gone`) can be told to be a killed writer's; the others are kept.
NO_FLOCK = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL})
_said_no_flock = False  # that it keeps them, said once a process


def _kept_without_flock(tmp: Path, exc: OSError) -> None:
    """Say, once a process, that temporaries such as `tmp` are kept, and why: left without a word, they
    would pile up (one a killed write) with nothing to tell the user that only a hand removes them."""
    global _said_no_flock
    if not _said_no_flock:
        _said_no_flock = True
        warnings.warn(f"{tmp}: kept: this file system does not lock files (flock: {exc.strerror or exc}), so a "
                      "temporary file a killed write left cannot be told from a write in progress unless its writer "
                      "was a process of this machine (and container); remove such files (.*.locked.tmp) by hand "
                      "when no suite command is writing there", SuiteWarning, stacklevel=3)


def _remove_if_unlocked(tmp: Path) -> bool:
    """Remove the temporary file `tmp` if its writer's lock can be taken (its writer is gone),
    holding the lock while it does: a writer that locks it afterwards finds it gone (`_temporary`)."""
    for flags in (os.O_WRONLY, os.O_RDONLY):  # NFS locks a file open for writing only; one read-only to this user
        try:
            fd = os.open(tmp, flags | os.O_NOFOLLOW | os.O_NONBLOCK)
            break
        except PermissionError:
            continue
        except OSError:  # gone already, or not a file to write
            return False
    else:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: its writer is alive
        if not os.path.samestat(os.stat(tmp, follow_symlinks=False), os.fstat(fd)):
            return False
        tmp.unlink()
        return True
    except OSError as exc:  # held, no locks on this file system, or a store this user may only read: kept
        if exc.errno not in NO_FLOCK:
            return False
        if _writer_gone(tmp):
            with contextlib.suppress(OSError):  # gone already, or a store this user may only read
                tmp.unlink()
                return True
            return False
        _kept_without_flock(tmp, exc)
        return False
    finally:
        os.close(fd)


def _named(exc: OSError, path: Path) -> OSError:
    """`exc` (errno and message kept) naming `path`, the file being written."""
    return type(exc)(exc.errno, exc.strerror, str(path))


class Gone(SuiteError):
    """A folder not there to write into: deleted while something was being written into it (a
    run's, by `rm -rf`), or never made."""

    @classmethod
    def at(cls, folder: Path) -> Gone:
        return cls("deleted while being written into: nothing more is written there", file=str(folder))


def write_text(path: Path, text: str, *, durable: bool = False) -> None:
    with replace(path, durable=durable) as f:
        f.write(text)


def check_writable(path: Path, *, key: str | None, directory: bool = False, write: bool = True,
                   locked: bool = False) -> None:
    """Fail before the long part, not after it, when `path` (a file, or with `directory` a folder
    of files) cannot be written: the error names the path and the option `key`. `write=False`
    checks only that it is (or can become) what it should be, for a folder that is only read.
    `locked`: the probe file is locked too (flock), for a folder whose files must be (a store's
    runs), and a file system that does not lock files is refused (`Unlockable`): one probe, both answers."""
    path = Path(path)
    check_lookup(path, key=key)
    if path.exists():
        if path.is_dir() != directory:
            raise SuiteError("not a directory" if directory else "is a directory; name a file", file=str(path), key=key)
        if not directory and not os.access(path, os.W_OK):
            raise SuiteError("cannot write", file=str(path), key=key)
        if not directory and not path.is_file():  # a device or FIFO: written as it is
            return
    folder = path if directory else path.parent
    existing = next(p for p in [folder, *folder.resolve().parents] if p.exists())
    if not existing.is_dir():
        raise SuiteError(f"not a directory ({existing} is a file)", file=str(path), key=key)
    if write:  # os.access says yes to root on a read-only mount or /proc: only a file made there tells
        probe = existing / f".suite-probe-{uuid.uuid4().hex[:TAG]}"
        try:
            try:
                fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise SuiteError(f"cannot write into {existing}: {exc.strerror or exc}", file=str(path),
                                 key=key) from None
            try:
                if locked:  # a file no one else has: only a file system refuses it
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(fd)
        except OSError as exc:
            if exc.errno not in NO_FLOCK:
                raise
            raise Unlockable(f"this file system does not lock files (flock: {exc.strerror or exc})", file=str(path),
                             key=key) from None
        finally:  # whatever stops the check (a signal, even the instant the probe is made): none left behind
            with contextlib.suppress(OSError):
                probe.unlink()


class Unlockable(SuiteError):
    """A folder `check_writable(locked=True)` refuses: its file system does not lock files (NO_FLOCK)."""


def check_lookup(path: Path, *, key: str | None) -> None:
    """Refuse a path the OS cannot look up, as a SuiteError naming it and the option `key`: a name too
    long for the file system, a symlink loop, a folder on the way this user may not enter. pathlib's
    exists() raises these (resolve() a RuntimeError for a loop); a path that is merely absent passes."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise SuiteError(f"cannot use this path: {exc.strerror or exc}", file=str(path), key=key) from None
