"""Freezing the code a queued job will run.

A SLURM job may start hours after `suite run` returned; if it imported `suite` from the working
tree, an edit made meanwhile would change what it runs, silently (submitit's docs/tips.md and
Hydra's launcher both warn about this). So each submission copies the `suite` package into the
run store, `<out>/code/<digest>/suite/`, named by a hash of its files (identical code is copied
once), and jobs import it from there: the snapshot directory goes first on PYTHONPATH and
PYTHONSAFEPATH=1 keeps the job's working directory (possibly the repository) off sys.path.
The git commit and whether the package differed from it are recorded next to the copy and in each
run's status, for the record; the copy itself is what runs, committed or not.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import suite
from suite import store


@dataclass(frozen=True)
class Snapshot:
    path: Path  # the directory to put on PYTHONPATH (it holds `suite/`)
    digest: str
    git_commit: str | None  # HEAD of the repository the package came from, if any
    git_dirty: bool | None  # the package had uncommitted changes (or untracked files)

    def record(self) -> dict[str, object]:
        return {**asdict(self), "path": str(self.path)}


def package_dir() -> Path:
    return suite.PACKAGE_DIR


def take(out: Path) -> Snapshot:
    """Copy the package that is running now into `<out>/code/<digest>/` (once per distinct code)."""
    source = package_dir()
    files = sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(source).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    name = digest.hexdigest()[:12]
    target = Path(out) / "code" / name
    commit, dirty = git_state(source)
    snap = Snapshot(target, name, commit, dirty)
    if not (target / "suite").is_dir():
        staging = target.with_name(f".{name}.{uuid.uuid4().hex}")
        try:
            for f in files:
                dest = staging / "suite" / f.relative_to(source)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, dest)
            store.write_json(staging / "snapshot.json",
                             {**snap.record(), "source": str(source), "created_at": store.now()})
            staging.rename(target)
        except OSError:
            if not (target / "suite").is_dir():  # not merely a concurrent submission that won the rename
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return snap


def discard(snap: Snapshot) -> None:
    """Remove a snapshot no job will import (that of a withdrawn submission). It is renamed away
    first, so that a later submission of the same code never finds half of it: it copies it anew."""
    trash = snap.path.with_name(f".{snap.digest}.{uuid.uuid4().hex}")
    try:
        snap.path.rename(trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def git_state(package: Path) -> tuple[str | None, bool | None]:
    """The commit of the checkout holding `package` (the `suite` folder), and whether the package
    differs from it, new files in it included (they are imported, and a snapshot copies them); None
    for what git cannot say (not a checkout, no git). Local runs record the same (`code_version`).
    A package git does not track is in no checkout of the suite, though it may lie inside some
    repository: an installed suite in the site-packages of a project's .venv, or a job's snapshot in
    a store inside one. That repository's commit says nothing of the suite's code, so it is None."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(package.parent), *args], capture_output=True, text=True,
                                  timeout=30, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None or not git("ls-files", "--", package.name):
        return None, None
    status = git("status", "--porcelain", "--", package.name)
    return commit.strip(), None if status is None else bool(status.strip())


def loaded_from() -> Path:
    """The directory `suite` was imported from in this process (a snapshot's path in a job)."""
    return package_dir().parent
