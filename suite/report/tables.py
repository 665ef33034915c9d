"""From a spec's runs to tables: a tidy frame (one row per run), numeric summaries and a pivot.

Every run of the expansion gets a row, whatever its state, so a table never hides a missing or
failed run: its cell shows "—" and the `runs` column counts it ("2/3 done, 1 failed"). A cell
that the grid does not contain at all (e.g. a row/column combination a zip group never makes) is
left blank. Metric cells are `mean ± std (n)` over the done runs (sample std, n >= 2); the
paper's number and the difference (measured - paper) sit beside the measurement only where they
are comparable: the run's stored config is the spec's own at that point (no preset or command-line
override changed what is trained; where it runs, what is measured and the seed do not count) and
its data set is one the papers report on. Otherwise a note says why nothing is compared.
"""

from __future__ import annotations

import math
import shlex
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from suite import ablations, again, store
from suite.ablations.expand import RunSpec, own_points
from suite.ablations.spec import Spec, nfc
from suite.config import EXECUTION_KEYS, SECTIONS, flatten, is_identity_key, whole_numbers
from suite.data.catalog import DATASETS
from suite.data.views import VIEW_METRICS
from suite.errors import SuiteError, SuiteWarning, count, unknown
from suite.metrics import ACCURACY, ATTACK_METRICS, COSTS, COUNTS, RUN_METRICS, TABLE_COSTS, column_names, label
from suite.report import labels as axis_labels
from suite.report.labels import Labels
from suite.report.names import report_name
from suite.schema import show, show_value
from suite.store import STATES, count_states, measured_otherwise_in

ALWAYS_SHOWN = ("params_m", "gmacs")
# Values that must be present in a done run's record; absences are warned about (older schema).
EXPECTED = ("params_m", "gmacs")
MISSING = "—"  # runs exist but have no value
# A metric shown beside the paper's value of another: the paper's top-1 may be a best-epoch figure
# (README, "What the numbers mean"), so `--metric best_top1_err` compares with it too.
COMPARED_WITH = {"best_top1_err": "top1_err"}
# The data sets the papers' numbers are for: digits (a sanity check) and synthetic are never compared.
PAPER_DATA = ("cifar10", "cifar100", "imagenet")
ALL = "all"  # row label of a spec without axes
# Float keys that count epochs: a spec writes a whole number of them as one (`epochs: 2`), a part as a fraction.
EPOCH_COUNTS = ("epochs", "warmup_epochs")


@dataclass(frozen=True)
class Table:
    """A pivot as display strings. `columns` are (group, field) pairs after the `index` columns;
    group is "" for ungrouped columns, else the column-axis values of that block."""

    index: list[str]
    columns: list[tuple[str, str]]
    body: list[list[str]]
    numeric: list[bool]  # per column (index columns included): right-align
    ranges: bool = False  # a row's cost differs between its column blocks, shown `lowest–highest` (the legend says so)

    @property
    def header(self) -> list[str]:
        """Flat column names (for one-header-row formats)."""
        return self.index + [f"{g}: {f}" if g else f for g, f in self.columns]

    @property
    def grouped(self) -> bool:
        return any(g for g, _ in self.columns)


@dataclass
class Report:
    """One spec's report as `suite report` writes it and `tables.load` returns it: every run of the
    expansion as a row (`runs`, so missing and failed runs show), the table's cells and the grid's
    points summarised as numbers (`cells`, `points`), and the table as shown (`table`)."""

    spec: Spec
    preset: str | None
    out: Path  # the run store the results came from
    runs: pd.DataFrame  # tidy: one row per run of the expansion, raw values
    cells: pd.DataFrame  # numeric summary per table cell (rows + columns axes)
    points: pd.DataFrame  # numeric summary per grid point (every axis; what plots show)
    table: Table
    axes: list[str]
    rows: list[str]
    columns: list[str]
    metrics: list[str]
    notes: list[str] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)  # the command line's key=value, part of the runs' identity
    labels: Labels = field(default_factory=Labels)  # the papers' names of the axes and their values
    # run id -> the id an older version stored it under (`store.collect`'s): its records are read there
    stored_as: dict[str, str] = field(default_factory=dict)

    def run_dir(self, run_id: str) -> Path:
        """Where the run's records are read: under the older id `suite run` has yet to file it from."""
        return store.run_dir(self.out, self.stored_as.get(run_id, run_id))

    @property
    def name(self) -> str:
        """File stem and `--into` marker: the spec, preset, overrides and chosen metrics (`san_main.smoke+epochs=1`,
        `quick@top5_err`, see names), so a table of other metrics never replaces the spec's own."""
        return report_name(self.spec.name, self.preset, self.overrides, chosen_metrics(self.spec, self.metrics))

    @property
    def runs_name(self) -> str:
        """The name of its runs alone (`san_main.smoke+epochs=1`): what a figure's title says beside the
        metric it plots."""
        return report_name(self.spec.name, self.preset, self.overrides)

    @property
    def title(self) -> str:
        """The page's heading: the spec, and what else chose its runs (`quick (preset smoke, epochs=1)`)."""
        chose = ([f"preset {self.preset}"] if self.preset else []) + [f"{k}={show_value(v)}" for k, v in
                                                                       self.overrides.items()]
        return self.spec.name + (f" ({', '.join(chose)})" if chose else "")

    @property
    def counts(self) -> dict[str, int]:
        return count_states(self.runs["status"])

    @property
    def command(self) -> str:
        """The command that writes this report again (the header of its files), run in `folder`."""
        chosen = chosen_metrics(self.spec, self.metrics)
        chosen = f" --metric {shlex.quote(','.join(chosen))}" if chosen else ""
        return f"suite report {self.same_runs}{chosen}"

    @property
    def same_runs(self) -> str:
        """`SPEC [--preset P] [--out DIR] [key=value ...]`: what names these runs on a command line
        run in `folder` (SPEC is the spec's path if its name would not find it): a report file's
        commands work pasted there, whoever made it where, and a committed table names no machine."""
        found = ablations.find(self.spec.name)
        spec = self.spec.name if found and found.resolve() == self.spec.path.resolve() else str(self.spec.path)
        return again.same_runs(spec, self.preset, self.out, [f"{k}={show_value(v)}" for k, v in self.overrides.items()],
                               within=Path(self.out).resolve().parent)

    @property
    def folder(self) -> str:
        """Where the commands of `command` and `same_runs` run: the folder that holds the store."""
        return again.folder(self.out)


# ------------------------------------------------------------------------------------- building
def default_metrics(spec: Spec) -> list[str]:
    """What a report of `spec` tabulates without --metric."""
    return list(dict.fromkeys(spec.report.get("metrics") or ["top1_err"]))


def chosen_metrics(spec: Spec, metrics: Sequence[str] | None) -> list[str]:
    """`metrics` (as --metric gives them) where they are not `spec`'s own (else none): what a report's
    name and command say beside its runs, so that its table is written, and written again, apart."""
    own = default_metrics(spec)
    metrics = list(dict.fromkeys(metrics)) if metrics else own
    return [] if metrics == own else metrics


def build(spec: Spec, runs: Sequence[RunSpec], frame: pd.DataFrame, *, out: Path, preset: str | None = None,
          metrics: str | Sequence[str] | None = None) -> Report:
    """A report of `runs` (the expansion of `spec`) from `frame`, which must be
    `store.collect(out, [r.run_id for r in runs])` (one row per run, in order). `metrics` is one
    metric's name or a list of them, as `--metric` takes them. Its name, title and commands name the
    runs' overrides that pick them, not those saying where they run (`data.root`, `device`: no run
    id has them), which would only put a machine's paths in a table and give its runs a second name."""
    if isinstance(metrics, str):  # a name, not its letters
        metrics = [metrics]
    metrics = list(dict.fromkeys(metrics)) if metrics else default_metrics(spec)  # a column once
    check_metrics(metrics, frame, runs)
    axes = spec.axes
    rows, columns = layout(spec)
    # measure.* stays: it decides which runs the notes say were measured otherwise
    overrides = {k: v for k, v in flatten(dict(runs[0].overrides if runs else {})).items() if k not in EXECUTION_KEYS}
    runs_frame, notes = tidy(runs, frame, axes, metrics, report_name(spec.name, preset, overrides))
    labels = axis_labels.build(spec, rows + columns, {a: runs_frame[a] for a in rows + columns})
    check_store_metrics(spec, metrics, rows, labels)
    runs_frame = labelled(runs_frame, axes, labels)
    if preset is not None and not any(map(own_points(spec), (run.point for run in runs))) and _compared(spec):
        replaced = sorted({*(spec.presets[preset].get("grid") or {}), *(spec.presets[preset].keys() & set(axes))})
        by = f" (its values for {', '.join(replaced)})" if replaced else ""
        notes.append(f"The paper's values are for the spec's own grid points; preset {preset}'s points are none of "
                     f"them{by}, so they are not compared.")
    cells = summarise(runs_frame, rows + columns, metrics)
    points = cells if rows + columns == axes else summarise(runs_frame, axes, metrics)
    table = pivot(cells, rows, columns, metrics, labels)
    counts = count_states(runs_frame["status"])
    shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n or s == "done")
    notes.insert(0, f"{count(len(runs_frame), 'run')}: {shown}.")
    return Report(spec=spec, preset=preset, out=Path(out), runs=runs_frame, cells=cells, points=points, table=table,
                  axes=axes, rows=rows, columns=columns, metrics=metrics, notes=notes,
                  overrides=overrides, labels=labels,
                  stored_as=dict(frame.attrs.get("stored_as", {})))


def load(spec: Spec | str | Path, *, preset: str | None = None, overrides: Mapping[str, Any] | None = None,
         out: Path | None = None, metrics: str | Sequence[str] | None = None) -> Report:
    """Expand `spec` (a Spec, a name or a path) as `suite run` did (preset, command-line overrides),
    collect its runs from the store and build the report. A store folder that is not there is a
    report of missing runs, with a warning naming it (as `suite report` notes it). As `suite report`
    does, a run whose SLURM job ended without a result is recorded and shown as it ended (failed,
    cancelled), not as the `pending` or `running` its status.json last said."""
    if overrides is not None and not isinstance(overrides, Mapping):  # the command line's strings, typed as such
        raise SuiteError(f"expected a dict of dotted keys to values ({{'epochs': 2}}), got {type(overrides).__name__}; "
                         "suite.config.parse_overrides reads the command line's key=value strings", key="overrides")
    if not isinstance(spec, Spec):
        spec = ablations.load(spec)
    key = store.named_by("out" if out is not None else None)
    out = Path(out) if out is not None else store.default_out()
    if not store.present(out, key=key):
        warnings.warn(SuiteWarning(f"no runs in {out} ({store.not_there(key, 'out=')})"), stacklevel=2)
    try:
        runs = ablations.expand(spec, preset=preset, overrides=overrides)
    except SuiteError as err:
        raise _as_given(err) from None
    from suite.dispatch import slurm  # as `suite report` does: no ended SLURM job's run shows as queued or running

    found, _ = slurm.refresh_told(out, spec.name, runs)
    try:
        return build(spec, runs, collect(out, spec, runs, found), out=out, preset=preset, metrics=metrics)
    except SuiteError as err:
        raise _as_given(err) from None


def _as_given(err: SuiteError) -> SuiteError:
    """`err` (with the mistakes it carries) naming what `load`'s caller gave as Python spells it:
    an override as `overrides['KEY']`, not `<command line>: KEY`, which a notebook never typed, and
    the metrics as `metrics`, not `--metric`'s `metric`."""
    for mistake in (err, *err.also):
        if mistake.file == "<command line>":
            mistake.file = None
            mistake.rekeyed(f"overrides[{mistake.key!r}]" if mistake.key else "overrides")
        elif mistake.key == "metric":
            mistake.rekeyed("metrics")
    err.args = (str(err),)
    return err


def collect(out: Path, spec: Spec, runs: Sequence[RunSpec], found: store.Scan | None = None) -> pd.DataFrame:
    """The runs' records as the report tabulates them. A run an older version stored under another
    id is read where it is stored: it is a finished result, which `suite run` files under today's
    id (unless today's id has a run stored again, which `suite run` leaves it for).

    `found`: the store as scanned already for these runs, else `store.told` of them: `suite report
    SPEC` has told's (SLURM's view of the jobs it names refreshed since), and `--all` one
    `store.scan` of the whole store narrowed to each table's runs (`Scan.into`; a scan per table
    cost 0.2 s each at 3,000 runs)."""
    ids = [r.run_id for r in runs]
    if found is None:
        found = store.told(out, ids, spec.name, {r.config.model.name for r in runs})
    return store.collect(out, ids, stored_as=found.stored_as)


def check_metrics(metrics: Sequence[str], frame: pd.DataFrame, runs: Sequence[RunSpec]) -> None:
    """Known metrics: what runs record, plus any other numeric result column the store has (not
    config keys, which are axes or constants, nor bookkeeping)."""
    config = set().union(*(r.config.flat() for r in runs))
    numeric = {c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and frame[c].notna().any()}
    bookkeeping = {"attempts", "slurm_job_id"} | {c for c in numeric if c.startswith(("env.", "trained_env."))}
    config |= {c for c in numeric if c.split(".")[0] in SECTIONS}  # another model's option, in a record of the store
    known = set(RUN_METRICS) | set(COSTS) | (numeric - config - bookkeeping)
    for m in metrics:
        if m not in known:
            raise unknown("metric", m, known, key="metric")


# What trained each done run (`_trained_by`), columns of the tidy CSV.
TRAINED_BY = ("suite_version", "git_commit", "git_dirty", "model_source")
# Columns the tidy CSV has beside the metrics (`tidy`, `labelled`): besides a run's own (store.OWN_COLUMNS).
TIDY_COLUMNS = ("ref_data", *TRAINED_BY)
TIDY_PREFIXES = ("label_", "paper_")


def check_store_metrics(spec: Spec, metrics: Sequence[str], rows: Sequence[str], labels: Labels) -> None:
    """A metric the suite has no name for (one only the store's results have, asked for by
    --metric) is headed by its key, which the spec-load check of axis names cannot know: a key
    that reads as another heading of the table (a row axis' name, `runs`, a cost's, another
    metric's) made two columns of one name, one read as the other, and one named as a column of the
    tidy CSV (`label_lr`) stopped the report with a pandas error. Refused, naming the spec file and key."""
    named = set(RUN_METRICS) | set(COSTS)
    for m in (m for m in metrics if m not in named):
        heading = nfc(label(m))
        for axis in rows:
            if nfc(labels.title(axis)) == heading:
                raise spec.error(f"the axis name {labels.title(axis)!r} is also the heading of metric {m!r} (a key of "
                                 "the store's results, headed by its key): two columns of one name, one read as the "
                                 "other; give the axis another name", "labels", axis, "name")
        others = {nfc(label(o)) for o in metrics if o != m}
        csv = m in TIDY_COLUMNS or m.startswith(TIDY_PREFIXES)
        if heading in others or heading in {nfc(c) for c in column_names()} or csv:
            what = "a column of the report's CSV" if csv else "another metric's heading" if heading in others else \
                "a heading the report's table may have"
            raise SuiteError(f"{m!r}, a key of the store's results with no name of the suite's, is headed by its key, "
                             f"which is also {what}: two columns of one name, one read as the other; it cannot be "
                             "tabulated", file=str(spec.path), key="metric")


def layout(spec: Spec) -> tuple[list[str], list[str]]:
    """Row and column axes: the spec's `report` if given, else the first axis as rows and the
    second as columns (with more axes, or two of one zip group, all of them as rows: two axes that
    vary together as rows x columns make a table blank but for its diagonal, n x 2n cells for n
    points). Axes the report does not name are appended to the rows: averaging over an axis nobody
    asked to average over would hide it."""
    axes = spec.axes
    if "rows" in spec.report or "columns" in spec.report:
        rows = list(spec.report.get("rows", []))
        columns = list(spec.report.get("columns", []))
    elif len(axes) == 2 and not any(set(axes) <= group.keys() for group in spec.zip):
        rows, columns = axes[:1], axes[1:]
    else:
        rows, columns = list(axes), []
    rows += [a for a in axes if a not in rows and a not in columns]
    return rows, columns


def labelled(runs: pd.DataFrame, axes: Sequence[str], labels: Labels) -> pd.DataFrame:
    """`runs` with a `label_<axis>` column after the axes: the name each run's row has in the
    table, beside the key and value that identify it."""
    named = {f"label_{a}": runs[a].map(lambda v, a=a: labels.value(a, show(v))) for a in axes}
    at = max((list(runs.columns).index(a) for a in axes), default=list(runs.columns).index("run_id")) + 1
    return pd.concat([runs.iloc[:, :at], pd.DataFrame(named, index=runs.index), runs.iloc[:, at:]], axis=1)


def _compared(spec: Spec) -> bool:
    """Whether some run of the spec's own grid has paper values (its `reference:`, or a model at its
    defaults, whose registration gives them); a grid that cannot expand has none to compare."""
    if spec.reference:
        return True
    try:
        return any(run.reference for run in ablations.expand(spec))
    except SuiteError:
        return False


def tidy(runs: Sequence[RunSpec], frame: pd.DataFrame, axes: Sequence[str], metrics: Sequence[str],
         name: str) -> tuple[pd.DataFrame, list[str]]:
    """One row per run in expansion order: where it sits in the grid (from the expansion, so runs
    that never started have it too), its state, its metrics and costs, the paper's values where
    comparable. Values of runs that are not done are blanked, whatever files they left.

    `frame` is `store.collect(out, [r.run_id for r in runs])`: one row per run, in the same order.
    Its ids are used instead of recomputing `run.run_id` (a hash of the resolved config, about a
    millisecond each), which would dominate the cost of a large report.
    """
    if len(frame) != len(runs) or (len(runs) and frame["run_id"].iloc[-1] != runs[-1].run_id):
        raise ValueError("frame must be store.collect(out, [r.run_id for r in runs]): one row per run, in order")
    notes: list[str] = []
    grid = _grid_records(runs, frame, axes, metrics)
    base = pd.DataFrame.from_records(grid.records)
    for a in axes:  # the values as the spec writes them: pandas made [null, 40] a float column [NaN, 40.0]
        base[a] = pd.Series([r[a] for r in grid.records], index=base.index, dtype=object)
    collected = frame.reset_index(drop=True)
    base["status"] = collected["status"].fillna("missing")
    base["note"] = collected["note"].fillna("")
    remeasure = measured_otherwise_in(runs, frame)  # run_id -> 'key (made, not wanted)'
    for rid, items in remeasure.items():  # the tidy CSV says which rows, too
        base.loc[base["run_id"] == rid, "note"] = f"measured with other settings: {', '.join(items)}"
    if "params" in collected:  # a done run's measurements are numbers or null (store.state_of checks)
        collected["params_m"] = collected["params"].map(lambda v: v / 1e6 if _finite(v) else None)
    done = (base["status"] == "done").to_numpy()
    values = {}  # every metric and cost a run records, stored or not: the same columns whatever the store holds
    for col in dict.fromkeys([*RUN_METRICS, *metrics, *COSTS]):
        if col in axes:  # e.g. an `epochs` axis: the grid value is the column
            continue
        v = np.array([float(x) if _finite(x) else np.nan for x in collected[col]]) if col in collected else np.nan
        values[col] = np.where(done, v, np.nan)
    code = _trained_by(collected, done)
    out = pd.concat([base, pd.DataFrame(values, index=base.index), code], axis=1)
    for key in grid.ref_keys:
        if f"paper_{key}" not in out:
            out[f"paper_{key}"] = np.nan
    ordered = ["spec", "preset", "run_id", *axes, "seed", "status", "note",
               *(c for c in ("model.name", "data.name") if c not in axes), *values, *code,
               *(f"paper_{k}" for k in grid.ref_keys), "ref_data"]
    out = out[list(dict.fromkeys(ordered))]
    notes += _missing_notes(out, collected, done, metrics, name)
    notes += _version_notes(out, axes)
    notes += _uncounted_notes(out, collected, done)
    notes += _comparison_notes(grid, frame, remeasure)
    return out, notes


def _trained_by(collected: pd.DataFrame, done: np.ndarray) -> pd.DataFrame:
    """`suite_version`, `git_commit`, `git_dirty` of the code that trained each done run (None where
    an older version recorded no suite version) and `model_source`, the
    model plugin's distribution and version for a model of a plugin (a later measurement's `env`
    does not count), so that the tidy CSV says which code made each row."""
    code = pd.DataFrame(index=collected.index)
    for key in TRAINED_BY:
        trained, env = f"trained_env.{key}", f"env.{key}"
        column = collected[env] if env in collected else pd.Series(None, index=collected.index, dtype=object)
        if trained in collected:
            column = collected[trained].where(collected[trained].notna(), column)
        code[key] = column.astype(object).where(done & column.notna().to_numpy(), None)
    return code


def _version_notes(out: pd.DataFrame, axes: Sequence[str]) -> list[str]:
    """A note when the done runs come from more than one code version (the suite's version, its
    commit, whether the tree had uncommitted changes, and a model plugin's version), naming the
    points whose seeds mix versions: a cell averages them. An installed suite records no commit,
    so its version alone tells an upgrade between runs; it is named where it differs."""
    done = out[out["status"] == "done"]
    if done.empty or (done["suite_version"].isna().all() and done["git_commit"].isna().all()) \
            or not _versions_differ(done):
        return []
    by_suite = done["suite_version"].nunique(dropna=False) > 1
    version = [_code_label(v, c, d, s, by_suite=by_suite)
               for v, c, d, s in zip(done["suite_version"], done["git_commit"], done["git_dirty"], done["model_source"])]
    version = pd.Series(version, index=done.index)
    counts = version.value_counts(sort=False)
    shown = ", ".join(f"{v} ({count(n, 'run')})" for v, n in counts.items())
    note = f"Done runs come from {len(counts)} code versions: {shown} (suite_version, git_commit in the CSV)."
    if axes:
        keys = [done[a].map(show) for a in axes]
        mixed = [k if isinstance(k, tuple) else (k,) for k, v in version.groupby(keys, sort=False) if v.nunique() > 1]
        if mixed:
            points = "; ".join(" ".join(f"{a}={v}" for a, v in zip(axes, k)) for k in mixed[:3])
            more = f" and {count(len(mixed) - 3, 'more point')}" if len(mixed) > 3 else ""
            note += f" Cells that average runs of different versions: {points}{more}."
    return [note]


def _code_label(suite: str | None, commit: str | None, dirty: bool | None, source: str | None, *,
                by_suite: bool) -> str:
    """How the version note names a run's code: its commit (or none recorded), after the suite's
    version when the done runs differ in it (`by_suite`), and a plugin's version."""
    tree = None if commit is None else str(commit)[:10] + (" + uncommitted changes" if dirty else "")
    if by_suite:
        label = f"suite {suite or 'version unrecorded'}" + ("" if tree is None else f" at {tree}")
    else:
        label = tree or "no commit recorded"
    return label + ("" if source in (None, "suite") else f" with {source}")


def _uncounted_notes(out: pd.DataFrame, collected: pd.DataFrame, done: np.ndarray) -> list[str]:
    """A note naming, by model, the ops the counter ran past in done runs (fvcore has no handle for
    them: a plugin's op, since the tests keep the shipped models' list empty), which their GMACs
    leave out; `suite profile` lists them too, the report's cells would not say so."""
    if "unsupported_ops" not in collected:
        return []
    by_model: dict[str, dict[str, None]] = {}
    for name, ops in zip(out["model.name"][done], collected["unsupported_ops"][done]):
        if isinstance(ops, str) and ops.strip():
            by_model.setdefault(str(name), {})[ops.strip()] = None
    if not by_model:
        return []
    said = "; ".join(f"{name}: {' or '.join(ops)}" for name, ops in by_model.items())
    return [f"GMACs leave out the ops the counter cannot count, per image ({said}): counted as nothing "
            f"(`suite profile MODEL` lists them)."]


def _versions_differ(done: pd.DataFrame) -> bool:
    """Whether the done runs were trained by more than one suite version or commit (or tree), or by
    more than one version of one plugin: a shipped model's runs beside a plugin's have no plugin version to
    differ in, so they are no other version of the code."""
    suite = {(str(v), str(c), bool(d)) for v, c, d in zip(done["suite_version"], done["git_commit"], done["git_dirty"])}
    plugin: dict[str, set[str]] = {}
    for source in done["model_source"]:
        if source not in (None, "suite"):  # `distribution version`, or a module's name (no version)
            name, _, version = str(source).rpartition(" ")
            plugin.setdefault(name or version, set()).add(version)
    return len(suite) > 1 or any(len(versions) > 1 for versions in plugin.values())


@dataclass
class _Grid:
    """What the expansion says about each run, and what it says about comparing with the paper."""

    records: list[dict[str, Any]]  # per run: its grid point, seed, model, data and paper values where comparable
    ref_keys: dict[str, None]  # the metrics the paper gives (and those compared with them), in order
    differing: dict[str, tuple[Any, Any]]  # key -> (a run's value, the spec's own value), first seen
    other_data: dict[str, None]  # data sets the papers do not report on, on otherwise comparable runs


def _grid_records(runs: Sequence[RunSpec], frame: pd.DataFrame, axes: Sequence[str],
                  metrics: Sequence[str]) -> _Grid:
    """From the expansion, not the store, so runs that never started are placed too; a paper
    value is kept only for a run whose stored config is the one the paper describes."""
    grid = _Grid([], {}, {}, {})
    for i, (run, rid) in enumerate(zip(runs, frame["run_id"])):
        data = run.config.data.name
        record = {"spec": run.spec, "preset": run.preset, "run_id": rid}
        record.update({a: run.point.get(a) for a in axes})
        record.update({"seed": run.seed, "model.name": run.config.model.name, "data.name": data,
                       "ref_data": run.reference_data})
        comparable = False
        if run.reference:
            diffs = differences(stored_config(run, frame.iloc[i]), (run.reference_config or run.config).flat())
            for key, pair in diffs.items():
                grid.differing.setdefault(key, pair)
            if not diffs and data not in PAPER_DATA:
                grid.other_data.setdefault(data)
            comparable = not diffs and data in PAPER_DATA
        for key, value in run.reference.items():
            for shown in (key, *(m for m, paper in COMPARED_WITH.items() if paper == key and m in metrics)):
                grid.ref_keys.setdefault(shown)
                if comparable:
                    record[f"paper_{shown}"] = value
        grid.records.append(record)
    return grid


def _missing_notes(out: pd.DataFrame, collected: pd.DataFrame, done: np.ndarray, metrics: Sequence[str],
                   name: str) -> list[str]:
    """Notes (and a warning) on done runs without a metric they should have; what cannot exist
    (top-5 of five classes or fewer, accuracy on data without meaningful labels) is not missing."""
    notes = []
    n_done = int(done.sum())
    absent = {c: done & out[c].isna().to_numpy() & (collected[c].isna().to_numpy() if c in collected else True)
              for c in dict.fromkeys([*metrics, *EXPECTED])}  # not a number: warned about already
    if "model.num_classes" in collected:  # no top-5 of 5 classes or fewer: not missing
        few = (pd.to_numeric(collected["model.num_classes"], errors="coerce") <= 5).to_numpy()
        for c in absent:
            if c.startswith("top5_err"):
                absent[c] &= ~few
    if "data.name" in collected:  # no accuracy on data without meaningful labels: not missing either
        unlabelled = collected["data.name"].map(lambda n: n in DATASETS and not DATASETS[n].accuracy).to_numpy(bool)
        if any(unlabelled[absent[c]].any() for c in absent if c in ACCURACY):
            names = ", ".join(sorted(set(collected["data.name"][unlabelled])))
            notes.append(f"Runs on {names} data have no accuracy (its labels mean nothing): shown as empty.")
        for c in absent:
            if c in ACCURACY:
                absent[c] &= ~unlabelled
    lacking = [c for c, rows in absent.items() if rows.any()]
    if lacking:
        counts = ", ".join(f"{c} ({int(absent[c].sum())} of {n_done})" for c in lacking)
        message = (f"{name}: done runs without {counts}: written by an older version of the suite, or not "
                   f"measured; shown as empty")
        if any(c in VIEW_METRICS for c in lacking):  # the trained network is in the checkpoint
            message += ("; a done run is evaluated on the rotated and flipped views from its checkpoint, with no "
                        "training, when `suite run` is given with measure.views: true (in the spec's base, or "
                        "measure.views=true on the command line)")
        if any(c in ATTACK_METRICS for c in lacking):
            message += ("; a done run is attacked from its checkpoint, with no training, when `suite run` is given "
                        "with measure.attack: true (in the spec's base, or measure.attack=true on the command line)")
        warnings.warn(message, SuiteWarning, stacklevel=4)
        notes.append(message + ".")
    return notes


def as_written(key: str, value: Any) -> Any:
    """A config value of `key` as a spec writes it: whole where the key takes whole numbers only (the
    frame's float column holds batch_size's 8 as 8.0) or counts epochs (the config holds `epochs: 2`
    as 2.0, a float only so that `epochs: 0.5` can be asked for); any other float stays one (lr 1.0)."""
    if isinstance(value, float) and value.is_integer() and (key in EPOCH_COUNTS or whole_numbers(key)):
        return int(value)
    return value


def _comparison_notes(grid: _Grid, frame: pd.DataFrame, remeasure: Mapping[str, Sequence[str]]) -> list[str]:
    """Why paper values are not compared, which records could not be read, which runs were measured otherwise."""
    notes = []
    if grid.differing:
        keys = sorted(grid.differing, key=lambda k: (k != "data.name", not k.startswith("model."), k))  # data, model first
        pairs = {k: [show(as_written(k, v)) for v in grid.differing[k]] for k in keys[:5]}
        shown = ", ".join(f"{k} ({run}, not {own})" for k, (run, own) in pairs.items())
        more = f" and {count(len(keys) - 5, 'more key')}" if len(keys) > 5 else ""
        notes.append(f"The paper's values are for the spec's own runs; these differ from them in {shown}{more}, "
                     f"so they are not compared.")
    for data in grid.other_data:
        notes.append(f"These runs use {data}, a data set the papers do not report on, so the paper's values are "
                     f"not compared.")
    unreadable = frame.attrs.get("problems", [])
    if unreadable:  # the row's run counts as missing; say why, not only in the console's warning
        more = f"; and {count(len(unreadable) - 3, 'more')}" if len(unreadable) > 3 else ""
        notes.append(f"Counted as not done, since a record is unreadable: {'; '.join(unreadable[:3])}{more}.")
    if remeasure:
        how = ", ".join(dict.fromkeys(item for items in remeasure.values() for item in items))
        ids = ", ".join(list(remeasure)[:3]) + (f" and {len(remeasure) - 3} more" if len(remeasure) > 3 else "")
        notes.append(f"{count(len(remeasure), 'done run')} ({ids}) {'was' if len(remeasure) == 1 else 'were'} "
                     f"measured with other settings than these runs ask for ({how}): their costs and attack rates are shown as measured; "
                     f"`suite run` with this report's preset and overrides measures them again.")
    return notes


def stored_config(run: RunSpec, stored: pd.Series) -> dict[str, Any]:
    """What the run was (or will be) trained with: its config as the store has it (config.json,
    result.json) over the resolved one, for a store written while other defaults held (run ids
    leave defaults out)."""
    config = run.config.flat()
    for key in config:
        if key in RUN_METRICS:  # `epochs`, `iterations`: the frame's column is what the run did
            continue
        value = stored.get(key)
        if isinstance(value, (list, tuple)) or not pd.isna(value):
            config[key] = value
    return config


def differences(actual: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose values make `actual` another experiment than `own`: where a run executes, what
    is measured about it and its seed do not count."""
    out = {}
    for key in dict.fromkeys([*own, *actual]):
        if key == "seed" or not is_identity_key(key):
            continue
        a, b = actual.get(key), own.get(key)
        if not _equal(a, b):
            out[key] = (a, b)
    return out


def _equal(a: Any, b: Any) -> bool:
    """Config values equal across a JSON and pandas round trip (NaN is None, 164.0 is 164)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return False
    if pd.isna(a) or pd.isna(b):
        return bool(pd.isna(a) and pd.isna(b))
    return bool(a == b)


def _finite(value: Any) -> bool:
    """A finite number: not a bool (JSON's true is no 1.0), a string, NaN or an infinity (as JSON
    spells them, `store.collect` keeps these apart from absent values)."""
    return isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_)) \
        and math.isfinite(value)


def summarise(runs: pd.DataFrame, by: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Per group of `by` (display strings of the axis values, in grid order): run counts per
    state, `<metric>_mean|_std|_n` over done runs, mean costs, paper values and `<metric>_diff`."""
    keys = pd.DataFrame({a: runs[a].map(show) for a in by}, index=runs.index) if by else \
        pd.DataFrame({"": [ALL] * len(runs)}, index=runs.index)
    names = list(keys.columns)
    grouped = runs.groupby([keys[k] for k in names], sort=False, dropna=False)
    parts = [grouped["status"].value_counts().unstack(fill_value=0).reindex(columns=list(STATES), fill_value=0)]
    parts[0].insert(0, "runs", parts[0].sum(axis=1))
    stats = grouped[list(metrics)].agg(["mean", "std", "count"])
    stats.columns = [f"{m}_{'n' if s == 'count' else s}" for m, s in stats.columns]
    parts.append(stats)
    costs = [c for c in COSTS if c in runs and c not in metrics]
    if costs:
        parts.append(grouped[costs].mean())
    papers = [c for c in runs.columns if c.startswith("paper_")]
    if papers:  # a cell's paper value only where every done run of it is the paper's experiment:
        # a seed trained otherwise (a default changed between seeds) would otherwise enter its Δ
        done = (runs["status"] == "done").to_numpy()[:, None]
        undescribed = pd.DataFrame(done & runs[papers].isna().to_numpy(), index=runs.index, columns=papers)
        other = undescribed.groupby([keys[k] for k in names], sort=False, dropna=False).any()
        parts.append(grouped[papers].first().where(~other))
    cells = pd.concat(parts, axis=1)
    cells = cells.reindex(keys.drop_duplicates().set_index(names).index if len(runs) else cells.index)
    for m in metrics:
        if f"paper_{m}" in cells:
            cells[f"{m}_diff"] = cells[f"{m}_mean"] - cells[f"paper_{m}"]
    cells.index.names = names
    return cells


# ---------------------------------------------------------------------------------------- pivot
def decimals(x: float) -> int:
    """Decimals to show: none from 1000, one from 100, two from 1, three significant digits below."""
    a = abs(x)
    if a >= 1000:
        return 0
    if a >= 100:
        return 1
    return 2 if a >= 1 or a == 0 else 2 - math.floor(math.log10(a))


def num(x: Any) -> str:
    if x is None or not math.isfinite(x):
        return MISSING
    return f"{x:.{decimals(x)}f}"


def paper_num(x: Any) -> str:
    """A paper's value without the trailing zeros `num` would add (26.4, not 26.40: papers print
    one or two decimals, and mix them: RAN's Table 7 has 21.76 beside 19.5), keeping one (5.0). A
    spec's 3.90 is the number 3.9, so it shows as 3.9."""
    text = num(x)
    if "." not in text:
        return text
    trimmed = text.rstrip("0")
    return trimmed + "0" if trimmed.endswith(".") else trimmed


def diff(x: float, mean: float) -> str:
    """A signed difference, to the decimals of the measurement it comes from."""
    return MISSING if not math.isfinite(x) else f"{x:+.{decimals(mean)}f}"


def cell(mean: float, std: float, n: int, whole: bool = False) -> str:
    """`mean ± std (n)` (std to the mean's decimals); one run: `mean (1)`; none: —. A `whole`
    metric (a count such as best_epoch) shows a whole mean without decimals: `3 ± 0 (2)`."""
    if not n:
        return MISSING
    counted = whole and float(mean).is_integer()
    places = 0 if counted else decimals(mean)
    if n == 1 or not math.isfinite(std):
        return f"{mean:.{places}f} ({n})"
    spread = (0 if float(std).is_integer() else 2) if counted else places
    return f"{mean:.{places}f} ± {std:.{spread}f} ({n})"


def runs_text(counts: Mapping[str, Any]) -> str:
    total = int(counts["runs"])
    if not total:
        return ""
    others = [f"{int(counts[s])} {s}" for s in STATES if s != "done" and counts[s]]
    return ", ".join([f"{int(counts['done'])}/{total} done", *others])


def pivot(cells: pd.DataFrame, rows: Sequence[str], columns: Sequence[str], metrics: Sequence[str],
          labels: Labels | None = None) -> Table:
    """Rows x column blocks of display strings; per block each metric (with paper and Δ where
    comparable values exist) and the run counts; then the cost columns of the row. Axes and their
    values are named as `labels` say (the papers' names)."""
    labels = labels or Labels()
    compared = [m for m in metrics if f"paper_{m}" in cells and cells[f"paper_{m}"].notna().any()]
    fields: list[tuple[str, str | None, str]] = []  # (field label, metric, kind)
    for m in metrics:
        fields.append((label(m), m, "cell"))
        if m in compared:  # the paper's own metric (its plain top-1 beside our best top-1, once per block)
            if COMPARED_WITH.get(m) not in metrics:
                fields.append((f"{label(COMPARED_WITH.get(m, m))}, paper", m, "paper"))
            fields.append((f"Δ {label(m)}", m, "diff"))
    fields.append(("runs", None, "runs"))
    costs = [c for c in TABLE_COSTS if c not in metrics and c in cells
             and (c in ALWAYS_SHOWN or cells[c].notna().any())]
    cost_refs = [c for c in costs if f"paper_{c}" in cells and cells[f"paper_{c}"].notna().any()]

    # Cells are keyed by row values, then column values; with no axis at all the key is (ALL,).
    n_rows = len(rows) if rows or columns else 1
    lookup = {k if isinstance(k, tuple) else (k,): rec for k, rec in cells.to_dict("index").items()}
    row_keys = list(dict.fromkeys(k[:n_rows] for k in lookup))
    col_keys = list(dict.fromkeys(k[n_rows:] for k in lookup)) or [()]

    header: list[tuple[str, str]] = []
    for ck in col_keys:
        group = ", ".join(labels.alone(a, v) for a, v in zip(columns, ck))
        header += [(group, f) for f, _, _ in fields]
    for c in costs:
        header.append(("", TABLE_COSTS[c]))
        if c in cost_refs:
            header.append(("", f"{TABLE_COSTS[c]}, paper"))
    index = [labels.title(r) for r in rows] or [""]  # every axis a column block: one row, labelled ALL
    numeric = [False] * len(index) + [kind != "runs" for ck in col_keys for _, _, kind in fields] + \
        [True] * (len(costs) + len(cost_refs))

    body = []
    ranges = False
    for rk in row_keys:
        line = [labels.value(a, v) for a, v in zip(rows, rk)] or [ALL]
        row_cells = []
        for ck in col_keys:
            rec = lookup.get(rk + ck)
            if rec is not None:
                row_cells.append(rec)
            for _, m, kind in fields:
                if rec is None:
                    line.append("")
                elif kind == "cell":
                    line.append(cell(rec[f"{m}_mean"], rec[f"{m}_std"], int(rec[f"{m}_n"]), whole=m in COUNTS))
                elif kind == "paper":
                    line.append("" if not math.isfinite(rec[f"paper_{m}"]) else paper_num(rec[f"paper_{m}"]))
                elif kind == "diff":
                    has_ref = math.isfinite(rec[f"paper_{m}"])
                    line.append(diff(rec[f"{m}_diff"], rec[f"{m}_mean"]) if has_ref else "")
                else:
                    line.append(runs_text(rec))
        for c in costs:
            line.append(_spread([r[c] for r in row_cells]))
            ranges = ranges or len({num(r[c]) for r in row_cells if math.isfinite(r[c])}) > 1
            if c in cost_refs:
                line.append(_row_reference([r[c] for r in row_cells], [r[f"paper_{c}"] for r in row_cells]))
        body.append(line)
    return Table(index=index, columns=header, body=body, numeric=numeric, ranges=ranges)


def _row_reference(costs: Sequence[float], refs: Sequence[float]) -> str:
    """The paper's cost beside a row's: its blocks' values (as `_spread` shows the costs), or, when
    only some blocks have one, that value where all the row's blocks cost the same; otherwise
    blank, since a value for some blocks is not the row's."""
    given = [v for v in refs if math.isfinite(v)]
    if not given:
        return ""
    if len(given) == len(refs):
        return _spread(given, paper_num)
    same = len({num(v) for v in costs if math.isfinite(v)}) <= 1 and len({num(v) for v in given}) == 1
    return paper_num(given[0]) if same else ""


def _spread(values: Sequence[float], written: Callable[[float], str] = num) -> str:
    """A row's cost: one value, or `min–max` when its cells differ (e.g. 10 vs 100 classes)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return MISSING
    low, high = written(min(finite)), written(max(finite))
    return low if low == high else f"{low}–{high}"


NOTE_CHARS = 300


def failed_runs(report: Report, limit: int = 20) -> list[str]:
    """`run_id axis=value ... seed=s: note` of failed/cancelled/interrupted runs (at most `limit`)."""
    bad = report.runs[report.runs["status"].isin(["failed", "cancelled", "interrupted"])]
    lines = []
    for _, r in bad.head(limit).iterrows():
        point = " ".join(f"{a}={show(r[a])}" for a in report.axes)
        note = " ".join(str(r["note"]).split())  # one line: a list item, a comment
        if len(note) > NOTE_CHARS:  # a whole traceback or log is `suite status`'s to show
            note = note[:NOTE_CHARS - 1] + "…"
        note = f": {note}" if note else ""
        lines.append(f"{r['run_id']} ({r['status']}) {point} seed={r['seed']}{note}".replace("  ", " "))
    if len(bad) > limit:
        lines.append(f"... and {len(bad) - limit} more (suite status {report.same_runs})")
    return lines
