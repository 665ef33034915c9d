"""Run a checkout's tests/benchmarks with pytest-benchmark, and find the baselines it saved.

Benchmarks run in a child `python -m pytest` with the checkout first on PYTHONPATH, so the code
measured is that checkout's `suite` (what --compare-rev relies on), with benchmarks enabled
(plain `pytest` disables them: pyproject.toml), `rounds` interleaved rounds each, raw samples kept,
and the run's JSON written to a file for the comparison. Baselines are pytest-benchmark's own
storage: `--benchmark-save NAME` writes <storage>/<machine id>/NNNN_NAME.json.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from suite.bench.compare import Run, commit_string, load_run, machine_string
from suite.errors import SuiteError, unknown

BENCH_DIR = "tests/benchmarks"
DEFAULT_ROUNDS = 15
DEFAULT_THREADS = 1  # one thread: on a shared machine a second thread waits for a busy core
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NO_TESTS = 5  # pytest's exit status when nothing was collected (e.g. -k matches nothing)
_SAVED = re.compile(r"\d{4}_(?P<name>.+)\.json")


def project_root() -> Path:
    """The checkout the running `suite` package comes from."""
    import suite

    root = Path(suite.__file__).resolve().parents[1]
    if not (root / BENCH_DIR).is_dir():
        raise SuiteError(f"no {BENCH_DIR} next to the suite package in {root}: run from a source checkout")
    return root


def default_storage() -> Path:
    return project_root() / ".benchmarks"


def pytest_command(json_path: Path, *, rounds: int, select: str | None = None, save: str | None = None,
                   storage: Path | None = None) -> list[str]:
    command = [sys.executable, "-m", "pytest", BENCH_DIR, "-q", "-p", "no:cacheprovider",
               "--benchmark-enable", "--benchmark-only", f"--benchmark-min-rounds={rounds}",
               "--benchmark-sort=name", "--benchmark-columns=median,iqr,rounds",
               f"--benchmark-json={json_path}"]
    if select:
        command += ["-k", select]
    if save:
        command += [f"--benchmark-save={save}", "--benchmark-save-data"]
    if storage is not None:
        command.append(f"--benchmark-storage=file://{Path(storage).resolve()}")
    return command


def run_benchmarks(root: Path, json_path: Path, *, rounds: int = DEFAULT_ROUNDS, threads: int | None = DEFAULT_THREADS,
                   select: str | None = None, save: str | None = None, storage: Path | None = None,
                   quiet: bool = False) -> int:
    """Run `root`'s benchmarks; returns pytest's exit status. Output streams to the terminal
    unless `quiet` (then it is shown only if pytest fails)."""
    if rounds < 1:
        raise SuiteError(f"must be at least 1, got {rounds}", key="--rounds")
    if save is not None and not NAME.fullmatch(save):
        raise SuiteError(f"baseline names are letters, digits, '.', '_' and '-', got {save!r}", key="--save")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])]),
               GIT_OPTIONAL_LOCKS="0")  # pytest-benchmark's `git describe --dirty` must not touch the index
    if threads is not None:
        if threads < 1:
            raise SuiteError(f"must be at least 1, got {threads}", key="--threads")
        env["OMP_NUM_THREADS"] = str(threads)  # torch's intra-op threads (recorded in machine_info)
    command = pytest_command(json_path, rounds=rounds, select=select, save=save, storage=storage)
    proc = subprocess.run(command, cwd=root, env=env, stdin=subprocess.DEVNULL, text=True,
                          capture_output=quiet)
    if quiet and proc.returncode not in (0, NO_TESTS):
        sys.stdout.write(proc.stdout[-5000:])
        sys.stderr.write(proc.stderr[-5000:])
    return proc.returncode



def measure(root: Path, label: str, *, required: bool = True, **options) -> Run:
    """Run `root`'s benchmarks (options as for run_benchmarks) and load the results. A failing
    benchmark is an error, so a broken benchmark never passes as a regression-free run; so is
    a run without benchmarks (nothing matched -k, or all skipped) unless not `required`."""
    with tempfile.TemporaryDirectory(prefix="suite-bench-") as tmp:
        json_path = Path(tmp) / "run.json"
        status = run_benchmarks(root, json_path, **options)
        if status not in (0, NO_TESTS):
            raise BenchmarkFailed(f"pytest exited with status {status} running the benchmarks in {root / BENCH_DIR}")
        if json_path.exists():  # pytest-benchmark writes none when no benchmark ran
            return load_run(json_path, label)
    if required:
        select = options.get("select")
        raise SuiteError(f"no benchmark ran in {root / BENCH_DIR}" + (f" (-k {select!r} matches none?)" if select else
                         " (all skipped?)"), key="-k" if select else None)
    return Run(label, "?")


class BenchmarkFailed(RuntimeError):
    """A benchmark raised or failed its assertions: a bug to fix, not a timing."""


# -------------------------------------------------------------------------------------- baselines
@dataclass(frozen=True)
class Baseline:
    name: str
    path: Path
    saved: str  # ISO datetime, UTC
    commit: str
    machine: str
    count: int  # benchmarks


def list_baselines(storage: Path) -> list[Baseline]:
    """Every saved run under `storage`, whatever machine id directory it is in, oldest first."""
    found = []
    for path in sorted(Path(storage).glob("*/*.json")):
        match = _SAVED.fullmatch(path.name)
        if not match:
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # an unreadable file is no baseline
        found.append(Baseline(match["name"], path, str(data.get("datetime", "")),
                              commit_string(data.get("commit_info") or {}),
                              machine_string(data.get("machine_info") or {}), len(data.get("benchmarks", []))))
    return sorted(found, key=lambda b: b.saved)


def find_baseline(storage: Path, name: str) -> Path:
    """The newest baseline saved as `name`, or `name` itself if it is a JSON file."""
    if name.endswith(".json") and Path(name).is_file():
        return Path(name)
    baselines = list_baselines(storage)
    matching = [b for b in baselines if b.name == name]
    if not matching:
        raise unknown("baseline", name, {b.name for b in baselines}, file=str(storage), key="--compare")
    return matching[-1].path
