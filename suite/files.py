"""Writing the suite's files: whole or not at all, and refused early when they cannot be written.

Every record, table and checkpoint goes through `replace` (the per-epoch metrics log is appended
to, a line at a time, and read back tolerating a torn last line): a reader (a collaborator's
`suite report`, a resumed run, SLURM's next attempt) sees the old file or the new one, never half
of one, and a failed write leaves no temporary file behind (a writer killed with SIGKILL cannot
remove its own: `temporaries` finds them). The temporary name is unique per writer, because two
processes (a SLURM requeue beside a lingering attempt) may write the same file.
A write never makes the folder it writes into: a run's folder deleted while the run runs (`rm -rf`)
would come back holding that file alone. What makes a folder (a run's plan, a report's output) says so.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from suite.errors import SuiteError


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
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:TAG]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileNotFoundError:
        raise Gone.at(folder) from None
    except OSError as exc:  # a full disk, a read-only folder: said of `path`, not of a temporary file never made
        raise _named(exc, given) from None
    try:
        with contextlib.suppress(FileNotFoundError):
            os.fchmod(fd, stat.S_IMODE(path.stat().st_mode))
        with os.fdopen(fd, mode, **text) as f:
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


def temporaries(path: Path) -> list[Path]:
    """The temporary files `replace` left beside `path`: a writer killed mid-write (SIGKILL, OOM)
    cannot remove its own. Only a caller that knows no writer of `path` is alive (the holder of the
    run's lock, for a file only that holder writes) may remove them."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{{TAG}}}\.tmp")
    try:
        return sorted(p for p in path.parent.iterdir() if pattern.fullmatch(p.name))
    except OSError:  # the folder gone, or not this user's to list: none to remove
        return []


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


def check_writable(path: Path, *, key: str, directory: bool = False, write: bool = True) -> None:
    """Fail before the long part, not after it, when `path` (a file, or with `directory` a folder
    of files) cannot be written: the error names the path and the option `key`. `write=False`
    checks only that it is (or can become) what it should be, for a folder that is only read."""
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
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            raise SuiteError(f"cannot write into {existing}: {exc.strerror or exc}", file=str(path), key=key) from None
        finally:  # whatever stops the check (a signal, even the instant the probe is made): none left behind
            with contextlib.suppress(OSError):
                probe.unlink()


def check_lookup(path: Path, *, key: str) -> None:
    """Refuse a path the OS cannot look up, as a SuiteError naming it and the option `key`: a name too
    long for the file system, a symlink loop, a folder on the way this user may not enter. pathlib's
    exists() raises these (resolve() a RuntimeError for a loop); a path that is merely absent passes."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise SuiteError(f"cannot use this path: {exc.strerror or exc}", file=str(path), key=key) from None
