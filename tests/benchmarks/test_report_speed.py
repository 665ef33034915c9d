"""How long reports take on a large store: 10,000 runs (a 50 x 50 grid x 4 seeds).

Timings are recorded by pytest-benchmark, never asserted (the machine is shared). Untimed (plain
`pytest`, which only checks that the benchmarks work) the store is a 10 x 10 grid x 4 seeds. The runs are
built with `dataclasses.replace` on one resolved config instead of `ablations.expand`, whose
per-run validation is measured elsewhere; the store is written with the real `store.plan` /
`store.write_result` (fsync switched off: durability is not what is measured here).
"""

import dataclasses
import os
from pathlib import Path

import pytest

from suite import store
from suite.ablations import RunSpec, Spec, load
from suite.config import resolve
from suite.report import files, formats, tables

pytestmark = pytest.mark.slow  # building the 10,000-run store takes ~20 s

N_SEEDS = 4


@dataclasses.dataclass(frozen=True)
class Store:
    spec: Spec
    runs: list[RunSpec]
    ids: list[str]
    out: Path
    side: int  # lr values = weight-decay values

    @property
    def points(self) -> int:
        return self.side * self.side


@pytest.fixture(scope="module")
def big(tmp_path_factory, request) -> Store:
    """A store of side x side x 4 seeds: of each 20 runs, 18 done, 1 failed, 1 never started."""
    timed = request.config.getoption("benchmark_enable") or not request.config.getoption("benchmark_disable")
    side = 50 if timed else 10  # pytest-benchmark's own rule for whether it times
    lrs = [round(0.01 * (i + 1), 4) for i in range(side)]
    wds = [round(1e-5 * (i + 1), 7) for i in range(side)]
    root = tmp_path_factory.mktemp("big")
    (root / "big.yaml").write_text(f"""\
name: big
base: {{model: {{name: ran56_cifar, base_width: 8}}, data: {{name: digits}}, recipe: smoke}}
grid: {{lr: {lrs}, weight_decay: {wds}}}
seeds: {N_SEEDS}
reference: [{{lr: {lrs[0]}, weight_decay: {wds[0]}, top1_err: 5.0}}]
report: {{rows: [lr, weight_decay], metrics: [top1_err, top5_err]}}
""")
    spec = load(root / "big.yaml")
    base = resolve({"model.name": "ran56_cifar", "model.base_width": 8, "data.name": "digits", "recipe": "smoke"})
    runs = [RunSpec(spec="big", point={"lr": lr, "weight_decay": wd}, seed=seed,
                    config=dataclasses.replace(base, lr=lr, weight_decay=wd, seed=seed),
                    reference={"top1_err": 5.0} if (lr, wd) == (lrs[0], wds[0]) else {}, reference_data="digits")
            for lr in lrs for wd in wds for seed in range(N_SEEDS)]
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
    return Store(spec, runs, ids, out, side)


def test_collect_10k_runs(benchmark, big):
    frame = benchmark.pedantic(store.collect, args=(big.out, big.ids), rounds=3, iterations=1)
    assert len(frame) == len(big.runs) == big.points * N_SEEDS
    counts = store.count_states(frame["status"])
    assert counts["done"] == len(big.runs) * 18 // 20 and counts["failed"] == len(big.runs) // 20


def test_report_tables_and_files_10k_runs(benchmark, big, tmp_path):
    """Tables, every format and the figures from an already collected frame."""
    frame = store.collect(big.out, big.ids)

    def make():
        report = tables.build(big.spec, big.runs, frame, out=big.out)
        return report, files.write(report, formats.FORMATS, tmp_path)

    report, paths = benchmark.pedantic(make, rounds=3, iterations=1)
    assert len(report.table.body) == big.points and report.counts["missing"] == len(big.runs) // 20
    assert {p.name for p in paths} >= {"big.md", "big.csv", "big.tex", "big.html", "big_tradeoff.png"}


def test_report_end_to_end_10k_runs(benchmark, big, tmp_path):
    """collect + tables + Markdown/CSV + figures: what `suite report` does after expanding."""
    def make():
        report = tables.build(big.spec, big.runs, store.collect(big.out, big.ids), out=big.out)
        return files.write(report, files.DEFAULT_FORMATS, tmp_path)

    paths = benchmark.pedantic(make, rounds=3, iterations=1)
    assert (tmp_path / "big.md").read_text().count("\n|") == big.points + 2  # header, rule, rows
    assert len(paths) == 4
