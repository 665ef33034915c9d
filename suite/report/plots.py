"""Figures of a report (matplotlib, no pyplot: figures are built directly on the Agg canvas).

- `tradeoff`: the first metric against GMACs, parameters and inference throughput, one point per
  grid point (mean over seeds, std as error bar), colour and marker shape = first axis, fill
  (full, hollow, half) and edge (thin, thick) = the other axes' values together; the Pareto front (lower error, lower cost or higher
  throughput) is ringed and joined by a dashed step line. A panel needs two grid points with both
  values; otherwise it is skipped.
- `curves`: per-run training loss and test error per epoch from each run's `metrics.jsonl`
  (done, running and stopped runs; missing files and unreadable lines are skipped); colour, line
  style and marker = first axis, marker fill and edge = the other axes.

Readable without colour: the colours are Okabe and Ito's colour-blind-safe set, and every value
told apart by colour is told apart by marker (and line style) too, so a reader who cannot tell
two hues apart, or a grey-scale print, still can. Past the 8 colours, viridis shades even in
lightness take over; past the 12 markers, values 12 apart share one, told apart by shade alone,
which the legend and alt text say. Legends sit outside the axes, never over data.
Each figure carries `alt`, a sentence of what it plots (axes, units, encodings), for the reports'
image alt text.

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
from dataclasses import dataclass, field, replace
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from suite import files
from suite.errors import SuiteWarning
from suite.metrics import percent
from suite.report.labels import Labels
from suite.report.tables import Report, label
from suite.schema import show

MAX_CURVES = 200  # more runs than this make an unreadable tangle: the plot is skipped with a note
# Okabe & Ito's palette, distinct under the common colour-vision deficiencies; yellow last (faint on white).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
MARKERS = "osD^vP*Xph<>"  # filled shapes, each unlike the others; past these, values share one (the legend says)
LINES: tuple[str | tuple, ...] = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 3)))
FILLS = ("full", "none", "left", "top", "right", "bottom")  # the other axes' values: filled, hollow, half-filled
EDGES = (1.0, 2.5)  # marker edge widths, thin then thick: the fills again, told apart, once they run out
# (fill, edge width) of each combination of the other axes' values, each one its own; with more
# combinations than these, the figure draws them alike and its legend and alt text say so.
LOOKS = tuple((fill, edge) for edge in EDGES for fill in FILLS)
PANELS = (("gmacs", "multiply-adds per image (GMACs)", True), ("params_m", "parameters (millions)", True),
          ("infer_samples_per_sec", "inference throughput (img/s, higher is better)", False))
CURVE_KEYS = (("train_loss", "train loss (cross-entropy)"), ("test_top1_err", "test top-1 err (%)"))
MAX_LEGEND = 20
NAMES = ("tradeoff", "curves")  # the figures a report can have: <stem>_<name>.png|svg


@dataclass(frozen=True)
class Plot:
    name: str  # file suffix: <stem>_<name>.png|svg
    title: str
    figure: Figure
    alt: str  # what the figure shows, in words: the reports' alt text for readers who cannot see it

    def png(self) -> bytes:
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=100, metadata={"Software": None})
        return buf.getvalue()

    def save(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """`<directory>/<stem>_<name>.png` and `.svg`, each whole or not at all (`files.replace`): a
        report killed as it draws one leaves the figure from before, and the next report's sweep
        removes the temporary file."""
        directory.mkdir(parents=True, exist_ok=True)
        png, svg = directory / f"{stem}_{self.name}.png", directory / f"{stem}_{self.name}.svg"
        with files.replace(png, binary=True) as f:
            f.write(self.png())
        with matplotlib.rc_context({"svg.hashsalt": "suite", "svg.fonttype": "path"}), \
                files.replace(svg, binary=True) as f:
            self.figure.savefig(f, format="svg", metadata={"Date": None, "Creator": None})
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


# -------------------------------------------------------------------------------------- styles
@dataclass(frozen=True)
class Styles:
    """How the points or lines of each axis value are drawn: the first axis by colour, marker and
    line style at once (never colour alone), the others by the markers' fill and edge, one look for
    each combination of their values (a third axis drawn by no style would draw its points alike;
    looks used twice would draw two combinations alike): none when there are more than LOOKS."""

    colour_axis: str | None = None
    colours: dict[str, object] = field(default_factory=dict)  # value -> colour
    markers: dict[str, str] = field(default_factory=dict)  # value of the colour axis -> marker
    lines: dict[str, object] = field(default_factory=dict)  # value of the colour axis -> line style
    fill_axes: tuple[str, ...] = ()
    fills: dict[tuple[str, ...], tuple[str, float]] = field(default_factory=dict)  # values of fill_axes -> look
    combinations: int = 0  # of the fill axes' values; more than LOOKS: `fills` is empty, all drawn alike

    def of(self, values: dict[str, str]) -> tuple[object, str, object, str, float]:
        """(colour, marker, line style, fill, edge width) of a point or run whose axes have `values` (shown)."""
        first = values.get(self.colour_axis) if self.colour_axis else None
        second = tuple(values.get(axis) for axis in self.fill_axes)
        return (self.colours.get(first, PALETTE[0]), self.markers.get(first, MARKERS[0]),
                self.lines.get(first, LINES[0]), *self.fills.get(second, LOOKS[0]))


def _styles(report: Report) -> Styles:
    """The styles of the first axis and of the others together, values in grid order."""
    axes = [a for a in report.rows + report.columns if a != "seed"] or list(report.axes)
    if not axes:
        return Styles()
    values = list(dict.fromkeys(report.runs[axes[0]].map(show)))
    if len(values) <= len(PALETTE):
        colours: dict[str, object] = dict(zip(values, PALETTE))
    else:  # too many to tell apart by hue: viridis, even in lightness (readable in grey and by colour-blind eyes)
        cmap = matplotlib.colormaps["viridis"]
        colours = {v: cmap(i / max(len(values) - 1, 1)) for i, v in enumerate(values)}
    styles = Styles(axes[0], colours, {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(values)},
                    {v: LINES[i % len(LINES)] for i, v in enumerate(values)})
    if len(axes) > 1:
        others = list(dict.fromkeys(zip(*(report.runs[a].map(show) for a in axes[1:]))))
        fills = dict(zip(others, LOOKS)) if len(others) <= len(LOOKS) else {}
        styles = replace(styles, fill_axes=tuple(axes[1:]), fills=fills, combinations=len(others))
    return styles


def _legend(fig: Figure, labels: Labels, styles: Styles, *, lines: bool, extra: Sequence[Line2D] = ()) -> None:
    """Axes and values as the table names them (`labels`: the papers' names), outside the axes so
    that it never covers a point; `lines`: entries show the colour axis' line styles too."""
    handles = list(extra)
    axis = styles.colour_axis
    sharing = _sharing(styles)
    if axis is not None and len(styles.colours) <= MAX_LEGEND:
        title = labels.title(axis) + (f"\n({sharing})" if sharing else "")
        handles.append(Line2D([], [], linestyle="none", label=title))
        handles += [Line2D([], [], color=c, marker=styles.markers[v], linestyle=styles.lines[v] if lines else "none",
                           label=labels.value(axis, v)) for v, c in styles.colours.items()]
    elif axis is not None:
        handles.append(Line2D([], [], linestyle="none", label=f"colour: {labels.title(axis)}\n"
                                                               f"({sharing}; viridis in grid order)"))
    axes = styles.fill_axes
    if axes and styles.fills:
        handles.append(Line2D([], [], linestyle="none", label=_titles(labels, axes)))
        handles += [Line2D([], [], color="0.3", marker="o", fillstyle=f, markeredgewidth=e, markerfacecoloralt="white",
                           linestyle="none", label=", ".join(map(labels.value, axes, v)))
                    for v, (f, e) in styles.fills.items()]
    elif axes:
        handles.append(Line2D([], [], linestyle="none", label=f"{_titles(labels, axes)}: {_alike(styles)}"))
    for handle in handles:
        handle.set_label(literal(handle.get_label()))
    if handles:
        fig.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False)


def _encoding(labels: Labels, styles: Styles, *, lines: bool) -> str:
    """The alt text's account of the legend: which axis each style stands for."""
    parts = []
    if styles.colour_axis is not None:
        sharing = _sharing(styles)
        parts.append(f"colour{', line style' if lines else ''} and marker: {labels.title(styles.colour_axis)}"
                     + (f" ({sharing})" if sharing else ""))
    if styles.fill_axes and styles.fills:
        edge = " and edge" if len(styles.fills) > len(FILLS) else ""  # thick edges: once the fills run out
        parts.append(f"marker fill{edge}: {_titles(labels, styles.fill_axes)}")
    elif styles.fill_axes:
        parts.append(f"{_titles(labels, styles.fill_axes)}: {_alike(styles)}")
    return "".join(f"; {part}" for part in parts)


def _sharing(styles: Styles) -> str:
    """What the legend and alt text say of a colour axis with more values than MARKERS (none when
    each has its own): values len(MARKERS) apart share a marker, and a line style too."""
    n = len(styles.colours)
    return f"{n} values: markers repeat after {len(MARKERS)}, told apart by shade" if n > len(MARKERS) else ""


def _alike(styles: Styles) -> str:
    """What the legend and alt text say of fill axes with more combinations than LOOKS: which, as
    far as the figure goes, are not told apart (the table does)."""
    return f"{styles.combinations} combinations, more than the {len(LOOKS)} marker looks: drawn alike, see the table"


def _titles(labels: Labels, axes: Sequence[str]) -> str:
    """The fill's axes as one legend heading, in the order of their values' labels."""
    return ", ".join(map(labels.title, axes))


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
    styles = _styles(report)
    names = list(pts.index.names)
    keys = [k if isinstance(k, tuple) else (k,) for k in pts.index]
    style_of = [styles.of(dict(zip(names, k))) for k in keys]  # (colour, marker, line, fill, edge) per point
    ylabel = label(metric) + (" (%)" if percent(metric) else "")

    fig = Figure(figsize=(4.2 * len(panels) + 1.8, 3.8), layout="constrained")
    for i, (x, ok, xlabel, x_lower) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        idx = np.flatnonzero(ok)
        bars = idx[np.isfinite(std[idx])]
        ax.vlines(x[bars], mean[bars] - std[bars], mean[bars] + std[bars], colors=[style_of[j][0] for j in bars],
                  linewidth=1)
        # One artist per style, not per point: a sweep can have thousands of points.
        groups: dict[tuple, list[int]] = {}
        for j in idx:
            groups.setdefault(style_of[j], []).append(j)
        for (colour, marker, _, fill, edge), group in groups.items():
            ax.plot(x[group], mean[group], linestyle="none", color=colour, marker=marker, markersize=6,
                    fillstyle=fill, markeredgewidth=edge, markerfacecoloralt="white", zorder=2)
        front = idx[pareto(x[idx], mean[idx], x_lower, y_lower)]
        order = front[np.argsort(x[front])]
        ax.step(x[order], mean[order], where="post" if x_lower == y_lower else "pre", color="0.35",
                linestyle="--", linewidth=1, zorder=1)
        ax.scatter(x[front], mean[front], s=150, facecolors="none", edgecolors="0.2", linewidths=1, zorder=3)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(literal(ylabel))
        ax.locator_params(axis="x", nbins=4)  # costs such as 0.0336 GMACs: long tick labels that would run together
        ax.grid(alpha=0.3)
    fig.suptitle(literal(f"{report.runs_name}: {label(metric)} vs cost (mean ± std over seeds)"), fontsize="medium")
    front_handle = Line2D([], [], marker="o", markersize=11, markerfacecolor="none", markeredgecolor="0.2",
                          color="0.35", linestyle="--", linewidth=1, label="Pareto front")
    _legend(fig, report.labels, styles, lines=False, extra=[front_handle])
    costs = [p[2] for p in panels]
    against = costs[0] if len(costs) == 1 else f"{', '.join(costs[:-1])} and {costs[-1]}, one panel each"
    alt = (f"{report.runs_name}: {ylabel} (y axis) against {against} (x axis); one point per grid point, the mean over "
           f"seeds with a bar of ± one std{_encoding(report.labels, styles, lines=False)}. The Pareto front (no "
           "other point better on both axes) is ringed and joined by a dashed line.")
    return Plot(NAMES[0], f"{label(metric)} vs cost", fig, alt), None


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
    started = report.runs[~report.runs["status"].isin(["missing", "pending"])]
    if len(started) > MAX_CURVES:
        return None, f"No training-curve plot: {len(started)} runs are too many to draw one line each."
    styles = _styles(report)
    lines = []
    for _, run in started.iterrows():
        records = read_curve(report.run_dir(run["run_id"]) / "metrics.jsonl")
        if records:
            values = {axis: show(run[axis]) for axis in (styles.colour_axis, *styles.fill_axes) if axis}
            lines.append((records, styles.of(values)))
    if not lines:
        return None, ("No training-curve plot: no run counted as started (running, done, failed, ...) has "
                      "written metrics.jsonl yet.")
    fig = Figure(figsize=(10.5, 3.8), layout="constrained")
    for i, (key, ylabel) in enumerate(CURVE_KEYS):
        ax = fig.add_subplot(1, len(CURVE_KEYS), i + 1)
        for records, (colour, marker, line, fill, edge) in lines:
            xy = [(r["epoch"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
            if xy:  # a marker on at most about ten epochs: a long curve stays a line
                ax.plot(*zip(*xy), color=colour, alpha=0.75, linewidth=1.2, linestyle=line, marker=marker,
                        markersize=5, fillstyle=fill, markeredgewidth=edge, markerfacecoloralt="white",
                        markevery=max(1, len(xy) // 10))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    fig.suptitle(literal(f"{report.runs_name}: training curves, one line per run ({len(lines)})"), fontsize="medium")
    _legend(fig, report.labels, styles, lines=True)
    alt = (f"{report.runs_name}: {' and '.join(y for _, y in CURVE_KEYS)} (y axis, one panel each) against epoch "
           f"(x axis); one line per run, {len(lines)} runs{_encoding(report.labels, styles, lines=True)}.")
    return Plot(NAMES[1], "training curves", fig, alt), None
