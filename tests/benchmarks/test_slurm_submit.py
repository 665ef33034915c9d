"""Submitting a 1,000-run grid to the local SLURM cluster: time, and sbatch calls (one per array chunk).

The grid is dry: its jobs are submitted held (`sbatch: {hold: true}`) and cancelled afterwards, so
nothing runs; everything `suite run --executor slurm` does before returning is measured (code
snapshot, planning the run directories, one pickle per run, sbatch, the pending statuses). The
runs are built with `dataclasses.replace` on one resolved config, as in test_report_speed.py:
expanding a spec is measured elsewhere. sbatch calls are counted by a wrapper first on PATH.
The time is recorded (extra_info, and printed), never asserted: the machine is shared.
Each case leaves 1,000 cancelled job records in slurmctld for MinJobAge (300 s); with SLURM's
default MaxJobCount of 10,000, running this file five times within five minutes is refused before it is
submitted (`slurm.room_mistake` counts the jobs slurmctld holds).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import subprocess
import time

import pytest

from suite import store
from suite.ablations import RunSpec
from suite.config import resolve
from suite.dispatch import slurm
from suite.dispatch.cluster import ClusterOptions

pytestmark = pytest.mark.slurm
RUNS = 1000


@pytest.fixture
def sbatch_calls(tmp_path, monkeypatch, slurm_cluster):
    """A counter of sbatch invocations: a wrapper script that logs and execs the real sbatch."""
    real = shutil.which("sbatch")
    calls = tmp_path / "sbatch-calls.txt"
    wrapper = tmp_path / "bin" / "sbatch"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")
    return lambda: len(calls.read_text().splitlines()) if calls.exists() else 0


@pytest.fixture(scope="module")
def grid() -> list[RunSpec]:
    base = resolve({"model.name": "ran56_cifar", "model.base_width": 4, "data.name": "synthetic", "iterations": 2})
    return [RunSpec(spec="dry", point={"lr": lr}, seed=seed, config=dataclasses.replace(base, lr=lr, seed=seed))
            for lr in [round(0.001 * (i + 1), 4) for i in range(RUNS // 4)] for seed in range(4)]


@pytest.mark.parametrize("chunk", [None, 250], ids=["cluster-max", "chunks-of-250"])
def test_submit_1000_run_grid(benchmark, tmp_path, grid, sbatch_calls, slurm_cluster, chunk):
    assert len({r.run_id for r in grid}) == RUNS
    options = ClusterOptions(sbatch={"hold": True}, max_array_size=chunk)
    outs = iter(tmp_path / f"store{i}" for i in range(10))
    submissions = []

    def submit(out):
        start = time.perf_counter()
        # reading the cluster (check_options) is part of a submission, as in `suite run`
        submissions.append((slurm.submit(grid, out, options, name="dry", cluster=slurm.read_cluster()),
                            time.perf_counter() - start))

    try:
        benchmark.pedantic(submit, setup=lambda: ((next(outs),), {}), rounds=1)
    finally:
        for submission, _ in submissions:
            subprocess.run(["scancel", *submission.arrays], capture_output=True)
    [(submission, seconds)] = submissions
    size = chunk or slurm_cluster.max_array_size
    expected = math.ceil(RUNS / size)
    assert sbatch_calls() == expected == len(submission.arrays)
    assert len(submission.job_ids) == RUNS and len(set(submission.job_ids.values())) == RUNS
    pending = [store.state_of(store.run_dir(tmp_path / "store0", rid)).state for rid in submission.job_ids]
    assert pending == ["pending"] * RUNS
    benchmark.extra_info.update(runs=RUNS, sbatch_calls=expected, submit_s=round(seconds, 3), array_size=size)
    print(f"\nsubmitted {RUNS} runs in {seconds:.2f} s with {expected} sbatch call(s) (arrays of <= {size})")
