"""suite bench: statistics, comparison table and verdicts, baselines, and real runs of
pytest-benchmark in small throwaway projects (a slowed op is flagged, an unchanged one is not).

No test asserts a speed of this machine: real measurements are only compared with themselves or
with the same workload plus a sleep several times longer than the workload.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from suite.bench import compare, interleave, revs, run
from suite.bench.compare import Measurement, Run
from suite.bench.interleave import relative_info
from suite.bench.stats import Summary, p_greater
from suite.bench.timer import synced_perf_counter
from suite.cli import main
from suite.errors import SuiteError, SuiteWarning

from processes import alive, wait_for

CONFTEST = Path(__file__).parent / "benchmarks" / "conftest.py"
REF = "convstack-v1/infer"


# ------------------------------------------------------------------------------------ statistics
def test_summary_is_median_and_inclusive_iqr():
    assert Summary.of([5.0, 1.0, 3.0, 2.0, 4.0]) == Summary(3.0, 2.0, 5)  # q1 = 2, q3 = 4
    assert Summary.of([7.0]) == Summary(7.0, 0.0, 1)
    with pytest.raises(ValueError):
        Summary.of([])


def test_mann_whitney_exact_and_approximate():
    low, high = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], [11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0]
    assert p_greater(high, low) == pytest.approx(1 / math.comb(14, 7))  # every ordering but one is less extreme
    assert p_greater(low, high) == 1.0
    # x = 2 is below two y's: U = 10 of 12 pairs; orderings with U = 12, 11, 10: 1 + 1 + 2 of C(7, 3) = 35
    assert p_greater([2.0, 5.0, 6.0, 7.0], [1.0, 3.0, 4.0]) == pytest.approx(4 / 35)
    # normal approximation (n * m > 400) agrees in the tails, and is symmetric
    x, y = [float(i) for i in range(30)], [i + 0.5 for i in range(30)]
    assert p_greater(y, x) + p_greater(x, y) == pytest.approx(1.0, abs=0.05)
    assert p_greater([i + 100.0 for i in x], x) < 1e-9
    assert p_greater([1.0, 1.0], [1.0, 1.0]) == 1.0  # all tied: no evidence either way


def test_relative_info_pairs_rounds():
    info = relative_info([0.2, 0.4, 0.9], [0.1, 0.2, 0.3], REF)
    assert info["ratios"] == pytest.approx([2.0, 2.0, 3.0])
    assert info["ratio"] == pytest.approx(2.0)  # median of per-round ratios, not 0.4 / 0.2
    assert (info["target_median"], info["reference_median"]) == pytest.approx((0.4, 0.2))
    assert info["reference"] == REF
    with pytest.raises(ValueError):
        relative_info([0.1], [0.1, 0.2], REF)


def test_a_short_benchmark_gets_as_many_more_rounds_as_fit_in_max_time():
    """A few-ms benchmark varies most from round to round, and 15 rounds of it took under a second:
    by default it gets as many rounds as fit in the time (up to MAX_ROUNDS); a long one keeps its minimum."""
    assert interleave.rounds_within(15, 3.0, 0.1) == 30
    assert interleave.rounds_within(15, 3.0, 0.5) == 15  # 6 would fit: the minimum stands
    assert interleave.rounds_within(15, 3.0, 0.07) == 42  # 42.9 fit: whole rounds only, not 43
    assert interleave.rounds_within(15, 3.0, 0.001) == interleave.MAX_ROUNDS == 100
    assert interleave.rounds_within(120, 3.0, 0.001) == 120  # an explicit minimum above the cap stands too
    assert interleave.rounds_within(15, 0.0, 0.001) == 15  # no time given: the rounds asked for
    assert interleave.rounds_within(15, 3.0, 0.0) == 100  # a step too short for the clock


class _Pedantic:
    """The part of pytest-benchmark's fixture benchmark_interleaved uses: pedantic's rounds, timed."""

    enabled = True

    def __init__(self) -> None:
        self.extra_info: dict = {}
        self.rounds = 0

    def pedantic(self, target, setup, teardown, rounds):
        self.rounds, data = rounds, []
        for _ in range(rounds):
            setup()
            start = synced_perf_counter()
            target()
            data.append(synced_perf_counter() - start)
            teardown()
        self.stats = type("Stats", (), {"stats": type("Data", (), {"data": data})})


@pytest.mark.parametrize(("max_time", "most"), [(0.0, 7), (0.2, 50)])
def test_interleaved_rounds_are_sized_by_a_timed_round(max_time, most):
    """Steps of 2 ms and more (a loaded machine only makes them longer) in 0.2 s: more than 7 rounds,
    at most 0.2 / 4 ms; without a time, exactly the 7 asked for."""
    import time

    fake = _Pedantic()
    interleave.benchmark_interleaved(fake, lambda: time.sleep(0.002), lambda: time.sleep(0.002), reference_id=REF,
                                     rounds=7, max_time=max_time)
    assert (fake.rounds == 7) if max_time == 0 else (7 < fake.rounds <= most)
    assert len(fake.extra_info["ratios"]) == fake.rounds


def test_a_round_is_sized_with_the_reference_step_it_also_runs():
    """A short benchmark beside a long reference (the aggregation op's training step, ~35 ms, beside
    the reference's training step, several times that) gets as many rounds as fit with both steps:
    the time is the rounds' wall time. Sized by its own step alone it would take 100 rounds here,
    each as long as the reference, far past `max_time`."""
    import time

    fake = _Pedantic()
    interleave.benchmark_interleaved(fake, lambda: time.sleep(0.001), lambda: time.sleep(0.02), reference_id=REF,
                                     rounds=7, max_time=0.42)
    assert 7 <= fake.rounds <= 20  # 0.42 s / (20 ms + 1 ms) at most: sleeps only overrun


def test_the_last_warm_up_round_sizes_the_rounds_not_the_first():
    """The first untimed round fills caches and initialises lazily (here: 0.3 s once); sized by
    it, rounds of 4 ms would get only the minimum."""
    import time

    calls = []

    def target():
        time.sleep(0.002 if calls else 0.3)
        calls.append(None)

    fake = _Pedantic()
    interleave.benchmark_interleaved(fake, target, lambda: time.sleep(0.002), reference_id=REF, rounds=7, max_time=0.2)
    assert 7 < fake.rounds <= 50


def test_rounds_adapt_by_default_and_are_exact_when_given(tmp_path, monkeypatch):
    """`suite bench` passes its time per benchmark to pytest-benchmark's --benchmark-max-time (the
    conftest sizes the rounds by it); `--rounds N` is N rounds."""
    seen = []

    def fake_measure(root, label, **options):
        seen.append(options)
        return Run(label, "c", {"t": Measurement.from_samples("t", _spread(1.0, n=8))})

    monkeypatch.setattr(run, "measure", fake_measure)
    monkeypatch.setattr(revs, "measure", fake_measure)
    assert main(["bench", "--storage", str(tmp_path)]) == 0
    assert main(["bench", "--rounds", "20", "--storage", str(tmp_path)]) == 0
    assert [(o["rounds"], o["max_time"]) for o in seen] == [(15, run.ROUNDS_TIME_S), (20, 0.0)]
    command = run.pytest_command(Path("run.json"), rounds=15, max_time=3.0)
    assert "--benchmark-min-rounds=15" in command and "--benchmark-max-time=3.0" in command


def test_an_installed_suite_says_which_package_ran_and_how_to_bench_a_checkout(tmp_path, monkeypatch, capsys):
    """The `suite` of a `pip install` runs from any folder, a clone's too, and carries no benchmarks:
    'run from a source checkout' was no help to someone in one. The error names the package that
    ran and says how to run the clone's."""
    installed = tmp_path / "site-packages" / "suite"
    installed.mkdir(parents=True)
    monkeypatch.setattr(run, "PACKAGE_DIR", installed)
    for argv in (["bench"], ["bench", "--compare-rev", "HEAD"]):
        assert main(argv) == 2
        said = " ".join(capsys.readouterr().err.split())
        assert f"the suite that ran is {installed}, with no tests/benchmarks/ beside it" in said
        assert "pip install -e '.[dev]'" in said


def test_the_real_conftest_gets_its_rounds_from_max_time(tmp_path):
    """`max_time` goes from run_benchmarks through --benchmark-max-time to the conftest, which sizes
    the rounds by it; each link was checked alone (the conftest by its text), so a link dropped
    passed. A round of the aggregation op and the reference takes tens of ms: 1 s fits more than 2."""
    (measured,) = run.measure(_project(tmp_path / "proj"), "x", rounds=2, max_time=1.0, quiet=True).measurements.values()
    assert len(measured.times) == len(measured.ratios) > 2


def test_the_help_and_the_readme_give_the_rounds_used(capsys):
    """The help wrote 15 rounds and 3 s out beside the constants that set them, free to disagree."""
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    assert (f"at least {run.DEFAULT_ROUNDS}, and more for a short benchmark, as many as fit in {run.ROUNDS_TIME_S:g} s; "
            f"with --compare-rev at least {revs.DEFAULT_ROUNDS} per block") in shown
    assert f"(default: {revs.DEFAULT_BLOCKS})" in shown
    assert f"at least {run.DEFAULT_ROUNDS} rounds, and a short one as many more as fit in {run.ROUNDS_TIME_S:g} s " \
           f"(up to {interleave.MAX_ROUNDS};" in readme


def test_synced_timer_synchronises_cuda_once_initialised(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: calls.append(a))
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    t0 = synced_perf_counter()
    assert calls == []  # CPU only: a plain clock read
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    assert synced_perf_counter() >= t0
    assert calls == [()]


def test_benchmarks_on_cuda_time_autotuned_convolutions_as_training_does(monkeypatch):
    """`suite train` and `suite profile` run cuDNN autotuned; the benchmarks timed without it, i.e.
    other convolution algorithms than the ones users run. (No GPU here: CUDA's presence is faked.)"""
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert interleave.bench_device() == torch.device("cuda") and torch.backends.cudnn.benchmark is True
    assert "interleave.bench_device()" in CONFTEST.read_text()  # the benchmarks' device fixture is it
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert interleave.bench_device() == torch.device("cpu") and torch.backends.cudnn.benchmark is False


# ------------------------------------------------------------------------------ synthetic compare
def _bench(name, times, ratios=None, reference=REF, data=True):
    extra = {}
    if ratios is not None:
        extra = {"reference": reference, "ratio": statistics.median(ratios), "ratio_iqr": Summary.of(ratios).iqr}
        if data:
            extra["ratios"] = list(ratios)
    s = Summary.of(times)
    stats = {"median": s.median, "iqr": s.iqr, "rounds": len(times), **({"data": list(times)} if data else {})}
    return {"name": name, "fullname": f"tests/benchmarks/test_x.py::{name}", "stats": stats, "extra_info": extra}


def _run_json(benches, node="vm-a", commit="abc1234567890", dirty=False):
    return {"machine_info": {"node": node, "device_name": "Xeon", "threads": 1, "torch_version": "2.4.0"},
            "commit_info": {"id": commit, "dirty": dirty}, "benchmarks": benches}


def _spread(center, n=10, step=0.01):
    """n distinct values around `center`, +-4.5 steps: deterministic rounds for synthetic runs."""
    return [center * (1 + step * (i - (n - 1) / 2)) for i in range(n)]


def _rows_by_test(rows):
    return {r.name.split("::")[1]: r for r in rows}


def test_compare_verdicts_and_table():
    base = compare.run_from_json(_run_json([
        _bench("test_slow", _spread(0.010), _spread(1.0)),
        _bench("test_same", _spread(0.020), _spread(2.0)),
        _bench("test_fast", _spread(0.030), _spread(3.0)),
        _bench("test_noisy", _spread(0.010), _spread(1.0, step=0.2)),
        _bench("test_gone", _spread(0.010), _spread(1.0)),
        _bench("test_plain", _spread(0.100)),  # no reference: absolute times
    ]), "base")
    current = compare.run_from_json(_run_json([
        # absolute time doubled but so did the reference: ratio 1.5 is what counts
        _bench("test_slow", _spread(0.030), _spread(1.5)),
        _bench("test_same", _spread(0.080), _spread(2.1)),  # 5 % on the ratio: within 10 %
        _bench("test_fast", _spread(0.030), _spread(2.4)),
        _bench("test_noisy", _spread(0.010), _spread(1.2, step=0.2)),  # 20 % but the rounds overlap
        _bench("test_plain", _spread(0.125)),
        _bench("test_new", _spread(0.010), _spread(1.0)),
    ], commit="def4567890123", dirty=True), "now")
    rows = _rows_by_test(compare.compare(base, current))
    assert list(rows) == ["test_slow", "test_same", "test_fast", "test_noisy", "test_plain", "test_new"]
    assert {k: r.verdict for k, r in rows.items()} == {
        "test_slow": "slower", "test_same": "same", "test_fast": "faster", "test_noisy": "inconclusive",
        "test_plain": "slower", "test_new": "new"}
    assert rows["test_slow"].basis == "ratio" and rows["test_slow"].change == pytest.approx(1.5)
    assert rows["test_slow"].p == pytest.approx(1 / math.comb(20, 10))
    assert rows["test_same"].change == pytest.approx(1.05) and rows["test_same"].p is None
    assert rows["test_fast"].change == pytest.approx(0.8)
    assert rows["test_noisy"].p > compare.ALPHA
    assert rows["test_plain"].basis == "time" and rows["test_plain"].change == pytest.approx(1.25)
    assert rows["test_new"].base is None and rows["test_new"].change is None
    assert [r.name for r in compare.failures(rows.values())] == ["tests/benchmarks/test_x.py::test_slow",
                                                                "tests/benchmarks/test_x.py::test_plain"]
    # a 30 % threshold forgives the 25 % absolute change but not the 50 % one
    loose = _rows_by_test(compare.compare(base, current, threshold=0.30))
    assert [k for k, r in loose.items() if r.verdict == "slower"] == ["test_slow"]

    table = compare.render(list(rows.values()), base, current, 0.10)
    lines = table.splitlines()
    assert lines[0] == "baseline: base (commit abc1234567) on Xeon, 1 threads, torch 2.4.0 on vm-a"
    assert lines[1] == "current:  now (commit def4567890+dirty) on Xeon, 1 threads, torch 2.4.0 on vm-a"
    assert lines[2].startswith("ratio: time / time of the reference workload (convstack-v1/infer) in the same round")
    assert "same: a change within 10%;" in lines[3] and "a change beyond 10% with p < 0.001" in lines[3]
    start = lines.index(next(line for line in lines if line.startswith("| benchmark")))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    assert header == ["benchmark", "unit", "base median", "base IQR", "median", "IQR", "change", "p", "verdict"]
    cells = {c[0]: c for c in ([x.strip() for x in line.strip("|").split("|")] for line in lines[start + 2:start + 8])}
    iqr = f"{Summary.of(_spread(1.5)).iqr:.3g}"
    assert cells["test_x.py::test_slow"] == ["test_x.py::test_slow", "ratio", "1",
                                             f"{Summary.of(_spread(1.0)).iqr:.3g}",
                                             "1.5", iqr, "1.500", f"{1 / math.comb(20, 10):.2g}", "slower"]
    assert cells["test_x.py::test_plain"][1:4] == ["ms", "100", f"{Summary.of(_spread(0.1)).iqr * 1e3:.3g}"]
    assert cells["test_x.py::test_plain"][4] == "125"
    assert cells["test_x.py::test_new"][2:4] == ["", ""] and cells["test_x.py::test_new"][-1] == "new"
    assert lines[-1] == "(1 baseline benchmark was not run)"  # test_gone


def test_a_change_of_exactly_the_threshold_is_same():
    """'Above 1 + threshold' is slower, 'below 1 - threshold' faster: the bounds themselves are within
    (binary-exact values, so no rounding decides). The rounds are fully apart: only the bounds keep them same."""
    low, high = [float(i) for i in range(10)], [float(i + 100) for i in range(10)]
    assert compare.judge(low, high, 1.25, 0.25) == ("same", None)
    assert compare.judge(high, low, 0.75, 0.25) == ("same", None)
    assert compare.judge(low, high, 1.25 + 2**-20, 0.25)[0] == "slower"
    assert compare.judge(high, low, 0.75 - 2**-20, 0.25)[0] == "faster"


def test_compare_other_machine_and_absolute():
    base = compare.run_from_json(_run_json([_bench("test_a", _spread(0.01), _spread(1.0)),
                                            _bench("test_b", _spread(0.01))], node="vm-a"), "base")
    other = compare.run_from_json(_run_json([_bench("test_a", _spread(0.02), _spread(1.0)),
                                             _bench("test_b", _spread(0.02))], node="vm-b"), "now")
    rows = _rows_by_test(compare.compare(base, other))
    # ratios carry over to a machine twice as slow; absolute times are not judged there
    assert (rows["test_a"].basis, rows["test_a"].verdict) == ("ratio", "same")
    assert (rows["test_b"].basis, rows["test_b"].verdict) == ("time", "other machine")
    forced = _rows_by_test(compare.compare(base, other, absolute=True))
    assert [(r.basis, r.verdict) for r in forced.values()] == [("time", "slower")] * 2
    assert "vm-a -> on vm-b: ratios may move with that too, and absolute times from two different machines are judged" \
        in compare.render(list(forced.values()), base, other, 0.1)


@pytest.mark.parametrize(("key", "value", "shown"), [("torch_version", "2.3.0", "torch 2.4.0 -> torch 2.3.0"),
                                                     ("threads", 4, "1 threads -> 4 threads"),
                                                     ("torch_version", None, "torch 2.4.0 -> no torch_version"),
                                                     ("cuda_version", "12.1", "no cuda_version -> CUDA 12.1")])
def test_a_baseline_from_another_torch_or_thread_count_is_no_same_machine(key, value, shown):
    """Absolute times depend on torch's kernels and on the threads as much as on the CPU: such a
    baseline's times are not judged as the same machine's, and the table says what differs."""
    same_host = [_bench("test_a", _spread(0.01), _spread(1.0)), _bench("test_b", _spread(0.01))]
    base = compare.run_from_json(_run_json(same_host), "base")
    data = _run_json([_bench("test_a", _spread(0.02), _spread(1.0)), _bench("test_b", _spread(0.02))])
    now = compare.run_from_json({**data, "machine_info": {**data["machine_info"], key: value}}, "now")
    rows = _rows_by_test(compare.compare(base, now))
    assert (rows["test_a"].verdict, rows["test_b"].verdict) == ("same", "other machine")
    assert f"note: the runs differ in {shown}: ratios may move with that too, and absolute times are not judged " \
           "(other machine)" in compare.render(list(rows.values()), base, now, 0.1)


def test_compare_needs_the_same_reference_for_ratios():
    older = _bench("test_a", _spread(0.01), _spread(1.0), reference="convstack-v0/infer")
    base = compare.run_from_json(_run_json([older]), "b")
    now = compare.run_from_json(_run_json([_bench("test_a", _spread(0.01), _spread(2.0))]), "n")
    (row,) = compare.compare(base, now)
    assert (row.basis, row.verdict) == ("time", "same")


def test_the_machine_string_is_the_setup_shown_and_old_baselines_still_load(tmp_path):
    """A run's machine string is its setup shown (it was stored beside it, free to disagree); a baseline
    saved before the conftest recorded device, threads, heap and torch (pytest-benchmark's own
    machine_info alone) still loads, lists and gates by its ratios."""
    old = _run_json([_bench("test_a", _spread(0.01), _spread(1.0)), _bench("test_b", _spread(0.01))])
    old["machine_info"] = {"node": "vm-a", "processor": "x86_64", "machine": "x86_64", "python_version": "3.11.2",
                           "cpu": {"brand_raw": "Intel Xeon", "count": 2}}
    path = tmp_path / "m" / "0001_old.json"
    path.parent.mkdir()
    path.write_text(json.dumps({**old, "datetime": "2025-06-01T00:00:00"}))
    (listed,) = run.list_baselines(tmp_path)
    assert (listed.error, listed.machine, listed.count) == (None, "Intel Xeon on vm-a", 2)
    base = compare.load_run(run.find_baseline(tmp_path, "old"), "old")
    assert base.setup == {"device": "Intel Xeon", "node": "on vm-a"} and base.machine == "Intel Xeon on vm-a"
    assert Run("x").machine == "?"  # nothing known, as a revision without benchmarks
    now = compare.run_from_json(_run_json([_bench("test_a", _spread(0.02), _spread(2.0)),
                                           _bench("test_b", _spread(0.01))]), "now")
    rows = _rows_by_test(compare.compare(base, now))
    assert [(r.basis, r.verdict) for r in rows.values()] == [("ratio", "slower"), ("time", "other machine")]
    assert "note: the runs differ in Intel Xeon -> Xeon; no threads -> 1 threads; no torch_version -> torch 2.4.0" \
        in compare.render(list(rows.values()), base, now, 0.1)
    moved = dataclasses.replace(now, setup={**now.setup, "node": "on vm-b"})
    assert moved.machine == "Xeon, 1 threads, torch 2.4.0 on vm-b"


def test_files_without_raw_samples_cannot_gate(tmp_path):
    """Medians alone would flag noise as `slower`: a baseline without raw samples is refused at load."""
    for data, key in [(_bench("test_a", _spread(0.01), _spread(1.0), data=False), "extra_info.ratios"),
                      (_bench("test_a", _spread(0.01), data=False), "stats.data")]:
        if key == "extra_info.ratios":  # times kept, ratios not
            data["stats"]["data"] = _spread(0.01)
        path = tmp_path / "old.json"
        path.write_text(json.dumps(_run_json([data])))
        with pytest.raises(SuiteError) as err:
            compare.load_run(path)
        where = f"benchmarks[tests/benchmarks/test_x.py::test_a].{key}"
        assert str(err.value).startswith(f"{path}: {where}: no raw samples")
        assert "suite bench --save" in str(err.value)


def test_pool_concatenates_rounds():
    a = Run("x", "c", {"t": Measurement.from_samples("t", [1.0, 2.0], [0.5, 0.6], REF)})
    b = Run("x", "c", {"t": Measurement.from_samples("t", [3.0], [0.7], REF),
                            "u": Measurement.from_samples("u", [4.0])})
    a.setup.update(device="Xeon", node="on vm")
    pooled = compare.pool([a, b], "both")
    assert pooled.setup == a.setup  # compared by it: an empty setup differed from every baseline's
    assert pooled.measurements["t"].times == (1.0, 2.0, 3.0) and pooled.measurements["t"].ratios == (0.5, 0.6, 0.7)
    assert pooled.measurements["t"].relative == Summary.of([0.5, 0.6, 0.7])
    assert pooled.measurements["u"].relative is None and pooled.label == "both"


def test_parse_threshold():
    assert compare.parse_threshold("10%") == pytest.approx(0.10)
    assert compare.parse_threshold(" 2.5 % ") == pytest.approx(0.025)
    for bad in ("ten", "-5%", "0%", "10%%", "0.05", "10"):  # a bare number: a fraction or a percentage?
        with pytest.raises(SuiteError, match="--fail-above"):
            compare.parse_threshold(bad)


@pytest.mark.parametrize("text", ["{not json", "[" * 100_000 + "]" * 100_000])  # the second: a RecursionError
def test_load_run_reports_the_file(tmp_path, text):
    bad = tmp_path / "broken.json"
    bad.write_text(text)
    with pytest.raises(SuiteError, match="broken.json"):
        compare.load_run(bad)


def _edited(change):
    """A valid two-round-interleaved run, then `change(data)` applied: a hand-edited file."""
    data = _run_json([_bench("test_a", _spread(0.01), _spread(1.0))])
    change(data)
    return data


BAD_FILES = {  # what the hand edit does: (the edit, the key the error names)
    "ratios all 0": (lambda d: d["benchmarks"][0]["extra_info"].update(ratios=[0.0] * 10), "test_a].extra_info.ratios"),
    "a NaN ratio": (lambda d: d["benchmarks"][0]["extra_info"]["ratios"].__setitem__(3, math.nan),
                    "test_a].extra_info.ratios"),
    "negative times": (lambda d: d["benchmarks"][0]["stats"].update(data=[-1.0] * 10), "test_a].stats.data"),
    "ratios and rounds differ": (lambda d: d["benchmarks"][0]["extra_info"]["ratios"].pop(), "extra_info.ratios"),
    "extra_info a list": (lambda d: d["benchmarks"][0].update(extra_info=[1]), "test_a].extra_info"),
    "no reference id": (lambda d: d["benchmarks"][0]["extra_info"].pop("reference"), "extra_info.reference"),
    "machine_info a string": (lambda d: d.update(machine_info="vm-a"), "machine_info"),
    "commit_info a string": (lambda d: d.update(commit_info="abc"), "commit_info"),
    "benchmarks null": (lambda d: d.update(benchmarks=None), "benchmarks"),
    "no fullname": (lambda d: d["benchmarks"][0].pop("fullname"), "benchmarks[0].fullname"),
}


@pytest.mark.parametrize("edit", BAD_FILES, ids=lambda name: name.replace(" ", "-"))
def test_malformed_files_are_errors_naming_file_and_key(tmp_path, edit):
    change, key = BAD_FILES[edit]
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(_edited(change)))  # NaN is written as NaN, which json reads back
    with pytest.raises(SuiteError) as err:
        compare.load_run(path)
    assert err.value.file == str(path) and err.value.key.endswith(key), str(err.value)
    assert "Error" not in err.value.message  # a message of ours, not a Python exception's text


def _no_benchmarks(*args, **kwargs):
    raise AssertionError("the benchmarks ran although the command was bound to fail")


def test_a_bad_baseline_or_storage_fails_before_the_benchmarks_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run, "measure", _no_benchmarks)
    edited = tmp_path / "nofullname.json"
    edited.write_text(json.dumps(_edited(BAD_FILES["no fullname"][0])))
    assert main(["bench", "--compare", str(edited), "--storage", str(tmp_path)]) == 2
    assert f"error: {edited}: benchmarks[0].fullname: expected the benchmark's test id" in capsys.readouterr().err
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"benchmarks": []}))
    assert main(["bench", "--compare", str(empty), "--storage", str(tmp_path)]) == 2
    assert f"error: {empty}: --compare: the baseline holds no benchmarks" in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("")
    for argv in (["--save", "x"], ["--list"], ["--compare", "main"], ["--save", "x", "--storage", str(afile / "sub")]):
        assert main(["bench", "--storage", str(afile), *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {afile}") and "--storage: not a directory" in err


# ------------------------------------------------------------------------------------- baselines
def _save(storage, machine_dir, file_name, when, commit="abc"):
    path = storage / machine_dir / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _run_json([_bench("test_a", _spread(0.01), _spread(1.0))], commit=commit)
    path.write_text(json.dumps({**data, "datetime": when}))
    return path


def test_baselines_are_found_by_name_newest_first(tmp_path):
    old = _save(tmp_path, "Linux-CPython-3.11-64bit", "0001_main.json", "2026-01-01T00:00:00")
    new = _save(tmp_path, "Linux-CPython-3.12-64bit", "0001_main.json", "2026-02-01T00:00:00")
    _save(tmp_path, "Linux-CPython-3.11-64bit", "0002_feature-x.json", "2026-01-15T00:00:00")
    (tmp_path / "Linux-CPython-3.11-64bit" / "notes.json").write_text("{}")  # not a saved run
    listed = run.list_baselines(tmp_path)
    assert [(b.name, b.path) for b in listed] == [("main", old), ("feature-x", listed[1].path), ("main", new)]
    assert listed[0].count == 1 and listed[0].machine == "Xeon, 1 threads, torch 2.4.0 on vm-a"
    assert run.find_baseline(tmp_path, "main") == new
    assert run.find_baseline(tmp_path, str(old)) == old  # a file path works too
    _save(tmp_path, "Linux-CPython-3.11-64bit", "0003_v1.json.json", "2026-01-16T00:00:00")
    assert run.find_baseline(tmp_path, "v1.json").name == "0003_v1.json.json"  # a name may end in .json
    with pytest.raises(SuiteError) as err:  # a path that is not there: said so, not "unknown baseline"
        run.find_baseline(tmp_path, str(tmp_path / "nothere.json"))
    assert err.value.file == str(tmp_path / "nothere.json") and "no such file" in err.value.message
    with pytest.raises(SuiteError) as err:
        run.find_baseline(tmp_path, "mian")
    assert "did you mean 'main'" in str(err.value) and "--compare" in str(err.value)


def test_an_unreadable_baseline_is_reported_never_skipped(tmp_path, capsys):
    machine = "Linux-CPython-3.11-64bit"
    good = _save(tmp_path, machine, "0001_main.json", "2026-01-01T00:00:00")
    broken = tmp_path / machine / "0002_main.json"
    broken.write_text('{"benchmarks": [')  # the newest 'main', cut short
    edited = _save(tmp_path, machine, "0003_other.json", "2026-01-02T00:00:00")
    edited.write_text(json.dumps({**json.loads(edited.read_text()), "machine_info": "vm-a"}))
    listed = {b.path: b for b in run.list_baselines(tmp_path)}
    assert listed[good].error is None
    assert listed[broken].error.startswith("not a readable pytest-benchmark JSON file")
    assert listed[edited].error.startswith("machine_info: expected an object")
    with pytest.raises(SuiteError) as err:  # not the older, readable 'main'
        run.find_baseline(tmp_path, "main")
    assert err.value.file == str(broken) and "repair or delete" in err.value.message
    assert main(["bench", "--compare", "main", "--storage", str(tmp_path)]) == 2
    assert f"error: {broken}: --compare: baseline 'main' does not load" in capsys.readouterr().err
    assert main(["bench", "--list", "--storage", str(tmp_path)]) == 0
    out, err_text = capsys.readouterr()
    assert f"main                 unreadable           ?                  ?  {broken}" in out
    assert "\n1 baseline in " in out and "2 unreadable" in out
    assert f"warning: {broken}: unreadable baseline 'main'" in err_text and f"warning: {edited}" in err_text
    with pytest.raises(SuiteError) as err:  # the names offered are those that load
        run.find_baseline(tmp_path, "nosuch")
    assert "(valid: main)" in str(err.value)
    good.unlink()  # the only 'main' is the broken one: named, not "unknown baseline (valid: )"
    with pytest.raises(SuiteError, match="does not load") as err:
        run.find_baseline(tmp_path, "main")
    assert err.value.file == str(broken)


def test_rows_that_cannot_reach_significance_say_so():
    """3 + 3 rounds (the report benchmarks' fixed rounds): p >= 1 / C(6, 3) = 0.05 whatever happens."""
    base = compare.run_from_json(_run_json([_bench("test_r", _spread(1.0, n=3))]), "b")
    now = compare.run_from_json(_run_json([_bench("test_r", _spread(2.0, n=3))]), "n")
    (row,) = compare.compare(base, now)
    assert (row.verdict, row.p) == ("too few rounds", pytest.approx(1 / 20))
    assert compare.failures([row]) == []


def test_too_few_rounds_to_flag_anything_are_refused_before_running(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run, "measure", _no_benchmarks)
    monkeypatch.setattr(revs, "measure", _no_benchmarks)
    few = tmp_path / "m" / "0001_few.json"
    few.parent.mkdir()
    few.write_text(json.dumps(_run_json([_bench("test_a", _spread(0.01, n=3), _spread(1.0, n=3))])))
    # 15 rounds now against 3: the smallest p is 1 / C(18, 3) = 0.0012; 17 rounds give 1 / C(20, 3) = 0.00088
    assert main(["bench", "--compare", "few", "--storage", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {few}: --rounds: baseline 'few' has 3 rounds of test_x.py::test_a")
    assert "use --rounds 17 or more" in err
    _save(tmp_path, "m", "0002_main.json", "2026-01-01T00:00:00")  # 10 rounds: 3 now give 1 / C(13, 3)
    assert main(["bench", "--compare", "main", "--rounds", "3", "--storage", str(tmp_path)]) == 2
    assert "use --rounds 4 or more" in capsys.readouterr().err
    assert main(["bench", "--compare-rev", "HEAD", "--blocks", "1", "--rounds", "3"]) == 2  # 3 + 3: p >= 0.05
    assert "--rounds: --blocks 1 x --rounds 3 gives 3 rounds per benchmark and tree" in capsys.readouterr().err
    # saving few rounds is allowed, with a warning (child.run stubbed: nothing runs)
    monkeypatch.setattr(run.processes, "run", lambda command, **kw: subprocess.CompletedProcess(command, 0, "", ""))
    with pytest.warns(SuiteWarning, match="cannot gate a --compare of 15 rounds.*needs --rounds 17 or more"):
        run.run_benchmarks(tmp_path, tmp_path / "run.json", rounds=3, max_time=0.0, save="few")


def test_threshold_is_printed_as_given(tmp_path, monkeypatch, capsys):
    _save(tmp_path, "m", "0001_main.json", "2026-01-01T00:00:00")
    slower = compare.run_from_json(_run_json([_bench("test_a", _spread(0.01, n=15), _spread(1.2, n=15))]), "now")
    monkeypatch.setattr(run, "measure", lambda *args, **kwargs: slower)
    assert main(["bench", "--compare", "main", "--fail-above", "2.5%", "--storage", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "a change beyond 2.5% with p" in out and "REGRESSION: 1 benchmark(s) more than 2.5% slower than main" in out
    assert "a change beyond 0.5% with" in compare.render([], slower, slower, compare.parse_threshold("0.5%"))


def test_compare_rev_leaves_out_the_slurm_benchmarks(tmp_path, monkeypatch):
    """Each run of test_slurm_submit.py leaves 2,000 job records: 2 x blocks runs would pass MaxJobCount.
    And a tree's blocks take about the time one plain run takes: each gets max_time / blocks."""
    repo = _project(tmp_path / "repo")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "op")
    seen = []

    def fake_measure(root, label, **options):
        seen.append(options)
        return Run(label, "c", {"t": Measurement.from_samples("t", _spread(1.0, n=7))})

    monkeypatch.setattr(revs, "measure", fake_measure)
    revs.compare_rev(repo, "HEAD", blocks=2, rounds=7, max_time=3.0, log=lambda line: None)
    assert [options["markers"] for options in seen] == ["not slurm"] * 4
    assert [options["max_time"] for options in seen] == [1.5] * 4  # a tree's blocks share the time
    command = run.pytest_command(Path("run.json"), rounds=7, max_time=0.0, markers=revs.MARKERS)
    assert command[-2:] == ["-m", "not slurm"]


def test_cli_rejects_bad_options_before_running(tmp_path, capsys):
    assert main(["bench", "--compare", "nothing", "--storage", str(tmp_path)]) == 2
    assert main(["bench", "--compare-rev", "HEAD", "--save", "x"]) == 2
    assert main(["bench", "--blocks", "3"]) == 2
    assert main(["bench", "--save", "a/b", "--storage", str(tmp_path)]) == 2
    assert main(["bench", "--fail-above", "lots"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path}: --compare: no baseline 'nothing': the storage holds no readable baseline" in err
    assert "--save: baseline names are" in err and "--blocks" in err
    assert main(["bench", "--compare", "main", "--storage", str(tmp_path / "nowhere")]) == 2
    assert "no baseline 'main': the storage is no directory; save one with `suite bench --save main`" \
        in capsys.readouterr().err


def test_compare_rev_refuses_a_storage_it_would_not_use(tmp_path, monkeypatch, capsys):
    """--compare-rev saves and reads no baseline: its --storage was accepted and ignored."""
    monkeypatch.setattr(revs, "compare_rev", lambda *args, **kwargs: pytest.fail("the benchmarks ran"))
    assert main(["bench", "--compare-rev", "HEAD", "--storage", str(tmp_path)]) == 2
    assert "error: --storage: --compare-rev measures both sides itself and reads or saves no baseline: " \
           "no --storage" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--save", "x"], ["--compare-rev", "HEAD"]])
def test_list_refuses_the_options_of_a_measurement(tmp_path, capsys, option):
    """--list measures nothing: a --save or --compare-rev given with it was ignored, and the list printed."""
    assert main(["bench", "--list", "--storage", str(tmp_path), *option]) == 2
    out, err = capsys.readouterr()
    assert f"error: {option[0]}: --list lists the saved baselines and measures nothing: no {option[0]}" in err
    assert out == ""


# --------------------------------------------------------------------- real runs, small projects
OP_MODULE = """\
import time

import torch

from suite.ops import aggregation

DELAY = {delay}
x = torch.randn(1, 64, 56, 56, generator=torch.Generator().manual_seed(0))
w = torch.randn(1, 8, 49, 56 * 56, generator=torch.Generator().manual_seed(1)).softmax(2)


def op():
    if DELAY:
        time.sleep(DELAY)
    with torch.inference_mode():
        return aggregation(x, w, 7)
"""

OP_BENCHMARK = """\
import os
import time

import pytest

import benchop


@pytest.fixture
def slowed(monkeypatch):
    # the deliberate regression: sleep $SLEEP_S seconds in every call of the op
    delay = float(os.environ.get("SLEEP_S", "0"))
    if delay:
        op = benchop.op
        monkeypatch.setattr(benchop, "op", lambda: (time.sleep(delay), op())[1])


def test_op(interleaved_benchmark, slowed):
    interleaved_benchmark(lambda: benchop.op(), "infer")
"""


def _project(root: Path, delay: float = 0.0) -> Path:
    """A checkout in miniature: benchop.py (SAN's aggregation op) and one interleaved benchmark
    of it, with the suite's real benchmark conftest."""
    bench = root / "tests" / "benchmarks"
    bench.mkdir(parents=True)
    shutil.copy(CONFTEST, bench / "conftest.py")
    (bench / "test_op.py").write_text(OP_BENCHMARK)
    (root / "benchop.py").write_text(OP_MODULE.format(delay=delay))
    return root


def test_slowed_op_is_flagged_and_an_unchanged_one_is_not(tmp_path, monkeypatch, capsys):
    project, storage = _project(tmp_path / "proj"), tmp_path / "store"
    monkeypatch.setattr(run, "project_root", lambda: project)
    assert main(["bench", "--save", "base", "--rounds", "24", "--storage", str(storage)]) == 0
    saved = json.loads(run.find_baseline(storage, "base").read_text())
    assert {"torch_version", "device_name", "threads", "timing_heap"} <= set(saved["machine_info"])
    assert saved["machine_info"]["threads"] == 1  # suite bench's default
    (bench,) = saved["benchmarks"]
    extra = bench["extra_info"]
    assert extra["reference"] == REF and len(extra["ratios"]) == len(bench["stats"]["data"]) == 24
    assert extra["ratio"] == pytest.approx(statistics.median(extra["ratios"]))

    # unchanged: the baseline's own rounds, split into alternate pairs of rounds (measured
    # interleaved); pairs, because rounds alternate which of target and reference runs first, so
    # each half must hold both orders
    times, ratios = bench["stats"]["data"], extra["ratios"]

    def half(values: list[float], i: int) -> list[float]:
        return [v for k, v in enumerate(values) if k // 2 % 2 == i]

    halves = [compare.run_from_json(_run_json([{**bench, "stats": {"data": half(times, i)},
                                                "extra_info": {**extra, "ratios": half(ratios, i)}}]), f"half {i}")
              for i in (0, 1)]
    (row,) = compare.compare(*halves)
    assert row.basis == "ratio" and row.verdict != "slower"
    # ... while the same rounds made 4 times slower (the sleep below) are flagged: the check has teeth
    slowed = compare.run_from_json(_run_json([{**bench, "stats": {"data": half(times, 1)},
                                               "extra_info": {**extra, "ratios": [4 * r for r in half(ratios, 1)]}}]), "x")
    assert compare.compare(halves[0], slowed)[0].verdict == "slower"

    # deliberately slowed: a sleep of five times the op's own median time, injected by a fixture (a margin
    # that bursts of load on a shared machine cannot close)
    monkeypatch.setenv("SLEEP_S", str(5 * extra["target_median"]))
    capsys.readouterr()
    assert main(["bench", "--compare", "base", "--rounds", "12", "--storage", str(storage)]) == 1
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if "test_op.py::test_op" in line]
    assert line.rstrip("| ").endswith("slower") and "REGRESSION: 1 benchmark(s) more than 10% slower than base" in out
    assert main(["bench", "--list", "--storage", str(storage)]) == 0
    assert "\n1 baseline in " in capsys.readouterr().out  # not "1 baselines"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.mark.slow  # four pytest runs of a small project: ~25 s on a busy 2-core machine
def test_compare_rev_measures_both_trees_interleaved(tmp_path):
    """HEAD has the plain op; the working tree sleeps in it: each tree's own code is measured."""
    repo = _project(tmp_path / "repo")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "plain op")
    (repo / "benchop.py").write_text(OP_MODULE.format(delay=0.03))  # ~3x and more the op's time
    log: list[str] = []
    base, current = revs.compare_rev(repo, "HEAD", blocks=2, rounds=7, max_time=0.0, log=log.append)
    assert [line.split(":")[0] for line in log] == ["block 1/2", "block 1/2", "block 2/2", "block 2/2"]
    assert "HEAD" in log[0] and "working tree" in log[1] and "working tree" in log[2]  # order alternates
    (name,) = current.measurements
    assert len(base.measurements[name].ratios) == len(current.measurements[name].ratios) == 14
    assert base.label == "HEAD" and current.label == "working tree" and current.commit.endswith("+dirty")
    (row,) = compare.compare(base, current)
    assert (row.basis, row.verdict) == ("ratio", "slower")
    with pytest.raises(SuiteError, match="unknown revision"):
        revs.compare_rev(repo, "no-such-rev", blocks=1, rounds=1, max_time=0.0)


def test_a_revision_without_the_selected_benchmarks_is_refused_after_its_first_run(tmp_path, capsys):
    """REV's tree ran no benchmark that -k selects (they came later): all blocks of both trees ran,
    then the table said the runs differed in `no device -> ...` (REV's empty run has no machine) and
    the advice was to save a new baseline. It is now an error naming REV and the -k, before the
    working tree is measured."""
    repo = tmp_path / "repo"
    (repo / "tests" / "benchmarks").mkdir(parents=True)
    (repo / "tests" / "benchmarks" / "test_one.py").write_text("def test_old(benchmark):\n    benchmark(sum, [1])\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "an older benchmark")
    (repo / "tests" / "benchmarks" / "test_two.py").write_text("def test_new(benchmark):\n    benchmark(sum, [1])\n")
    log: list[str] = []
    with pytest.raises(SuiteError, match=r"HEAD \([0-9a-f]{10}\) has no benchmark that -k 'test_new' selects in "
                       r"tests/benchmarks, so nothing can be compared with it") as err:
        revs.compare_rev(repo, "HEAD", blocks=4, rounds=7, max_time=0.0, select="test_new", log=log.append)
    assert err.value.key == "--compare-rev"
    assert log == [] and capsys.readouterr().err == ""  # the working tree's benchmarks never ran


@pytest.mark.parametrize("broken, status", [("test_one.py", 1), ("conftest.py", 4)])
def test_a_revision_whose_benchmarks_fail_is_named_not_its_deleted_tree(tmp_path, monkeypatch, capfd, broken, status):
    """--compare-rev measures REV in a temporary tree it deletes: a failing benchmark of REV was
    reported as 'pytest exited with status 1 running the benchmarks in /tmp/suite-bench-rev-.../tests/benchmarks',
    a path gone by the time it was read; and pytest's output shown above named that tree's files
    ("ImportError while loading conftest '/tmp/suite-bench-rev-.../tests/benchmarks/conftest.py'"),
    which are now named as the revision's, as `git show` takes them (HEAD:tests/...), and so are the paths
    pytest writes relative to the tree (tests/benchmarks/test_one.py:3:), which read as the working tree's."""
    repo = tmp_path / "repo"
    (repo / "tests" / "benchmarks").mkdir(parents=True)
    (repo / "tests" / "benchmarks" / "test_one.py").write_text(
        "def test_ok(benchmark):\n    benchmark(sum, [1])\n" + ("    assert False\n" if broken == "test_one.py" else ""))
    if broken == "conftest.py":
        (repo / "tests" / "benchmarks" / "conftest.py").write_text("raise ImportError('broken at this revision')\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "broken benchmark")
    monkeypatch.setattr(run, "project_root", lambda: repo)
    capfd.readouterr()
    assert main(["bench", "--compare-rev", "HEAD", "--blocks", "1", "--rounds", "7"]) == 1
    out, err = capfd.readouterr()
    assert "error: HEAD (" in err and f"pytest exited with status {status} running the benchmarks of that revision" in err
    assert "suite-bench-rev-" not in out + err
    if broken == "conftest.py":
        assert "ImportError while loading conftest 'HEAD:tests/benchmarks/conftest.py'" in out + err
    else:
        assert "\nHEAD:tests/benchmarks/test_one.py:3: AssertionError" in out
        assert "FAILED HEAD:tests/benchmarks/test_one.py::test_ok" in out


def test_only_the_revisions_files_are_renamed_in_its_pytest_output(tmp_path):
    """A word that looks like a relative path but is no file of the revision's tree stays as it is."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("")
    text = "tests/test_a.py:3: in f\nE  no module tests/test_b.py; see HEAD:tests/test_a.py or /x/tests/test_a.py"
    assert run._renamed(text, (tmp_path, "HEAD:"), tmp_path) == "HEAD:" + text


# --------------------------------------------------------------------------- stopped from outside
SLEEPER = """\
import os
import time
from pathlib import Path


def test_sleep(benchmark):
    pidfile = Path(os.environ["SUITE_TEST_PIDFILE"])
    pidfile.with_suffix(".tmp").write_text(str(os.getpid()))
    pidfile.with_suffix(".tmp").rename(pidfile)
    benchmark.pedantic(time.sleep, args=(120,), rounds=1)
"""

BENCH_PARENT = """\
import sys
from pathlib import Path

from suite.bench import run
from suite.cli import main

run.project_root = lambda: Path(sys.argv[1])
sys.exit(main(["bench", "--save", "never", "--storage", sys.argv[2]]))
"""


def test_sigterm_stops_the_benchmarks_and_saves_nothing(tmp_path):
    project, storage, pidfile = tmp_path / "proj", tmp_path / "store", tmp_path / "child.pid"
    (project / "tests" / "benchmarks").mkdir(parents=True)
    (project / "tests" / "benchmarks" / "test_sleep.py").write_text(SLEEPER)
    log = tmp_path / "log.txt"  # a file, not a pipe: an orphaned child would hold a pipe open
    with log.open("w") as out:
        parent = subprocess.Popen([sys.executable, "-c", BENCH_PARENT, str(project), str(storage)], text=True,
                                  env={**os.environ, "SUITE_TEST_PIDFILE": str(pidfile)}, stdout=out, stderr=out)
    pid = None
    try:
        wait_for(pidfile.exists, "the benchmark to start")
        pid = int(pidfile.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
        tmp = Path(next(a for a in cmdline if a.startswith("--benchmark-json=")).partition("=")[2]).parent
        assert tmp.is_dir()
        parent.send_signal(signal.SIGTERM)  # as `kill PID` or a CI timeout does
        assert parent.wait(timeout=120) == 143, log.read_text()
        assert log.read_text().strip().endswith("terminated")
        wait_for(lambda: not alive(pid), "pytest to be stopped")
        assert not tmp.exists() and not list(storage.glob("**/*.json"))
    finally:
        for proc_id in (parent.pid, pid):
            if proc_id is not None and alive(proc_id):
                os.kill(proc_id, signal.SIGKILL)
        parent.wait()


def test_a_run_with_a_failing_benchmark_saves_no_baseline(tmp_path, capsys):
    """pytest-benchmark saves what finished; a partial baseline would leave its failed benchmarks unchecked."""
    project, storage = tmp_path / "proj", tmp_path / "store"
    (project / "tests" / "benchmarks").mkdir(parents=True)
    (project / "tests" / "benchmarks" / "test_two.py").write_text(
        "def test_ok(benchmark):\n    benchmark(sum, [1])\n\n\n"
        "def test_bad(benchmark):\n    benchmark(sum, [1])\n    assert False\n")
    with pytest.raises(run.BenchmarkFailed):
        run.measure(project, "partial", rounds=7, max_time=0.0, save="partial", storage=storage, quiet=True)
    assert not list(storage.glob("**/*.json"))
    assert "not saved: the run of baseline 'partial' did not finish" in capsys.readouterr().err


def test_every_path_bench_prints_exists_once_it_is_done(tmp_path, monkeypatch, capfd):
    """pytest-benchmark says where it wrote the run's JSON, a temporary file the command deletes
    before it ends: `suite bench` printed 'Wrote benchmark data in: /tmp/suite-bench-.../run.json', a
    path that was gone; and a run that did not finish printed the baseline file it then removed."""
    project, storage = tmp_path / "proj", tmp_path / "store"
    (project / "tests" / "benchmarks").mkdir(parents=True)
    (project / "tests" / "benchmarks" / "test_one.py").write_text("def test_ok(benchmark):\n    benchmark(sum, [1])\n")
    monkeypatch.setattr(run, "project_root", lambda: project)

    def printed_paths(*argv: str, status: int) -> list[str]:
        capfd.readouterr()
        assert main(["bench", *argv, "--rounds", "7", "--storage", str(storage)]) == status
        out, err = capfd.readouterr()
        assert "test_ok" in out  # pytest's own output still shows
        return re.findall(r"(?<![\w.])/[\w./-]+", out + err)

    paths = printed_paths("--save", "base", status=0)
    assert str(storage) in paths and [path for path in paths if not Path(path).exists()] == []
    (project / "tests" / "benchmarks" / "test_two.py").write_text(
        "def test_bad(benchmark):\n    benchmark(sum, [1])\n    assert False\n")
    paths = printed_paths("--save", "broken", status=1)
    assert str(storage) in paths and [path for path in paths if not Path(path).exists()] == []
    assert [b.name for b in run.list_baselines(storage)] == ["base"]


def test_a_captured_run_leaves_out_the_hidden_lines_too(tmp_path):
    """--compare-rev's pytest runs captured, its stderr shown when it fails: without the temporary JSON's line."""
    said = "import sys; print('out'); print('wrote /tmp/x/run.json', file=sys.stderr); print('kept', file=sys.stderr)"
    done = run.processes.run([sys.executable, "-c", said], capture=True, hide="/tmp/x/run.json")
    assert (done.stdout, done.stderr) == ("out\n", "kept\n")


DAEMON = """\
import subprocess, sys
daemon = subprocess.Popen(["sleep", "30"])  # inherits the pipes, and outlives this process
print("daemon", daemon.pid, file=sys.stderr)
print("wrote /tmp/x/run.json", file=sys.stderr)
print("bye", file=sys.stderr, end="")
"""


@pytest.mark.parametrize("capture", [False, True])
def test_a_daemon_holding_the_childs_pipes_does_not_hold_up_the_end(capture, capfd):
    """A child's daemon (a server a benchmark starts) keeps its inherited stderr open: `suite bench`
    waited for it up to 5 s after pytest ended streamed, and until it ended captured. What the child
    itself wrote is all there, hidden lines left out, as soon as it has exited."""
    capfd.readouterr()
    started = time.monotonic()
    done = run.processes.run([sys.executable, "-c", DAEMON], capture=capture, hide="/tmp/x/run.json")
    took = time.monotonic() - started
    err = done.stderr if capture else capfd.readouterr().err
    daemon = int(err.split()[1])
    try:
        assert took < 4 and alive(daemon), took  # the daemon still holds the pipes
        assert err == f"daemon {daemon}\nbye"
    finally:
        os.kill(daemon, signal.SIGKILL)


def test_a_k_expression_pytest_cannot_read_is_refused_and_a_good_one_costs_no_second_pytest(
        tmp_path, monkeypatch, capsys):
    """pytest exits 4 for it: the user's mistake, not a failing benchmark, and no benchmark runs.
    The -k used to be checked up front by a pytest of its own, run before every `suite bench -k`."""
    project = tmp_path / "proj"
    (project / "tests" / "benchmarks").mkdir(parents=True)
    (project / "tests" / "benchmarks" / "test_one.py").write_text(
        "from pathlib import Path\n\n\ndef test_ok(benchmark):\n    Path('ran').touch()\n    benchmark(sum, [1])\n")
    monkeypatch.setattr(run, "project_root", lambda: project)
    pytests = []
    real_run = run.processes.run
    monkeypatch.setattr(run.processes, "run", lambda command, **kw: pytests.append(command) or real_run(command, **kw))
    assert main(["bench", "-k", "and or", "--rounds", "7", "--storage", str(tmp_path / "store")]) == 2
    assert "-k: pytest cannot use -k 'and or': Wrong expression passed to '-k'" in capsys.readouterr().err
    assert not (project / "ran").exists()
    pytests.clear()
    assert main(["bench", "-k", "test_ok and not slow", "--rounds", "7", "--storage", str(tmp_path / "store")]) == 0
    assert len(pytests) == 1 and (project / "ran").exists()


def test_benchmarks_that_do_not_import_are_a_failure_not_the_k_expression(tmp_path):
    """A conftest that fails to import (a broken revision under --compare-rev) also makes pytest
    exit 4: with -k it used to be blamed on the -k."""
    project = tmp_path / "proj"
    (project / "tests" / "benchmarks").mkdir(parents=True)
    (project / "tests" / "benchmarks" / "conftest.py").write_text("import no_such_module_of_the_suite\n")
    (project / "tests" / "benchmarks" / "test_one.py").write_text("def test_ok(benchmark):\n    benchmark(sum, [1])\n")
    with pytest.raises(run.BenchmarkFailed, match="status 4 .*a conftest that does not import"):
        run.measure(project, "broken", rounds=7, max_time=0.0, select="test_ok", quiet=True)


def test_the_reference_does_not_run_the_step_code_it_is_compared_with(monkeypatch):
    """A slowdown in suite.measure.throughput's steps (which the benchmarks time) must move the
    ratios: the reference used to run through the same steps, so both sides stretched alike."""
    from suite.bench.reference import reference_step
    from suite.measure import throughput

    def timed_code(*args, **kwargs):
        raise AssertionError("the reference ran the step code it is compared with")

    for name in ("inference_step", "train_step", "_batch"):
        monkeypatch.setattr(throughput, name, timed_code)
    monkeypatch.setattr(throughput, "STEPS", {"infer": timed_code, "train": timed_code})
    for mode in ("infer", "train"):
        reference_step(mode, torch.device("cpu"))()
    with pytest.raises(ValueError, match="'infer' or 'train'"):
        reference_step("eval", torch.device("cpu"))


def test_a_compare_that_judged_nothing_fails(tmp_path, monkeypatch, capsys):
    """A gate that could not have failed must not pass: no benchmark of the baseline run (a -k that
    selects none of it, renamed tests), or only absolute times from another setup (they used to pass
    as `other machine`), or only benchmarks of too few rounds."""
    base = tmp_path / "base.json"
    base.write_text(json.dumps(_run_json([_bench("test_a", _spread(0.01, 16), _spread(1.0, 16)),
                                          _bench("test_p", _spread(0.01, 16)), _bench("test_r", _spread(1.0, 3))])))

    def bench(benches, **machine):
        data = _run_json(benches)
        now = compare.run_from_json({**data, "machine_info": {**data["machine_info"], **machine}}, "working tree")
        monkeypatch.setattr(run, "measure", lambda *args, **kwargs: now)
        status = main(["bench", "--compare", str(base), "--rounds", "16", "--storage", str(tmp_path)])
        out, err = capsys.readouterr()
        return status, out, err

    status, out, err = bench([_bench("test_b", _spread(0.01, 16), _spread(1.0, 16))])
    assert status == 2 and "| new" in out and "(3 baseline benchmarks were not run)" in out
    assert err == (f"error: nothing judged: of the 1 benchmark run, none could be flagged slower than {base} "
                   "(3 benchmarks): 1 not in the baseline (check -k, or save a new baseline)\n")
    status, out, err = bench([_bench("test_p", _spread(0.02, 16)), _bench("test_b", _spread(0.01, 16))],
                             torch_version="2.5.0")
    assert status == 2 and "| other machine" in out
    assert err.endswith("(3 benchmarks): 1 not in the baseline (check -k, or save a new baseline); 1 with absolute "
                        "times only, not judged across setups (the runs differ in torch 2.4.0 -> torch 2.5.0; "
                        "--absolute judges them anyway)\n")  # and no third reason: each row is counted once
    status, out, err = bench([_bench("test_s", _spread(1.0, 1))])  # a SLURM benchmark's one round, new: still new
    assert status == 2 and err.endswith("(3 benchmarks): 1 not in the baseline (check -k, or save a new baseline)\n")
    status, out, err = bench([_bench("test_r", _spread(1.0, 3))])
    assert status == 2 and "| same" in out  # unchanged, but a slowdown would only have been `too few rounds`
    assert err.endswith("(3 benchmarks): 1 with too few rounds for any p below 0.001\n")
    # one benchmark that could have failed is a comparison: it passes when unchanged
    status, out, err = bench([_bench("test_a", _spread(0.01, 16), _spread(1.0, 16)), _bench("test_r", _spread(1.0, 3))])
    assert (status, err) == (0, "")
    status, out, err = bench([_bench("test_p", _spread(0.01, 16))], torch_version="2.5.0")
    assert status == 2
    # --absolute judges them: a comparison again
    assert main(["bench", "--compare", str(base), "--absolute", "--rounds", "16", "--storage", str(tmp_path)]) == 0
