"""`suite bench --compare-rev REV`: a git revision and the working tree measured in one run.

Two separate runs differ by whatever the machine did in between (26 % between CI machines against
0.3 % within one job, in the prior art); alternating the two trees within one run makes drift hit
both alike. The run is `blocks` blocks; each block runs both trees' benchmarks one after the other,
REV first in even blocks and the working tree first in odd ones, `rounds` interleaved rounds per
benchmark per tree; a tree's samples from all blocks are pooled before comparing.

REV's tree comes from `git archive` into a temporary directory (deleted afterwards): unlike a
worktree or a checkout it writes nothing into the repository, so it is safe next to other work in
the same clone. Each tree's benchmarks import that tree's `suite` (suite.bench.run).

The `slurm`-marked benchmarks are left out (pytest -m "not slurm"): each run of
tests/benchmarks/test_slurm_submit.py leaves 2,000 job records in slurmctld for MinJobAge, so
2 x blocks runs would pass SLURM's default MaxJobCount of 10,000 (and their single round can never
be judged anyway). Plain `suite bench` still runs them.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from suite import processes
from suite.bench.compare import Run, check_pooled_rounds, pool
from suite.bench.run import BENCH_DIR, BenchmarkFailed, measure
from suite.errors import SuiteError

DEFAULT_BLOCKS = 4
DEFAULT_ROUNDS = 5  # per block and tree: 20 samples per benchmark and tree with the default blocks
MARKERS = "not slurm"  # see the module docstring


def compare_rev(root: Path, rev: str, *, blocks: int = DEFAULT_BLOCKS, rounds: int = DEFAULT_ROUNDS,
                max_time: float, log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
                **options) -> tuple[Run, Run]:
    """(REV's run, the working tree's run), pooled over the blocks; at least `rounds` rounds per
    block and tree, or as many more as fit in `max_time` / `blocks` seconds (a tree's blocks
    together take about what one plain run takes); `options` as for
    suite.bench.run.run_benchmarks (threads, select)."""
    toplevel = _git(root, "rev-parse", "--show-toplevel").strip()
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", what=f"unknown revision {rev!r}")
    commit = commit.strip()
    check_pooled_rounds(blocks, rounds)
    options.setdefault("markers", MARKERS)
    with processes.sigterm_raises(), tempfile.TemporaryDirectory(prefix="suite-bench-rev-") as tmp:
        export_tree(Path(toplevel), commit, Path(tmp))
        trees = {"base": Path(tmp) / Path(root).resolve().relative_to(Path(toplevel).resolve()), "current": Path(root)}
        if not (trees["base"] / BENCH_DIR).is_dir():
            raise SuiteError(f"{rev} ({commit[:10]}) has no {BENCH_DIR} to measure", key="--compare-rev")
        runs: dict[str, list[Run]] = {"base": [], "current": []}
        for block in range(blocks):
            for which in ("base", "current") if block % 2 == 0 else ("current", "base"):
                name = f"{rev} ({commit[:10]})" if which == "base" else "working tree"
                start = time.perf_counter()
                try:  # a benchmark the revision does not have yet is `new`, not an error
                    base = which == "base"  # its files shown as `git show` names them: REV:PATH
                    runs[which].append(measure(trees[which], which, rounds=rounds, max_time=max_time / blocks,
                                               quiet=True, required=not base, tree="that revision" if base else None,
                                               shown_as=(Path(tmp), f"{rev}:") if base else None, **options))
                except BenchmarkFailed as exc:
                    raise BenchmarkFailed(f"{name}: {exc}") from None
                if base and not runs["base"][-1].measurements:  # REV first in block 1: nothing else ran yet
                    raise _nothing_to_compare(name, options.get("select"))
                log(f"block {block + 1}/{blocks}: {name}: {time.perf_counter() - start:.0f} s")
    # the exported tree is no git checkout, so its runs cannot know their commit
    return dataclasses.replace(pool(runs["base"], rev), commit=commit[:10]), pool(runs["current"], "working tree")


def _nothing_to_compare(name: str, select: str | None) -> SuiteError:
    """REV ran no benchmark (those -k selects came later): every row would be `new`, judged by
    nothing, so the working tree is not measured at all."""
    which = f"that -k {select!r} selects" if select else "that runs"
    return SuiteError(f"{name} has no benchmark {which} in {BENCH_DIR}, so nothing can be compared with it: "
                      "name a later revision" + (", or other benchmarks" if select else ""), key="--compare-rev")


def export_tree(repo: Path, commit: str, dest: Path) -> None:
    """The files of `commit` under `dest`, as `git archive` gives them."""
    proc = subprocess.run(["git", "archive", "--format=tar", commit], cwd=repo, capture_output=True)
    if proc.returncode != 0:
        raise SuiteError(f"git archive {commit} failed: {proc.stderr.decode().strip()}", key="--compare-rev")
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        tar.extractall(dest, filter="data")


def _git(cwd: Path, *args: str, what: str | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        message = what or f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip() or 'not a git checkout?'}"
        raise SuiteError(message, key="--compare-rev")
    return proc.stdout
