"""Compare two benchmark runs and decide, per benchmark, whether it got slower.

A run is a pytest-benchmark JSON file (a saved baseline, or the `--benchmark-json` of the run just
made). Every benchmark has absolute times per round (pytest-benchmark's `stats.data`); those timed
with `suite.bench.interleave` also have per-round ratios time / reference-workload time
(`extra_info.ratios`). A file without these raw samples (saved without --benchmark-save-data) is
an error: the verdict needs them, and medians alone would flag noise as regressions.

The verdict compares medians: change = current median / baseline median. Above 1 + threshold it
is `slower` (a regression) if the rounds show it too, i.e. a one-sided Mann-Whitney U test of the
two runs' samples gives p < ALPHA, else `inconclusive` (or `too few rounds` when no outcome of so
few rounds could give p < ALPHA); below 1 - threshold likewise `faster`; otherwise `same`. By
default the samples are the ratios, so a baseline saved on one machine, or on a quieter afternoon,
stays usable on another; benchmarks without ratios fall back to absolute times, which are only
judged on the machine the baseline came from. `absolute=True` judges absolute times everywhere.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.bench.stats import Summary, min_p, p_greater
from suite.errors import SuiteError, count

DEFAULT_THRESHOLD = 0.10
ALPHA = 0.001  # asv uses 0.002; needs >= 7 rounds a side (exact test: 1 / C(14, 7) = 0.0003)
FAILING = ("slower",)
MAX_ROUNDS = 1000  # search limit of min_rounds


@dataclass(frozen=True)
class Measurement:
    name: str  # pytest-benchmark's fullname (file::test[params]): the key across runs
    absolute: Summary  # seconds per call
    relative: Summary | None = None  # time / reference time, per round
    reference: str | None = None  # which reference workload the ratios are relative to
    times: tuple[float, ...] = ()  # raw samples, when the file has them (for pooling)
    ratios: tuple[float, ...] = ()

    @classmethod
    def from_samples(cls, name: str, times: Sequence[float], ratios: Sequence[float] = (),
                     reference: str | None = None) -> Measurement:
        return cls(name, Summary.of(times), Summary.of(ratios) if ratios else None,
                   reference if ratios else None, tuple(times), tuple(ratios))


@dataclass(frozen=True)
class Run:
    label: str  # how the table names it: baseline name, "working tree", a revision
    commit: str = "?"
    measurements: dict[str, Measurement] = field(default_factory=dict)
    saved: str = ""  # pytest-benchmark's `datetime` (ISO, UTC), when the file has one
    setup: dict[str, str] = field(default_factory=dict)  # what absolute times depend on (machine_setup)

    @property
    def machine(self) -> str:
        """The setup as one line, for the table and `--list` (derived, so it cannot disagree with it)."""
        return machine_string(self.setup)


@dataclass(frozen=True)
class Row:
    name: str
    basis: str  # "ratio" (to the reference workload) or "time" (seconds)
    base: Summary | None  # None: the benchmark is new
    current: Summary
    verdict: str  # slower | faster | same | inconclusive | too few rounds | new | other machine
    p: float | None = None  # Mann-Whitney U, one-sided in the direction of the change

    @property
    def change(self) -> float | None:
        return None if self.base is None else self.current.median / self.base.median


# ---------------------------------------------------------------------------------------- loading
def load_run(path: Path, label: str | None = None) -> Run:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError) as exc:  # the last: JSON nested past the decoder's limit
        raise SuiteError(f"not a readable pytest-benchmark JSON file: {exc}", file=str(path)) from None
    try:
        return run_from_json(data, label or Path(path).stem)
    except SuiteError as err:
        raise err.where(file=str(path)) from None


def run_from_json(data: Any, label: str) -> Run:
    """The run a pytest-benchmark JSON document holds, checked: a hand-edited or truncated file is
    a SuiteError naming the key at fault, not a traceback or a verdict on nonsense."""
    if not isinstance(data, dict):
        raise SuiteError(f"expected a pytest-benchmark JSON object, got {_kind(data)}")
    benches = data.get("benchmarks")
    if not isinstance(benches, list):
        raise SuiteError(f"expected a list of benchmarks, got {_kind(benches)}", key="benchmarks")
    measurements: dict[str, Measurement] = {}
    for i, bench in enumerate(benches):
        measurement = _measurement(bench, f"benchmarks[{i}]")
        if measurement.name in measurements:
            raise SuiteError("appears twice", key=f"benchmarks[{measurement.name}]")
        measurements[measurement.name] = measurement
    saved = data.get("datetime")
    setup = machine_setup(_mapping(data, "machine_info"))
    return Run(label, commit_string(_mapping(data, "commit_info")), measurements,
               saved if isinstance(saved, str) else "", setup)


def _measurement(bench: Any, key: str) -> Measurement:
    if not isinstance(bench, dict):
        raise SuiteError(f"expected an object, got {_kind(bench)}", key=key)
    name = bench.get("fullname")
    if not isinstance(name, str) or not name:
        raise SuiteError(f"expected the benchmark's test id (file::test[params]), got {_kind(name)}",
                         key=f"{key}.fullname")
    key = f"benchmarks[{name}]"  # from here on the benchmark is named by its id
    times = _samples(_mapping(bench, "stats", key).get("data"), f"{key}.stats.data")
    extra = _mapping(bench, "extra_info", key)
    if not extra.keys() & {"ratio", "ratios", "reference"}:
        return Measurement.from_samples(name, times)
    # timed interleaved with a reference workload (suite.bench.interleave)
    ratios = _samples(extra.get("ratios"), f"{key}.extra_info.ratios")
    if len(ratios) != len(times):
        raise SuiteError(f"{len(ratios)} ratios for {len(times)} rounds", key=f"{key}.extra_info.ratios")
    reference = extra.get("reference")
    if not isinstance(reference, str) or not reference:
        raise SuiteError(f"expected the reference workload's id, got {_kind(reference)}",
                         key=f"{key}.extra_info.reference")
    return Measurement.from_samples(name, times, ratios, reference)


def _samples(values: Any, key: str) -> list[float]:
    """Raw samples: a non-empty list of positive finite numbers (a zero, NaN or negative time is
    no measurement, and would divide by zero or judge nonsense)."""
    if values is None:
        raise SuiteError("no raw samples (saved without --benchmark-save-data?): the rank test needs them, so "
                         "this file cannot gate; re-save it with `suite bench --save NAME`, which keeps them", key=key)
    if not isinstance(values, list) or not values:
        raise SuiteError(f"expected a non-empty list of numbers, got {_kind(values)}", key=key)
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise SuiteError(f"round {i}: {value!r} is not a positive finite number", key=key)
    return [float(v) for v in values]


def _mapping(data: dict[str, Any], name: str, parent: str | None = None) -> dict[str, Any]:
    """data[name] as a dict; missing or null is empty."""
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SuiteError(f"expected an object, got {_kind(value)}", key=f"{parent}.{name}" if parent else name)
    return value


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {json.dumps(value)[:40]}"


def commit_string(info: dict[str, Any]) -> str:
    """pytest-benchmark's commit_info as `abcdef1234` or `abcdef1234+dirty`."""
    return str(info.get("id") or "?")[:10] + ("+dirty" if info.get("dirty") else "")


# machine_info keys absolute times depend on besides the device and host (the conftest's hook), and
# how a machine string shows them: baselines saved before the timing heap was recorded name none
_SETUP = (("threads", "{} threads"), ("timing_heap", "{} heap"), ("torch_version", "torch {}"),
          ("cuda_version", "CUDA {}"), ("cudnn_version", "cuDNN {}"), ("gpu_driver", "driver {}"))


def machine_setup(info: dict[str, Any]) -> dict[str, str]:
    """What absolute times depend on, by machine_info key, each as the machine string shows it:
    device, thread count, timing heap, torch (and on CUDA its runtime, cuDNN and driver), host."""
    cpu = info.get("cpu") if isinstance(info.get("cpu"), dict) else {}
    setup = {"device": str(info.get("device_name") or cpu.get("brand_raw") or info.get("processor") or "?")}
    setup.update((key, shown.format(info[key])) for key, shown in _SETUP if info.get(key) is not None)
    return {**setup, "node": f"on {info.get('node', '?')}"}


def machine_string(setup: dict[str, str]) -> str:
    """`Xeon, 1 threads, steady heap, torch 2.4.0 on vm` (`?` for a run with no machine_info)."""
    if not setup:
        return "?"
    *parts, host = setup.values()
    return f"{', '.join(parts)} {host}"


def setup_differences(base: Run, current: Run) -> list[str]:
    """What differs between the two runs' setups, as `torch 2.3.0 -> torch 2.4.0`."""
    return [f"{base.setup.get(key, 'no ' + key)} -> {current.setup.get(key, 'no ' + key)}"
            for key in dict.fromkeys([*base.setup, *current.setup]) if base.setup.get(key) != current.setup.get(key)]


def pool(runs: Sequence[Run], label: str) -> Run:
    """One run from several of the same code (the blocks of --compare-rev): samples concatenated."""
    names: list[str] = []
    for run in runs:
        names += [n for n in run.measurements if n not in names]
    pooled = {}
    for name in names:
        parts = [run.measurements[name] for run in runs if name in run.measurements]
        if not all(p.times for p in parts):
            raise ValueError(f"{name}: pooling needs raw samples (pytest --benchmark-json keeps them)")
        with_ratios = all(p.ratios for p in parts) and len({p.reference for p in parts}) == 1
        pooled[name] = Measurement.from_samples(
            name, [t for p in parts for t in p.times],
            [r for p in parts for r in p.ratios] if with_ratios else (), parts[0].reference)
    first = next((run for run in runs if run.measurements), runs[0])
    return Run(label, first.commit, pooled, setup=first.setup)


# -------------------------------------------------------------------------------------- comparing
def compare(base: Run, current: Run, threshold: float = DEFAULT_THRESHOLD, absolute: bool = False) -> list[Row]:
    """One row per benchmark of `current`, in its order (benchmarks only in `base` are left out:
    a `-k` selection or a renamed test is not a regression)."""
    rows = []
    for name, now in current.measurements.items():
        before = base.measurements.get(name)
        ratio = not absolute and now.relative is not None and (
            before is None or (before.relative is not None and before.reference == now.reference))
        basis = "ratio" if ratio else "time"
        new = now.relative if ratio else now.absolute
        if before is None:
            rows.append(Row(name, basis, None, new, "new"))
            continue
        old = before.relative if ratio else before.absolute
        if not ratio and not absolute and base.setup != current.setup:
            # absolute times of two machines say nothing about the code
            rows.append(Row(name, basis, old, new, "other machine"))
            continue
        samples = (before.ratios, now.ratios) if ratio else (before.times, now.times)
        verdict, p = judge(*samples, new.median / old.median, threshold)
        rows.append(Row(name, basis, old, new, verdict, p))
    return rows


def judge(before: Sequence[float], after: Sequence[float], change: float, threshold: float) -> tuple[str, float | None]:
    """(verdict, p) for a median that changed by the factor `change`, from both runs' raw samples."""
    if 1 - threshold <= change <= 1 + threshold:
        return "same", None
    slower = change > 1
    p = p_greater(after, before) if slower else p_greater(before, after)
    if p < ALPHA:
        return "slower" if slower else "faster", p
    return "inconclusive" if min_p(len(before), len(after)) < ALPHA else "too few rounds", p


def failures(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if r.verdict in FAILING]


def could_fail(row: Row) -> bool:
    """Whether `row` could have been flagged `slower`: in both runs, on a basis they share, with
    enough rounds for p < ALPHA (a `same` of 3 + 3 rounds could never have been anything worse)."""
    return row.base is not None and row.verdict != "other machine" and min_p(row.base.n, row.current.n) < ALPHA


def nothing_judged(rows: Sequence[Row], base: Run, current: Run) -> str | None:
    """Why no row of the comparison could have failed it, or None if one could: a gate that could
    not fail must not pass."""
    if any(could_fail(r) for r in rows):
        return None
    reasons = []
    if new := sum(r.base is None for r in rows):
        reasons.append(f"{new} not in the baseline (check -k, or save a new baseline)")
    if other := sum(r.verdict == "other machine" for r in rows):
        reasons.append(f"{other} with absolute times only, not judged across setups (the runs differ in "
                       f"{'; '.join(setup_differences(base, current))}; --absolute judges them anyway)")
    if few := sum(r.base is not None and r.verdict != "other machine" for r in rows):
        reasons.append(f"{few} with too few rounds for any p below {ALPHA}")
    return (f"nothing judged: of the {count(len(rows), 'benchmark')} run, none could be flagged slower than "
            f"{base.label} ({count(len(base.measurements), 'benchmark')}): {'; '.join(reasons)}")


def parse_threshold(text: str) -> float:
    """'10%' -> 0.10. The sign is required: is a bare 0.05 five percent or a twentieth of one?"""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise SuiteError(f"expected a positive percentage with its sign, such as 10% or 2.5%, got {text!r}",
                         key="--fail-above")
    return float(match.group(1)) / 100


def percent(threshold: float) -> str:
    """0.025 -> '2.5%': the threshold as the user gave it."""
    return f"{threshold * 100:g}%"


# ---------------------------------------------------------------------------------- enough rounds
def min_rounds(other: int) -> int | None:
    """The fewest rounds whose rank test against `other` rounds can reach p < ALPHA (None: none can)."""
    return next((n for n in range(1, MAX_ROUNDS + 1) if min_p(n, other) < ALPHA), None)


def check_can_gate(base: Run, rounds: int, file: str | None = None) -> None:
    """Refuse, before anything runs, a comparison that could never flag a regression: a baseline
    without benchmarks, or too few rounds on either side for any outcome to give p < ALPHA. Only
    the interleaved benchmarks (those with ratios) take --rounds rounds; the others fix their own,
    and show as `too few rounds` if so."""
    if not base.measurements:
        raise SuiteError("the baseline holds no benchmarks, so it cannot gate anything", file=file,
                         key="--compare")
    for m in base.measurements.values():
        n = len(m.ratios)
        if n and min_p(rounds, n) >= ALPHA:
            need = min_rounds(n)
            advice = f"use --rounds {need} or more, or" if need else "no number of rounds now can make up for it:"
            raise SuiteError(f"baseline {base.label!r} has {n} rounds of {display_name(m.name)}; against {rounds} "
                             f"rounds the smallest possible p is {min_p(rounds, n):.2g}, not below {ALPHA}, so no "
                             f"regression could be flagged: {advice} re-save the baseline with more rounds",
                             file=file, key="--rounds")


def check_pooled_rounds(blocks: int, rounds: int) -> None:
    """--compare-rev pools blocks x rounds samples per benchmark and tree: refuse too few."""
    n = blocks * rounds
    if min_p(n, n) >= ALPHA:
        need = next(k for k in range(1, MAX_ROUNDS + 1) if min_p(k, k) < ALPHA)
        raise SuiteError(f"--blocks {blocks} x --rounds {rounds} gives {n} rounds per benchmark and tree; the smallest "
                         f"possible p is then {min_p(n, n):.2g}, not below {ALPHA}, so no regression could be flagged: "
                         f"use at least {need} (e.g. --rounds {-(-need // blocks)})", key="--rounds")


def save_warning(rounds: int, compare_rounds: int) -> str | None:
    """Why a baseline of `rounds` rounds cannot gate a --compare of `compare_rounds`, if so."""
    if min_p(rounds, compare_rounds) < ALPHA:
        return None
    need = min_rounds(rounds)
    return (f"a baseline of {rounds} rounds cannot gate a --compare of {compare_rounds} rounds (no p below {ALPHA}); "
            + (f"comparing with it needs --rounds {need} or more" if need else "no --compare can use it"))


# -------------------------------------------------------------------------------------- rendering
def render(rows: Sequence[Row], base: Run, current: Run, threshold: float) -> str:
    """Header lines and a GitHub-flavoured Markdown table (pastes into a pull request as is)."""
    from tabulate import tabulate

    references = sorted({m.reference for m in current.measurements.values() if m.reference})
    lines = [
        f"baseline: {base.label} (commit {base.commit}) on {base.machine}",
        f"current:  {current.label} (commit {current.commit}) on {current.machine}",
        f"ratio: time / time of the reference workload ({', '.join(references) or 'none'}) in the same round; "
        "ms: absolute time; medians and IQRs over the rounds",
        f"change: current / baseline median; same: a change within {percent(threshold)}; slower or faster: a change "
        f"beyond {percent(threshold)} with p < {ALPHA} (one-sided Mann-Whitney U test of the rounds), else "
        "inconclusive (too few rounds: no p could be so small)",
        "",
    ]
    table = [
        [display_name(r.name), "ratio" if r.basis == "ratio" else "ms",
         *_cells(r.base, r.basis), *_cells(r.current, r.basis),
         "" if r.change is None else f"{r.change:.3f}", "" if r.p is None else f"{r.p:.2g}", r.verdict]
        for r in rows
    ]
    headers = ["benchmark", "unit", "base median", "base IQR", "median", "IQR", "change", "p", "verdict"]
    lines.append(tabulate(table, headers, tablefmt="github", disable_numparse=True))
    if differences := setup_differences(base, current):
        judged = any(r.basis == "time" and r.verdict != "other machine" for r in rows)
        lines.append(f"note: the runs differ in {'; '.join(differences)}: ratios may move with that too, and "
                     + ("absolute times from two different machines are judged (--absolute)" if judged
                        else "absolute times are not judged (other machine)"))
    missing = len(set(base.measurements) - set(current.measurements))
    if missing:
        lines.append(f"({count(missing, 'baseline benchmark')} {'was' if missing == 1 else 'were'} not run)")
    return "\n".join(lines) + "\n"


def display_name(fullname: str) -> str:
    return fullname.removeprefix("tests/benchmarks/")


def _cells(summary: Summary | None, basis: str) -> list[str]:
    if summary is None:
        return ["", ""]
    scale = 1.0 if basis == "ratio" else 1e3
    return [f"{summary.median * scale:.4g}", f"{summary.iqr * scale:.3g}"]
