"""Compare two benchmark runs and decide, per benchmark, whether it got slower.

A run is a pytest-benchmark JSON file (a saved baseline, or the `--benchmark-json` of the run just
made). Every benchmark has absolute times per round (pytest-benchmark's `stats`); those timed with
`suite.bench.interleave` also have per-round ratios time / reference-workload time (`extra_info`).

The verdict compares medians: change = current median / baseline median. Above 1 + threshold it
is `slower` (a regression) if the rounds show it too, i.e. a one-sided Mann-Whitney U test of the
two runs' samples gives p < ALPHA, else `inconclusive`; below 1 - threshold likewise `faster`;
otherwise `same`. (Without raw samples, as in files saved without --benchmark-save-data, the
medians alone decide.) By default the samples are the ratios, so a baseline saved on one machine,
or on a quieter afternoon, stays usable on another; benchmarks without ratios fall back to
absolute times, which are only judged on the machine the baseline came from. `absolute=True`
judges absolute times everywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.bench.stats import Summary, p_greater
from suite.errors import SuiteError

DEFAULT_THRESHOLD = 0.10
ALPHA = 0.001  # asv uses 0.002; needs >= 7 rounds a side (exact test: 1 / C(14, 7) = 0.0003)
FAILING = ("slower",)


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
    machine: str  # absolute times are only comparable between runs with the same machine string
    commit: str = "?"
    measurements: dict[str, Measurement] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    name: str
    basis: str  # "ratio" (to the reference workload) or "time" (seconds)
    base: Summary | None  # None: the benchmark is new
    current: Summary
    verdict: str  # slower | faster | same | inconclusive | new | other machine
    p: float | None = None  # Mann-Whitney U, one-sided in the direction of the change

    @property
    def change(self) -> float | None:
        return None if self.base is None else self.current.median / self.base.median


# ---------------------------------------------------------------------------------------- loading
def load_run(path: Path, label: str | None = None) -> Run:
    try:
        data = json.loads(Path(path).read_text())
        return run_from_json(data, label or Path(path).stem)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SuiteError(f"not a readable pytest-benchmark JSON file: {exc}", file=str(path)) from None


def run_from_json(data: dict[str, Any], label: str) -> Run:
    measurements = {}
    for bench in data["benchmarks"]:
        stats, extra = bench["stats"], bench.get("extra_info") or {}
        name, times, ratios = bench["fullname"], stats.get("data"), extra.get("ratios")
        if times and (ratios or "ratio" not in extra):
            measurements[name] = Measurement.from_samples(name, times, ratios or (), extra.get("reference"))
        else:  # saved without raw samples: the summary statistics are all there is
            relative = None
            if "ratio" in extra:
                relative = Summary(extra["ratio"], extra.get("ratio_iqr", 0.0), stats["rounds"])
            measurements[name] = Measurement(name, Summary(stats["median"], stats["iqr"], stats["rounds"]),
                                             relative, extra.get("reference") if relative else None)
    return Run(label, machine_string(data.get("machine_info") or {}), commit_string(data.get("commit_info") or {}),
               measurements)


def commit_string(info: dict[str, Any]) -> str:
    """pytest-benchmark's commit_info as `abcdef1234` or `abcdef1234+dirty`."""
    return str(info.get("id") or "?")[:10] + ("+dirty" if info.get("dirty") else "")


def machine_string(info: dict[str, Any]) -> str:
    """Device, thread count and host: what absolute times depend on (see the conftest's hook)."""
    cpu = info.get("cpu") if isinstance(info.get("cpu"), dict) else {}
    device = info.get("device_name") or cpu.get("brand_raw") or info.get("processor") or "?"
    threads = f", {info['threads']} threads" if "threads" in info else ""
    return f"{device}{threads} on {info.get('node', '?')}"


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
    return Run(label, first.machine, first.commit, pooled)


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
        if not ratio and not absolute and base.machine != current.machine:
            # absolute times of two machines say nothing about the code
            rows.append(Row(name, basis, old, new, "other machine"))
            continue
        samples = (before.ratios, now.ratios) if ratio else (before.times, now.times)
        verdict, p = judge(*samples, new.median / old.median, threshold)
        rows.append(Row(name, basis, old, new, verdict, p))
    return rows


def judge(before: Sequence[float], after: Sequence[float], change: float, threshold: float) -> tuple[str, float | None]:
    """(verdict, p) for a median that changed by the factor `change`; empty samples: medians only."""
    if 1 - threshold <= change <= 1 + threshold:
        return "same", None
    slower = change > 1
    if not (before and after):
        return "slower" if slower else "faster", None
    p = p_greater(after, before) if slower else p_greater(before, after)
    if p >= ALPHA:
        return "inconclusive", p
    return "slower" if slower else "faster", p


def failures(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if r.verdict in FAILING]


def parse_threshold(text: str) -> float:
    """'10%' or '10' -> 0.10."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%?\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise SuiteError(f"expected a positive percentage such as 10%, got {text!r}", key="--fail-above")
    return float(match.group(1)) / 100


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
        f"change: current / baseline median; slower or faster: a change beyond {threshold:.0%} with p < {ALPHA} "
        "(one-sided Mann-Whitney U test of the rounds), else inconclusive",
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
    if base.machine != current.machine and any(r.basis == "time" and r.verdict != "other machine" for r in rows):
        lines.append("note: absolute times from two different machines")
    missing = len(set(base.measurements) - set(current.measurements))
    if missing:
        lines.append(f"({missing} baseline benchmarks were not run)")
    return "\n".join(lines) + "\n"


def display_name(fullname: str) -> str:
    return fullname.removeprefix("tests/benchmarks/")


def _cells(summary: Summary | None, basis: str) -> list[str]:
    if summary is None:
        return ["", ""]
    scale = 1.0 if basis == "ratio" else 1e3
    return [f"{summary.median * scale:.4g}", f"{summary.iqr * scale:.3g}"]
