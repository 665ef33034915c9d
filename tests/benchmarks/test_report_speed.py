"""How long reports take on a large store: 10,000 runs (a 50 x 50 grid x 4 seeds).

Timings are recorded by pytest-benchmark, never asserted (the machine is shared). The runs are
built with `dataclasses.replace` on one resolved config instead of `ablations.expand`, whose
per-run validation is measured elsewhere; the store is written with the real `store.plan` /
`store.write_result` (fsync switched off: durability is not what is measured here).
"""

import dataclasses
import os

import pytest

from suite import store
from suite.ablations import RunSpec, load
from suite.config import resolve
from suite.report import files, formats, tables

pytestmark = pytest.mark.slow  # building the store takes ~20 s

N_LR, N_WD, N_SEEDS = 50, 50, 4
LRS = [round(0.01 * (i + 1), 4) for i in range(N_LR)]
WDS = [round(1e-5 * (i + 1), 7) for i in range(N_WD)]
SPEC = f"""\
name: big
base: {{model: {{name: ran56_cifar, base_width: 8}}, data: {{name: digits}}, recipe: smoke}}
grid: {{lr: {LRS}, weight_decay: {WDS}}}
seeds: {N_SEEDS}
reference: [{{lr: {LRS[0]}, weight_decay: {WDS[0]}, top1_err: 5.0}}]
report: {{rows: [lr, weight_decay], metrics: [top1_err, top5_err]}}
"""


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """(spec, runs, run ids, store): 9,000 done, 500 failed, 500 never started."""
    root = tmp_path_factory.mktemp("big")
    (root / "big.yaml").write_text(SPEC)
    spec = load(root / "big.yaml")
    base = resolve({"model.name": "ran56_cifar", "model.base_width": 8, "data.name": "digits", "recipe": "smoke"})
    runs = [RunSpec(spec="big", point={"lr": lr, "weight_decay": wd}, seed=seed,
                    config=dataclasses.replace(base, lr=lr, weight_decay=wd, seed=seed),
                    reference={"top1_err": 5.0} if (lr, wd) == (LRS[0], WDS[0]) else {}, reference_data="digits")
            for lr in LRS for wd in WDS for seed in range(N_SEEDS)]
    ids = [r.run_id for r in runs]
    out = root / "store"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fsync", lambda fd: None)
        for i, (run, rid) in enumerate(zip(runs, ids)):
            if i % 20 == 19:
                continue
            d = store.run_dir(out, rid)
            store.plan(out, run)
            if i % 20 == 18:
                store.set_status(d, "failed", error="RuntimeError: synthetic")
                continue
            store.write_result(d, {
                "run_id": rid, "config": {}, "env": {"torch": "2.14.1"},
                "metrics": {"top1_err": 5.0 + (i % 7), "top5_err": 1.0 + (i % 3), "train_loss": 0.1, "wall_time_s": 60.0},
                "complexity": {"params": 1_081_818 + i % 5, "gmacs": 0.13 + 0.01 * (i % 11)},
                "throughput": {"infer_samples_per_sec": 900.0 + i % 13, "train_samples_per_sec": 300.0},
            })
    return spec, runs, ids, out


def test_collect_10k_runs(benchmark, big):
    _, runs, ids, out = big
    frame = benchmark.pedantic(store.collect, args=(out, ids), rounds=3, iterations=1)
    assert len(frame) == len(runs) == 10_000
    counts = store.count_states(frame["status"])
    assert counts["done"] == 9_000 and counts["failed"] == 500


def test_report_tables_and_files_10k_runs(benchmark, big, tmp_path):
    """Tables, every format and the figures from an already collected frame."""
    spec, runs, ids, out = big
    frame = store.collect(out, ids)

    def make():
        report = tables.build(spec, runs, frame, out=out)
        return report, files.write(report, formats.FORMATS, tmp_path)

    report, paths = benchmark.pedantic(make, rounds=3, iterations=1)
    assert len(report.table.body) == N_LR * N_WD and report.counts["missing"] == 500
    assert {p.name for p in paths} >= {"big.md", "big.csv", "big.tex", "big.html", "big_tradeoff.png"}


def test_report_end_to_end_10k_runs(benchmark, big, tmp_path):
    """collect + tables + Markdown/CSV + figures: what `suite report` does after expanding."""
    spec, runs, ids, out = big

    def make():
        report = tables.build(spec, runs, store.collect(out, ids), out=out)
        return files.write(report, files.DEFAULT_FORMATS, tmp_path)

    paths = benchmark.pedantic(make, rounds=3, iterations=1)
    assert (tmp_path / "big.md").read_text().count("\n|") == N_LR * N_WD + 2  # header, rule, rows
    assert len(paths) == 4
