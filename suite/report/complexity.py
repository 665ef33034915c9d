"""`results/complexity.md`: parameters and multiply-adds of every model the suite ships against the
papers' figures (the registry's `paper` metadata), with ratios. Needs no training.

Source of the measured numbers: `results/complexity.csv` (written by `suite profile --all --to
results/complexity.csv`) where its row for a model is current, else a fresh measurement (one
subprocess per model, as `suite profile` does). A row is current when it is for the model's
natural input size with default options, has no error, was counted by the same counter (fvcore
version), and its parameter count equals the model's count now (built on the meta device, which
is cheap): a changed architecture almost always changes the parameters. The CSV itself is not
rewritten here; the page says which rows came from where.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from suite import again, files
from suite.report.formats import markdown_table, md_escape
from suite.report.tables import Table, num, paper_num

CSV_NAME = "complexity.csv"
PAGE_NAME = "complexity.md"
Measure = Callable[[Sequence[str]], list[dict[str, Any]]]


def current_rows(csv: Path, names: Sequence[str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Rows of `csv` that are current for the models `names`, and why each other model is not."""
    from suite.measure.complexity import COUNTER, count_params
    from suite.models import get_model_info

    rows: dict[str, dict[str, Any]] = {}
    stale: dict[str, str] = {}
    frame = pd.read_csv(csv) if csv.exists() else pd.DataFrame(columns=["model"])
    by_model: dict[str, dict[str, Any]] = {}
    for record in frame.to_dict("records"):
        if _blank(record.get("model_kwargs")) and _blank(record.get("error")):
            by_model[str(record["model"])] = record
    for name in names:
        record = by_model.get(name)
        if record is None:
            stale[name] = "no row" if csv.exists() else f"no {csv.name}"
        elif record.get("img_size") != get_model_info(name).input_size:
            stale[name] = f"measured at {record.get('img_size')} px"
        elif record.get("counter") != COUNTER:
            stale[name] = f"counted by {record.get('counter')}"
        elif record.get("params") != count_params(name):
            stale[name] = "parameter count changed"
        else:
            rows[name] = record
    return rows, stale


def _blank(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def measure_models(names: Sequence[str]) -> list[dict[str, Any]]:
    from suite.measure import profile

    return profile.profile(profile.plan(list(names)))


def table(rows: dict[str, dict[str, Any]]) -> Table:
    """One line per model (and the name its paper gives it): measured vs paper params and GMACs with ratios."""
    from suite.models import get_model_info

    body = []
    for name, row in rows.items():
        info = get_model_info(name)
        params_m, gmacs = _float(row.get("params")) / 1e6, _float(row.get("gmacs"))
        paper_params, paper_gmacs = _float(info.paper.get("params_m")), _float(info.paper.get("gmacs"))
        issue = row.get("error") if not _blank(row.get("error")) else row.get("unsupported_ops")
        # The source of the figures shown: a model whose paper gives only errors (e.g. Attention-56 on
        # CIFAR-10) cites nothing here, or its table would read as where a blank came from.
        shown = not (math.isnan(paper_params) and math.isnan(paper_gmacs))
        body.append([name, info.label, info.family, str(row.get("img_size", info.input_size)),
                     num(params_m), _opt(paper_params), _ratio(params_m, paper_params),
                     num(gmacs), _opt(paper_gmacs), _ratio(gmacs, paper_gmacs),
                     "" if _blank(issue) else str(issue), str(info.paper.get("source", "")) if shown else ""])
    columns = ["paper name", "family", "input", "params (M)", "paper", "ratio", "GMACs", "paper", "ratio",
               "unsupported ops or error", "paper source"]
    return Table(index=["model"], columns=[("", c) for c in columns], body=body,
                 numeric=[False, False, False, True, True, True, True, True, True, True, False, False])


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _opt(value: float) -> str:
    return "" if math.isnan(value) else paper_num(value)


def _ratio(measured: float, paper: float) -> str:
    if math.isnan(measured) or math.isnan(paper) or not paper:
        return ""
    return f"{measured / paper:.2f}×"


def page(rows: dict[str, dict[str, Any]], notes: Sequence[str], out: Path) -> str:
    """The page of store `out`, its command as run in the folder that holds it (again.same_runs)."""
    from suite.measure.complexity import COUNTER

    command = shlex.join(["suite", "report", "--all", *again.store_option(out, Path(out).resolve().parent)])
    return "\n".join([
        f"<!-- generated by `{command}`, run in {again.folder(out)}; do not edit -->",
        "# Model complexity against the papers",
        "",
        f"Parameters and multiply-adds (GMACs: 1e9 multiply-accumulates per image, {COUNTER} convention, "
        "batch 1, eval mode, each model's natural input size, default options; see suite/measure/complexity.py). "
        "Ratio = measured / paper.",
        "",
        markdown_table(table(rows)),
        "",
        *(f"- {md_escape(n)}" for n in notes),
    ]) + "\n"


def write(out: Path, csv: Path | None = None, measure: Measure = measure_models) -> Path:
    """Write `<out>/complexity.md` for every model the suite ships; returns its path. Not the models
    of plugins (nor others registered from outside the suite): the page is the suite's fidelity to
    the papers, committed with it, and would otherwise change with what is installed where `suite
    report --all` runs (`suite profile` counts theirs). What a report killed writing it left,
    `write_all` (its one caller) has swept, with the tables' folder."""
    from suite.models import get_model_info, list_models

    out = Path(out)
    csv = csv or out / CSV_NAME
    shown = shlex.quote(again.under(csv, out.resolve().parent))  # as the page's command names the store
    names = [n for n in list_models() if get_model_info(n).source == "suite"]
    rows, stale = current_rows(csv, names)
    notes = []
    if rows:
        notes.append(f"{len(rows)} models from {shown}.")
    if stale:
        fresh = {r["model"]: r for r in measure(list(stale))}
        rows.update(fresh)
        by_reason: dict[str, list[str]] = {}
        for name, reason in stale.items():
            by_reason.setdefault(reason, []).append(name)
        why = "; ".join(f"{reason}: {', '.join(names)}" for reason, names in by_reason.items())
        notes.append(f"{len(stale)} measured now, not current in {shown} ({why}); "
                     f"`suite profile --all --to {shown}` caches them.")
    failed = [n for n in names if not _blank(rows.get(n, {}).get("error"))]
    if failed:
        notes.append(f"Failed to measure: {', '.join(failed)} (see the last column).")
    path = out / PAGE_NAME
    out.mkdir(parents=True, exist_ok=True)
    files.write_text(path, page({n: rows[n] for n in names if n in rows}, notes, out))
    return path
