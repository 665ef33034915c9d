"""Run a checkout's tests/benchmarks with pytest-benchmark, and find the baselines it saved.

Benchmarks run in a child `python -m pytest` with the checkout first on PYTHONPATH, so the code
measured is that checkout's `suite` (what --compare-rev relies on), with benchmarks enabled
(plain `pytest` disables them: pyproject.toml), `rounds` interleaved rounds each, raw samples kept,
and the run's JSON written to a file for the comparison. Baselines are pytest-benchmark's own
storage: `--benchmark-save NAME` writes <storage>/<machine id>/NNNN_NAME.json. A file there that
does not load is listed as unreadable and is never skipped in favour of an older one.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from suite import PACKAGE_DIR, files, processes
from suite.bench.compare import Run, load_run, save_warning
from suite.errors import SuiteError, SuiteWarning, shell_path, unknown

BENCH_DIR = "tests/benchmarks"
DEFAULT_ROUNDS = 15
ROUNDS_TIME_S = 3.0  # by default a short interleaved benchmark gets more rounds, as many as fit in this
DEFAULT_THREADS = 1  # one thread: on a shared machine a second thread waits for a busy core
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NO_TESTS = 5  # pytest's exit status when nothing was collected (e.g. -k matches nothing)
USAGE_ERROR = 4  # pytest's exit status for a command line it cannot use
_SAVED = re.compile(r"\d{4}_(?P<name>.+)\.json")
# How pytest-benchmark says where it wrote a file ('Wrote ...' for the run's JSON, 'Saved ...' for a
# baseline), left out of what is shown: the run's JSON is a temporary file gone by the end, and a
# baseline's file is removed if the run does not finish (the suite says where it saved one).
WROTE = " benchmark data in: "


def project_root() -> Path:
    """The checkout the running `suite` package comes from. An installed suite carries no benchmarks,
    and the `suite` command runs the installed package from any folder, a checkout's included: the
    error says which package ran and how to run a checkout's instead."""
    root = PACKAGE_DIR.parent
    if not (root / BENCH_DIR).is_dir():
        raise SuiteError(f"suite bench times the benchmarks of a source checkout ({BENCH_DIR}/), and the suite "
                         f"that ran is {PACKAGE_DIR}, with no {BENCH_DIR}/ beside it (an installed package carries "
                         "none): run it in a clone of the suite, installed editable with its test extras "
                         "(pip install -e '.[dev]', as setup.sh does)")
    return root


def default_storage() -> Path:
    return project_root() / ".benchmarks"


def check_storage(storage: Path, *, write: bool = False) -> None:
    """A baseline directory that cannot be one fails before the benchmarks run (pytest-benchmark
    would only fail when saving, at the end)."""
    files.check_writable(storage, key="--storage", directory=True, write=write)


def pytest_command(json_path: Path, *, rounds: int, max_time: float, select: str | None = None,
                   save: str | None = None, storage: Path | None = None, markers: str | None = None) -> list[str]:
    command = [sys.executable, "-m", "pytest", BENCH_DIR, "-q", "-p", "no:cacheprovider",
               "--benchmark-enable", "--benchmark-only", f"--benchmark-min-rounds={rounds}",
               f"--benchmark-max-time={max_time}",
               "--benchmark-sort=name", "--benchmark-columns=median,iqr,rounds",
               f"--benchmark-json={json_path}"]
    if select:
        command += ["-k", select]
    if markers:
        command += ["-m", markers]
    if save:
        command += [f"--benchmark-save={save}", "--benchmark-save-data"]
    if storage is not None:
        command.append(f"--benchmark-storage=file://{Path(storage).resolve()}")
    return command


def run_benchmarks(root: Path, json_path: Path, *, rounds: int = DEFAULT_ROUNDS, max_time: float,
                   threads: int | None = DEFAULT_THREADS, select: str | None = None, save: str | None = None,
                   storage: Path | None = None, markers: str | None = None, quiet: bool = False,
                   shown_as: tuple[Path, str] | None = None) -> int:
    """Run `root`'s benchmarks, `rounds` interleaved rounds each or as many more as fit in
    `max_time` seconds; returns pytest's exit status. Output streams to the terminal unless `quiet`
    (then it is shown only if pytest fails, with the paths under `shown_as`'s folder shown as its
    name: a temporary tree's files as the revision's, `REV:suite/x.py`, not where they were until
    deleted). Interrupted, pytest is stopped too."""
    if save is not None and not NAME.fullmatch(save):
        raise SuiteError(f"baseline names are letters, digits, '.', '_' and '-', got {save!r}", key="--save")
    if save is not None and (problem := save_warning(rounds, DEFAULT_ROUNDS)):
        warnings.warn(f"--save {save} --rounds {rounds}: {problem}", SuiteWarning, stacklevel=2)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])]),
               GIT_OPTIONAL_LOCKS="0")  # pytest-benchmark's `git describe --dirty` must not touch the index
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)  # torch's intra-op threads (recorded in machine_info)
    command = pytest_command(json_path, rounds=rounds, max_time=max_time, select=select, save=save, storage=storage,
                             markers=markers)
    saved_before = _saved(storage, root) if save else set()
    try:
        proc = processes.run(command, cwd=root, env=env, capture=quiet, hide=WROTE)
    except BaseException:
        _unsave(storage, root, saved_before, save)
        raise
    if proc.returncode not in (0, NO_TESTS):
        _unsave(storage, root, saved_before, save)
    if quiet and proc.returncode not in (0, NO_TESTS):
        sys.stdout.write(_renamed(proc.stdout, shown_as, root)[-5000:])
        sys.stderr.write(_renamed(proc.stderr, shown_as, root)[-5000:])
    return proc.returncode


def _renamed(text: str, shown_as: tuple[Path, str] | None, cwd: Path) -> str:
    """`text` with the paths under shown_as's folder written as its name followed by their path in it:
    absolute ones, and those pytest writes relative to its `cwd` (tests/x.py:3: AssertionError, FAILED
    tests/x.py::test), which are the same text as the working tree's; a relative one only if it is a
    file there, so a word of a message that merely looks like a path is left as it is."""
    if shown_as is None:
        return text
    folder, name = shown_as
    for prefix in dict.fromkeys((str(folder), str(Path(folder).resolve()))):
        text = text.replace(prefix.rstrip("/") + "/", name)

    def named(match: re.Match[str]) -> str:
        inside = Path(os.path.relpath(Path(cwd, match[0]), folder))  # as written, symbolic links not followed
        return f"{name}{inside.as_posix()}" if (folder / inside).is_file() and ".." not in inside.parts else match[0]

    return _RELATIVE_PY.sub(named, text)


# a relative path of a Python file as pytest prints it; not the tail of a longer path or of REV:path
_RELATIVE_PY = re.compile(r"(?<![\w./:~-])(?:[\w.-]+/)*[\w.-]+\.py\b")



def _saved(storage: Path | None, root: Path) -> set[Path]:
    return set(Path(storage or root / ".benchmarks").glob("*/*.json"))


def _unsave(storage: Path | None, root: Path, before: set[Path], save: str | None) -> None:
    """pytest-benchmark saves what finished even when a benchmark failed or pytest was stopped: a
    partial baseline would later compare its missing benchmarks as new, unchecked. Remove it."""
    if save is None:
        return
    for path in _saved(storage, root) - before:
        path.unlink(missing_ok=True)
        print(f"not saved: the run of baseline {save!r} did not finish (its partial file in "
              f"{shell_path(path.parent.parent)} "
              "was removed)", file=sys.stderr)


def measure(root: Path, label: str, *, required: bool = True, tree: str | None = None, **options) -> Run:
    """Run `root`'s benchmarks (options as for run_benchmarks) and load the results. A failing
    benchmark is an error, so a broken benchmark never passes as a regression-free run; so is
    a run without benchmarks (nothing matched -k, or all skipped) unless not `required`. `tree`
    names `root` in those errors in place of its path (a temporary tree is gone when they are read)."""
    with processes.sigterm_raises(), tempfile.TemporaryDirectory(prefix="suite-bench-") as tmp:
        json_path = Path(tmp) / "run.json"
        status = run_benchmarks(root, json_path, **options)
        if status == USAGE_ERROR and options.get("select"):
            check_select(options["select"])  # the -k, or (if it parses) benchmarks that do not import
        if status not in (0, NO_TESTS):
            cause = " (a conftest that does not import? pytest's message is above)" if status == USAGE_ERROR else ""
            raise BenchmarkFailed(f"pytest exited with status {status} running the benchmarks "
                                  + (f"of {tree}" if tree else f"in {root / BENCH_DIR}") + cause)
        if json_path.exists():  # pytest-benchmark writes none when no benchmark ran
            return load_run(json_path, label)
    if required:
        select, markers = options.get("select"), options.get("markers")
        left_out = f", or only benchmarks that -m {markers!r} leaves out" if markers else ""
        raise SuiteError(f"no benchmark ran in {root / BENCH_DIR}" + (f" (-k {select!r} matches none{left_out}?)"
                         if select else " (all skipped?)"), key="-k" if select else None)
    return Run(label)


def check_select(select: str) -> None:
    """Refuse a -k expression pytest cannot parse, asking pytest itself on an empty directory. Asked
    only once the benchmarks' run exited 4, which pytest does both for such a -k (after collecting,
    before any benchmark runs) and for a conftest that fails to import (a broken revision, not the
    user's -k): a run that starts costs no second pytest. (pytest's parser is private API, whose
    exceptions have changed between versions.)"""
    with tempfile.TemporaryDirectory(prefix="suite-bench-k-") as empty:
        proc = processes.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                              "--noconftest", "-k", select, empty], cwd=empty, capture=True)
    if proc.returncode == USAGE_ERROR:
        reason = next((line for line in proc.stderr.splitlines() if line.startswith("ERROR:")), proc.stderr.strip())
        raise SuiteError(f"pytest cannot use -k {select!r}: {reason.removeprefix('ERROR: ')}", key="-k")


class BenchmarkFailed(RuntimeError):
    """A benchmark raised or failed its assertions: a bug to fix, not a timing."""


# -------------------------------------------------------------------------------------- baselines
@dataclass(frozen=True)
class Baseline:
    name: str
    path: Path
    saved: str  # ISO datetime, UTC ("" when unreadable)
    commit: str
    machine: str
    count: int  # benchmarks
    error: str | None = None  # why the file does not load: it is no usable baseline


def list_baselines(storage: Path) -> list[Baseline]:
    """Every saved run under `storage`, whatever machine id directory it is in, oldest first; the
    unreadable ones (with `error`, undated) come first."""
    found = []
    for path in sorted(Path(storage).glob("*/*.json")):
        match = _SAVED.fullmatch(path.name)
        if not match:
            continue
        try:
            run = load_run(path, match["name"])
        except SuiteError as err:
            reason = f"{err.key}: {err.message}" if err.key else err.message
            found.append(Baseline(match["name"], path, "", "?", "?", 0, reason))
            continue
        found.append(Baseline(match["name"], path, run.saved, run.commit, run.machine, len(run.measurements)))
    return sorted(found, key=lambda b: b.saved)


def find_baseline(storage: Path, name: str) -> Path:
    """The newest baseline saved as `name`, or `name` itself if it is a JSON file. An unreadable
    file of that name is an error: it may be the newest, and an older one must not silently stand in."""
    if name.endswith(".json") and Path(name).is_file():
        return Path(name)
    baselines = list_baselines(storage)
    matching = [b for b in baselines if b.name == name]
    broken = [b for b in matching if b.error]
    if broken:
        raise SuiteError(f"baseline {name!r} does not load ({broken[0].error}); it may be the newest {name!r}, so no "
                         "other is used instead: repair or delete the file", file=str(broken[0].path), key="--compare")
    if not matching and name.endswith(".json"):  # meant as a file, most likely
        raise SuiteError(f"no such file, nor a baseline saved as {name!r} in {storage}", file=name, key="--compare")
    if not matching and not any(not b.error for b in baselines):
        where = "is no directory" if not Path(storage).is_dir() else "holds no readable baseline"
        raise SuiteError(f"no baseline {name!r}: the storage {where}; save one with `suite bench --save {name}`",
                         file=str(storage), key="--compare")
    if not matching:
        raise unknown("baseline", name, {b.name for b in baselines if not b.error}, file=str(storage), key="--compare")
    return matching[-1].path
