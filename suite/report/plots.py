"""Figures of a report (matplotlib, no pyplot: figures are built directly on the Agg canvas).

- `tradeoff`: the first metric against GMACs, parameters and inference throughput, one point per
  grid point (mean over seeds, std as error bar), colour = first row axis, marker = second axis;
  the Pareto front (lower error, lower cost or higher throughput) is ringed and joined by a
  dashed step line. A panel needs two grid points with both values; otherwise it is skipped.
- `curves`: per-run training loss and test error per epoch from each run's `metrics.jsonl`
  (done, running and stopped runs; missing files and unreadable lines are skipped).

Anything skipped is returned as a note instead of raising: a report of a store in progress must
always be writable. Files are written without dates or version stamps, so they only change when
the data do.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from suite.errors import SuiteWarning
from suite.metrics import percent
from suite.report.labels import Labels
from suite.report.tables import Report, label
from suite.schema import show

MAX_CURVES = 200  # more runs than this make an unreadable tangle: the plot is skipped with a note
MARKERS = "osD^vP*Xph"
PANELS = (("gmacs", "GMACs (multiply-adds, G)", True), ("params_m", "parameters (M)", True),
          ("infer_samples_per_sec", "inference throughput (img/s, higher is better)", False))
CURVE_KEYS = (("train_loss", "train loss"), ("test_top1_err", "test top-1 err (%)"))
MAX_LEGEND = 20
NAMES = ("tradeoff", "curves")  # the figures a report can have: <stem>_<name>.png|svg


@dataclass(frozen=True)
class Plot:
    name: str  # file suffix: <stem>_<name>.png|svg
    title: str
    figure: Figure

    def png(self) -> bytes:
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=100, metadata={"Software": None})
        return buf.getvalue()

    def save(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """`<directory>/<stem>_<name>.png` and `.svg`."""
        directory.mkdir(parents=True, exist_ok=True)
        png, svg = directory / f"{stem}_{self.name}.png", directory / f"{stem}_{self.name}.svg"
        self.figure.savefig(png, dpi=100, metadata={"Software": None})
        with matplotlib.rc_context({"svg.hashsalt": "suite", "svg.fonttype": "path"}):
            self.figure.savefig(svg, metadata={"Date": None, "Creator": None})
        return png, svg


def figures(report: Report) -> tuple[list[Plot], list[str]]:
    """Every figure that has data, and a note for every one skipped."""
    plots, notes = [], []
    for make in (tradeoff, curves):
        plot, note = make(report)
        if plot is not None:
            plots.append(plot)
        if note:
            notes.append(note)
    return plots, notes


# -------------------------------------------------------------------------------------- colours
def _styles(report: Report) -> tuple[str | None, dict[str, object], str | None, dict[str, str]]:
    """(colour axis, value -> colour, marker axis, value -> marker) in grid order."""
    axes = [a for a in report.rows + report.columns if a != "seed"] or list(report.axes)
    colour_axis = axes[0] if axes else None
    marker_axis = axes[1] if len(axes) > 1 else None
    colours: dict[str, object] = {}
    if colour_axis is not None:
        values = list(dict.fromkeys(report.runs[colour_axis].map(show)))
        cmap = matplotlib.colormaps["tab10" if len(values) <= 10 else "tab20" if len(values) <= 20 else "viridis"]
        colours = {v: cmap(i if len(values) <= 20 else i / max(len(values) - 1, 1)) for i, v in enumerate(values)}
    markers: dict[str, str] = {}
    if marker_axis is not None:
        values = list(dict.fromkeys(report.runs[marker_axis].map(show)))
        markers = {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(values)}
    return colour_axis, colours, marker_axis, markers


def _legend(fig: Figure, labels: Labels, colour_axis: str | None, colours: dict[str, object],
            marker_axis: str | None, markers: dict[str, str], extra: Sequence[Line2D] = ()) -> None:
    """Axes and values as the table names them (`labels`: the papers' names)."""
    handles = list(extra)
    if colour_axis is not None and len(colours) <= MAX_LEGEND:
        handles.append(Line2D([], [], linestyle="none", label=labels.title(colour_axis)))
        handles += [Line2D([], [], color=c, marker="o", linestyle="none", label=labels.value(colour_axis, v))
                    for v, c in colours.items()]
    elif colour_axis is not None:
        handles.append(Line2D([], [], linestyle="none", label=f"colour: {labels.title(colour_axis)}\n"
                                                               f"({len(colours)} values, viridis in grid order)"))
    if marker_axis is not None and len(markers) <= MAX_LEGEND:
        handles.append(Line2D([], [], linestyle="none", label=labels.title(marker_axis)))
        handles += [Line2D([], [], color="0.3", marker=m, linestyle="none", label=labels.value(marker_axis, v))
                    for v, m in markers.items()]
    elif marker_axis is not None:
        handles.append(Line2D([], [], linestyle="none",
                              label=f"marker: {labels.title(marker_axis)}\n({len(markers)} values)"))
    for handle in handles:
        handle.set_label(literal(handle.get_label()))
    if handles:
        fig.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False)


def literal(text: str) -> str:
    """`text` shown as written, for every text a figure draws: a spec's label or a metric's name
    may hold `$`, which mathtext reads as math (two of them typeset what lies between; `$\\foo$`
    raised at drawing, a traceback instead of a figure)."""
    return text.replace("$", r"\$")


# ------------------------------------------------------------------------------------- tradeoff
def pareto(x: Sequence[float], y: Sequence[float], x_lower: bool = True, y_lower: bool = True) -> np.ndarray:
    """Mask of the points no other point beats on both axes (ties on x keep the better y)."""
    xs = np.asarray(x, dtype=float) * (1 if x_lower else -1)
    ys = np.asarray(y, dtype=float) * (1 if y_lower else -1)
    mask = np.zeros(len(xs), dtype=bool)
    best = math.inf
    for i in np.lexsort((ys, xs)):
        if ys[i] < best:
            mask[i] = True
            best = ys[i]
    return mask


def tradeoff(report: Report) -> tuple[Plot | None, str | None]:
    metric = report.metrics[0]
    y_lower = not metric.endswith("samples_per_sec")
    pts = report.points
    mean = pts[f"{metric}_mean"].to_numpy(dtype=float)
    std = pts[f"{metric}_std"].to_numpy(dtype=float)
    panels = []
    for column, xlabel, x_lower in PANELS:
        if column == metric or column not in pts:
            continue
        x = pts[column].to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(mean)
        if ok.sum() >= 2:
            panels.append((x, ok, xlabel, x_lower))
    if not panels:
        have = int(np.isfinite(mean).sum())
        return None, (f"No trade-off plot: it needs two grid points with {label(metric)} and a cost "
                      f"(GMACs, params or throughput); {have} of {len(pts)} have {label(metric)}.")
    colour_axis, colours, marker_axis, markers = _styles(report)
    names = list(pts.index.names)
    keys = [k if isinstance(k, tuple) else (k,) for k in pts.index]
    colour_of = [colours.get(k[names.index(colour_axis)], "C0") if colour_axis in names else "C0" for k in keys]
    marker_of = [markers.get(k[names.index(marker_axis)], "o") if marker_axis in names else "o" for k in keys]

    fig = Figure(figsize=(4.2 * len(panels) + 1.8, 3.8), layout="constrained")
    for i, (x, ok, xlabel, x_lower) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        idx = np.flatnonzero(ok)
        # One artist per marker shape, not per point: a sweep can have thousands of points.
        bars = idx[np.isfinite(std[idx])]
        ax.vlines(x[bars], mean[bars] - std[bars], mean[bars] + std[bars], colors=[colour_of[j] for j in bars],
                  linewidth=1)
        for marker in dict.fromkeys(marker_of[j] for j in idx):
            group = [j for j in idx if marker_of[j] == marker]
            ax.scatter(x[group], mean[group], c=[colour_of[j] for j in group], marker=marker, s=30, zorder=2)
        front = idx[pareto(x[idx], mean[idx], x_lower, y_lower)]
        order = front[np.argsort(x[front])]
        ax.step(x[order], mean[order], where="post" if x_lower == y_lower else "pre", color="0.35",
                linestyle="--", linewidth=1, zorder=1)
        ax.scatter(x[front], mean[front], s=150, facecolors="none", edgecolors="0.2", linewidths=1, zorder=3)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(literal(label(metric) + (" (%)" if percent(metric) else "")))
        ax.locator_params(axis="x", nbins=4)  # costs such as 0.0336 GMACs: long tick labels that would run together
        ax.grid(alpha=0.3)
    fig.suptitle(literal(f"{report.name}: {label(metric)} vs cost (mean ± std over seeds)"), fontsize="medium")
    front_handle = Line2D([], [], marker="o", markersize=11, markerfacecolor="none", markeredgecolor="0.2",
                          color="0.35", linestyle="--", linewidth=1, label="Pareto front")
    _legend(fig, report.labels, colour_axis, colours, marker_axis, markers, [front_handle])
    return Plot(NAMES[0], f"{label(metric)} vs cost", fig), None


# --------------------------------------------------------------------------------------- curves
def read_curve(path: Path) -> list[dict]:
    """The per-epoch records of a metrics.jsonl. A cut-off last line (a run killed mid-write) is
    dropped quietly; any other line that is not an epoch record is dropped with a warning naming
    the file and line, so a damaged curve is not drawn as if it were whole."""
    out = []
    try:
        lines = path.read_text(errors="replace").splitlines()  # a damaged line is warned about below
    except OSError:
        return out
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):  # the latter: nested past the decoder's limit
            record = None
            if number == len(lines):
                continue
        if isinstance(record, dict) and isinstance(record.get("epoch"), (int, float)):
            out.append(record)
        elif line.strip():
            warnings.warn(f"{path}:{number}: skipped a line that is not an epoch record: {line[:80]!r}",
                          SuiteWarning, stacklevel=2)
    return out


def curves(report: Report) -> tuple[Plot | None, str | None]:
    from suite.store import run_dir

    started = report.runs[~report.runs["status"].isin(["missing", "pending"])]
    if len(started) > MAX_CURVES:
        return None, f"No training-curve plot: {len(started)} runs are too many to draw one line each."
    colour_axis, colours, _, _ = _styles(report)
    lines = []
    for _, run in started.iterrows():
        records = read_curve(run_dir(report.out, run["run_id"]) / "metrics.jsonl")
        if records:
            colour = colours.get(show(run[colour_axis]), "C0") if colour_axis else "C0"
            lines.append((records, colour))
    if not lines:
        return None, ("No training-curve plot: no run counted as started (running, done, failed, ...) has "
                      "written metrics.jsonl yet.")
    fig = Figure(figsize=(10.5, 3.8), layout="constrained")
    for i, (key, ylabel) in enumerate(CURVE_KEYS):
        ax = fig.add_subplot(1, len(CURVE_KEYS), i + 1)
        for records, colour in lines:
            xy = [(r["epoch"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
            if xy:
                ax.plot(*zip(*xy), color=colour, alpha=0.75, linewidth=1.2, marker="." if len(xy) < 30 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    fig.suptitle(literal(f"{report.name}: training curves, one line per run ({len(lines)})"), fontsize="medium")
    _legend(fig, report.labels, colour_axis, colours, None, {})
    return Plot(NAMES[1], "training curves", fig), None
