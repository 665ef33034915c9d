"""Reports: tables from a synthetic store with known values, every format, plots, splicing, CLI."""

import base64
import html
import io
import json
import math
import os
import re
import shlex
import shutil
import textwrap
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from torch import nn

from suite import ablations, store
from suite.ablations import names
from suite.cli import main
from suite.config import parse_overrides
from suite.errors import SuiteError, SuiteWarning
from suite.metrics import COSTS, RUN_METRICS
from suite.models import register_model
from suite.models.registry import _REGISTRY
from suite.report import complexity, files, formats, labels, plots, tables
from suite.report.splice import splice, splice_file

TOY = """\
name: toy
description: toy grid
paper: {paper: nobody, table: T1}
base:
  model: {name: resnet26}
  data: {name: cifar10}
  epochs: 1
grid:
  lr: [0.1, 0.2, 0.4]
  weight_decay: [0.0001, 0.0005]
seeds: 3
reference:
  - {lr: 0.1, weight_decay: 0.0001, top1_err: 5.0, params_m: 13.7}
  - {lr: 0.2, top1_err: 4.0}
report: {rows: [lr], columns: [weight_decay], metrics: [top1_err]}
"""
# (lr, weight_decay) -> per seed: a top-1 error (done), "failed", "running" or None (never started)
OUTCOMES = {
    (0.1, 0.0001): [4.0, 5.0, 6.0],
    (0.1, 0.0005): [7.0, 9.0, "failed"],
    (0.2, 0.0001): [3.0, "running", None],
    (0.2, 0.0005): [None, None, None],
    (0.4, 0.0001): [10.0, 10.0, 10.0],
    (0.4, 0.0005): ["failed"] * 3,
}
PNG = b"\x89PNG\r\n\x1a\n"


def empty_store(path: Path) -> Path:
    """A store with no runs yet: `tables.load` warns about a folder that is not there."""
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_spec(directory: Path, text: str, name: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def finish(out: Path, run: ablations.RunSpec, top1: float, *, complexity_section: bool = True,
           curve: bool = False) -> Path:
    d = store.plan(out, run)
    result = {"run_id": run.run_id, "config": run.config.flat(), "metrics": {"top1_err": top1, "top5_err": 1.0},
              "throughput": {"infer_samples_per_sec": 100.0 + 10 * run.point.get("lr", 0)}, "env": {}}
    if complexity_section:
        result["complexity"] = {"params": 13_700_000, "gmacs": 2.5}
    store.write_result(d, result)
    if curve:
        lines = [json.dumps({"epoch": e, "train_loss": 2.0 / e, "test_top1_err": top1 + 5 / e}) for e in (1, 2, 3)]
        (d / "metrics.jsonl").write_text("\n".join(lines) + "\n{truncated")
    return d


def fill(out: Path, runs: list[ablations.RunSpec], outcomes=OUTCOMES, **kwargs) -> None:
    for run in runs:
        value = outcomes[(run.point["lr"], run.point["weight_decay"])][run.seed]
        if value == "failed":
            store.set_status(store.plan(out, run), "failed", error="ValueError: boom")
        elif value == "running":
            store.set_status(store.plan(out, run), "running", host="another-host", pid=1)
        elif value is not None:
            finish(out, run, value, **kwargs)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """(spec, runs, store dir) with OUTCOMES written; curves for every done run."""
    root = tmp_path_factory.mktemp("toy")
    spec = ablations.load(write_spec(root, TOY, "toy"))
    runs = ablations.expand(spec)
    fill(root / "store", runs, curve=True)
    return spec, runs, root / "store"


@pytest.fixture(scope="module")
def report(toy):
    spec, runs, out = toy
    return tables.build(spec, runs, store.collect(out, [r.run_id for r in runs]), out=out)


def body_row(report, label: str) -> dict[str, str]:
    row = next(r for r in report.table.body if r[0] == label)
    return dict(zip(report.table.header, row))


# ------------------------------------------------------------------------------------- tables
def test_tidy_frame_has_every_run_with_raw_values(report):
    runs = report.runs
    assert len(runs) == 18 and list(runs["seed"][:3]) == [0, 1, 2]
    assert runs["status"].value_counts().to_dict() == {"done": 9, "failed": 4, "missing": 4, "running": 1}
    first = runs[(runs["lr"] == 0.1) & (runs["weight_decay"] == 0.0001)]
    assert list(first["top1_err"]) == [4.0, 5.0, 6.0]
    assert list(first["paper_top1_err"]) == [5.0] * 3 and list(first["paper_params_m"]) == [13.7] * 3
    assert runs.loc[runs["status"] != "done", "top1_err"].isna().all()
    assert set(runs.loc[runs["status"] == "failed", "note"]) == {"ValueError: boom"}


def test_cells_mean_std_count_reference_and_diff(report):
    c = report.cells
    assert list(c.index.names) == ["lr", "weight_decay"]
    full = c.loc[("0.1", "0.0001")]
    assert (full["top1_err_mean"], full["top1_err_std"], full["top1_err_n"]) == (5.0, 1.0, 3)
    assert full["paper_top1_err"] == 5.0 and full["top1_err_diff"] == 0.0 and full["params_m"] == pytest.approx(13.7)
    partial = c.loc[("0.1", "0.0005")]
    assert partial["top1_err_mean"] == 8.0 and math.isclose(partial["top1_err_std"], math.sqrt(2))
    assert (partial["done"], partial["failed"], partial["runs"]) == (2, 1, 3)
    one = c.loc[("0.2", "0.0001")]
    assert one["top1_err_n"] == 1 and math.isnan(one["top1_err_std"]) and one["top1_err_diff"] == -1.0
    assert (one["running"], one["missing"]) == (1, 1)
    empty = c.loc[("0.2", "0.0005")]
    assert empty["top1_err_n"] == 0 and empty["missing"] == 3 and empty["paper_top1_err"] == 4.0


def test_costs_are_the_mean_over_a_points_runs():
    """Throughput differs from seed to seed (another node, another load): a point shows its mean."""
    runs = pd.DataFrame({"lr": [0.1, 0.1, 0.2], "status": ["done"] * 3, "top1_err": [5.0, 7.0, 6.0],
                         "infer_samples_per_sec": [100.0, 200.0, 50.0]})
    c = tables.summarise(runs, ["lr"], ["top1_err"])
    assert list(c["infer_samples_per_sec"]) == [150.0, 50.0] and list(c["top1_err_mean"]) == [6.0, 6.0]


def test_counts_show_whole_means_without_decimals():
    assert tables.cell(3.0, 0.0, 2, whole=True) == "3 ± 0 (2)"  # best_epoch 3 for both seeds, not "3.00 ± 0.00"
    assert tables.cell(3.0, 2 ** 0.5, 2, whole=True) == "3 ± 1.41 (2)"
    assert tables.cell(2.5, 0.5 ** 0.5, 2, whole=True) == "2.50 ± 0.71 (2)"
    assert tables.cell(1.0, math.nan, 1, whole=True) == "1 (1)"
    assert tables.cell(3.0, 0.0, 2) == "3.00 ± 0.00 (2)" and tables.cell(1500.0, 1.5, 2) == "1500 ± 2 (2)"


def test_numbers_keep_three_significant_digits_and_a_difference_its_measurements_decimals():
    assert [tables.num(x) for x in (0.0336, 0.5, 99.99, 100.0, 1000.0)] == \
        ["0.0336", "0.500", "99.99", "100.0", "1000"]
    assert tables.diff(0.5, 150.0) == "+0.5" and tables.diff(-0.004, 0.0336) == "-0.0040"
    assert tables.cell(1.5, math.nan, 2) == "1.50 (2)"  # no spread to show (an infinite value among the runs)


def test_best_top1_err_is_compared_with_the_papers_top1(toy):
    """The paper's top-1 may be a best-epoch figure: `--metric best_top1_err` sits beside it too."""
    spec, runs, out = toy
    frame = store.collect(out, [r.run_id for r in runs])
    frame["best_top1_err"] = frame["top1_err"] - 1.0
    rep = tables.build(spec, runs, frame, out=out, metrics=["best_top1_err"])
    row = body_row(rep, "0.1")
    assert row["weight_decay=0.0001: best top-1 err"] == "4.00 ± 1.00 (3)"
    assert row["weight_decay=0.0001: top-1 err, paper"] == "5.0"  # the paper's plain top-1, so labelled
    assert row["weight_decay=0.0001: Δ best top-1 err"] == "-1.00"
    assert "paper_best_top1_err" not in tables.build(spec, runs, frame, out=out).runs  # only when asked for
    assert "Δ = measured − paper" in formats.fragment(rep)
    frame["wall_time_s"] = 60.0
    wall = tables.build(spec, runs, frame, out=out, metrics=["wall_time_s"])
    assert "Errors in %" not in formats.fragment(wall) and "Δ =" not in formats.fragment(wall)
    frame["top1_err_rot180"] = 50.0
    assert "Errors in %" in formats.fragment(tables.build(spec, runs, frame, out=out, metrics=["top1_err_rot180"]))
    frame["attack_success_16"] = 12.5
    attacked = formats.fragment(tables.build(spec, runs, frame, out=out, metrics=["attack_success_16"]))
    assert "Attack success rates in %." in attacked and "Errors" not in attacked
    assert ": attack success 16 steps |" in attacked
    mixed = tables.build(spec, runs, frame, out=out, metrics=["top1_err", "attack_success_16"])
    assert "Errors and attack success rates in %." in formats.fragment(mixed)
    both = tables.build(spec, runs, frame, out=out, metrics=["top1_err", "best_top1_err"])
    header = [f"{g}: {f}" if g else f for g, f in both.table.columns]
    assert len(header) == len(set(header))  # the paper's top-1 once per block, a Δ for each
    assert "weight_decay=0.0001: Δ best top-1 err" in header and "weight_decay=0.0001: Δ top-1 err" in header


def test_pivot_cells_show_missing_and_failed_runs(report):
    t = report.table
    assert t.index == ["lr"] and t.grouped
    assert [r[0] for r in t.body] == ["0.1", "0.2", "0.4"]
    row = body_row(report, "0.1")
    assert row["weight_decay=0.0001: top-1 err"] == "5.00 ± 1.00 (3)"
    assert row["weight_decay=0.0001: top-1 err, paper"] == "5.0"  # as papers print it, not to our decimals
    assert row["weight_decay=0.0001: Δ top-1 err"] == "+0.00"
    assert row["weight_decay=0.0005: top-1 err"] == "8.00 ± 1.41 (2)"
    assert row["weight_decay=0.0005: runs"] == "2/3 done, 1 failed"
    assert row["params (M)"] == "13.70" and row["params (M), paper"] == "13.7" and row["GMACs"] == "2.50"
    row = body_row(report, "0.2")
    assert row["weight_decay=0.0001: top-1 err"] == "3.00 (1)" and row["weight_decay=0.0001: Δ top-1 err"] == "-1.00"
    assert row["weight_decay=0.0001: runs"] == "1/3 done, 1 running, 1 missing"
    assert row["weight_decay=0.0005: top-1 err"] == tables.MISSING
    assert row["weight_decay=0.0005: top-1 err, paper"] == "4.0"  # the paper value is shown, the diff is not
    assert row["weight_decay=0.0005: Δ top-1 err"] == tables.MISSING
    row = body_row(report, "0.4")
    assert row["weight_decay=0.0001: top-1 err"] == "10.00 ± 0.00 (3)"
    assert row["weight_decay=0.0001: top-1 err, paper"] == ""  # no reference for this point
    assert row["weight_decay=0.0005: runs"] == "0/3 done, 3 failed"
    assert report.notes[0] == "18 runs: 9 done, 4 failed, 1 running, 4 missing."


@pytest.mark.parametrize("costs,refs,shown", [
    ([13.7, 13.7], [13.7, math.nan], "13.7"),  # one model cost for the row: a block's paper value is the row's
    ([0.27, 2.7], [math.nan, 0.07], ""),  # blocks cost differently: a value for one of them is not the row's
    ([1.0, 2.0], [1.0, 2.0], "1.0–2.0"),
    ([2.0, 1.0], [2.0, 1.0], "1.0–2.0"),  # lowest to highest, whatever the blocks' order
    ([1.0, 1.0], [math.nan, math.nan], ""),
])
def test_a_rows_paper_cost_is_shown_only_where_it_is_the_rows(costs, refs, shown):
    assert tables._row_reference(costs, refs) == shown


def test_default_layout_and_unnamed_axes(tmp_path):
    base = "base: {model: {name: resnet26}, data: {name: synthetic}, epochs: 1}\n"
    one = ablations.load(write_spec(tmp_path, f"name: one\n{base}grid: {{lr: [0.1, 0.2]}}\n", "one"))
    two = ablations.load(write_spec(tmp_path, f"name: two\n{base}grid: {{lr: [0.1], momentum: [0.9]}}\n", "two"))
    three = ablations.load(write_spec(
        tmp_path, f"name: three\n{base}grid: {{lr: [0.1], momentum: [0.9], weight_decay: [0.0]}}\n", "three"))
    partial = ablations.load(write_spec(
        tmp_path, f"name: partial\n{base}grid: {{lr: [0.1], momentum: [0.9]}}\nreport: {{rows: [momentum]}}\n",
        "partial"))
    assert tables.layout(one) == (["lr"], [])
    assert tables.layout(two) == (["lr"], ["momentum"])
    assert tables.layout(three) == (["lr", "momentum", "weight_decay"], [])
    assert tables.layout(partial) == (["momentum", "lr"], [])  # never averaged over silently


def test_two_axes_of_one_zip_group_are_rows_by_default(tmp_path):
    """Axes that vary together as rows x columns made an n x 2n table blank but for its diagonal: a
    zip group of 1,000 points wrote 2 million cells a format (74 s and 2.2 GB at 3,000 points)."""
    base = "base: {model: {name: resnet26}, data: {name: synthetic}, epochs: 1}\n"
    zipped = ablations.load(write_spec(
        tmp_path, f"name: zipped\n{base}zip: [{{lr: [0.1, 0.2, 0.3], momentum: [0.9, 0.8, 0.7]}}]\n", "zipped"))
    apart = ablations.load(write_spec(
        tmp_path, f"name: apart\n{base}zip: [{{lr: [0.1, 0.2]}}, {{momentum: [0.9, 0.8]}}]\n", "apart"))
    mixed = ablations.load(write_spec(
        tmp_path, f"name: mixed\n{base}grid: {{lr: [0.1, 0.2]}}\nzip: [{{momentum: [0.9, 0.8]}}]\n", "mixed"))
    assert tables.layout(zipped) == (["lr", "momentum"], [])
    assert tables.layout(apart) == (["lr"], ["momentum"]) and tables.layout(mixed) == (["lr"], ["momentum"])
    runs = ablations.expand(zipped)
    frame = pd.DataFrame({"run_id": [r.run_id for r in runs], "status": "missing", "note": ""})
    report = tables.build(zipped, runs, frame, out=tmp_path)
    assert len(report.table.body) == 3 and {group for group, _ in report.table.columns} == {""}  # no block a value


def test_a_spec_without_axes_is_one_row(tmp_path):
    spec = ablations.load(write_spec(tmp_path, """\
        name: single
        base: {model: {name: resnet26}, data: {name: cifar10}, epochs: 1}
        seeds: 2
        reference: [{top1_err: 3.0}]
        """, "single"))
    rep = tables.load(spec, out=tmp_path)
    assert rep.table.body == [["all", "—", "3.0", "—", "0/2 done, 2 missing", "—", "—"]]


def test_one_metric_may_be_given_as_its_name(toy):
    """`tables.load(spec, metrics="top5_err")`, as `--metric top5_err` names one: the string was
    taken letter by letter ("unknown metric 't'")."""
    spec, runs, out = toy
    frame = store.collect(out, [r.run_id for r in runs])
    assert tables.build(spec, runs, frame, out=out, metrics="top5_err").metrics == ["top5_err"]
    assert tables.build(spec, runs, frame, out=out, metrics=["top5_err", "top1_err"]).metrics == ["top5_err", "top1_err"]


def test_where_runs_execute_is_no_part_of_a_reports_name_title_or_commands(toy, tmp_path, monkeypatch):
    """`tables.load(spec, overrides={"data.root": "data/mine"})` (or `suite report toy
    data.root=data/mine`) named its table `toy+data.root=_home_..._data_mine~digest`, titled it
    and wrote its header's command with the absolute folder: a user's home folder in a committed
    table, and a second name for toy's own runs (no run id has data.root). The keys that say where
    runs execute are left out; measure.* stays, since it decides what the notes say was measured otherwise."""
    spec, runs, out = toy
    monkeypatch.chdir(tmp_path)
    plain = tables.load(spec, out=out)
    report = tables.load(spec, out=out, overrides={"data.root": "data/mine", "device": "cpu", "data": {"workers": 0}})
    assert report.overrides == {} and (report.name, report.title) == (plain.name, plain.title) == ("toy", "toy")
    assert report.command == plain.command and "data.root" not in report.command and "device" not in report.command
    assert list(report.runs["run_id"]) == [r.run_id for r in runs] and report.counts["done"]  # the same runs, found
    assert formats.markdown(report) == formats.markdown(plain) and str(tmp_path) not in formats.markdown(report)
    measured = tables.load(spec, out=out, overrides={"data.root": "data/mine", "measure.batch_size": 4})
    assert measured.overrides == {"measure.batch_size": 4} and measured.name == "toy+measure.batch_size=4"


def test_load_has_the_same_columns_whatever_the_store_holds(toy, tmp_path):
    """`tables.load` of a store where no run had finished had 19 columns, and 40 once one had: a
    notebook's `report.runs["top1_err"]` raised KeyError on an empty store. The columns are every
    metric and cost a run records, whether any is stored or not."""
    spec, runs, full = toy
    empty, partial = tmp_path / "empty", tmp_path / "partial"
    empty.mkdir()
    finish(partial, runs[0], 4.0, complexity_section=False)  # one run done, measured in part
    with pytest.warns(SuiteWarning, match="done runs without params_m"):  # the partial store's run, said so
        columns = [list(tables.load(spec, out=out).runs.columns) for out in (empty, partial, full)]
    assert columns[0] == columns[1] == columns[2]
    assert {*RUN_METRICS, *COSTS, "git_commit"} <= set(columns[0])


def test_overrides_given_as_the_command_line_writes_them_are_named(toy):
    """`tables.load(spec, overrides=["epochs=2"])`, as `suite report SPEC epochs=2` types them, was
    "ValueError: dictionary update sequence element #0 has length 8; 2 is required" from inside the
    expansion; the mapping the function takes is named instead."""
    spec, runs, out = toy
    for given in (["epochs=2"], "epochs=2"):
        with pytest.raises(SuiteError, match=r"^overrides: expected a dict of dotted keys to values "
                                             r"\({'epochs': 2}\), got (list|str); suite.config.parse_overrides"):
            tables.load(spec, out=out, overrides=given)
    assert tables.load(spec, out=out, overrides=parse_overrides(["epochs=2"])).overrides == {"epochs": 2}


def test_a_load_names_what_its_caller_gave_as_python_spells_it(toy):
    """`tables.load(spec, overrides={"lrr": 0.1})` said `<command line>: lrr: unknown key`, and a
    misspelt metric `metric: unknown metric`: a notebook typed neither a command line nor --metric.
    They are named `overrides['lrr']` and `metrics`, every mistake of a pass alike."""
    spec, _, out = toy
    with pytest.raises(SuiteError, match=r"^overrides\['lrr'\]: unknown key; did you mean 'lr'\?") as err:
        tables.load(spec, out=out, overrides={"lrr": 0.1})
    assert "<command line>" not in str(err.value)
    with pytest.raises(SuiteError, match=r"^overrides\['lr'\]: 'lr' is a grid axis of toy"):
        tables.load(spec, out=out, overrides={"lr": 0.1})
    with pytest.raises(SuiteError, match=r"^metrics: unknown metric 'top1err'; did you mean 'top1_err'"):
        tables.load(spec, out=out, metrics="top1err")


def test_unknown_metric_is_a_suite_error(toy, tmp_path):
    spec, runs, out = toy
    with pytest.raises(SuiteError, match="unknown metric 'top1_error'.*top1_err"):
        tables.build(spec, runs, store.collect(out, [r.run_id for r in runs]), out=out, metrics=["top1_error"])
    frame = store.collect(out, [r.run_id for r in runs]).assign(**{"env.threads": 2})
    with pytest.raises(SuiteError, match="unknown metric 'env.threads'"):  # where a run ran, not a measurement
        tables.build(spec, runs, frame, out=out, metrics=["env.threads"])
    bookkept = frame.assign(attempts=1, slurm_job_id=4242)  # how a run was scheduled, not what it measured
    for key in ("attempts", "slurm_job_id"):
        with pytest.raises(SuiteError, match=f"unknown metric '{key}'"):
            tables.build(spec, runs, bookkept, out=out, metrics=[key])
    frame = frame.assign(**{"model.footprint": 7.0})  # another model's option (a SAN row beside a ResNet's)
    with pytest.raises(SuiteError, match="unknown metric 'model.footprint'") as err:
        tables.build(spec, runs, frame, out=out, metrics=["model.footprint"])
    assert "model.footprint" not in err.value.choices
    with pytest.raises(SystemExit):  # `--metric ''` is no silent default
        main(["report", str(spec.path), "--out", str(out), "--metric", ""])
    empty = tmp_path / "empty"  # no runs: columns of nothing but blanks are no metrics (it crashed)
    with pytest.raises(SuiteError, match="unknown metric 'spec'"):
        tables.build(spec, runs, store.collect(empty, [r.run_id for r in runs]), out=empty, metrics=["spec"])


def test_schema_drift_warns_and_leaves_cells_empty(tmp_path, toy):
    spec, runs, _ = toy
    out = tmp_path / "store"
    finish(out, runs[0], 4.0)
    finish(out, runs[1], 5.0, complexity_section=False)  # a record from before complexity was measured
    frame = store.collect(out, [r.run_id for r in runs])
    with pytest.warns(UserWarning, match=r"^toy: done runs without params_m \(1 of 2\), gmacs \(1 of 2\)"):
        rep = tables.build(spec, runs, frame, out=out)  # named by the report, not by a paper metric
    assert rep.runs["gmacs"].notna().sum() == 1
    assert any(n.startswith("toy: done runs without") and "gmacs" in n for n in rep.notes)

    old = frame.drop(columns=["params", "gmacs", "top5_err"])  # columns an old store never had
    with pytest.warns(UserWarning, match="top5_err"):
        rep = tables.build(spec, runs, old, out=out, metrics=["top1_err", "top5_err"])
    assert rep.runs["top5_err"].isna().all() and body_row(rep, "0.1")["GMACs"] == tables.MISSING


def _two_done(tmp_path, toy):
    """(spec, the first two runs, store, their collected frame), both done with top1_err 4.0."""
    spec, runs, _ = toy
    out = tmp_path / "store"
    for run in runs[:2]:
        finish(out, run, 4.0)
    return spec, runs[:2], out, store.collect(out, [r.run_id for r in runs[:2]])


@pytest.mark.parametrize("key, value", [
    ("top1_err", float("inf")),  # what json.dumps writes for a diverged value
    ("top1_err", float("nan")),
    ("top1_err", True),  # JSON's true is no 1.0
    ("top1_err", "5.0"),  # a hand-edited record
    ("params", "oops"),
])
def test_a_value_that_is_no_finite_number_makes_the_record_unreadable(tmp_path, toy, key, value):
    """Such a run is not done (it used to be, its cell an empty dash, and `suite run` never made it
    again): the report names its record and leaves it out."""
    spec, runs, _ = toy
    out = tmp_path / "store"
    finish(out, runs[0], 4.0)
    d = finish(out, runs[1], 6.0)
    result = store.read_json(d / "result.json")
    result["complexity" if key == "params" else "metrics"][key] = value
    (d / "result.json").write_text(json.dumps(result))  # NaN, Infinity as Python's json writes them
    with pytest.warns(UserWarning, match=f"skipped a corrupt record: .*{key} is "):
        frame = store.collect(out, [r.run_id for r in runs[:2]])
    rep = tables.build(spec, runs[:2], frame, out=out)
    [note] = [n for n in rep.notes if "unreadable" in n]
    assert f"{d / 'result.json'}: incomplete record" in note and f"{key} is {json.dumps(value)}" in note
    assert list(rep.runs["status"]) == ["done", "missing"]
    column = "params_m" if key == "params" else key
    assert np.isnan(rep.runs[column][1]) and not np.isnan(rep.runs[column][0])
    row = body_row(rep, "0.1")
    if key == "params":
        assert row["params (M)"] == "13.70"  # the other run's
    else:
        assert row["weight_decay=0.0001: top-1 err"] == "4.00 (1)"


def test_an_unreadable_record_is_named_in_the_notes_not_only_counted_missing(tmp_path, toy):
    spec, runs, _ = toy
    out = tmp_path / "store"
    finish(out, runs[0], 4.0)
    d = finish(out, runs[1], 6.0)
    (d / "result.json").write_text('{"metrics": ')  # a disk that filled up mid-write
    with pytest.warns(UserWarning, match="skipped a corrupt record"):
        frame = store.collect(out, [r.run_id for r in runs[:2]])
    rep = tables.build(spec, runs[:2], frame, out=out)
    [note] = [n for n in rep.notes if "unreadable" in n]
    assert str(d / "result.json") in note and "line 1" in note
    assert body_row(rep, "0.1")["weight_decay=0.0001: top-1 err"] == "4.00 (1)"


@pytest.mark.parametrize("top5", ["top5_err", "top5_err_rot90_cw"])
def test_no_top5_with_five_classes_or_fewer_is_not_a_missing_value(tmp_path, toy, top5):
    spec, runs, out, frame = _two_done(tmp_path, toy)
    frame[top5] = np.nan  # what the trainer records with 5 classes or fewer
    frame["model.num_classes"] = [5, 10]
    with pytest.warns(UserWarning, match=rf"{top5} \(1 of 2\)"):  # only the 10-class run lacks it
        tables.build(spec, runs[:2], frame, out=out, metrics=["top1_err", top5])
    frame["model.num_classes"] = 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = tables.build(spec, runs[:2], frame, out=out, metrics=["top1_err", top5])
    assert not any("older version" in n for n in rep.notes)


def test_no_accuracy_on_synthetic_data_is_said_so_not_blamed_on_an_older_version(tmp_path, toy):
    spec, runs, out, frame = _two_done(tmp_path, toy)
    frame["top1_err"] = np.nan  # what the trainer records on random labels
    frame["data.name"] = ["synthetic", "cifar10"]
    with pytest.warns(UserWarning, match=r"top1_err \(1 of 2\)"):  # only the CIFAR run lacks it
        tables.build(spec, runs, frame, out=out)
    frame["data.name"] = "synthetic"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = tables.build(spec, runs, frame, out=out)
    assert not any("older version" in n for n in rep.notes)
    assert "Runs on synthetic data have no accuracy (its labels mean nothing): shown as empty." in rep.notes


def test_errors_on_turned_images_are_columns_beside_the_paper(tmp_path):
    """What san_robustness reports: a view's error per row, with its paper value where the spec gives one."""
    spec = ablations.load(write_spec(tmp_path, """\
        name: turned
        description: d
        paper: {paper: p, table: t}
        base: {model: {name: resnet26}, data: {name: cifar10}}
        grid: {lr: [0.1, 0.2]}
        reference: [{lr: 0.1, top1_err_rot180: 60.0}]
        report: {rows: [lr], metrics: [top1_err, top1_err_rot180]}
        """, "turned"))
    runs = ablations.expand(spec)
    for run, turned in zip(runs, (62.5, 70.0)):
        d = finish(tmp_path / "store", run, 5.0)
        record = json.loads((d / "result.json").read_text())
        record["metrics"]["top1_err_rot180"] = turned
        store.write_result(d, record)
    frame = store.collect(tmp_path / "store", [r.run_id for r in runs])
    rep = tables.build(spec, runs, frame, out=tmp_path / "store")
    first, second = body_row(rep, "0.1"), body_row(rep, "0.2")
    assert first["top-1 err turned 180°"] == "62.50 (1)" and second["top-1 err turned 180°"] == "70.00 (1)"
    assert rep.cells.loc["0.1", "top1_err_rot180_diff"] == pytest.approx(2.5)
    frame.loc[1, "top1_err_rot180"] = np.nan  # a run done before the views existed: how to get them is said
    with pytest.warns(UserWarning, match=r"without top1_err_rot180 \(1 of 2\).*evaluated on the rotated and flipped "
                                         r"views from its checkpoint, with no training, when `suite run` is given "
                                         r"with measure.views: true"):
        tables.build(spec, runs, frame, out=tmp_path / "store")


def test_paper_values_are_not_compared_on_another_data_set(toy, tmp_path):
    spec, _, _ = toy
    runs = ablations.expand(spec, preset="smoke")  # digits instead of cifar10
    rep = tables.build(spec, runs, store.collect(tmp_path, [r.run_id for r in runs]), out=tmp_path, preset="smoke")
    assert rep.name == "toy.smoke"
    assert not any("paper" in h for h in rep.table.header)
    assert rep.runs["paper_top1_err"].isna().all()
    assert any("differ from them in data.name (digits, not cifar10)" in n for n in rep.notes)


@pytest.mark.parametrize("data, classes", [("cifar10", 10), ("cifar100", 100), ("imagenet", 1000)])
def test_paper_values_are_compared_on_each_data_set_the_papers_report_on(tmp_path, data, classes):
    text = (f"name: on_{data}\nbase: {{model: {{name: resnet26, num_classes: {classes}}}, data: {{name: {data}}}}}\n"
            "grid:\n  lr: [0.1]\nreference:\n  - {lr: 0.1, top1_err: 5.0}\n")
    spec = ablations.load(write_spec(tmp_path, text, f"on_{data}"))
    runs = ablations.expand(spec)
    rep = tables.build(spec, runs, store.collect(tmp_path / "store", [r.run_id for r in runs]), out=tmp_path / "store")
    assert body_row(rep, "0.1")["top-1 err, paper"] == "5.0"


def test_paper_values_are_compared_only_with_the_config_they_describe(toy, tmp_path):
    """What the runs resolved to decides, not what the spec's base and grid say about data.name."""
    spec, runs, out = toy
    frame = store.collect(out, [r.run_id for r in runs])
    assert tables.build(spec, runs, frame, out=out).runs["paper_top1_err"].notna().any()  # the spec's own runs

    longer = ablations.expand(spec, overrides={"epochs": 2})  # a command-line override changes what is trained
    fill(tmp_path / "a", longer)
    rep = tables.load(spec, out=tmp_path / "a", overrides={"epochs": 2})
    assert rep.runs["paper_top1_err"].isna().all() and not any("paper" in h for h in rep.table.header)
    assert any("differ from them in epochs (2, not 1)" in n for n in rep.notes)  # as the spec writes them

    stored = tmp_path / "b"  # the store says the run trained otherwise (a default changed since)
    d = finish(stored, runs[0], 4.0)
    result = json.loads((d / "result.json").read_text())
    result["config"]["lr_decay"] = 0.5
    (d / "result.json").write_text(json.dumps(result))
    rep = tables.load(spec, out=stored)
    assert math.isnan(rep.runs["paper_top1_err"].iloc[0]) and rep.runs["paper_top1_err"].iloc[1] == 5.0
    assert any("lr_decay (0.5, not 0.1)" in n for n in rep.notes)

    digits = ablations.load(write_spec(tmp_path, TOY.replace("name: toy", "name: dig").replace("cifar10", "digits"),
                                       "dig"))  # a paper's numbers, a spec on digits
    rep = tables.load(digits, out=empty_store(tmp_path / "c"))
    assert rep.runs["paper_top1_err"].isna().all()
    assert any("use digits, a data set the papers do not report on" in n for n in rep.notes)


# ------------------------------------------------------------------------------------- labels
def shipped_report(tmp_path, name: str) -> tables.Report:
    """A shipped spec's report from a store where seed 0 of every run is done."""
    spec = ablations.load(name)
    runs = ablations.expand(spec)
    out = tmp_path / "store"
    for run in runs:
        if run.seed == 0:
            finish(out, run, 10.0)
    return tables.build(spec, runs, store.collect(out, [r.run_id for r in runs]), out=out)


def blocks(table: tables.Table) -> list[str]:
    return list(dict.fromkeys(g for g, _ in table.columns if g))


@pytest.mark.parametrize("name, index, rows, groups", [
    ("ran_label_noise", ["Noise level"], ["10%", "30%", "50%", "70%"], ["ResNet-164", "Attention-92"]),
    ("ran_arl_nal", ["Network"], ["Attention-56", "Attention-92", "Attention-128", "Attention-164"], ["ARL", "NAL"]),
    ("ran_cifar_depth", ["Network"], ["ResNet-164", "ResNet-1001", "WRN-16-8", "WRN-28-10", "Attention-92",
                                      "Attention-236", "Attention-452"], ["CIFAR-10", "CIFAR-100"]),
    ("ran_imagenet", ["Network"], ["ResNet-152", "Attention-56", "ResNeXt-101 (32x4d)", "AttentionNeXt-56",
                                   "ResNet-200", "Attention-92"], []),
    ("ran_mask_norm", ["Attention type"], ["Mixed (f1)", "Channel (f2)", "Spatial (f3)"], []),
    ("ran_mask_structure", ["Mask type"], ["Local convolutions (local)", "Encoder and decoder (mixed)"], []),
    ("san_main", ["Method"], ["ResNet26", "SAN10-pair.", "SAN10-patch.", "ResNet38", "SAN15-pair.", "SAN15-patch.",
                              "ResNet50", "SAN19-pair.", "SAN19-patch."], []),
    ("san_footprint", ["Footprint"], ["3×3", "5×5", "7×7", "9×9"], ["SAN10-pair.", "SAN10-patch."]),
    ("san_pairwise_relation", ["Relation function"], ["summation", "subtraction", "concatenation",
                                                      "Hadamard product", "dot product"], []),
])
def test_shipped_tables_name_rows_and_columns_as_the_paper_does(tmp_path, name, index, rows, groups):
    report = shipped_report(tmp_path, name)
    assert report.table.index == index and [r[0] for r in report.table.body] == rows
    assert blocks(report.table) == groups


def test_labels_are_for_display_the_csv_keeps_the_keys_and_values(tmp_path):
    report = shipped_report(tmp_path, "ran_label_noise")
    assert body_row(report, "70%")["Attention-92: top-1 err, paper"] == "15.75"  # the paper's number, its row
    text = formats.fragment(report)
    assert text.startswith("| Noise level | ResNet-164: top-1 err |") and "| 10% |" in text
    assert "Rows: Noise level (data.clean_ratio). Column blocks: model.name." in text  # which key a title stands for
    assert "Noise level" in formats.latex(report) and "<td>10%</td>" in formats.page(report)
    csv = pd.read_csv(io.StringIO(formats.csv(report)))
    first = csv.iloc[0]
    assert (first["data.clean_ratio"], first["model.name"]) == (0.9, "resnet164_cifar")  # the runs' identity
    assert (first["label_data.clean_ratio"], first["label_model.name"]) == ("10%", "ResNet-164")
    assert list(csv.columns)[3:7] == ["data.clean_ratio", "model.name", "label_data.clean_ratio", "label_model.name"]
    legend = plots.tradeoff(report)[0].figure.legends[0]
    assert {"Noise level", "10%", "70%"} <= {t.get_text() for t in legend.get_texts()}


def test_a_users_own_grid_keeps_its_keys_and_values_as_labels(report):
    """The toy grid has no labels: rows read `lr` and its values, column blocks `key=value`."""
    assert report.table.index == ["lr"] and [r[0] for r in report.table.body] == ["0.1", "0.2", "0.4"]
    assert blocks(report.table) == ["weight_decay=0.0001", "weight_decay=0.0005"]
    assert "Rows: lr. Column blocks: weight_decay." in formats.fragment(report)
    csv = pd.read_csv(io.StringIO(formats.csv(report)), dtype={"label_lr": str})
    assert list(csv["lr"][:3]) == [0.1] * 3 and list(csv["label_lr"][:3]) == ["0.1"] * 3


def test_a_cost_that_differs_between_column_blocks_is_said_to_be_a_range(tmp_path, report):
    """Costs are one column per row: where the row's column blocks cost differently (mask type or
    data set as the column axis) the cell is `lowest–highest`, which the legend did not say, so it
    read as an uncertainty. The legend now says so, only when a row shows such a range."""
    text = TOY.replace("rows: [lr], columns: [weight_decay]", "rows: [weight_decay], columns: [lr]")
    spec = ablations.load(write_spec(tmp_path, text, "toy"))
    runs = ablations.expand(spec)
    fill(tmp_path / "store", runs)  # the toy's throughput grows with lr
    rep = tables.build(spec, runs, store.collect(tmp_path / "store", [r.run_id for r in runs]), out=tmp_path / "store")
    assert body_row(rep, "0.0001")["infer img/s"] == "101.0–104.0"
    said = "Costs are the row's: lowest–highest where its column blocks differ."
    assert said in formats.fragment(rep) and said in formats.latex(rep) and said in html.unescape(formats.page(rep))
    assert "lowest–highest" not in formats.fragment(report)  # lr is the toy's row: one cost a row


def test_a_model_the_papers_do_not_name_is_shown_by_its_registry_name(tmp_path):
    @register_model(input_size=32)
    def plain_net(*, num_classes: int = 1000) -> nn.Module:
        return nn.Conv2d(3, num_classes, 1)

    try:
        spec = ablations.load(write_spec(tmp_path, """\
            name: mine
            base: {data: {name: synthetic, input_size: 32}, epochs: 1}
            grid: {model.name: [plain_net, resnet26]}
            """, "mine"))
        runs = ablations.expand(spec)
        rep = tables.build(spec, runs, store.collect(tmp_path / "store", [r.run_id for r in runs]),
                           out=tmp_path / "store")
        assert rep.table.index == ["model.name"] and [r[0] for r in rep.table.body] == ["plain_net", "ResNet26"]
        assert list(rep.runs["label_model.name"]) == ["plain_net", "ResNet26"]
        assert list(rep.runs["model.name"]) == ["plain_net", "resnet26"]
    finally:
        del _REGISTRY["plain_net"]


def test_two_values_the_papers_name_alike_keep_their_own_names(toy):
    """ran56 and ran56_cifar are both Attention-56; data sets the papers do not name keep key=value."""
    spec = toy[0]
    named = labels.build(spec, ["model.name", "data.name"],
                         {"model.name": ["ran56", "ran56_cifar", "ran92"], "data.name": ["cifar10", "digits"]})
    assert named.values["model.name"] == {"ran56": "Attention-56 (ran56)", "ran56_cifar": "Attention-56 (ran56_cifar)",
                                          "ran92": "Attention-92"}
    assert named.alone("data.name", "cifar10") == "CIFAR-10"
    assert named.alone("data.name", "digits") == "data.name=digits"
    assert named.value("data.name", "digits") == "digits" and named.title("data.name") == "data.name"
    relations = labels.build(ablations.load("san_pairwise_relation"), ["model.relation"],
                             {"model.relation": ["summation", "dot"]})  # the spec's own `summation: summation`
    assert relations.alone("model.relation", "summation") == "summation"
    assert relations.alone("model.relation", "dot") == "dot product"


def test_a_column_axis_given_only_a_name_heads_its_blocks_by_it(tmp_path):
    """Its blocks read `weight_decay=0.0001` under a legend calling the axis `decay`."""
    rep = labelled_report(tmp_path, "  weight_decay: {name: decay}\n")
    assert [g for g, _ in rep.table.columns][:1] == ["decay=0.0001"]
    assert "Column blocks: decay (weight_decay)." in formats.fragment(rep)


def test_every_metric_and_cost_has_a_display_name_with_its_unit():
    """`macts` and `train_peak_memory_mb` headed a report's columns and its plot's axis as their keys,
    `top1_err_rot90_cw` as `top-1 err rot90_cw`: neither said what it counts nor in what (memory is
    in MiB, whatever `_mb` says), nor how the images were turned."""
    from suite.metrics import COSTS, RUN_METRICS

    units = {"_mb": "(MiB)", "_s": "(s)", "_m": "(M)", "macts": "(M)", "_per_sec": "img/s"}
    for metric in (*RUN_METRICS, *COSTS):
        name = tables.label(metric)
        assert name != metric or metric in ("epochs", "iterations"), metric  # words as they are
        assert "_" not in name, metric
        assert all(unit in name for suffix, unit in units.items() if metric.endswith(suffix)), (metric, name)


def test_a_cost_asked_for_as_a_metric_heads_its_column_and_axis_with_its_unit(tmp_path):
    spec = ablations.load(write_spec(tmp_path, TOY, "toy"))
    runs = ablations.expand(spec)
    for run in runs:
        if run.seed == 0:
            d = finish(tmp_path / "store", run, 10.0)
            result = json.loads((d / "result.json").read_text())
            result["complexity"]["macts"] = 0.7 + run.point["lr"]
            result["throughput"]["train_peak_memory_mb"] = 200.0 * run.point["lr"]
            store.write_result(d, result)
    rep = tables.build(spec, runs, store.collect(tmp_path / "store", [r.run_id for r in runs]), out=tmp_path / "store",
                       metrics=["macts", "train_peak_memory_mb"])
    assert {"activations (M)", "train peak memory (MiB)"} <= {f for _, f in rep.table.columns}
    axis = plots.tradeoff(rep)[0].figure.axes[0]
    assert axis.get_ylabel() == "activations (M)"


def labelled_report(tmp_path, labels_yaml: str) -> tables.Report:
    """The toy grid with the given `labels:` section, seed 0 of every point done."""
    spec = ablations.load(write_spec(tmp_path, TOY + "labels:\n" + labels_yaml, "toy"))
    runs = ablations.expand(spec)
    for run in runs:
        if run.seed == 0:
            finish(tmp_path / "store", run, 10.0, curve=True)
    return tables.build(spec, runs, store.collect(tmp_path / "store", [r.run_id for r in runs]), out=tmp_path / "store")


@pytest.mark.parametrize(("labels_yaml", "says"), [
    ("  lr: {name: runs}\n", "'runs' is also a column a report's table may have"),  # the blocks' runs
    ("  lr: {name: params (M)}\n", "'params (M)' is also a column a report's table may have"),
    ("  lr: {name: Δ top-1 err}\n", "is also a column a report's table may have"),
    ("  lr: {name: epochs to best top-1 err}\n", "is also a column a report's table may have"),  # --metric best_epoch
    ("  lr: {name: activations (M)}\n", "is also a column a report's table may have"),  # --metric macts
    ("  lr: {name: train peak memory (MiB)}\n", "is also a column a report's table may have"),
    ("  lr: {name: weight_decay}\n", "'weight_decay' is also the key of axis weight_decay"),
    ("  lr: {name: rate}\n  weight_decay: {name: rate}\n", "'rate' is also the name of axis weight_decay"),
    ("  lr: {name: \"caf\\u00e9\"}\n  weight_decay: {name: \"cafe\\u0301\"}\n", "is also the name of axis weight_decay"),
])
def test_an_axis_named_as_another_column_or_axis_is_an_error_when_the_spec_is_read(tmp_path, labels_yaml, says):
    """`lr: {name: params (M)}` headed two columns `params (M)`, the first of them learning rates;
    `suite report` said so, after the grid had trained: `suite specs` and `suite run` read the spec."""
    with pytest.raises(SuiteError) as err:
        ablations.load(write_spec(tmp_path, TOY + "labels:\n" + labels_yaml, "toy"))
    assert (err.value.file, err.value.key, err.value.line) == (str(tmp_path / "toy.yaml"), "labels.lr.name", 17)
    assert says in err.value.message
    assert labelled_report(tmp_path, "  lr: {name: rate}\n").table.index == ["rate"]
    assert labelled_report(tmp_path, "  lr: {name: lr}\n").table.index == ["lr"]  # its own key: one column


def test_a_label_with_dollar_signs_is_drawn_as_written(tmp_path):
    """Mathtext read `$\\foo$` as math and raised while drawing: a traceback, not a figure."""
    rep = labelled_report(tmp_path, "  lr: {name: cost in $, values: {0.1: '$\\foo$', 0.2: '$2 or $3', 0.4: '4'}}\n")
    for plot in plots.figures(rep)[0]:
        assert plot.png().startswith(PNG)
        texts = [t for t in plot.figure.legends[0].get_texts()]
        shown = {t.get_text(): t._preprocess_math(t.get_text()) for t in texts}
        assert shown["\\$\\foo\\$"] == ("$\\foo$", False) and shown["\\$2 or \\$3"] == ("$2 or $3", False)


def test_a_metric_named_with_dollar_signs_is_drawn_as_written(tmp_path):
    """The title and the y axis of the trade-off plot name the metric; `$\\foo$` in a metric's name
    (any numeric result the store has is a metric) raised while drawing."""
    spec = ablations.load(write_spec(tmp_path, TOY, "toy"))
    runs = ablations.expand(spec)
    for i, run in enumerate(runs):
        store.write_result(store.plan(tmp_path / "store", run), {
            "run_id": run.run_id, "config": run.config.flat(), "metrics": {"top1_err": 5.0, "gain $\\foo$": 1.0 + i},
            "env": {}, "complexity": {"params": 1_000_000 * (i + 1), "gmacs": 2.5 + i}})
    rep = tables.build(spec, runs, store.collect(tmp_path / "store", [r.run_id for r in runs]),
                       out=tmp_path / "store", metrics=["gain $\\foo$"])
    [plot] = plots.figures(rep)[0]
    assert plot.png().startswith(PNG)
    texts = [plot.figure._suptitle, *(ax.yaxis.label for ax in plot.figure.axes)]
    assert [t._preprocess_math(t.get_text()) for t in texts] == \
        [("toy: gain $\\foo$ vs cost (mean ± std over seeds)", False)] + [("gain $\\foo$", False)] * 2


def test_latex_typesets_a_labels_special_and_greek_characters(tmp_path):
    """pdfLaTeX's utf8 input has no Greek glyphs: `Mapping γ` stopped the document."""
    rep = labelled_report(tmp_path, "  lr: {name: Mapping γ, values: {0.1: 10%, 0.2: 'a_b & #1', 0.4: 3×3 Ω}}\n")
    tex = formats.latex(rep)
    assert r"Mapping $\gamma$ & " in tex and "% Rows: Mapping γ (lr)." in tex  # comments as written
    assert "\n10\\% & " in tex and "\na\\_b \\& \\#1 & " in tex and "\n3$\\times$3 $\\Omega$ & " in tex
    assert not re.search("[\u0370-\u03ff]", tabular(tex)) and "Left as UTF-8" not in tex
    assert formats.tex_escape("Α β ς λ") == r"A $\beta$ $\varsigma$ $\lambda$"  # no \Alpha in LaTeX
    assert formats.tex_escape("≤ 5, ≥ 1, ≠ 0, ≈ 2, ∞") == r"$\leq$ 5, $\geq$ 1, $\neq$ 0, $\approx$ 2, $\infty$"


def tabular(tex: str) -> str:
    """What `\\input` typesets: the tabular, not the comments above it."""
    return tex[tex.index(r"\begin{tabular}"):]


@pytest.mark.parametrize(("label", "typeset"), [
    ('"quoted"', "``quoted''"), ("`code`", r"\textasciigrave{}code\textasciigrave{}"), ("a--b", "a-{}-b"),
    ("[0, 1]", "{}[0, 1]"), ("*bold*", "{}*bold*"), ("x_1", r"x\_1"), ("50%", r"50\%"),
    ("δ = φ−ψ", r"$\delta$ = $\varphi$$-$$\psi$"), ("ε, ϵ: 3×3 ± 1", r"$\varepsilon$, ϵ: 3$\times$3 $\pm$ 1"),
    ("a ⊙ b ∘ c", r"a $\odot$ b $\circ$ c"), ("& % $ # _ { } ~ ^ \\", r"\& \% \$ \# \_ \{ \} \textasciitilde{} "
                                                             r"\textasciicircum{} \textbackslash{}"),
    ("=SUM(A1)", "=SUM(A1)"), ("-1", "-1"), ("-1.5", "-1.5"), ("Müller", "Müller"),
    # a quote opens first, after a space or bracket, or after a quote that opens: ‘a’, (“a”), “‘a’”
    ("'a'", "`a'"), ('("a")', "(``a'')"), ("\"'a'\"", "``{}`a'{}''"), ("it's \"a\"'", "it's ``a''{}'"),
    ("a,,b", "a,{},b"), ("a\n\nb", "a  b")])  # not T1's „ ligature; a blank line ended the cell with an error
def test_latex_typesets_a_label_as_written(label, typeset):
    """`"quoted"` printed ”quoted” and `` `code` `` ‘code‘; `a--b` an en dash; a row's first cell `[0, 1]`
    stopped the document (read as the optional argument of the `\\\\` before it) and `*bold*` lost
    its `*` to it; φ was typeset ϕ."""
    assert formats.tex_escape(label) == typeset


def test_latex_comments_stay_comments_and_name_what_is_left_as_utf8(tmp_path):
    """A note with a line break put its second line into the document; a character pdfLaTeX may not
    set (ð) is named in a comment, and commands in comments can be copied (`--preset`, `weight_decay`)."""
    rep = labelled_report(tmp_path, "  lr: {values: {0.1: 'Açaí', 0.2: 'ð', 0.4: '[0, 1]'}}\n")
    rep.notes.append("line one\nline two & 3")
    tex = formats.latex(rep)
    comments = tex[:tex.index(r"\begin{tabular}")].splitlines()
    assert all(line.startswith("% ") for line in comments) and "% line one line two & 3" in comments
    assert any(line.startswith("% Left as UTF-8: ç í ð (") for line in comments)
    assert "Column blocks: weight_decay." in tex and "\n{}[0, 1] & " in tex
    check_latex(tex)


def test_latex_prints_a_labels_angle_brackets_and_bar(tmp_path):
    """The default (OT1) text fonts print < > | as ¡ ¿ —: `<hi>` read `¡hi¿`."""
    rep = labelled_report(tmp_path, "  lr: {values: {0.1: '<hi>', 0.2: 'a|b', 0.4: '>4'}}\n")
    tex = formats.latex(rep)
    assert "\n\\textless{}hi\\textgreater{} & " in tex and "\na\\textbar{}b & " in tex
    assert not re.search(r"[<>|]", tex.split(r"\begin{tabular}")[1])


def test_markdown_shows_a_labels_markup_characters_as_written(tmp_path):
    """GitHub read a label's `<b>` as an HTML tag (it vanished) and `$x$` as math; `|` ended the cell."""
    rep = labelled_report(tmp_path, "  lr: {name: <b>rate</b>, values: {0.1: '$x$', 0.2: 'a|b', 0.4: 'c\\d'}}\n")
    text = formats.fragment(rep)
    assert text.startswith("| \\<b>rate\\</b> | ") and "Rows: \\<b>rate\\</b> (lr)." in text
    assert "\n| \\$x\\$ | " in text and "\n| a\\|b | " in text and "\n| c\\\\d | " in text


@pytest.mark.parametrize(("label", "written"), [
    ("*bold*", "\\*bold\\*"), ("_a_", "\\_a\\_"), ("`code`", "\\`code\\`"), ("[a](b)", "\\[a\\](b)"),
    ("~~gone~~", "\\~\\~gone\\~\\~"), ("&lt;", "\\&lt;"), ("# head", "\\# head"), ("- item", "\\- item"),
    ("1. item", "1\\. item"), ("1) item", "1\\) item"), ("> quote", "\\> quote"), ("-", "\\-"),
    ("a\n# b", "a # b"),  # a line break would start a block (here a heading)
    # as written: no markup, or `_` inside a word (never emphasis), or a number
    ("x_1", "x_1"), ("ran56_cifar", "ran56_cifar"), ("50%", "50%"), ("δ = φ−ψ", "δ = φ−ψ"), ('"q"', '"q"'),
    ("=SUM(A1)", "=SUM(A1)"), ("-1", "-1"), ("-1.5", "-1.5"), ("+x", "+x"), ("@x", "@x")])
def test_markdown_escapes_what_github_would_read_as_markup(label, written):
    """`*bold*` and `_a_` were set in italics, `` `code` `` as code, `# head` opening a note a heading."""
    assert formats.md_escape(label) == written


def test_markdown_page_shows_labels_description_and_notes_as_written(tmp_path):
    """A label `*bold*` was italic in the table and the legend, and a description's
    `(1 + M(x)) * T(x), against M(x) * T(x)` (ran_arl_nal's) set the text between in italics."""
    spec = TOY.replace("description: toy grid", "description: '(1 + M(x)) * T(x) against M(x) * T(x), `x`'")
    spec = spec.replace("paper: {paper: nobody", "paper: {paper: '_Nobody_ & <i>co</i>'")
    (tmp_path / "toy.yaml").write_text(spec + "labels: {lr: {name: '*rate*', values: {0.1: '_a_', 0.2: '`b`', "
                                              "0.4: '-1.5'}}}\n")
    rep = tables.load(ablations.load(tmp_path / "toy.yaml"), out=empty_store(tmp_path / "store"))
    rep.notes.append("# not a heading")
    text = formats.markdown(rep)
    assert "\n(1 + M(x)) \\* T(x) against M(x) \\* T(x), \\`x\\`\n" in text
    assert "\nPaper: \\_Nobody\\_ \\& \\<i>co\\</i>, T1.\n" in text
    assert "\n| \\*rate\\* | " in text and "Rows: \\*rate\\* (lr)." in text and "\n- \\# not a heading\n" in text
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert [md_cells(r)[0] for r in rows[2:]] == ["\\_a\\_", "\\`b\\`", "-1.5"]
    assert len({len(md_cells(r)) for r in rows}) == 1


def test_a_spec_name_is_the_markdown_pages_title_as_written(tmp_path):
    """A spec name may begin and end with `_`: `# _toy_` set the page's title in italics."""
    spec = ablations.load(write_spec(tmp_path, TOY.replace("name: toy", "name: _toy_"), "_toy_"))
    assert "\n# \\_toy\\_\n" in formats.markdown(tables.load(spec, out=empty_store(tmp_path / "store")))


@pytest.mark.parametrize("folder", ["a-->b", "a--->b", "a--!>b", "it's -->", "a-->b-->c"])
def test_the_header_comment_holds_a_spec_path_with_a_comment_end(tmp_path, folder):
    """A spec path holding `-->` ended the Markdown and HTML header comment there, so the rest of
    the command showed on the page as text; the command in the comment still runs as written."""
    (tmp_path / folder).mkdir()
    path = write_spec(tmp_path / folder, TOY.replace("name: toy", "name: toy_cmt"), "toy_cmt")
    rep = tables.load(ablations.load(path), out=empty_store(tmp_path / "store"))
    assert str(path.relative_to(tmp_path)) in shlex.split(rep.command)  # run in the folder holding the store
    for text in (formats.markdown(rep), formats.page(rep)):
        comment = next(line for line in text.splitlines() if line.startswith("<!-- generated by"))
        assert comment.endswith("; do not edit -->") and "-->" not in comment[:-3] and "--!>" not in comment
        command = re.fullmatch(r"<!-- generated by `(.*)`, run in the folder that holds store/; do not edit -->",
                               comment).group(1)
        assert shlex.split(command) == shlex.split(rep.command)


AWKWARD = ["a|b", "*bold*", "x_1", "`code`", "50%", "δ = φ−ψ", '"quoted"', "=SUM(A1)", "-1", "# <b>&amp;</b> [x](y)"]


def test_every_format_shows_awkward_labels_as_written(tmp_path):
    """The same labels in every format: Markdown cells unescape to them, LaTeX rows stay one row
    each, HTML escapes them, the figure's legend draws them, and the CSV keeps them exactly (a
    spreadsheet may read `=SUM(A1)` as a formula: the CSV is data, see the README)."""
    lrs = [round(0.1 * (i + 1), 1) for i in range(len(AWKWARD))]
    values = ", ".join(f"{lr}: {json.dumps(label)}" for lr, label in zip(lrs, AWKWARD))
    spec = ablations.load(write_spec(tmp_path, TOY.replace("lr: [0.1, 0.2, 0.4]", f"lr: {lrs}")
                                     .replace("weight_decay: [0.0001, 0.0005]", "weight_decay: [0.0001]")
                                     .replace("columns: [weight_decay]", "columns: []")
                                     + f"labels: {{lr: {{values: {{{values}}}}}}}\n", "toy"))
    runs = ablations.expand(spec)
    for run in runs:
        finish(tmp_path / "store", run, 10.0, curve=True)
    rep = tables.build(spec, runs, store.collect(tmp_path / "store", [r.run_id for r in runs]), out=tmp_path / "store")
    rows = [line for line in formats.markdown(rep).splitlines() if line.startswith("|")][2:]
    assert [re.sub(r"\\(.)", r"\1", md_cells(r)[0]) for r in rows] == AWKWARD
    assert not [r for r in rows if re.search(r"(?<!\\)[*`<&\[]|^\| #", r)]  # no markup left to read
    tex = formats.latex(rep)
    check_latex(tex)
    first = [line.split(" & ")[0] for line in tabular(tex).splitlines()[4:-2]]
    assert first == list(map(formats.tex_escape, AWKWARD)) and "``quoted''" in first and "-1" in first
    page = formats.page(rep)
    assert all(f"<td>{html.escape(label)}</td>" in page for label in AWKWARD)
    back = pd.read_csv(io.StringIO(formats.csv(rep)), dtype=str, keep_default_na=False)
    assert list(back["label_lr"][::3]) == AWKWARD and list(back["lr"][:3]) == ["0.1"] * 3
    legend = [t._preprocess_math(t.get_text())[0] for t in plots.figures(rep)[0][0].figure.legends[0].get_texts()]
    assert legend[2:12] == AWKWARD  # after the Pareto front and the axis title, before weight_decay


def test_a_label_keyed_by_another_spelling_of_its_value_is_shown(tmp_path):
    """`1.0: one` for the grid's 1 passed the spec's check, but the table matched "1.0" to "1": no label."""
    spec = ablations.load(write_spec(tmp_path, """\
        name: spelt
        base: {model: {name: resnet26}, data: {name: cifar10}}
        grid: {epochs: [1, 2], lr: [0.1, 0.2]}
        labels: {epochs: {name: Epochs, values: {1.0: one, 2.0: two}}, lr: {values: {1e-1: slow, 0.2: fast}}}
        """, "spelt"))
    rep = tables.load(spec, out=empty_store(tmp_path / "store"))
    assert [r[0] for r in rep.table.body] == ["one", "two"] and blocks(rep.table) == ["slow", "fast"]
    assert list(rep.runs["label_epochs"][:2]) == ["one", "one"]


NULL_AXIS = """\
name: nully
base: {model: {name: resnet26}, data: {name: cifar10}, epochs: 1}
grid: {data.eval_size: [null, 40]}
"""


def test_a_null_axis_value_reads_as_the_label_check_spells_it(tmp_path):
    """The label check compares a label with the other values as `schema.show` writes them (null);
    the report showed a null as `none`, or as `nan` beside a 40.0 where pandas made the column
    floats, so the spec's labels of both were lost and `none` passed for no value."""
    rep = tables.load(ablations.load(write_spec(tmp_path, NULL_AXIS, "nully")), out=empty_store(tmp_path / "store"))
    assert [r[0] for r in rep.table.body] == ["null", "40"] and list(rep.runs["data.eval_size"]) == [None, 40]
    csv = pd.read_csv(io.StringIO(formats.csv(rep)), dtype=str, keep_default_na=False)
    assert list(csv["data.eval_size"]) == ["", "40"] and list(csv["label_data.eval_size"]) == ["null", "40"]
    with pytest.raises(SuiteError, match="the label 'null' is another value of data.eval_size as the spec writes"):
        ablations.load(write_spec(tmp_path, NULL_AXIS + "labels: {data.eval_size: {values: {40: 'null'}}}\n", "nully"))
    named = ablations.load(write_spec(tmp_path, NULL_AXIS + "labels: {data.eval_size: {values: {null: default, "
                                                            "40: none}}}\n", "nully"))
    rep = tables.load(named, out=empty_store(tmp_path / "store"))
    assert [r[0] for r in rep.table.body] == ["default", "none"]


def test_a_table_whose_axes_are_all_column_blocks_has_one_row(tmp_path):
    """The header had one cell more than the row: values sat under the wrong headers."""
    spec = ablations.load(write_spec(tmp_path, TOY.replace("rows: [lr], columns: [weight_decay]",
                                                           "columns: [lr, weight_decay]"), "toy"))
    rep = tables.load(spec, out=tmp_path)
    assert rep.rows == [] and [r[0] for r in rep.table.body] == ["all"]
    assert len(rep.table.body[0]) == len(rep.table.header) == len(rep.table.numeric)
    rows = [line for line in formats.markdown(rep).splitlines() if line.startswith("|")]
    assert len({len(md_cells(r)) for r in rows}) == 1 and len(rows) == 3
    check_latex(formats.latex(rep))
    assert len(rep.table.index) + len(rep.table.columns) == len(rep.table.body[0])  # what HTML's header spans


# ------------------------------------------------------------------------------------ formats
def test_csv_round_trips_through_pandas(report):
    back = pd.read_csv(io.StringIO(formats.csv(report)))
    assert list(back.columns) == list(report.runs.columns) and len(back) == 18
    pd.testing.assert_series_equal(back["top1_err"], report.runs["top1_err"])
    assert list(back["run_id"]) == list(report.runs["run_id"]) and list(back["status"]) == list(report.runs["status"])


def md_cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def test_markdown_rows_match_the_header(report):
    text = formats.markdown(report)
    rows = [line for line in text.splitlines() if line.startswith("|")]
    width = len(md_cells(rows[0]))
    assert width == len(report.table.header) and len(rows) == 2 + 3
    assert all(len(md_cells(r)) == width for r in rows)
    assert re.fullmatch(r"\|(---:?\|)+", rows[1])
    assert text.count("ValueError: boom") == 4  # every failed run is listed with its error


def test_markdown_right_aligns_numbers_and_left_aligns_text(report):
    """The rule row was only checked to hold `---` or `---:` (mutant R30 flipping them passed): names
    and the `runs` counts are left-aligned, numbers right-aligned so their digits line up."""
    rule = [line for line in formats.markdown(report).splitlines() if line.startswith("|")][1]
    aligned = dict(zip(report.table.header, rule.strip("|").split("|")))
    assert aligned["lr"] == "---" and aligned["weight_decay=0.0001: runs"] == "---"
    for heading in ("weight_decay=0.0001: top-1 err", "weight_decay=0.0001: top-1 err, paper",
                    "weight_decay=0.0001: Δ top-1 err", "params (M)", "GMACs"):
        assert aligned[heading] == "---:", heading


def test_stopped_runs_are_listed_under_the_table_and_counted(tmp_path):
    """Interrupted (and cancelled) runs were checked nowhere in the report: a mutant leaving
    interrupted runs out of the failed-run notes (R25) passed. Each is listed with its note and
    counted in its cell's `runs`."""
    spec = ablations.load(write_spec(tmp_path, TOY.replace("seeds: 3", "seeds: 1"), "toy"))
    runs = ablations.expand(spec)
    out = tmp_path / "store"
    finish(out, runs[0], 4.0)
    store.set_status(store.plan(out, runs[1]), "interrupted", error="interrupted: SIGINT")
    store.set_status(store.plan(out, runs[2]), "cancelled", error="cancelled by user")
    rep = tables.load(spec, out=out)
    assert [line.split(" ")[:2] for line in tables.failed_runs(rep)] == \
        [[runs[1].run_id, "(interrupted)"], [runs[2].run_id, "(cancelled)"]]
    text = formats.fragment(rep)
    assert f"- `{runs[1].run_id} (interrupted) lr=0.1 weight_decay=0.0005 seed=0: interrupted: SIGINT`" in text
    assert body_row(rep, "0.1")["weight_decay=0.0005: runs"] == "0/1 done, 1 interrupted"
    assert tables.failed_runs(rep, limit=2)[-1].startswith(f"{runs[2].run_id} (cancelled)")  # no '... and 0 more'
    assert tables.failed_runs(rep, limit=1)[-1] == f"... and 1 more (suite status {rep.same_runs})"
    rep.runs.loc[rep.runs["status"] == "cancelled", "note"] = "x" * 400  # a whole log is `suite status`'s to show
    note = tables.failed_runs(rep)[-1].split(": ", 1)[1]
    assert note == "x" * (tables.NOTE_CHARS - 1) + "…" and len(note) == tables.NOTE_CHARS


def test_latex_is_balanced_booktabs(report):
    tex = formats.latex(report)
    check_latex(tex)
    assert r"$\pm$" in tex and "±" not in tabular(tex) and "weight\\_decay" in tex
    assert "& $-$1.00" in tex and "-1.00" not in tex.replace("$-$1.00", "")  # a minus sign, not a hyphen


def check_latex(tex: str) -> None:
    """One tabular, booktabs rules in order, and every row as wide as the column spec."""
    for token in (r"\begin{tabular}", r"\end{tabular}", r"\toprule", r"\midrule", r"\bottomrule"):
        assert tex.count(token) == 1, token
    assert tex.index(r"\toprule") < tex.index(r"\midrule") < tex.index(r"\bottomrule")
    n = len(re.search(r"\\begin\{tabular\}\{(\w+)\}", tex).group(1))
    lines = tex.splitlines()
    rows = [line for line in lines[lines.index(r"\toprule") + 1:lines.index(r"\bottomrule")]
            if line.endswith(r"\\")]
    for line in rows:
        spans = [int(w) for w in re.findall(r"\\multicolumn\{(\d+)\}", line)]
        cells = len(re.split(r"(?<!\\)&", line))
        assert cells - len(spans) + sum(spans) == n, line


def test_html_is_self_contained(report):
    figures = [(p.title, p.alt, p.png()) for p in plots.figures(report)[0]]
    text = formats.page(report, figures)
    assert text.startswith("<!DOCTYPE html>") and text.count("<table>") == 1
    links = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", text)
    assert links and all(link.startswith("data:image/png;base64,") for link in links)
    assert base64.b64decode(links[0].split(",", 1)[1]).startswith(PNG)
    assert "<link" not in text and "<script" not in text


# -------------------------------------------------------------------------------------- plots
def test_files_and_plots_are_written(report, tmp_path):
    paths = files.write(report, formats.FORMATS, tmp_path)
    names = sorted(p.name for p in paths)
    assert names == sorted(["toy.md", "toy.csv", "toy.tex", "toy.html", "toy_tradeoff.png", "toy_tradeoff.svg",
                            "toy_curves.png", "toy_curves.svg"])
    for path in paths:
        assert path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes().startswith(PNG)
        if path.suffix == ".svg":
            assert ET.parse(path).getroot().tag.endswith("svg")
    assert "figures/toy_tradeoff.svg" in (tmp_path / "toy.md").read_text()


def test_a_figure_the_report_can_no_longer_draw_is_removed(report, toy, tmp_path):
    files.write(report, ["md"], tmp_path)
    assert (tmp_path / "figures" / "toy_tradeoff.png").exists()
    spec, _, _ = toy
    empty = tables.load(spec, out=empty_store(tmp_path / "empty"))  # no done run: nothing to plot
    files.write(empty, ["md"], tmp_path)
    assert not list((tmp_path / "figures").glob("toy_*")), "stale figures would show runs the table no longer has"


def test_a_figure_an_edited_grid_no_longer_makes_goes_and_no_other_reports_figure(tmp_path, capsys):
    """The grid cut to one point, its runs done: the table is rewritten without a trade-off plot,
    so the old one goes; the spec's curves, its preset's figures and those of a spec whose name
    begins like it (toy_b) stay until their own reports."""
    out = tmp_path / "store"
    text = TOY + "presets: {fast: {epochs: 2}}\n"
    path = write_spec(tmp_path, text, "toy")
    other = write_spec(tmp_path, TOY.replace("name: toy", "name: toy_b"), "toy_b")
    spec = ablations.load(path)
    for runs in (ablations.expand(spec), ablations.expand(spec, preset="fast"),
                 ablations.expand(ablations.load(other))):
        fill(out, runs, curve=True)
    for args in ([str(path)], [str(path), "--preset", "fast"], [str(other)]):
        assert main(["report", *args, "--out", str(out)]) == 0
    drawn = {f"{stem}_{figure}.{suffix}" for stem in ("toy", "toy.fast", "toy_b")
             for figure in ("tradeoff", "curves") for suffix in ("png", "svg")}
    assert {p.name for p in (out / "figures").iterdir()} == drawn
    capsys.readouterr()
    path.write_text(text.replace("lr: [0.1, 0.2, 0.4]", "lr: [0.1]")
                    .replace("weight_decay: [0.0001, 0.0005]", "weight_decay: [0.0001]")
                    .replace("  - {lr: 0.2, top1_err: 4.0}\n", ""))
    assert main(["report", str(path), "--out", str(out)]) == 0
    assert "No trade-off plot" in capsys.readouterr().out and "toy_tradeoff" not in (out / "toy.md").read_text()
    gone = {"toy_tradeoff.png", "toy_tradeoff.svg"}
    assert {p.name for p in (out / "figures").iterdir()} == drawn - gone
    assert main(["report", str(path), "--preset", "fast", "--out", str(out)]) == 0
    gone |= {"toy.fast_tradeoff.png", "toy.fast_tradeoff.svg"}
    assert {p.name for p in (out / "figures").iterdir()} == drawn - gone


def test_pareto_front():
    x, y = [1.0, 2.0, 3.0, 2.0, 4.0], [5.0, 3.0, 4.0, 6.0, 1.0]
    assert list(plots.pareto(x, y)) == [True, True, False, False, True]
    assert list(plots.pareto(x, y, x_lower=False)) == [False, False, False, False, True]
    assert list(plots.pareto([1.0, 2.0], [5.0, 5.0])) == [True, False]  # the same y for more x is beaten


def _front(plot, xlabel: str) -> set[tuple[float, float]]:
    """The points ringed as the Pareto front in the trade-off panel with `xlabel`."""
    from matplotlib.collections import PathCollection

    [ax] = [ax for ax in plot.figure.axes if ax.get_xlabel() == xlabel]
    [rings] = [c for c in ax.collections if isinstance(c, PathCollection)]
    return {(float(x), float(y)) for x, y in rings.get_offsets()}


def test_the_pareto_front_is_better_where_each_axis_says(report, toy):
    """Throughput is better higher, an error lower: the ringed points are those no other point
    beats on both (the toy's throughput is 100 + 10 lr: its points are (101, 5), (101, 8), (102, 3), (104, 10))."""
    plot, _ = plots.tradeoff(report)
    assert _front(plot, plots.PANELS[2][1]) == {(102.0, 3.0), (104.0, 10.0)}
    spec, runs, out = toy
    fast = tables.build(spec, runs, store.collect(out, [r.run_id for r in runs]), out=out,
                        metrics=["infer_samples_per_sec"])
    plot, _ = plots.tradeoff(fast)  # every point costs 2.5 GMACs: the fastest is the front
    assert _front(plot, plots.PANELS[0][1]) == {(2.5, 104.0)}


def _drawn(ax) -> list:
    """The axes' lines that draw data points or curves (not the Pareto step line, which has none)."""
    return [line for line in ax.get_lines() if line.get_marker() not in ("None", "", None)]


def test_every_point_of_a_figure_is_told_apart_without_colour(report):
    """The toy's grid points (lr x weight_decay) differed in lr by colour alone, in tab10's orange and
    green: one a colour-blind reader, or a grey print, could not tell apart. Now each lr has its own
    marker (and line style in the curves), each weight_decay its own fill; the colours are the
    colour-blind-safe palette's."""
    tradeoff, curves = (plots.tradeoff(report)[0], plots.curves(report)[0])
    for ax in tradeoff.figure.axes:
        points = _drawn(ax)
        styles = [(line.get_marker(), line.get_fillstyle()) for line in points]
        assert len(points) == 4 and len(set(styles)) == 4  # the 4 points with a done run, 4 shapes
    from matplotlib.colors import to_hex

    for figure in (tradeoff.figure, curves.figure):
        for ax in figure.axes:
            assert {to_hex(line.get_color()).upper() for line in _drawn(ax)} <= set(plots.PALETTE)
    by_lr = {}
    for line in _drawn(curves.figure.axes[0]):
        by_lr.setdefault(line.get_color(), set()).add((line.get_marker(), str(line.get_linestyle())))
    assert len(by_lr) == 3 and all(len(s) == 1 for s in by_lr.values())  # one look per lr value...
    assert len(set.union(*by_lr.values())) == 3  # ...and a different one for each
    legend = {t.get_text(): h for t, h in zip(tradeoff.figure.legends[0].get_texts(),
                                               tradeoff.figure.legends[0].legend_handles)}
    assert len({legend[v].get_marker() for v in ("0.1", "0.2", "0.4")}) == 3
    assert len({legend[v].get_fillstyle() for v in ("0.0001", "0.0005")}) == 2


def test_a_third_axis_is_told_apart_in_the_figures(tmp_path):
    """Only the first two axes had a style: in a grid of three (mask norm x learning x mask type)
    the points of the third's values were drawn alike and the legend and alt text left it out.
    Now the axes after the first are told apart together by the markers' fill."""
    text = TOY.replace("seeds: 3", "seeds: 1").replace(
        "weight_decay: [0.0001, 0.0005]", "weight_decay: [0.0001, 0.0005]\n  momentum: [0.8, 0.9]").replace(
        "columns: [weight_decay]", "columns: [weight_decay, momentum]")
    spec = ablations.load(write_spec(tmp_path, text, "toy"))
    runs = ablations.expand(spec)
    for i, run in enumerate(runs):
        finish(tmp_path / "store", run, 1.0 + i, curve=True)
    rep = tables.build(spec, runs, store.collect(tmp_path / "store", [r.run_id for r in runs]), out=tmp_path / "store")
    tradeoff, curves = plots.tradeoff(rep)[0], plots.curves(rep)[0]
    for ax in tradeoff.figure.axes:  # 12 points, 12 looks
        assert len({(line.get_color(), line.get_marker(), line.get_fillstyle()) for line in _drawn(ax)}) == 12
    assert len({(line.get_color(), line.get_linestyle(), line.get_fillstyle()) for line in
                _drawn(curves.figure.axes[0])}) == 12
    legend = [t.get_text() for t in tradeoff.figure.legends[0].get_texts()]
    assert "0.0005, 0.9" in legend and "weight_decay, momentum" in legend
    assert "marker fill: weight_decay, momentum" in tradeoff.alt and "marker fill: weight_decay, momentum" in curves.alt


def _one_seed_grid(tmp_path, decays: int) -> tables.Report:
    """The toy with one seed and `decays` weight_decay values (the fill axis), every run done."""
    values = ", ".join(str(0.0001 * (i + 1)) for i in range(decays))
    text = TOY.replace("seeds: 3", "seeds: 1").replace("lr: [0.1, 0.2, 0.4]", "lr: [0.1, 0.2]").replace(
        "weight_decay: [0.0001, 0.0005]", f"weight_decay: [{values}]")
    spec = ablations.load(write_spec(tmp_path, text, "toy"))
    runs = ablations.expand(spec)
    for i, run in enumerate(runs):
        finish(tmp_path / "store", run, 1.0 + i)
    return tables.build(spec, runs, store.collect(tmp_path / "store", [r.run_id for r in runs]), out=tmp_path / "store")


def test_each_combination_of_the_other_axes_has_its_own_look_beyond_six(tmp_path):
    """The fills repeated after six: the 1st and 7th weight_decay were drawn alike. Now the fills come
    again with a thick edge: 7 values, 7 looks in the points and the legend, and the alt text says so."""
    rep = _one_seed_grid(tmp_path, 7)
    plot = plots.tradeoff(rep)[0]
    looks = {(line.get_fillstyle(), line.get_markeredgewidth()) for line in _drawn(plot.figure.axes[0])}
    assert len(looks) == 7
    legend = dict(zip([t.get_text() for t in plot.figure.legends[0].get_texts()], plot.figure.legends[0].legend_handles))
    decays = [v for v in legend if v.startswith("0.000")]
    assert len(decays) == 7
    assert len({(legend[v].get_fillstyle(), legend[v].get_markeredgewidth()) for v in decays}) == 7
    assert "marker fill and edge: weight_decay" in plot.alt


def test_more_combinations_than_looks_are_said_to_be_drawn_alike(tmp_path):
    """Past the last look, combinations would repeat one: the figure draws them alike instead, and its
    legend and alt text say so, not a legend that gives two values one look."""
    rep = _one_seed_grid(tmp_path, len(plots.LOOKS) + 1)
    plot = plots.tradeoff(rep)[0]
    assert len({(line.get_fillstyle(), line.get_markeredgewidth()) for line in _drawn(plot.figure.axes[0])}) == 1
    said = f"weight_decay: {len(plots.LOOKS) + 1} combinations, more than the {len(plots.LOOKS)} marker looks: " \
           "drawn alike, see the table"
    assert said in [t.get_text() for t in plot.figure.legends[0].get_texts()] and said in plot.alt


def _colour_grid(tmp_path, n: int) -> tables.Report:
    """The toy with `n` lr values (the colour axis), one weight_decay and one seed, every run done with a curve."""
    tmp_path.mkdir()
    values = ", ".join(f"{0.1 * (i + 1):.1f}" for i in range(n))
    text = TOY.replace("seeds: 3", "seeds: 1").replace("lr: [0.1, 0.2, 0.4]", f"lr: [{values}]").replace(
        "weight_decay: [0.0001, 0.0005]", "weight_decay: [0.0001]")
    spec = ablations.load(write_spec(tmp_path, text, "toy"))
    runs = ablations.expand(spec)
    for i, run in enumerate(runs):
        finish(tmp_path / "store", run, 1.0 + i, curve=True)
    return tables.build(spec, runs, store.collect(tmp_path / "store", [r.run_id for r in runs]), out=tmp_path / "store")


def test_twelve_colour_values_each_have_a_marker_and_more_are_said_to_share(tmp_path):
    """Past 8 values the colours are viridis shades, and the markers repeated after 10 (the 1st and
    11th lr one shape, told apart by shade alone, while the module said marker too). Now 12 values
    have 12 shapes in the points and the legend; a 13th shares the 1st's, and the legend and alt
    text say so."""
    rep = _colour_grid(tmp_path / "twelve", 12)
    tradeoff, curves = plots.tradeoff(rep)[0], plots.curves(rep)[0]
    assert tradeoff.png().startswith(PNG) and curves.png().startswith(PNG)
    for ax in tradeoff.figure.axes:
        assert len({line.get_marker() for line in _drawn(ax)}) == 12
    assert len({line.get_marker() for line in _drawn(curves.figure.axes[0])}) == 12
    for plot in (tradeoff, curves):
        legend = dict(zip([t.get_text() for t in plot.figure.legends[0].get_texts()],
                          plot.figure.legends[0].legend_handles))
        values = [f"{0.1 * (i + 1):.1f}" for i in range(12)]
        assert len({legend[v].get_marker() for v in values}) == 12 and "lr" in legend
        assert not any("repeat" in text for text in legend) and "repeat" not in plot.alt

    rep = _colour_grid(tmp_path / "thirteen", 13)
    said = "13 values: markers repeat after 12, told apart by shade"
    for plot in (plots.tradeoff(rep)[0], plots.curves(rep)[0]):
        assert plot.png().startswith(PNG)
        legend = [t.get_text() for t in plot.figure.legends[0].get_texts()]
        assert f"lr\n({said})" in legend and f"marker: lr ({said})" in plot.alt


def test_error_bars_span_one_std_either_side_of_the_mean(report):
    """The README and the alt text say ± one std; bars at two (mutant R32) passed. A point of
    one done run has no std, so no bar."""
    c = report.points
    stds = c[c["top1_err_std"].notna()]
    expected = sorted((m - s, m + s) for m, s in zip(stds["top1_err_mean"], stds["top1_err_std"]))
    assert len(expected) == 3 and (4.0, 6.0) in expected
    for ax in plots.tradeoff(report)[0].figure.axes:
        bars = [seg for coll in ax.collections if isinstance(coll, LineCollection) for seg in coll.get_segments()]
        spans = sorted((min(s[:, 1]), max(s[:, 1])) for s in bars)
        assert np.allclose(spans, expected)


def test_figures_name_their_axes_with_units_and_keep_the_legend_off_the_data(report):
    for plot in (plots.tradeoff(report)[0], plots.curves(report)[0]):
        fig = plot.figure
        FigureCanvasAgg(fig).draw()
        box = fig.legends[0].get_window_extent()
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel()
            assert not box.overlaps(ax.get_window_extent())
    xlabels = [ax.get_xlabel() for ax in plots.tradeoff(report)[0].figure.axes]
    assert xlabels == ["multiply-adds per image (GMACs)", "parameters (millions)",
                       "inference throughput (img/s, higher is better)"]
    assert [ax.get_ylabel() for ax in plots.curves(report)[0].figure.axes] == ["train loss (cross-entropy)",
                                                                               "test top-1 err (%)"]


def test_the_reports_alt_text_says_what_each_figure_plots(report, tmp_path):
    """Alt text was the title (`top-1 err vs cost`): nothing of the axes, units or encodings."""
    files.write(report, ["md", "html"], tmp_path)
    md = (tmp_path / "toy.md").read_text()
    page = html.unescape((tmp_path / "toy.html").read_text())
    alts = {name: alt for alt, name in re.findall(r"!\[(.*?)\]\(figures/toy_(\w+)\.svg\)", md)}
    assert set(alts) == {"tradeoff", "curves"}
    for name, plot in zip(("tradeoff", "curves"), (plots.tradeoff(report)[0], plots.curves(report)[0])):
        alt = alts[name]
        assert alt == formats.md_escape(plot.alt) and f'alt="{plot.alt}"' in page
        for ax in plot.figure.axes:  # every axis, by its label with its unit
            assert ax.get_xlabel() in plot.alt and ax.get_ylabel() in plot.alt
    assert "colour and marker: lr; marker fill: weight_decay" in alts["tradeoff"] and "Pareto front" in alts["tradeoff"]
    assert "one line per run, 9 runs; colour, line style and marker: lr" in alts["curves"]


def test_one_point_and_all_missing_plot_nothing_but_say_so(tmp_path, toy):
    spec, runs, _ = toy
    out = empty_store(tmp_path / "store")
    rep = tables.load(spec, out=out)
    paths = files.write(rep, ["md"])
    assert [p.name for p in paths] == ["toy.md"]
    assert any("No trade-off plot" in n for n in rep.notes) and any("No training-curve" in n for n in rep.notes)
    finish(out, runs[0], 4.0)  # one grid point, no curve file
    rep = tables.load(spec, out=out)
    assert [p.name for p in files.write(rep, ["md"])] == ["toy.md"]
    assert "0/3 done, 3 missing" in (out / "toy.md").read_text()


# ------------------------------------------------------------------------------------- splice
README = """\
# Title
keep this
<!-- suite:report toy -->
old table
<!-- /suite:report -->
between
<!-- suite:report other -->
other table
<!-- /suite:report -->
tail without newline"""


def test_splice_replaces_only_between_the_markers(tmp_path):
    path = tmp_path / "README.md"
    path.write_text(README)
    splice_file(path, "toy", "| a |\n|---|\n| 1 |")
    text = path.read_text()
    assert "old table" not in text and "| 1 |" in text and "other table" in text
    assert text.startswith("# Title\nkeep this\n<!-- suite:report toy -->\n\n| a |")
    assert text.endswith("between\n<!-- suite:report other -->\nother table\n<!-- /suite:report -->\ntail without newline")
    splice_file(path, "toy", "| a |\n|---|\n| 1 |")
    assert path.read_text() == text  # idempotent


def test_splice_skips_markers_in_fenced_code(tmp_path):
    """Documentation that shows how to write a block is not the block."""
    text = ("Write:\n\n```md\n<!-- suite:report toy -->\n<!-- /suite:report -->\n```\n\n~~~~\n"
            "<!-- suite:report toy -->\n~~~\n~~~~\n```\n<!-- suite:report toy -->\n````\n"  # a longer fence closes too
            "<!-- suite:report toy -->\nold\n<!-- /suite:report -->\n")
    out = splice(text, "toy", "new")
    assert out == text.replace("old\n", "\nnew\n\n")
    with pytest.raises(SuiteError, match="no <!-- suite:report toy -->"):
        splice("```\n<!-- suite:report toy -->\n<!-- /suite:report -->\n```\n", "toy", "new")


def test_splice_keeps_crlf_line_endings(tmp_path):
    path = tmp_path / "README.md"
    path.write_bytes(b"# T\r\n<!-- suite:report toy -->\r\nold\r\n<!-- /suite:report -->\r\ntail \xc2\xb1\r\n")
    splice_file(path, "toy", "| a |\n| 1 |\n")
    assert path.read_bytes() == (b"# T\r\n<!-- suite:report toy -->\r\n\r\n| a |\r\n| 1 |\r\n\r\n"
                                 b"<!-- /suite:report -->\r\ntail \xc2\xb1\r\n")


def test_a_failure_note_stays_one_code_span_and_short(toy):
    spec, runs, out = toy
    frame = store.collect(out, [r.run_id for r in runs])
    failed = frame.index[frame["status"] == "failed"][0]
    frame.loc[failed, "note"] = "a `b`` <script>x</script> | " + "y" * 5000
    text = formats.fragment(tables.build(spec, runs, frame, out=out))
    [line] = [line for line in text.splitlines() if "<script>" in line]
    assert line.startswith("- ```") and line[5] != "`" and line.endswith("…```") and len(line) < 600  # past its ``


def test_splice_ends_lines_at_newlines_only():
    """U+2028 and U+0085 are text in Markdown: the marker after one is no marker line, and line numbers stay."""
    text = "a\u2028b\x85c\n<!-- suite:report toy -->\nold\n<!-- /suite:report -->\nx\u2028<!-- suite:report toy -->\n"
    assert splice(text, "toy", "new") == text.replace("old\n", "\nnew\n\n")
    with pytest.raises(SuiteError) as err:
        splice("a\u2028b\n<!-- suite:report toy -->\n", "toy", "new")
    assert err.value.line == 2


def test_splice_skips_indented_code_reads_a_bom_and_keeps_the_mode(tmp_path):
    path = tmp_path / "README.md"
    text = ("\ufeff<!-- suite:report toy -->\nold\n<!-- /suite:report -->\nAs code:\n\n"
            "    <!-- suite:report toy -->\n    <!-- /suite:report -->\n")
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    splice_file(path, "toy", "new")
    assert path.read_text(encoding="utf-8") == text.replace("old\n", "\nnew\n\n")
    assert path.stat().st_mode & 0o777 == 0o755


def test_splice_says_a_file_is_not_utf8_as_every_reader_does(tmp_path):
    path = tmp_path / "README.md"
    path.write_bytes(b"a\xff\n")
    with pytest.raises(SuiteError, match=r"not UTF-8 text \(byte 0xff at offset 1\)") as err:
        splice_file(path, "toy", "x")
    assert err.value.file == str(path)


@pytest.mark.parametrize("text, line, message", [
    ("a\n<!-- suite:report toy -->\nb\n", 2, "never closed"),
    ("a\n<!-- /suite:report -->\n", 2, "without an opening marker"),
    ("<!-- suite:report toy -->\n<!-- suite:report x -->\n<!-- /suite:report -->\n", 2, "inside the unclosed"),
    ("no markers\n", None, "no <!-- suite:report toy -->"),
    ("<!-- suite:report other -->\n<!-- /suite:report -->\n", None, r"valid: other"),
])
def test_splice_errors_name_file_and_line(text, line, message):
    with pytest.raises(SuiteError, match=message) as info:
        splice(text, "toy", "x", file="README.md")
    assert info.value.file == "README.md" and info.value.line == line


def test_load_from_a_store_that_is_not_there_says_so(tmp_path, toy):
    """`tables.load(spec, out=<a mistyped folder>)` was a table of missing runs without a word; it
    warns as `suite report` notes it, naming the folder, and a file is refused as the command
    refuses it, naming the argument."""
    spec, _, _ = toy
    with pytest.warns(SuiteWarning, match=rf"^no runs in {re.escape(str(tmp_path / 'nope'))} \(no such folder: "
                                          r"is out= right\?\)$"):
        rep = tables.load(spec, out=tmp_path / "nope")
    assert rep.counts["missing"] == len(rep.runs) > 0 and not (tmp_path / "nope").exists()
    with pytest.MonkeyPatch.context() as env:  # no out= and no $SUITE_OUT: the default folder, which no one named
        env.chdir(tmp_path)
        env.delenv("SUITE_OUT", raising=False)
        with pytest.warns(SuiteWarning, match=r"^no runs in results \(no store at the default results/ under this "
                                              r"folder; give out= or \$SUITE_OUT\)$"):
            tables.load(spec)
    (tmp_path / "file").write_text("")
    with pytest.raises(SuiteError, match=r"file: out: is a file, not a run store directory$"):
        tables.load(spec, out=tmp_path / "file")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a store that is there: no warning
        tables.load(spec, out=toy[2])


def test_report_narrows_the_stores_scan_to_its_runs_once(tmp_path, toy, monkeypatch):
    """`suite report SPEC` narrowed `store.told`'s scan to the spec's runs (`Scan.into`) and then
    `tables.collect` narrowed it again; once is the same answer. A store missing runs, so the scan runs."""
    spec, runs, _ = toy
    out = tmp_path / "store"
    finish(out, runs[0], 4.0)
    calls = []
    into = store.Scan.into
    monkeypatch.setattr(store.Scan, "into", lambda self, *args: calls.append(args) or into(self, *args))
    assert main(["report", str(spec.path), "--out", str(out), "--to", str(tmp_path / "t.csv")]) == 0
    assert len(calls) == 1
    assert tables.load(spec, out=out).counts["done"] == 1 and len(calls) == 2


# ---------------------------------------------------------------------------------------- cli
def test_cli_report_into_a_store_folder_not_there_writes_nothing(tmp_path, capsys):
    """A mistyped --out printed the no-such-folder note, then made the folder and wrote a table of
    runs all missing into it; it is now an error that makes nothing, for one spec and --all alike.
    --to FILE (the table written elsewhere) still notes it and writes."""
    typo = tmp_path / "resluts"
    for command in (["quick"], ["--all"]):
        assert main(["report", *command, "--out", str(typo)]) == 2
        assert capsys.readouterr().err == (f"error: {typo}: --out: no runs to tabulate (no such folder: is --out "
                                           "right?); nothing was written\n")
        assert not typo.exists()
    assert main(["report", "quick", "--out", str(typo), "--to", str(tmp_path / "quick.csv")]) == 0
    assert "(no such folder: is --out right?)" in capsys.readouterr().err
    assert len(pd.read_csv(tmp_path / "quick.csv")) == 8 and not typo.exists()


def test_cli_report_on_empty_and_partial_quick_store(tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()  # a store with no runs yet: its table says each missing
    assert main(["report", "quick", "--out", str(out)]) == 0
    assert "no such folder" not in capsys.readouterr().err
    text = (out / "quick.md").read_text()
    assert text.count("0/2 done, 2 missing") == 4 and "8 runs: 0 done, 8 missing" in text
    assert len(pd.read_csv(out / "quick.csv")) == 8

    runs = ablations.expand(ablations.load("quick"))
    finish(out, runs[0], 12.0, curve=True)
    finish(out, runs[1], 14.0, curve=True)
    finish(out, runs[2], 20.0)
    store.set_status(store.plan(out, runs[3]), "failed", error="RuntimeError: diverged")
    assert main(["report", "quick", "--out", str(out), "--format", "md,tex,html"]) == 0
    text = (out / "quick.md").read_text()
    assert "| Mixed (f1) | ARL | 13.00 ± 1.41 (2) | 2/2 done |" in text  # the paper's names (the spec's labels)
    assert "1/2 done, 1 failed" in text and "RuntimeError: diverged" in text
    assert (out / "figures" / "quick_tradeoff.png").exists() and (out / "quick.html").exists()

    capsys.readouterr()
    assert main(["report", "quick", "--out", str(out), "--to", "-", "--format", "csv"]) == 0
    printed = capsys.readouterr()
    assert len(pd.read_csv(io.StringIO(printed.out))) == 8 and "8 runs" in printed.err

    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- suite:report quick -->\n<!-- /suite:report -->\nend\n")
    assert main(["report", "quick", "--out", str(out), "--into", str(readme)]) == 0
    assert "13.00 ± 1.41 (2)" in readme.read_text() and readme.read_text().endswith("end\n")
    # --into writes no file of the store: a --format there would be dropped unsaid (it chose the Markdown anyway)
    before = readme.read_text()
    capsys.readouterr()
    assert main(["report", "quick", "--out", str(out), "--into", str(readme), "--format", "tex"]) == 2
    assert "--into splices the Markdown table" in capsys.readouterr().err and readme.read_text() == before
    assert main(["report", "quick", "--out", str(out), "--into", str(readme), "--to", str(tmp_path / "q.tex"),
                 "--format", "tex"]) == 0 and "\\toprule" in (tmp_path / "q.tex").read_text()

    assert main(["report", "quick", "--out", str(out), "--into", str(out / "quick.md")]) == 2
    assert "no <!-- suite:report quick -->" in capsys.readouterr().err
    assert main(["report", "quick", "--out", str(out), "--format", "pdf"]) == 2
    assert main(["report", "--out", str(out)]) == 2

    capsys.readouterr()  # a metric named twice is one column (pandas raised on the duplicate)
    assert main(["report", "--metric", "top1_err", "quick", "--out", str(out), "--to", "-", "--metric",
                 "top1_err,params"]) == 0  # the spec after --metric NAME is the spec
    said = capsys.readouterr().out
    header = next(line for line in said.splitlines() if line.startswith("|"))
    assert header.count("top-1 err") == 1 and "params" in header
    # the file says how to make it again, its metrics included (the spec's own are the default)
    assert "generated by `suite report quick --metric top1_err,params`, run in the folder that holds results/" in said
    assert main(["report", "quick", "--out", str(out), "--to", "-", "--metric", "top1_err"]) == 0
    assert "generated by `suite report quick`, run in" in capsys.readouterr().out


def test_a_store_the_report_cannot_write_is_named_with_the_way_out(tmp_path, capsys, monkeypatch):
    # The report writes beside runs/, into the store itself; a read-only store still takes --to.
    out = tmp_path / "results"
    (out / "runs").mkdir(parents=True)
    real = os.open

    def read_only(path, flags, *args, **kwargs):  # a read-only mount refuses even root
        if Path(path).parent == out and flags & os.O_CREAT:
            raise OSError(30, "Read-only file system", str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    assert main(["report", "quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out}: --out: cannot write into {out}: Read-only file system; `--to FILE` writes the table elsewhere" in err
    assert main(["report", "quick", "--out", str(out), "--to", str(tmp_path / "quick.md")]) == 0


def test_a_store_without_done_runs_leaves_an_existing_table_alone(tmp_path, capsys):
    out = tmp_path / "results"
    runs = ablations.expand(ablations.load("quick"))
    done = finish(out, runs[0], 12.0)
    store.set_status(store.plan(out, runs[1]), "failed", error="RuntimeError: diverged\n  at step 7")
    assert main(["report", "quick", "--out", str(out)]) == 0
    table = (out / "quick.md").read_text()
    # the hints name this store, so they find these runs again
    assert "generated by `suite report quick`, run in the folder that holds results/" in table
    assert "Failed or stopped runs (`suite status quick`, run in the folder that holds results/)" in table
    assert f"- `{runs[1].run_id} (failed) " in table and ": RuntimeError: diverged at step 7`" in table  # one line
    capsys.readouterr()
    assert main(["report", "quick", "--out", str(out), "--to", "-", "--format", "tex"]) == 0
    tex = capsys.readouterr().out  # the LaTeX table lists them too, as comments beside its notes
    assert "% Failed or stopped runs" in tex and f"%   {runs[1].run_id} (failed)" in tex
    shutil.rmtree(done)  # e.g. a fresh clone: the table is committed, the runs are not
    capsys.readouterr()
    assert main(["report", "quick", "--out", str(out)]) == 0
    assert "no run of quick is done" in capsys.readouterr().out and (out / "quick.md").read_text() == table
    readme = tmp_path / "README.md"
    readme.write_text("<!-- suite:report quick -->\nour table\n<!-- /suite:report -->\n")
    assert main(["report", "quick", "--out", str(out), "--into", str(readme)]) == 0
    assert "our table" in readme.read_text() and "left the quick block" in capsys.readouterr().out
    other = tmp_path / "OTHER.md"  # no quick block: said, done runs or not
    other.write_text("<!-- suite:report toy -->\n<!-- /suite:report -->\n")
    assert main(["report", "quick", "--out", str(out), "--into", str(other)]) == 2
    assert "no <!-- suite:report quick --> ... <!-- /suite:report --> block to fill" in capsys.readouterr().err
    assert main(["report", "quick", "--out", str(out), "--to", str(tmp_path / "now.md")]) == 0
    assert "0 done" in (tmp_path / "now.md").read_text()
    (tmp_path / "dir.md").mkdir()  # a folder, or a file in the way of a folder: named, nothing written
    for target, says in [(tmp_path / "dir.md", "is a directory"), (tmp_path / "now.md" / "x.md", "not a directory")]:
        capsys.readouterr()
        assert main(["report", "quick", "--out", str(out), "--to", str(target)]) == 2
        err = capsys.readouterr().err
        assert str(target) in err and says in err and "--to" in err and "Traceback" not in err
    # done runs of quick made with overrides this command lacks: said, since that is the usual cause
    finish(out, ablations.expand(ablations.load("quick"), overrides={"epochs": 0.25})[0], 11.0)
    capsys.readouterr()
    assert main(["report", "quick", "--out", str(out)]) == 0
    assert "note: 1 run of quick in" in (said := capsys.readouterr().out) and "(done) is of another preset" in said
    assert main(["status", "quick", "--out", str(out)]) == 0  # `suite status` says the same
    assert "give `suite status` the ones given to `suite run`" in capsys.readouterr().out
    assert main(["status", "quick", "--out", str(out), "epochs=0.25"]) == 0
    assert "note:" not in capsys.readouterr().out  # one of these is done: nothing to explain


def test_report_hints_can_be_pasted(tmp_path):
    """A spec given by path is named by path, and values with spaces are quoted; paths are as run in
    the folder that holds the store, which the files say."""
    spec = tmp_path / "mine.yaml"
    spec.write_text("name: mine\nbase: {model: {name: resnet26}, data: {name: synthetic, input_size: 32}, epochs: 1, "
                    "schedule: step}\n")
    report = tables.load(spec, out=empty_store(tmp_path / "my results"),
                         overrides={"lr_milestones": [0.5, 0.75]})
    assert report.same_runs == "mine.yaml --out 'my results' 'lr_milestones=[0.5, 0.75]'"
    assert report.folder == "the folder that holds my results/"
    assert tables.load("quick", out=tmp_path).same_runs == f"quick --out {tmp_path.name}"
    assert tables.load("quick", out=empty_store(tmp_path / "results")).same_runs == "quick"  # that folder's default
    outside = tmp_path / "lab" / "results"  # a spec file outside the folder: by its absolute path
    assert tables.load(spec, out=empty_store(outside)).same_runs == str(spec)


def test_a_command_copied_out_of_a_report_runs_in_the_folder_it_names(tmp_path, monkeypatch, capsys):
    """The report wrote its commands with the spec's path and the store as the command that made it
    gave them, relative to where it ran: `suite report ../proj/mine.yaml --out ../proj/results`
    from another folder wrote a header that fails everywhere but there. Its paths are now relative
    to the folder holding the store, which the header names, so a committed table reads the same
    whoever regenerates it from wherever, and its commands run in that folder."""
    proj, elsewhere = tmp_path / "proj", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (proj / "specs").mkdir(parents=True)
    (proj / "specs" / "mine.yaml").write_text(
        "name: mine\nbase: {model: {name: resnet26}, data: {name: synthetic, input_size: 32}, epochs: 1}\n")
    empty_store(proj / "results")
    monkeypatch.chdir(elsewhere)
    assert main(["report", "../proj/specs/mine.yaml", "--out", "../proj/results", "--format", "md"]) == 0
    table = (proj / "results" / "mine.md").read_text()
    comment = re.search(r"<!-- generated by `(.*)`, run in the folder that holds results/; do not edit -->", table)
    assert comment and comment.group(1) == "suite report specs/mine.yaml"
    monkeypatch.chdir(proj)  # the folder the header names
    (proj / "results" / "mine.md").unlink()
    capsys.readouterr()
    assert main(shlex.split(comment.group(1))[1:] + ["--format", "md"]) == 0
    assert (proj / "results" / "mine.md").read_text() == table


@pytest.fixture(scope="module")
def profile_rows():
    """What `suite profile --all --to complexity.csv` writes, with made-up GMACs (3.15)."""
    from suite.measure.complexity import COUNTER, count_params
    from suite.models import get_model_info, list_models

    return pd.DataFrame([{"model": n, "model_kwargs": "", "img_size": get_model_info(n).input_size,
                          "params": count_params(n), "gmacs": 3.15, "unsupported_ops": "", "counter": COUNTER}
                         for n in list_models()])


def test_a_cost_ratio_to_a_paper_value_of_zero_is_blank():
    assert complexity._ratio(2.0, 4.0) == "0.50×"
    assert complexity._ratio(2.0, 0.0) == complexity._ratio(2.0, math.nan) == ""  # not a ZeroDivisionError


def test_complexity_page_from_a_current_csv(tmp_path, profile_rows):
    csv = tmp_path / "complexity.csv"
    profile_rows.to_csv(csv, index=False)

    def no_measuring(names):
        raise AssertionError(f"measured {names} although the CSV is current")

    page = complexity.write(tmp_path, measure=no_measuring).read_text()
    line = next(line for line in page.splitlines() if line.startswith("| ran56 |"))
    assert md_cells(line)[1] == "Attention-56"  # the paper's name beside the registry's
    assert md_cells(line)[4:10] == ["31.81", "31.9", "1.00×", "3.15", "6.3", "0.50×"]
    cited = {md_cells(line)[0]: md_cells(line)[-1] for line in page.splitlines() if line.startswith("| ran")}
    assert cited["ran92_cifar"] == "RAN Table 6 (CIFAR)"  # its paper parameters' table (no GMACs)
    assert cited["ran56_cifar"] == ""  # its paper gives errors only: no table cited beside blank figures
    assert f"{len(profile_rows)} models from" in page
    # as run in the folder holding the store: it said `suite report --all` of any --out, and the CSV by
    # the path the command was given, so the committed page changed with where it was regenerated
    assert page.startswith(f"<!-- generated by `suite report --all --out {tmp_path.name}`, run in the folder that "
                           f"holds {tmp_path.name}/; do not edit -->\n")
    assert f"{len(profile_rows)} models from {tmp_path.name}/complexity.csv." in page

    frame = pd.read_csv(csv)
    frame.loc[frame["model"] == "ran56", "params"] += 1
    frame.loc[frame["model"] == "resnet26", "counter"] = "fvcore 0.0"
    frame = frame[frame["model"] != "san10_pairwise"]
    frame.to_csv(csv, index=False)
    rows, stale = complexity.current_rows(csv, ["ran56", "resnet26", "san10_pairwise", "resnet50"])
    assert list(rows) == ["resnet50"]
    assert stale == {"ran56": "parameter count changed", "resnet26": "counted by fvcore 0.0", "san10_pairwise": "no row"}


def test_report_all_writes_tables_with_done_runs_and_complexity(tmp_path, capsys, profile_rows):
    out = tmp_path / "results"
    out.mkdir()
    profile_rows.to_csv(out / "complexity.csv", index=False)
    runs = ablations.expand(ablations.load("quick"), preset="smoke")
    finish(out, runs[0], 12.0)
    assert main(["report", "--all", "--preset", "smoke", "--out", str(out)]) == 0
    written = {p.name for p in out.iterdir() if p.is_file()}
    assert written == {"complexity.csv", "complexity.md", "quick.smoke.md", "quick.smoke.csv"}
    assert "wrote" in capsys.readouterr().out
    # a run made with overrides is in no table of --all: said, not silently left out
    [other] = ablations.expand(ablations.load("quick"), preset="smoke", overrides={"epochs": 0.25})[:1]
    finish(out, other, 13.0)
    assert main(["report", "--all", "--preset", "smoke", "--out", str(out)]) == 0
    assert f"note: 1 done run in {out} is in no table" in capsys.readouterr().out

def spec_folder_and_store(tmp_path, monkeypatch, profile_rows):
    """A spec folder that `$SUITE_ABLATIONS` names, and a store holding the current complexity rows."""
    specs, out = tmp_path / "specs", tmp_path / "results"
    specs.mkdir()
    out.mkdir()
    profile_rows.to_csv(out / "complexity.csv", index=False)
    monkeypatch.setenv("SUITE_ABLATIONS", str(specs))
    return specs, out


def test_report_all_tabulates_a_done_run_stored_under_an_older_id(tmp_path, capsys, monkeypatch, profile_rows):
    """`suite report --all` left out a done run still stored under the id an older version gave it
    (which `suite report SPEC` tabulates and `suite run` files under today's), and named it a done
    run "in no table", to be reported with overrides it was never run with."""
    specs, out = spec_folder_and_store(tmp_path, monkeypatch, profile_rows)
    write_spec(specs, "name: moved\nbase: {model: {name: ran56_cifar, base_width: 4}, data: {name: digits}, "
                      "recipe: smoke}\n", "moved")
    [run] = ablations.expand(ablations.load("moved"))
    d = finish(out, run, 12.0)
    old = d.with_name("0123456789ab")  # as an older version named it
    d.rename(old)
    for name in ("config.json", "result.json", "status.json"):  # with no id_scheme, as it wrote them
        if (old / name).exists():
            record = {k: v for k, v in store.read_json(old / name).items() if k != "id_scheme"}
            store.write_json(old / name, {**record, "run_id": old.name})
    assert main(["report", "--all", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "in no table" not in said, said
    assert "12.00" in (out / "moved.md").read_text()
    assert list(tables.load("moved", out=out).runs["status"]) == ["done"]  # the Python entry point too
    assert old.is_dir() and not d.exists()  # a report files nothing


def test_report_all_reads_the_runs_outside_its_tables_once_not_once_a_table(tmp_path, capsys, monkeypatch,
                                                                           profile_rows):
    """`suite report --all` scanned the store for each table (each spec, each preset) to find the
    runs an older version stored under another id: 5 s CPU of a 15 s --all at 3,000 runs over the 16
    specs. One scan of the store serves every table, and the tables are the same."""
    specs, out = spec_folder_and_store(tmp_path, monkeypatch, profile_rows)
    monkeypatch.setattr(ablations, "list", lambda: ["toya", "toyb"])  # not the spec folder's 16
    for name in ("toya", "toyb"):
        write_spec(specs, f"name: {name}\nbase: {{model: {{name: ran56_cifar, base_width: 4}}, data: {{name: digits}}, "
                          "recipe: smoke}\ngrid: {lr: [0.1]}\npresets: {fast: {grid: {lr: [0.2]}}}\n", name)
    finish(out, ablations.expand(ablations.load("toya"))[0], 12.0)
    [other] = ablations.expand(ablations.load("toyb"), overrides={"epochs": 0.25})  # in no table
    other = finish(out, other, 13.0) / "config.json"
    reads, real = [], store.read_json
    monkeypatch.setattr(store, "read_json", lambda path: reads.append(Path(path)) or real(path))
    assert main(["report", "--all", "--out", str(out)]) == 0
    assert reads.count(other) == 1, reads.count(other)
    assert "| 0.1 | 12.00 (1) | 1/1 done |" in (out / "toya.md").read_text()
    assert f"note: 1 done run in {out} is in no table" in capsys.readouterr().out


def test_report_all_lists_the_store_folder_once_not_once_a_table(tmp_path, capsys, monkeypatch, profile_rows):
    """`suite report --all` listed the store's folder and its figures for killed reports'
    temporaries before each table it wrote (each spec, each preset), and the folder once more for
    complexity.md: once a command now, and a killed write's temporary (complexity.md's too) goes."""
    from processes import killed_writing
    from suite import files as writes

    specs, out = spec_folder_and_store(tmp_path, monkeypatch, profile_rows)
    monkeypatch.setattr(ablations, "list", lambda: ["toya", "toyb"])  # not the spec folder's 16
    for name in ("toya", "toyb"):
        write_spec(specs, f"name: {name}\nbase: {{model: {{name: ran56_cifar, base_width: 4}}, data: {{name: digits}}, "
                          "recipe: smoke}\ngrid: {lr: [0.1]}\npresets: {fast: {grid: {lr: [0.2]}}}\n", name)
        for preset in (None, "fast"):
            finish(out, ablations.expand(ablations.load(name), preset=preset)[0], 12.0)
    left = [killed_writing(out / complexity.PAGE_NAME), killed_writing(out / "toya.md")]
    swept, real = [], writes.sweep
    monkeypatch.setattr(writes, "sweep", lambda folder, *a, **k: swept.append(Path(folder)) or real(folder, *a, **k))
    assert main(["report", "--all", "--out", str(out)]) == 0
    assert {"toya.md", "toya.fast.md", "toyb.md", "toyb.fast.md", "complexity.md"} <= {p.name for p in out.iterdir()}
    assert (swept.count(out), swept.count(out / files.FIGURES)) == (1, 1), swept
    assert not [p for p in left if p.exists()]


def test_report_all_writes_every_valid_spec_and_then_names_the_invalid(tmp_path, capsys, monkeypatch, profile_rows):
    """A broken spec stopped --all halfway, with nothing printed of what it had written."""
    specs, out = tmp_path / "specs", tmp_path / "results"
    specs.mkdir()
    out.mkdir()
    profile_rows.to_csv(out / "complexity.csv", index=False)
    quick = (Path(ablations.find("quick")).read_text())
    for name in ("a_first", "z_last"):
        write_spec(specs, quick.replace("name: quick", f"name: {name}"), name)
    write_spec(specs, "name: b_broken\nzip: [{}]\n", "b_broken")
    monkeypatch.setenv("SUITE_ABLATIONS", str(specs))
    runs = ablations.expand(ablations.load("a_first"))
    finish(out, runs[0], 12.0)
    assert main(["report", "--all", "--out", str(out)]) == 2
    printed = capsys.readouterr()
    names = {p.name for p in out.iterdir()}
    assert {"a_first.md", "z_last.md", "quick.md", "complexity.md"} <= names
    assert "a_first.smoke.md" not in names  # its runs are the spec's own (seed 0): no table of its own
    assert f"wrote {out / 'z_last.md'}" in printed.out and f"wrote {out / 'complexity.md'}" in printed.out
    assert "b_broken.yaml:2: zip.0: empty zip group" in printed.err


def test_report_all_removes_a_presets_table_once_its_runs_are_the_specs_own(tmp_path, capsys, monkeypatch,
                                                                            profile_rows):
    """The preset's older table stayed beside the spec's, which now holds the same runs."""
    specs, out = spec_folder_and_store(tmp_path, monkeypatch, profile_rows)
    text = ("name: toyp\nbase: {model: {name: ran56_cifar, base_width: 4}, data: {name: digits}, recipe: smoke}\n"
            "grid: {lr: [0.1, 0.2]}\npresets: {fast: {epochs: 1}}\n")
    write_spec(specs, text, "toyp")
    for run in ablations.expand(ablations.load("toyp"), preset="fast"):
        finish(out, run, 12.0, curve=True)
    assert main(["report", "--all", "--format", "md,csv,tex,html", "--out", str(out)]) == 0
    stale = [out / f"toyp.fast.{f}" for f in ("md", "csv", "tex", "html")]
    assert all(p.exists() for p in stale) and (out / "figures" / "toyp.fast_curves.svg").exists()
    write_spec(specs, text.replace("recipe: smoke}", "recipe: smoke, epochs: 1}"), "toyp")  # fast is the spec now
    capsys.readouterr()
    assert main(["report", "--all", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert (out / "toyp.md").exists() and not any(p.exists() for p in stale)
    assert not list((out / "figures").glob("toyp.fast_*"))
    assert f"removed {out / 'toyp.fast.md'}: preset fast's runs are all toyp's own" in said
    assert all(f"removed {path}: " in said for path in stale)  # every file removed is said


TOYP = ("name: toyp\nbase: {model: {name: ran56_cifar, base_width: 4}, data: {name: digits}, recipe: smoke, "
        "epochs: 1}\ngrid: {lr: [0.1, 0.2]}\npresets: {fast: {epochs: 1}}\n")  # preset fast's runs are the spec's own


def test_a_report_with_overrides_is_named_by_them_and_report_all_leaves_it(tmp_path, capsys, monkeypatch,
                                                                          profile_rows):
    """`suite report toyp --preset fast epochs=2` wrote toyp.fast.md, the preset's own table's file,
    and `--all` then removed it saying "preset fast's runs are all toyp's own, in its table": they
    were the epochs=2 runs, and toyp had no table. Its files, block and page now name the overrides,
    and the command in its header writes that same file again."""
    specs, out = spec_folder_and_store(tmp_path, monkeypatch, profile_rows)
    write_spec(specs, TOYP, "toyp")
    for run in ablations.expand(ablations.load("toyp"), preset="fast", overrides={"epochs": 2}):
        finish(out, run, 12.0)
    readme = tmp_path / "README.md"
    blocks = "<!-- suite:report {} -->\nold\n<!-- /suite:report -->\n"
    readme.write_text(blocks.format("toyp.fast") + blocks.format("toyp.fast+epochs=2"))
    monkeypatch.chdir(tmp_path)
    assert main(["report", "toyp", "--preset", "fast", "epochs=2"]) == 0
    assert main(["report", "toyp", "--preset", "fast", "epochs=2", "--into", str(readme)]) == 0
    table = out / "toyp.fast+epochs=2.md"
    assert sorted(p.name for p in out.glob("toyp*")) == ["toyp.fast+epochs=2.csv", "toyp.fast+epochs=2.md"]
    text = table.read_text()
    assert "# toyp (preset fast, epochs=2)" in text
    assert readme.read_text().startswith(blocks.format("toyp.fast"))  # the preset's own block is not these runs'
    assert "toyp.fast+epochs=2 -->\n\n| lr" in readme.read_text()
    command = re.search(r"generated by `suite report ([^`]*)`, run in the folder that holds results/", text)[1]
    assert command.endswith("toyp.yaml --preset fast epochs=2")
    table.unlink()
    capsys.readouterr()
    assert main(shlex.split(f"report {command}")) == 0  # the header's command, in the folder it names
    assert f"wrote {Path('results/toyp.fast+epochs=2.md')}" in capsys.readouterr().out and table.read_text() == text
    assert main(["report", "--all"]) == 0
    said = capsys.readouterr().out
    assert "removed" not in said and table.read_text() == text
    assert not (out / "toyp.fast.md").exists() and not (out / "toyp.md").exists()  # no run of theirs is done
    assert "2 done runs in results are in no table --all writes: run with key=value overrides" in said  # toyp.fast+...


def test_a_report_of_other_metrics_is_named_by_them_and_report_all_leaves_it(tmp_path, capsys, monkeypatch,
                                                                             profile_rows):
    """`suite report toyp --metric top5_err` wrote toyp.md, the file of the spec's own table, and
    `suite report --all` later wrote toyp.md over it with the default metrics: the top-5 table was
    replaced without a word. It is toyp@top5_err.md now, which the command in its header writes
    again and `--all` neither rewrites nor removes; the default metrics named keep the plain name."""
    specs, out = spec_folder_and_store(tmp_path, monkeypatch, profile_rows)
    write_spec(specs, TOYP, "toyp")
    for run in ablations.expand(ablations.load("toyp")):
        finish(out, run, 12.0)
    monkeypatch.chdir(tmp_path)
    assert main(["report", "toyp", "--metric", "top1_err"]) == 0  # the spec's own metric: its own table
    own = (out / "toyp.md").read_text()
    assert main(["report", "toyp", "--metric", "top5_err", "--format", "md"]) == 0
    table = out / "toyp@top5_err.md"
    text = table.read_text()
    assert (out / "toyp.md").read_text() == own and "top-5 err" in text and "top-5 err" not in own
    assert sorted(p.name for p in out.glob("toyp*")) == ["toyp.csv", "toyp.md", "toyp@top5_err.md"]
    command = re.search(r"generated by `suite report ([^`]*)`, run in the folder that holds results/", text)[1]
    assert command == f"{Path('specs/toyp.yaml')} --metric top5_err"
    table.unlink()
    capsys.readouterr()
    assert main(shlex.split(f"report {command} --format md")) == 0  # the header's command: the same file
    assert f"wrote {Path('results/toyp@top5_err.md')}" in capsys.readouterr().out and table.read_text() == text
    assert main(["report", "--all"]) == 0
    assert "removed" not in capsys.readouterr().out and table.read_text() == text
    assert main(["report", "toyp", "--metric", "top5_err", "--to", str(out / "toyp.md")]) == 2  # not the own table's
    assert "toyp.md is not this report's (toyp@top5_err.md)" in capsys.readouterr().err


def test_report_all_removes_a_presets_table_only_beside_the_specs_table_it_writes(tmp_path, capsys, monkeypatch,
                                                                                 profile_rows):
    """A store without a done run of the spec (a fresh clone: the committed tables, no runs) lost
    its preset's table to `--all`, "in its table", though no table of the spec was written."""
    specs, out = spec_folder_and_store(tmp_path, monkeypatch, profile_rows)
    write_spec(specs, TOYP, "toyp")
    committed = out / "toyp.fast.md"
    committed.write_text("the table of preset fast, committed when its runs differed from the spec's\n")
    assert main(["report", "--all", "--out", str(out)]) == 0
    assert "removed" not in capsys.readouterr().out and committed.exists()
    finish(out, ablations.expand(ablations.load("toyp"))[0], 12.0)  # now the spec's table is written here
    assert main(["report", "--all", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert (out / "toyp.md").exists() and not committed.exists()
    assert f"removed {committed}: preset fast's runs are all toyp's own, in its table" in said


def test_to_into_the_store_writes_only_the_reports_own_table_there(tmp_path, capsys):
    """`suite report toy epochs=2 --to results/toy.md` put the epochs=2 runs' table where `suite
    report toy` and `--all` keep toy's own (and `--to results/toy.fast.md` where `--all` removes a
    preset's), and another spec file named toy wrote its table over the one whose name the store
    records: --to writes a store's table only under this report's own name, for the spec holding it."""
    spec = write_spec(tmp_path, TOYP.replace("toyp", "toy"), "toy")
    out = tmp_path / "results"
    finish(out, ablations.expand(ablations.load(spec))[0], 12.0)
    assert main(["report", str(spec), "--out", str(out), "--format", "md"]) == 0
    table = (out / "toy.md").read_text()
    capsys.readouterr()
    for target, overrides in [("toy.md", ["epochs=2"]), ("toy.fast.md", []), ("complexity.md", []),
                              ("notes.csv", [])]:
        assert main(["report", str(spec), "--out", str(out), "--to", str(out / target), *overrides]) == 2
        err = capsys.readouterr().err
        assert f"error: {out / target}: --to: {out} holds the tables `suite report` names after their runs, and " \
               f"{target} is not this report's" in err, err
    assert sorted(p.name for p in out.glob("*.*")) == ["specs.json", "toy.md"] and (out / "toy.md").read_text() == table
    assert main(["report", str(spec), "--out", str(out), "--to", str(out / "toy+epochs=2.md"), "epochs=2"]) == 0
    elsewhere = tmp_path / "toy.md"
    assert main(["report", str(spec), "--out", str(out), "--to", str(elsewhere), "epochs=2"]) == 0
    (tmp_path / "b").mkdir()
    other = write_spec(tmp_path / "b", TOYP.replace("toyp", "toy"), "toy")  # another file of the name the store holds
    assert main(["report", str(other), "--out", str(out), "--to", str(out / "toy.md")]) == 2
    assert "already holds the runs and tables of another spec named 'toy'" in capsys.readouterr().err
    assert (out / "toy.md").read_text() == table


def test_to_and_into_one_file_is_refused_before_the_file_is_replaced(tmp_path, capsys):
    """`--to README.md --into README.md` wrote the table over the whole README, then found no block
    in it to fill (exit 2): the README was lost to one table."""
    spec = write_spec(tmp_path, TOYP.replace("toyp", "toy"), "toy")
    out = tmp_path / "results"
    finish(out, ablations.expand(ablations.load(spec))[0], 12.0)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- suite:report toy -->\n<!-- /suite:report -->\nend\n")
    before = readme.read_text()
    assert main(["report", str(spec), "--out", str(out), "--to", str(readme), "--into",
                 str(tmp_path / "." / "README.md")]) == 2
    assert f"error: {readme}: --to: --to writes a whole file and --into fills a block of one" in capsys.readouterr().err
    assert readme.read_text() == before


def test_report_names_tell_apart_every_set_of_runs_and_are_safe_file_names():
    """One name per set of runs (the overrides' order and notation aside), none another's."""
    from suite.report.names import NAME_BYTES, report_name

    assert report_name("quick") == "quick" and report_name("quick", "smoke") == "quick.smoke"
    assert report_name("quick", "smoke", {"epochs": 1}) == "quick.smoke+epochs=1"
    assert report_name("q", None, {"model": {"base_width": 8}, "epochs": 2}) == \
        report_name("q", None, {"epochs": 2, "model.base_width": 8}) == "q+epochs=2+model.base_width=8"
    # a preset named like an override's section is not that override's spec; a string is not its number
    assert report_name("q", "model", {"base_width": 8}) != report_name("q", None, {"model.base_width": 8})
    assert report_name("q", None, {"model.base_width": "8"}) != report_name("q", None, {"model.base_width": 8})
    unsafe = [report_name("q", None, {"data.root": root}) for root in ("/a/b", "/a_b", "a b", "a+b", "a~b")]
    assert len(set(unsafe)) == len(unsafe)
    assert all(re.fullmatch(r"q\+data\.root=[\w.=-]*~[0-9a-f]{8}", n) for n in unsafe), unsafe
    long = report_name("s" * 80, "p" * 80, {"data.root": "/data/" + "é" * 200})  # cut to fit a file name
    assert len(long.encode()) <= NAME_BYTES and re.fullmatch(r"s{80}\.p{80}\+data\.root=_data_é+~[0-9a-f]{8}", long)
    # metrics other than the spec's own, each after '@' in the table's order, never read as an override
    assert report_name("quick", "smoke", {"epochs": 1}, ["top5_err", "top1_err"]) == \
        "quick.smoke+epochs=1@top5_err@top1_err"
    chosen = [report_name("q", None, None, m) for m in (["a", "b"], ["b", "a"], ["a+b"], ["a@b"], ["a_b"])]
    assert len(set(chosen)) == len(chosen) and report_name("q", None, {"a": "b"}) not in chosen, chosen
    # names that differ only in case are one file on macOS and Windows: a capital letter brings the digest
    cased = [report_name("q", None, {"model.act": v}) for v in ("relu", "ReLU", "RELU")]
    cased += [report_name("q", None, None, [m]) for m in ("top1", "Top1")]
    assert len({n.casefold() for n in cased}) == len(cased) and cased[0] == "q+model.act=relu", cased


def test_read_curve_warns_of_damaged_lines_but_not_a_cut_off_last_one(tmp_path):
    path = tmp_path / "metrics.jsonl"
    good = [json.dumps({"epoch": e, "train_loss": 1.0 / e}) for e in (1, 2, 3)]
    path.write_text("\n".join([good[0], "garbage", good[1], '{"no_epoch": 1}', good[2], '{"epoch": 4, "tra']))
    with pytest.warns(SuiteWarning) as caught:
        records = plots.read_curve(path)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert [str(w.message).split(": ")[0] for w in caught] == [f"{path}:2", f"{path}:4"]
    path.write_text("\n".join(good) + '\n{"epoch": 4, "tra')  # killed mid-write: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(plots.read_curve(path)) == 3


def test_read_curve_warns_of_a_line_nested_too_deeply(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join([json.dumps({"epoch": 1}), "[" * 100_000 + "]" * 100_000, json.dumps({"epoch": 2})]))
    with pytest.warns(SuiteWarning, match=f"{path}:2: skipped a line that is not an epoch record"):
        assert [r["epoch"] for r in plots.read_curve(path)] == [1, 2]


def test_a_preset_off_the_specs_own_grid_says_why_no_paper_value_is_shown(tmp_path):
    """ran_cifar_depth's smoke preset replaces its grid's data set and models: no point is the paper's."""
    report = tables.load("ran_cifar_depth", preset="smoke", out=tmp_path)
    assert not any(c.startswith("paper_") and report.runs[c].notna().any() for c in report.runs)
    assert "The paper's values are for the spec's own grid points; preset smoke's points are none of them " \
           "(its values for data.name, model.name), so they are not compared." in report.notes


def test_a_differing_value_is_shown_as_the_spec_writes_its_kind():
    """The frame's float column holds an integer key's 8 as 8.0, and the config holds `epochs: 2` as
    2.0: `batch_size (8, not 4)`, `epochs (2, not null)`; a fraction, or a whole value of a float key
    such as lr, or of a key the suite does not know, is shown as it is."""
    pairs = [("batch_size", 8.0), ("iterations", 160000.0), ("model.base_width", 16.0), ("epochs", 2.0),
             ("epochs", 0.5), ("warmup_epochs", 5.0), ("lr", 2.0), ("model.dropout", 1.0), ("model.unknown", 1.0),
             ("epochs", None), ("data.name", "digits")]
    assert [tables.show(tables.as_written(k, v)) for k, v in pairs] == \
        ["8", "160000", "16", "2", "0.5", "5", "2.0", "1.0", "1.0", "null", "digits"]


def test_a_cell_mixing_runs_the_paper_describes_with_one_it_does_not_has_no_difference(tmp_path, toy):
    """One seed trained otherwise (a default changed between seeds): the note says that run is not
    compared, so the cell's Δ must not average it in with the others."""
    spec, runs, _ = toy
    out = tmp_path / "store"
    for run, top1 in zip(runs[:3], [4.0, 5.0, 30.0]):
        d = finish(out, run, top1)
    result = json.loads((d / "result.json").read_text())
    result["config"]["lr_decay"] = 0.5
    (d / "result.json").write_text(json.dumps(result))
    rep = tables.load(spec, out=out)
    assert any("lr_decay (0.5, not 0.1)" in n for n in rep.notes)
    row = body_row(rep, "0.1")
    assert row["weight_decay=0.0001: top-1 err"] == "13.00 ± 14.73 (3)"
    assert row["weight_decay=0.0001: Δ top-1 err"] == "" and row["weight_decay=0.0001: top-1 err, paper"] == ""
    assert math.isnan(rep.cells.loc[("0.1", "0.0001"), "top1_err_diff"])
    assert "params (M), paper" not in rep.table.header  # the paper's cost is not this cell's either
    assert body_row(rep, "0.2")["weight_decay=0.0001: top-1 err, paper"] == "4.0"  # a cell of the spec's own runs


def test_runs_of_a_point_from_two_code_versions_are_said_so_and_in_the_csv(tmp_path, toy):
    """Seeds of one point trained by different commits (a fix landed between them) are averaged
    into one cell: the notes say which points mix versions, and the tidy CSV keeps each run's commit
    (the commit that trained it, not a later one that only measured it again)."""
    spec, runs, _ = toy
    out = tmp_path / "store"
    versions = [{"git_commit": "a" * 40, "git_dirty": False}, {"git_commit": "a" * 40, "git_dirty": False},
                {"git_commit": "b" * 40, "git_dirty": True}, {"git_commit": "a" * 40, "git_dirty": False}]
    for run, env in zip([*runs[:3], runs[3]], versions):
        d = finish(out, run, 5.0)
        result = json.loads((d / "result.json").read_text())
        result["env"] = env
        if run is runs[0]:  # measured again by a later commit: still trained by aaaa
            result["env"], result["trained_env"] = {"git_commit": "c" * 40, "git_dirty": False}, env
        (d / "result.json").write_text(json.dumps(result))
    rep = tables.load(spec, out=out)
    assert list(rep.runs["git_commit"][:4]) == ["a" * 40, "a" * 40, "b" * 40, "a" * 40]
    assert list(rep.runs["git_dirty"][:4]) == [False, False, True, False]
    back = pd.read_csv(io.StringIO(formats.csv(rep)))
    assert back["git_commit"][2] == "b" * 40
    [note] = [n for n in rep.notes if "code versions" in n]
    assert "lr=0.1 weight_decay=0.0001" in note and "lr=0.1 weight_decay=0.0005" not in note
    assert "aaaaaaaaaa (3 runs)" in note and "bbbbbbbbbb + uncommitted changes (1 run)" in note
    one = tables.load(spec, out=empty_store(tmp_path / "empty"))  # no done run: nothing to say
    assert not any("code versions" in n for n in one.notes)


def _trained_by(out: Path, runs: list[ablations.RunSpec], commits: list[str | None]) -> None:
    """Done runs of `runs`, each trained by its commit of `commits` (None: no commit recorded)."""
    for run, commit in zip(runs, commits):
        d = finish(out, run, 5.0)
        result = json.loads((d / "result.json").read_text())
        result["env"] = {} if commit is None else {"git_commit": commit, "git_dirty": False}
        (d / "result.json").write_text(json.dumps(result))


def test_the_code_version_note_names_three_mixed_points_and_counts_the_rest(tmp_path, toy):
    spec, runs, _ = toy
    shown = "lr=0.1 weight_decay=0.0001; lr=0.1 weight_decay=0.0005; lr=0.2 weight_decay=0.0001"
    for points, tail in [(4, f"{shown} and 1 more point."), (3, f"{shown}.")]:
        out = tmp_path / f"mixed{points}"
        for i in range(points):  # two seeds of each point, trained by different commits
            _trained_by(out, runs[3 * i:3 * i + 2], ["a" * 40, "b" * 40])
        [note] = [n for n in tables.load(spec, out=out).notes if "code versions" in n]
        assert note.endswith(f"Cells that average runs of different versions: {tail}")


def test_a_run_without_a_recorded_commit_is_a_code_version_of_its_own(tmp_path, toy):
    """A run trained outside a git checkout (an installed suite) records no commit: it may be any code."""
    spec, runs, _ = toy
    _trained_by(tmp_path / "store", runs[:3], ["a" * 40, "a" * 40, None])
    [note] = [n for n in tables.load(spec, out=empty_store(tmp_path / "store")).notes if "code versions" in n]
    assert "aaaaaaaaaa (2 runs), no commit recorded (1 run)" in note and "lr=0.1 weight_decay=0.0001" in note


def test_an_upgrade_of_an_installed_suite_between_runs_is_another_code_version(tmp_path, toy):
    """Runs of a suite installed from a wheel record no commit, so seeds trained with suite 0.1
    and, after an upgrade, 0.2 read as one code version and were averaged without a word. The
    suite's version (recorded in each result's env) tells them apart, as a commit does, and is in
    the CSV; a result of an older version, which recorded none, is read as a version of its own."""
    spec, runs, _ = toy
    out = tmp_path / "store"
    for run, env in zip(runs[:4], [{"suite_version": "0.1.0"}, {"suite_version": "0.2.0"}, {"suite_version": "0.1.0"},
                                   {"git_commit": "a" * 40, "git_dirty": False}]):
        d = finish(out, run, 5.0)
        result = json.loads((d / "result.json").read_text())
        result["env"] = env
        (d / "result.json").write_text(json.dumps(result))
    rep = tables.load(spec, out=out)
    assert list(rep.runs["suite_version"][:4]) == ["0.1.0", "0.2.0", "0.1.0", None]
    assert list(pd.read_csv(io.StringIO(formats.csv(rep)))["suite_version"][:3]) == ["0.1.0", "0.2.0", "0.1.0"]
    [note] = [n for n in rep.notes if "code versions" in n]
    assert note.startswith("Done runs come from 3 code versions: suite 0.1.0 (2 runs), suite 0.2.0 (1 run), suite "
                           "version unrecorded at aaaaaaaaaa (1 run)"), note
    assert note.endswith("Cells that average runs of different versions: lr=0.1 weight_decay=0.0001."), note


def test_a_model_plugins_version_is_part_of_a_runs_code_version(tmp_path, toy):
    """A plugin's code is in neither the suite's commit nor the run id: seeds trained with two of
    its versions are said to mix versions, and its version is in the CSV; the suite's own models
    (`model_source: suite`, or none recorded by older versions) add nothing."""
    spec, runs, _ = toy
    out = tmp_path / "store"
    for run, source in zip(runs[:4], ["mymodels 0.1", "mymodels 0.2", "suite", None]):
        d = finish(out, run, 5.0)
        result = json.loads((d / "result.json").read_text())
        result["env"] = {"git_commit": "a" * 40, "git_dirty": False,
                         **({} if source is None else {"model_source": source})}
        (d / "result.json").write_text(json.dumps(result))
    rep = tables.load(spec, out=out)
    assert list(rep.runs["model_source"][:4]) == ["mymodels 0.1", "mymodels 0.2", "suite", None]
    [note] = [n for n in rep.notes if "code versions" in n]
    assert ("aaaaaaaaaa with mymodels 0.1 (1 run), aaaaaaaaaa with mymodels 0.2 (1 run), aaaaaaaaaa (2 runs)"
            in note), note
    assert "lr=0.1 weight_decay=0.0001" in note and "lr=0.1 weight_decay=0.0005" not in note


def test_a_plugins_model_beside_a_shipped_one_is_no_second_code_version(tmp_path, toy):
    """A spec comparing a plugin's model with a shipped one, all trained by one commit and one
    version of the plugin, was said to come from 2 code versions (`aaaa with mymodels 0.1`, `aaaa`):
    the shipped model's runs have no plugin version to differ in."""
    spec, runs, _ = toy
    out = tmp_path / "store"
    for run, source in zip(runs[:4], ["mymodels 0.1", "suite", "mymodels 0.1", "suite"]):
        d = finish(out, run, 5.0)
        result = json.loads((d / "result.json").read_text())
        result["env"] = {"git_commit": "a" * 40, "git_dirty": False, "model_source": source}
        (d / "result.json").write_text(json.dumps(result))
    assert not any("code versions" in n for n in tables.load(spec, out=out).notes)


def test_ops_the_counter_ran_past_are_named_beside_the_gmacs_they_leave_out(tmp_path, toy):
    """A plugin's CBAM block (`x.amax(...)`) left an op fvcore has no handle for: `suite profile`
    listed it, but a spec's report showed the run's GMACs without a word of what they leave out."""
    spec, runs, _ = toy
    out = tmp_path / "store"
    for run, ops in zip(runs[:3], ["aten::amax=4", "aten::amax=4", ""]):
        d = finish(out, run, 5.0)
        result = json.loads((d / "result.json").read_text())
        result["complexity"]["unsupported_ops"] = ops
        (d / "result.json").write_text(json.dumps(result))
    [note] = [n for n in tables.load(spec, out=out).notes if "cannot count" in n]
    assert "resnet26: aten::amax=4" in note and "suite profile" in note, note
    for run in runs[:3]:  # what a run of a shipped model records: nothing left out, nothing said
        d = store.run_dir(out, run.run_id)
        result = json.loads((d / "result.json").read_text())
        result["complexity"]["unsupported_ops"] = ""
        (d / "result.json").write_text(json.dumps(result))
    assert not any("cannot count" in n for n in tables.load(spec, out=out).notes)
    assert not any("cannot count" in n for n in tables.load(spec, out=empty_store(tmp_path / "none")).notes)


def test_a_failed_run_planned_under_other_defaults_keeps_its_cells_paper_value(tmp_path, toy):
    """Only done runs enter a cell's mean, so only they can make its Δ another experiment's."""
    spec, runs, _ = toy
    out = tmp_path / "store"
    finish(out, runs[0], 4.0)
    d = store.plan(out, runs[1])
    store.set_status(d, "failed", error="ValueError: boom")
    planned = json.loads((d / "config.json").read_text())
    planned["config"]["lr_decay"] = 0.5  # planned while another default held; a retry trains with today's
    (d / "config.json").write_text(json.dumps(planned))
    row = body_row(tables.load(spec, out=out), "0.1")
    assert row["weight_decay=0.0001: top-1 err, paper"] == "5.0" and row["weight_decay=0.0001: Δ top-1 err"] == "-1.00"


def test_two_spec_files_of_one_name_cannot_share_a_store(tmp_path, capsys):
    """The store's tables are named after the spec: a colleague's file of the same name, elsewhere,
    overwrote the first file's table without a word."""
    text = "name: twin\nbase: {model: {name: ran56_cifar}, data: {name: digits}}\ngrid: {lr: [%s]}\n"
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first, second = write_spec(tmp_path / "a", text % "0.1", "twin"), write_spec(tmp_path / "b", text % "0.2", "twin")
    out = tmp_path / "store"
    run = ablations.expand(ablations.load(first))[0]
    finish(out, run, 5.0)
    assert main(["run", str(first), "--out", str(out), "--dry-run"]) == 0
    assert not (out / "specs.json").exists()  # a dry run writes nothing
    assert main(["report", str(first), "--out", str(out)]) == 0
    table = (out / "twin.md").read_text()
    capsys.readouterr()
    for command in (["report", str(second)], ["run", str(second), "--dry-run"]):
        assert main([*command, "--out", str(out)]) == 2
        said = capsys.readouterr().err
        assert f"{second}: name: {out} already holds the runs and tables of another spec named 'twin', " \
               f"{first.resolve()}" in said, command
    assert (out / "twin.md").read_text() == table  # nothing overwritten
    assert main(["report", str(second), "--to", str(tmp_path / "b.md"), "--out", str(out)]) == 0  # elsewhere: fine
    first.rename(tmp_path / "a" / "kept.txt")  # the first file gone (moved, renamed): the name is handed over
    assert main(["report", str(second), "--out", str(out)]) == 0
    assert json.loads((out / "specs.json").read_text()) == {"twin": str(second.resolve())}


def test_two_spec_files_whose_names_differ_only_in_case_cannot_share_a_store(tmp_path, capsys):
    """a/twin.yaml and b/Twin.yaml, each run by its path, wrote twin.md and Twin.md into one store:
    one file where file names ignore case (macOS, Windows), the second table over the first."""
    text = "name: {}\nbase: {{model: {{name: ran56_cifar}}, data: {{name: digits}}}}\ngrid: {{lr: [{}]}}\n"
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first = write_spec(tmp_path / "a", text.format("twin", 0.1), "twin")
    second = write_spec(tmp_path / "b", text.format("Twin", 0.2), "Twin")
    out = tmp_path / "store"
    finish(out, ablations.expand(ablations.load(first))[0], 5.0)
    finish(out, ablations.expand(ablations.load(second))[0], 6.0)
    assert main(["report", str(first), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["report", str(second), "--out", str(out)]) == 2
    assert f"{second}: name: {out} already holds the runs and tables of spec 'twin', {first.resolve()}, a name " \
           "differing from 'Twin' only in case" in capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.md")) == ["twin.md"]


def test_a_spec_name_only_the_store_knows_is_refused_naming_its_file(tmp_path, capsys):
    """A spec run by its path is listed by name (`suite status` of the store says `mine: 1 run`),
    and that name, given to `suite status` or `suite report`, was refused with only the shipped
    specs as choices; the error now names the file the store has its runs from."""
    spec = write_spec(tmp_path, "name: mine\nbase: {model: {name: ran56_cifar}, data: {name: digits}}\n"
                                "grid: {lr: [0.1]}\n", "mine")
    out = tmp_path / "store"
    finish(out, ablations.expand(ablations.load(spec))[0], 5.0)
    assert main(["report", str(spec), "--out", str(out)]) == 0  # records the name's file
    capsys.readouterr()
    for command in ("status", "report"):
        assert main([command, "mine", "--out", str(out)]) == 2
        said = capsys.readouterr().err
        assert f"unknown spec 'mine'; {out} has its runs from the spec file {spec.resolve()}: name that file" in said
    assert main(["status", "mime", "--out", str(out)]) == 2  # a name the store does not know: as before
    assert "the spec file" not in capsys.readouterr().err


def test_into_a_file_that_does_not_exist_names_the_option_and_the_markers(tmp_path, capsys):
    """`--into NOTES.md` of a file not made yet said only "NOTES.md: cannot read: No such file or
    directory", naming no option, nor the block the file needs."""
    spec = write_spec(tmp_path, "name: notes\nbase: {model: {name: ran56_cifar}, data: {name: digits}}\n"
                                "grid: {lr: [0.1]}\n", "notes")
    out = tmp_path / "store"
    finish(out, ablations.expand(ablations.load(spec))[0], 5.0)
    into = tmp_path / "NOTES.md"
    assert main(["report", str(spec), "--out", str(out), "--into", str(into)]) == 2
    assert f"error: {into}: --into: no such file: the table fills a block of a file that exists; write the lines " \
           "<!-- suite:report notes --> and <!-- /suite:report --> in it" in capsys.readouterr().err
    assert not into.exists()


def test_a_shipped_specs_name_is_not_recorded(tmp_path):
    """A shipped spec's name is unique already (`ablations.load`): recorded, a second checkout's
    copy of it would be refused as another spec of that name in a store the two share."""
    names.claim(tmp_path, ablations.load("quick"))
    assert not (tmp_path / "specs.json").exists()


@pytest.mark.parametrize("text", ['{"lone": "/x', '["lone"]'])
def test_a_corrupt_spec_name_record_is_set_aside_and_stops_nothing(tmp_path, capsys, text):
    """`specs.json` is bookkeeping: a truncated one (a full disk), or JSON of another shape, set
    aside, the command goes on."""
    spec = write_spec(tmp_path, "name: lone\nbase: {model: {name: ran56_cifar}, data: {name: digits}}\n"
                                "grid: {lr: [0.1]}\n", "lone")
    out = tmp_path / "store"
    finish(out, ablations.expand(ablations.load(spec))[0], 5.0)
    (out / "specs.json").write_text(text)
    assert main(["report", str(spec), "--out", str(out)]) == 0
    assert re.search(r"specs\.json: corrupt record .*read as empty, set aside", capsys.readouterr().err)
    assert json.loads((out / "specs.json").read_text()) == {"lone": str(spec.resolve())}
    assert [p.name for p in out.glob("specs.corrupt-*.json")]


@pytest.mark.parametrize("call, key", [(lambda: files.parse_formats("pdf"), "--format"),
                                       (lambda: files.parse_formats(","), "--format"),
                                       (lambda: files.write_to(None, "table.pdf"), "--to")])
def test_every_format_error_lists_the_formats_in_one_order(call, key):
    """`--format pdf` listed them sorted (csv, html, md, tex), the others as `--help` does. Each
    names the option as typed: they said `error: format: ...` and `error: to: ...`."""
    with pytest.raises(SuiteError) as err:
        call()
    assert str(err.value).endswith("(valid: md, csv, tex, html)")
    assert err.value.key == key


def test_every_run_metric_but_the_grid_keys_has_a_display_name():
    """best_epoch was shown by its key; epochs and iterations are config keys, shown as written."""
    from suite.metrics import RUN_METRICS

    assert [m for m in RUN_METRICS if tables.label(m) == m] == ["epochs", "iterations"]
    assert tables.label("best_epoch") == "epochs to best top-1 err"  # a count of epochs, 0.25 after a quarter


def test_the_csv_writes_booleans_as_the_table_does_and_pandas_reads_them_back():
    """The CSV wrote `True`/`False` (a boolean axis, git_dirty) where the table and `suite status`
    show `true`/`false`."""
    import io
    from types import SimpleNamespace

    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "model.attention": pd.Series([True, False, True], dtype=object),
                         "top1_err": [1.5, np.nan, 2.0], "git_dirty": pd.Series([False, True, None], dtype=object),
                         "flag": np.array([True, False, True])})
    text = formats.csv(SimpleNamespace(runs=runs))
    assert "True" not in text and "False" not in text
    assert text.splitlines()[1] == "a,true,1.5,false,true"
    back = pd.read_csv(io.StringIO(text))
    for column in runs:  # the same values (booleans as booleans) in the same places
        assert back[column].isna().tolist() == runs[column].isna().tolist(), column
        assert back[column].dropna().tolist() == runs[column].dropna().tolist(), column
        assert [type(v) for v in back[column].dropna()] == [type(v) for v in runs[column].dropna()], column


def test_a_metric_only_the_store_has_is_refused_where_its_key_reads_as_another_heading(tmp_path):
    """A metric the suite has no name for is headed by its key, which the spec-load check of axis
    names cannot know: `--metric score` beside an axis named score, `runs`, `params (M)` or
    `top-1 err` beside top1_err made two columns of one name (one read as the other), and
    `label_lr` stopped the report with a pandas TypeError."""
    path = write_spec(tmp_path, """\
        name: clash
        base:
          model: {name: resnet26}
          data: {name: synthetic}
        grid:
          lr: [0.1, 0.2]
        labels:
          lr: {name: score}
        """, "clash")
    spec, out = ablations.load(path), tmp_path / "store"
    runs = ablations.expand(spec)
    stored = {"score": 3.0, "runs": 9.0, "top-1 err": 1.0, "params (M)": 2.0, "label_lr": 4.0, "sparsity": 0.5}
    for run in runs:
        store.write_result(store.plan(out, run), {"run_id": run.run_id, "metrics": {"top1_err": 5.0, **stored},
                                                  "complexity": {"params_m": 1.0, "gmacs": 0.5}})
    frame = store.collect(out, [r.run_id for r in runs])
    with pytest.raises(SuiteError) as err:
        tables.build(spec, runs, frame, out=out, metrics=["score"])
    assert (err.value.file, err.value.line, err.value.key) == (str(path), 8, "labels.lr.name")
    assert "the axis name 'score' is also the heading of metric 'score'" in str(err.value)
    for metrics, what in ((["runs"], "a heading the report's table may have"),
                          (["params (M)"], "a heading the report's table may have"),
                          (["top1_err", "top-1 err"], "another metric's heading"),
                          (["label_lr"], "a column of the report's CSV")):
        with pytest.raises(SuiteError) as err:
            tables.build(spec, runs, frame, out=out, metrics=metrics)
        assert (err.value.file, err.value.key) == (str(path), "metric"), metrics
        assert f"{metrics[-1]!r}, a key of the store's results with no name of the suite's, is headed by its key, " \
            f"which is also {what}" in err.value.message, metrics
    table = tables.build(spec, runs, frame, out=out, metrics=["sparsity"]).table
    assert [field for _, field in table.columns][:2] == ["sparsity", "runs"] and table.index == ["score"]


def test_a_report_removes_what_a_report_killed_mid_write_left_and_no_live_write(report, tmp_path):
    """`suite report` killed (SIGKILL) as it wrote a table or a `--to` file left the table's
    temporary file beside it for ever: only run folders were swept. The next report into that
    folder removes it; another process's write in progress there stays and lands whole.
    (complexity.md's: test_report_all_lists_the_store_folder_once_not_once_a_table.)"""
    from processes import killed_writing
    from suite import files as writes

    tables_dir, to_dir = tmp_path / "tables", tmp_path / "to"
    for folder in (tables_dir, to_dir):
        folder.mkdir()
    left = [killed_writing(tables_dir / f"{report.name}.md"), killed_writing(to_dir / "table.csv")]
    with writes.replace(tables_dir / "other.md") as live:  # a write in progress as the reports run
        live.write("whole")
        files.write(report, ["md"], tables_dir)
        files.write_to(report, str(to_dir / "table.csv"))
        [in_progress] = tables_dir.glob(".other.md.*.locked.tmp")
    assert not [p for p in left if p.exists()]
    assert not in_progress.exists() and (tables_dir / "other.md").read_text() == "whole"


# A report SIGKILLed (the out-of-memory killer) as it draws the figure <argv[2]>_tradeoff into folder argv[1].
KILLED_DRAWING = """
import os, signal, sys
from pathlib import Path
from matplotlib.figure import Figure
from suite.report import plots

def savefig(self, target, **kwargs):  # the first bytes out, then killed
    if isinstance(target, (str, os.PathLike)):
        Path(target).write_bytes(b"half a figure")
    else:
        target.write(b"half a figure")
    os.kill(os.getpid(), signal.SIGKILL)

Figure.savefig = savefig
plots.Plot(name="tradeoff", title="", figure=Figure(), alt="").save(Path(sys.argv[1]), sys.argv[2])
"""


def test_a_report_killed_drawing_a_figure_leaves_the_old_one_whole_and_the_next_removes_its_temporary(report, tmp_path):
    """`suite report` killed (SIGKILL) as it drew a figure left half a PNG under the figure's own name
    (savefig wrote straight to it), shown broken in the README and the Markdown table until the next
    report. It leaves the figure from before, whole; the next report removes the temporary file."""
    import signal
    import subprocess
    import sys

    files.write(report, ["md"], tmp_path)
    figures = tmp_path / files.FIGURES
    before = {p.name: p.read_bytes() for p in figures.iterdir()}
    assert f"{report.name}_tradeoff.png" in before
    killed = subprocess.run([sys.executable, "-c", KILLED_DRAWING, str(figures), report.name], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert {p.name: p.read_bytes() for p in figures.iterdir() if p.name in before} == before
    [left] = {p.name for p in figures.iterdir()} - before.keys()
    assert left.startswith(f".{report.name}_tradeoff.png.")
    files.write(report, ["md"], tmp_path)
    assert {p.name: p.read_bytes() for p in figures.iterdir()} == before


def test_a_value_of_zero_is_shown_to_two_decimals():
    """A perfect run (0 % error, which digits reach) and a cost of nothing are numbers like any other:
    shown, not a crash of the report (the log of zero)."""
    assert [tables.num(0.0), tables.paper_num(0.0)] == ["0.00", "0.0"]
    assert tables.cell(0.0, 0.0, 2) == "0.00 ± 0.00 (2)" and tables.cell(0.0, math.nan, 1) == "0.00 (1)"


def test_a_list_option_longer_or_shorter_than_the_papers_is_another_experiment():
    """[1, 1] is not [1, 1, 1], though each item of the shorter equals the longer's (a zip stops at
    the shorter): such a run is not compared with the paper's number."""
    assert tables.differences({"model.blocks": [1, 1]}, {"model.blocks": [1, 1, 1]}) == \
        {"model.blocks": ([1, 1], [1, 1, 1])}
    assert tables.differences({"model.blocks": [1, 1]}, {"model.blocks": (1, 1)}) == {}  # JSON's list, a tuple


def test_each_seed_is_compared_with_the_paper_under_an_override_of_where_runs_execute(toy):
    """An override of where the runs execute (data.workers, device) leaves them the spec's own runs:
    every seed of a point is the paper's experiment, not only the first (a seed is no other one)."""
    spec, _, out = toy
    rep = tables.load(spec, out=out, overrides={"data.workers": 0})
    first = rep.runs[(rep.runs["lr"] == 0.1) & (rep.runs["weight_decay"] == 0.0001)]
    assert list(first["paper_top1_err"]) == [5.0] * 3 and not any("not compared" in n for n in rep.notes)
    assert body_row(rep, "0.1")["weight_decay=0.0001: Δ top-1 err"] == "+0.00"


def test_a_run_is_compared_with_the_paper_whatever_length_its_result_says_it_trained(tmp_path, toy):
    """A result records the epochs and iterations the run did (epochs: 1 did 391 iterations of
    CIFAR): what it did, not a config other than the paper's (iterations: null), so it is compared."""
    spec, runs, _ = toy
    out = tmp_path / "store"
    d = finish(out, runs[0], 5.0)
    result = json.loads((d / "result.json").read_text())
    result["metrics"].update(epochs=1.0, iterations=391)  # as the trainer records them
    (d / "result.json").write_text(json.dumps(result))
    rep = tables.load(spec, out=out)
    assert body_row(rep, "0.1")["weight_decay=0.0001: Δ top-1 err"] == "+0.00"
    assert not any("not compared" in n for n in rep.notes)


def test_a_reports_longest_file_can_be_made_whatever_its_names_letters_and_overrides(tmp_path):
    """A report's name is cut to NAME_BYTES so that its longest file, a figure's temporary, is one
    a file system takes (255 bytes): counted in bytes, as the file system counts them, for a spec
    name or a value of UTF-8 letters (`é`, two bytes) as for ASCII ones. A name of NAME_BYTES is
    kept as typed, and overrides that a cut name shares keep names of their own (the digest)."""
    from suite import files
    from suite.ablations.spec import NAME_BYTES as SPEC_BYTES
    from suite.report.names import NAME_BYTES, report_name

    names = [report_name("s" * 80, "p" * 80, {"data.root": "/data/" + "x" * 200}),  # cut, ASCII
             report_name("q", "p" * 40, {"data.name": "é" * 99}),  # typed-safe, 152 characters but 251 bytes
             report_name("é" * 50, "p" * 40, {"data.root": "x" * 300})]  # a spec of 50 letters and 100 bytes
    assert all(re.search(r"~[0-9a-f]{8}$", name) for name in names), names
    # a spec and a preset of the most bytes a spec file may give them, with any override or metric: names of
    # 210 bytes, whose figures were too long a name for the file system, before spec names were capped at 94
    names += [report_name("s" * SPEC_BYTES, "é" * (SPEC_BYTES // 2), {"a": "/"}),
              report_name("s" * SPEC_BYTES, "p" * SPEC_BYTES, metrics=["top5_err"])]
    for name in names:
        assert len(name.encode()) <= NAME_BYTES, name
        with files.replace(tmp_path / f"{name}_tradeoff.svg") as f:  # its temporary: ~50 bytes more
            f.write("<svg/>")
    fits = "q+model.tag=" + "x" * (NAME_BYTES - 12)
    assert report_name("q", None, {"model.tag": "x" * (NAME_BYTES - 12)}) == fits  # as typed: it fits
    over = report_name("q", None, {"model.tag": "x" * (NAME_BYTES - 11)})
    assert over.startswith("q+model.tag=x") and len(over.encode()) == NAME_BYTES and "~" in over
    # cut to the same few bytes ("+a=1"), the overrides a=1 b=2 and a="1b=2" are still two names
    spec, preset = "s" * 100, "p" * 85
    assert report_name(spec, preset, {"a": 1, "b": "2/"}) != report_name(spec, preset, {"a": "1b=2/"})
