"""Expanding a spec into runs: grid x zip groups x seeds, each resolved into a checked RunConfig.

Precedence, lowest first: `base`, the grid point, the preset, command-line overrides, the seed.
The preset comes after the point because it exists to make *every* point cheap (e.g. swap the
data set). What comes after the point may not change an axis behind the point's label: a preset
replaces a grid axis's values through its `grid:` (a plain value for one is an error), a preset's
value for a zip axis becomes every point's label, and a command-line override of an axis is an
error. Every run is resolved before anything starts, so a typo anywhere in the grid fails the
whole spec up front, at the file and line that caused it.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.ablations.spec import MAX_RUNS, Rule, Spec
from suite.config import SECTIONS, DataConfig, RunConfig, check_schedule, could_be, flatten, resolve, rooted
from suite.data.catalog import DATASETS
from suite.errors import SuiteError, SuiteWarning, close_matches, count, together, unknown
from suite.metrics import REFERENCE_METRICS
from suite.schema import show_value


@dataclass(frozen=True)
class RunSpec:
    """One run of a spec: a frozen, fully resolved config plus where it sits in the grid."""

    spec: str
    point: dict[str, Any]  # axis -> value (seed excluded)
    seed: int
    config: RunConfig
    preset: str | None = None
    reference: dict[str, float] = field(default_factory=dict)  # the paper's numbers at this point
    reference_data: str | None = None  # data set the paper's numbers are for
    # The config the paper's numbers describe: the spec's own run at this point (base, point, the
    # spec's rules; no preset, no command line). None: `config` itself (nothing changed it).
    reference_config: RunConfig | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # the command line's key=value (dotted key -> value)

    @property
    def run_id(self) -> str:
        return self.config.run_id

    def given(self) -> list[str]:
        """The command line's overrides as key=value items: recorded with the run when it is planned,
        so `suite status` of the whole store names its runs as the command that made them."""
        return [f"{k}={show_value(v)}" for k, v in self.overrides.items()]

    def label(self) -> str:
        return _show({**self.point, "seed": self.seed})


# A spec's mistakes are all reported at once, up to this many (or as many as this many grid points show)
MAX_MISTAKES = 10
MAX_FAILED_POINTS = 100
# Keys every later check depends on: after a mistake in one, its default would stand in and the checks
# that follow would report mistakes the spec does not make (another data set's classes or input size).
_FOUNDATIONS = frozenset({"model", "model.name", "recipe", "data.name", "data.input_size", "data.eval_size"})


def expand(spec: Spec, preset: str | None = None, overrides: Mapping[str, Any] | None = None) -> list[RunSpec]:
    """All runs of `spec` (optionally under a preset and CLI overrides), validated, in grid order."""
    base_src: dict[str, tuple[str, ...]] = {}  # key -> YAML path of its value, per layer
    preset_src: dict[str, tuple[str, ...]] = {}
    base = _flatten(spec.base, ("base",), base_src)
    preset_values: dict[str, Any] = {}
    axis_values: dict[str, list[Any]] = {}
    preset_rules: list[Rule] = []
    seeds = spec.seeds
    if preset is not None:
        if preset not in spec.presets:
            raise unknown("preset", preset, spec.presets, file=str(spec.path), key="presets")
        raw = dict(spec.presets[preset])
        if "seeds" in raw:
            seeds = list(raw["seeds"])
        axis_values = raw.pop("grid", {})
        preset_rules = raw.pop("when", [])
        raw.pop("seeds", None)
        preset_values = _flatten(raw, ("presets", preset), preset_src)
    # a relative data.root means the caller's folder on the command line and from Python alike, and a
    # spec's own (base, a preset, a rule) its file's folder: recorded absolute, read alike by every job
    overrides = rooted(overrides or {}, Path.cwd())
    spec_folder = Path(spec.path).absolute().parent.resolve()  # `..` as the OS reads it; the file's own link kept
    cli_src = {key: ("<command line>",) for key in overrides}
    _check_no_seed(spec, [base_src, {a: ("grid" if a in spec.grid else "zip", a) for a in spec.axes}, preset_src,
                          *({"seed": r.path + ("set", "seed")} for r in spec.when + preset_rules if "seed" in r.set)])
    if "seed" in overrides:
        raise SuiteError(_SEED_IS_NOT_A_KEY, file="<command line>", key="seed")
    _check_not_axes(spec, preset, preset_values, preset_src, overrides)
    set_keys = _check_match_keys(spec, spec.when, set(base) | set(spec.axes))
    _check_match_keys(spec, preset_rules, set_keys | set(preset_values))

    runs: list[RunSpec] = []
    mistakes: dict[tuple[Any, ...], SuiteError] = {}  # distinct ones, in the order found
    failed = 0
    seen: dict[str, RunSpec] = {}
    seen_where: dict[str, dict[str, tuple[str, ...]]] = {}
    before_cli: dict[str, dict[str, Any]] = {}  # run_id -> values without the command line (to blame it)
    applied: set[tuple[str, ...]] = set()  # paths of the rules that matched some run
    changed = bool(preset_values or preset_rules or overrides)  # may runs differ from the spec's own?
    zipped = {k: v for k, v in preset_values.items() if k in spec.axes}  # _check_not_axes: zip axes only
    is_own = own_points(spec)
    for point, point_src in _points(spec, axis_values, preset, zipped, preset_src, len(seeds)):
        own: dict[str, Any] = {}  # the spec's own run at this point: base, point, the spec's rules
        own_where: dict[str, tuple[str, ...]] = {}
        _layer(own, own_where, base, base_src)
        _layer(own, own_where, point, point_src)
        applied |= _apply(spec.when, own, own_where)
        # The paper's numbers are per point of the spec's own grid, for the spec's own config: the
        # registry's for a model at its defaults, the spec's `reference:` for the ablation's other rows.
        reference, reference_config = {}, None
        if is_own(point):
            try:
                reference_config = resolve({**own, "seed": seeds[0]})
            except SuiteError:  # the spec's own run cannot exist (its error is said below): nothing to compare with
                pass
            else:
                reference = _reference_for(spec, point, reference_config.model.name,
                                           _model_reference(reference_config, point))
        if not changed or not reference:
            reference_config = None
        # the layers over the spec's own run are the same for every seed: laid once a point
        values, where = dict(own), dict(own_where)
        _layer(values, where, preset_values, preset_src)
        applied |= _apply(preset_rules, values, where)
        values = rooted(values, spec_folder)  # all the spec's own so far
        pre = dict(values)
        _layer(values, where, overrides, cli_src)
        for seed in seeds:
            config = _resolve_point({**values, "seed": seed}, where, spec, point, seed, mistakes)
            if config is None:
                failed += 1
                if len(mistakes) >= MAX_MISTAKES or failed >= MAX_FAILED_POINTS:
                    break
                continue
            run = RunSpec(
                spec=spec.name,
                point=point,
                seed=seed,
                config=config,
                preset=preset,
                reference=reference,
                reference_data=own.get("data.name", DataConfig.name),
                reference_config=reference_config,
                overrides=overrides,
            )
            if run.run_id in seen:
                err = _duplicate(spec, seen[run.run_id], run, before_cli, {**pre, "seed": seed}, overrides,
                                 _apart(spec, seen_where[run.run_id], where))
                mistakes.setdefault((err.file, err.line, err.key, "duplicate"), err)
                continue
            seen[run.run_id], seen_where[run.run_id] = run, where
            if overrides:
                before_cli[run.run_id] = {**pre, "seed": seed}
            runs.append(run)
        else:
            continue
        break  # enough mistakes to report
    if mistakes:
        first = together(sorted(mistakes.values(), key=lambda e: (e.file or "", e.line or 0)))
        if len(mistakes) >= MAX_MISTAKES or failed >= MAX_FAILED_POINTS:
            first.also.append(SuiteError(f"(checking stopped after {count(len(mistakes), 'mistake')} in "
                                         f"{count(failed, 'failing run')}: there may be more)"))
        raise first.where()
    if not runs:
        raise spec.error("the grid has no runs")
    # Under a preset that replaces axis values, the spec's own rules and reference may fit no run.
    for rule in (spec.when if preset is None else []) + preset_rules:
        if rule.path not in applied:
            _fits_nothing(spec, "this rule matches no run", rule.path + ("match",), rule.match,
                          [run.config.flat() for run in runs])
    if preset is None:
        used = {i for run in runs for i, _ in _matching_reference(spec, run.point)}
        for i, entry in enumerate(spec.reference):
            if i not in used:
                axes = {k: v for k, v in entry.items() if k not in REFERENCE_METRICS}
                _fits_nothing(spec, "this reference entry fits no point of the grid", ("reference", str(i)), axes,
                              [run.point for run in runs])
    return runs


def _layer(values: dict[str, Any], where: dict[str, tuple[str, ...]], new: Mapping[str, Any],
           new_where: Mapping[str, tuple[str, ...]]) -> None:
    """Put a later layer over `values`. The training length is one quantity: a layer that sets
    epochs clears an earlier layer's iterations, and vice versa."""
    for key, other in (("epochs", "iterations"), ("iterations", "epochs")):
        if key in new:  # a layer setting both keeps both (update puts them back)
            values.pop(other, None)
    values.update(new)
    where.update({key: new_where[key] for key in new})


_SEED_IS_NOT_A_KEY = "a run's seed comes from the spec's seeds: (or a preset's), not a key"


def _check_no_seed(spec: Spec, layers: list[Mapping[str, tuple[str, ...]]]) -> None:
    """`seed` set anywhere but `seeds:` would be silently replaced by each run's seed."""
    for layer in layers:
        if "seed" in layer:
            raise spec.error(_SEED_IS_NOT_A_KEY, *layer["seed"], choices=["seeds: [0, 1, 2]", "seeds: 3"])


def _check_not_axes(spec: Spec, preset: str | None, preset_values: Mapping[str, Any],
                    preset_src: Mapping[str, tuple[str, ...]], overrides: Mapping[str, Any]) -> None:
    """A preset's plain value or a command-line override for a grid axis would train every run
    with that value while the runs keep the grid's labels (and the paper's numbers for them).
    A preset may set a zip axis: its points then carry the preset's value (see _points)."""
    for key, axis in _touched(preset_values):
        if axis in spec.grid or (axis in spec.axes and key != axis):
            path = preset_src[key]
            raise spec.error(f"{_sets(key, axis)}: every run would train with the preset's value but keep the "
                             f"grid's label; {_narrow(spec, axis, preset)}", *path)
    for key, axis in _touched(flatten(overrides)):
        if axis in spec.axes:
            raise SuiteError(f"{_sets(key, axis)} of {spec.name}: every run would train with this value but keep the "
                             f"grid's label; {_narrow(spec, axis, None)}", file="<command line>", key=key)


def _sets(key: str, axis: str) -> str:
    return f"{axis!r} is a grid axis" if key == axis else f"setting {key!r} clears the grid axis {axis!r}"


# Setting one of these clears the other (see _layer): a layer that sets one changes an axis of the other.
_PARTNER = {"epochs": "iterations", "iterations": "epochs"}


def _touched(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, key whose value it decides) for each key of a layer: itself, and for epochs or
    iterations also the other, which it clears."""
    return [(k, k) for k in values] + [(k, _PARTNER[k]) for k in values if k in _PARTNER]


def _narrow(spec: Spec, axis: str, preset: str | None) -> str:
    """How to run fewer values of an axis instead."""
    if axis not in spec.grid:
        return f"it varies in a zip group: to narrow the grid, edit {spec.path}"
    where = f"presets.{preset}.grid" if preset is not None else "a preset's grid"
    having = [p for p, v in spec.presets.items() if axis in (v.get("grid") or {})]
    hint = f" (presets that do: {', '.join(having)})" if having and preset is None else ""
    return f"to narrow the grid, edit the spec or replace the axis's values in {where}: {{{axis}: [...]}}{hint}"


def _apart(spec: Spec, first: Mapping[str, tuple[str, ...]], second: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Where the second of two points that resolve to one run gets the axis value that sets it apart
    from the first (e.g. a value given twice in a preset's grid), else the spec's first axis."""
    for axis in spec.axes:
        if axis in first and axis in second and first[axis] != second[axis]:
            return second[axis]
    return _first_axis_path(spec)


def _duplicate(spec: Spec, other: RunSpec, run: RunSpec, before_cli: Mapping[str, Mapping[str, Any]],
               pre: Mapping[str, Any], overrides: Mapping[str, Any], apart: tuple[str, ...]) -> SuiteError:
    """Two points that resolve to one run: blamed on the command line when they differ without it,
    else on the value at `apart`."""
    message = f"duplicate runs: [{other.label()}] and [{run.label()}] resolve to the same config (run {run.run_id})"
    if other.run_id in before_cli:
        try:
            distinct = resolve(before_cli[other.run_id]).run_id != resolve(pre).run_id
        except SuiteError:
            distinct = True
        if distinct:
            key = next(iter(overrides)) if len(overrides) == 1 else None
            return SuiteError(f"{message} only with the overrides {', '.join(overrides)}: they make two grid points "
                              f"one run", file="<command line>", key=key)
    return spec.error(f"{message}; an axis value may be given twice, be overridden by a rule or the preset, or "
                      f"repeat a default", *apart)


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same kind: 1 is not True, as a config value's type check says (1 is 1.0)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def own_points(spec: Spec) -> Callable[[Mapping[str, Any]], bool]:
    """Whether a (preset's) grid point is one of the spec's own, the points its paper values are
    for: the spec's axis values and zip rows are indexed once, since a scan of them for every point
    is quadratic in a large zip group (10,000 runs: minutes)."""
    grid = [(axis, _index([(v,) for v in values])) for axis, values in spec.grid.items()]
    groups = [(list(group), _index(list(zip(*group.values())))) for group in spec.zip]

    def own(point: Mapping[str, Any]) -> bool:
        return all(has((point.get(axis),)) for axis, has in grid) and \
            all(has(tuple(point.get(axis) for axis in axes)) for axes, has in groups)

    return own


def _index(rows: list[tuple[Any, ...]]) -> Callable[[tuple[Any, ...]], bool]:
    """Membership of a row of values in `rows`, equal as `_same` has it: by a set of the rows'
    keys, or by a scan where a value has no key (a list, a NaN, which equals nothing)."""
    try:
        keys = {_key(row) for row in rows}
    except TypeError:
        return lambda row: any(all(_same(a, b) for a, b in zip(row, other)) for other in rows)

    def has(row: tuple[Any, ...]) -> bool:
        try:
            return _key(row) in keys
        except TypeError:  # no row of the spec's is a list or a NaN: this one is none of them
            return False

    return has


def _key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A hashable key of a row of values, equal for rows `_same` finds equal (1 is 1.0, not True)."""
    for v in row:
        if isinstance(v, float) and math.isnan(v):  # NaN equals nothing, not even itself
            raise TypeError("nan")
    key = tuple((isinstance(v, bool), v) for v in row)
    hash(key)  # TypeError for a list or a mapping
    return key


def _points(spec: Spec, replaced: Mapping[str, list[Any]], preset: str | None, fixed: Mapping[str, Any],
            fixed_src: Mapping[str, tuple[str, ...]], n_seeds: int,
            ) -> list[tuple[dict[str, Any], dict[str, tuple[str, ...]]]]:
    """Cartesian product of the grid axes (values possibly replaced by the preset's grid) and the
    zip groups (a zip axis the preset sets takes its value in every point, label included; points
    that it makes equal are one), as (point, key -> yaml path of the value). With `n_seeds` seeds,
    more than MAX_RUNS runs is an error, said before the product is built."""
    Factor = tuple[dict[str, Any], dict[str, tuple[str, ...]]]
    factors: list[list[Factor]] = []
    for axis, values in spec.grid.items():
        where = ("presets", str(preset), "grid", axis) if axis in replaced else ("grid", axis)
        factors.append([({axis: v}, {axis: where + (str(i),)}) for i, v in enumerate(replaced.get(axis, values))])
    for g, group in enumerate(spec.zip):
        length = len(next(iter(group.values())))
        factor: list[Factor] = []
        for i in range(length):
            point = {axis: fixed.get(axis, vals[i]) for axis, vals in group.items()}
            where = {axis: fixed_src[axis] if axis in fixed else ("zip", str(g), axis, str(i)) for axis in group}
            if fixed.keys() & group.keys() and any(all(_same(point[a], p[a]) for a in group) for p, _ in factor):
                continue  # the preset's values made it an earlier point: one run, not a duplicate
            factor.append((point, where))
        factors.append(factor)
    if (n_runs := math.prod(len(f) for f in factors) * n_seeds) > MAX_RUNS:
        sizes = " x ".join([str(len(f)) for f in factors] + [f"{n_seeds} seeds"])
        raise spec.error(f"{n_runs:,} runs ({sizes}), more than the {MAX_RUNS:,} one spec may have: split the grid "
                         "into several specs or presets", "presets" if preset else "grid", *([preset] if preset else []))
    out = []
    for combo in itertools.product(*factors):
        point: dict[str, Any] = {}
        where: dict[str, tuple[str, ...]] = {}
        for values, paths in combo:
            point.update(values)
            where.update(paths)
        out.append((point, where))
    return out


def _apply(rules: list[Rule], values: dict[str, Any], where: dict[str, tuple[str, ...]]) -> set[tuple[str, ...]]:
    """Apply the rules that match `values`; returns their paths."""
    applied = set()
    for rule in rules:
        if rule.applies(values):
            sources: dict[str, tuple[str, ...]] = {}
            _layer(values, where, _flatten(rule.set, rule.path + ("set",), sources), sources)
            applied.add(rule.path)
    return applied


def _check_match_keys(spec: Spec, rules: list[Rule], known: set[str]) -> set[str]:
    """A rule matches values the spec sets (defaults are not looked up), so a key set nowhere
    before the rule, typically a typo, would silently never match. Returns `known` plus what the
    rules set."""
    known = set(known)
    for rule in rules:
        for key in rule.match:
            if key not in known:
                hint = close_matches(key, known)
                raise spec.error(f"a rule can only match keys set before it (in base, an axis, the preset or an "
                                 f"earlier rule's set), and {key!r} is not"
                                 + (f"; did you mean {hint[0]!r}?" if hint else ""), *rule.path, "match", key,
                                 choices=sorted(known))
        sets = flatten(rule.set)
        for key, axis in _touched(sets):
            if axis in spec.axes:  # the run's label and reference would still show the grid's value
                section = key.split(".", 1)
                where = section if section[0] in rule.set else [key]  # `model: {name: x}` or `model.name: x`
                clears = "" if key == axis else f" ({key!r} clears {axis!r})"
                raise spec.error(f"a rule cannot set a grid axis{clears}: vary it in the grid or a zip group",
                                 *rule.path, "set", *where)
        known |= set(sets)
    return known


def _flatten(values: Mapping[str, Any], path: tuple[str, ...], sources: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """Dotted keys of a base/preset mapping, remembering each key's YAML path for error lines."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in SECTIONS and isinstance(value, Mapping):
            for sub, v in value.items():
                out[f"{key}.{sub}"] = v
                sources[f"{key}.{sub}"] = path + (key, str(sub))
        else:
            out[key] = value
            sources[key] = path + (key,)
    return out


def _resolve_point(values: dict[str, Any], where: dict[str, tuple[str, ...]], spec: Spec, point: dict[str, Any],
                   seed: int, mistakes: dict[tuple[Any, ...], SuiteError]) -> RunConfig | None:
    """resolve(values), or None with its mistakes added to `mistakes`: after each one the value it
    blames is dropped (its default stands in) and the run resolved again, so one pass names every
    mistake rather than one per edit. Not past a bad model name, which every later check depends on."""
    values = dict(values)
    found = False
    while True:
        try:
            config = resolve(values)
            check_schedule(values, config)
            return None if found else config
        except SuiteError as err:
            found = True
            located = _locate(err, spec, where, point, seed)
            located.also = list(err.also)  # what it says further (a broken model plugin), said once by `together`
            # one mistake, however many runs or models show it: the same place blaming the same
            # value with the same choices (every model of a grid), or saying the same (an unknown
            # key, whatever its value); a value one model refuses and another has no option for is two
            place = (located.file, located.line, located.key)
            blamed = (repr(values[err.key]) if err.key in values else err.message, tuple(err.choices or ()))
            if not any(k[:3] == place and (k[3] == blamed or k[4:] == (err.message,)) for k in mistakes):
                mistakes[(*place, blamed, err.message)] = located
            if not err.key or err.key not in values or err.key in _FOUNDATIONS or len(mistakes) >= MAX_MISTAKES:
                return None
            del values[err.key]
            if err.key in _PARTNER:  # one training length: an explicit null partner goes with it
                values.pop(_PARTNER[err.key], None)


def _locate(err: SuiteError, spec: Spec, sources: dict[str, tuple[str, ...]], point: dict[str, Any], seed: int) -> SuiteError:
    """Re-raise a resolve() error at the spec key (and line) that set the offending value."""
    key = err.key or ""
    setter = key if key in sources else "model.name" if key.startswith("model.") and "model.name" in sources else None
    path = sources[setter] if setter else ("base",)
    run = _show(point) or "base"
    message = f"{err.message} [run {run} seed={seed}]"
    if key and key not in sources:  # a default the spec does not set: the error points at the model
        message = f"{key}: {message}"
    if path[0] == "<command line>":  # the override that set the value, or the model it chose
        blamed = key if key in sources else "model.name"
        return SuiteError(message, file="<command line>", key=blamed, choices=err.choices)
    if setter in point and path[-1].isdigit():  # an axis's item: name the axis, point at the item's line
        return SuiteError(message, file=str(spec.path), key=".".join(path[:-1]), line=spec.line(*path), choices=err.choices)
    return spec.error(message, *path, choices=err.choices)


def _first_axis_path(spec: Spec) -> tuple[str, ...]:
    if spec.grid:
        return ("grid",)
    return ("zip",) if spec.zip else ("base",)


# What a run of a model at its defaults may set otherwise than the suite's defaults (`RunConfig.identity`):
# the model and the data set, with its classes, and the sizes, checked against the figures' own.
_PAPER_KEYS = frozenset({"model.name", "model.num_classes", "data.name", "data.input_size", "data.eval_size"})


def _model_reference(config: RunConfig, point: Mapping[str, Any]) -> dict[str, float]:
    """The registry's figures for `config` when it trains its model as the paper's table does: every
    option at its default (but the classes, all of the data set's: an ImageNet folder of 100 classes
    is not the paper's ImageNet), on the data set, at the input and evaluation size the figures are
    for, with no axis but the model's and the data's (an axis of the training keys makes each point
    another experiment than the paper's)."""
    from suite.models import get_model_info
    from suite.models.papers import run_reference

    info = get_model_info(config.model.name)
    classes = config.model.kwargs.get("num_classes", DATASETS[config.data.name].num_classes)
    at_defaults = (
        all(k.startswith(("model.", "data.")) for k in point)
        and not {k for k in config.identity() if k.startswith(("model.", "data."))} - _PAPER_KEYS
        and classes == DATASETS[config.data.name].num_classes
        and config.data.input_size == info.input_size
        and config.data.eval_size == info.paper.get("eval_size", info.input_size))
    return run_reference(info.paper, config.data.name) if at_defaults else {}


def _reference_for(spec: Spec, point: Mapping[str, Any], name: str, model: Mapping[str, float]) -> dict[str, float]:
    """The registry's figures for the point's model `name` (`model`, when at its defaults) and the
    metrics of every reference entry whose axis values all match the point. An entry giving a metric the
    registry gives (a number in two places), or two entries giving one metric different values for
    the same point, are errors."""
    out: dict[str, float] = dict(model)
    first: dict[str, int] = {}
    for i, entry in _matching_reference(spec, point):
        for metric, value in entry.items():
            if metric not in REFERENCE_METRICS:
                continue
            if metric in model:
                raise spec.error(f"{metric} of {name} at its defaults is the model registry's ({model[metric]}, "
                                 "its `paper=`): leave it out here", "reference", str(i), metric)
            if metric in out and out[metric] != float(value):
                raise spec.error(f"reference entries {first[metric]} and {i} give {metric} different values for "
                                 f"the point {_show(point)}", "reference", str(i), metric)
            out[metric], first[metric] = float(value), first.get(metric, i)
    return out


def _matching_reference(spec: Spec, point: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return [(i, entry) for i, entry in enumerate(spec.reference)
            if all(_same(point.get(k), v) for k, v in entry.items() if k not in REFERENCE_METRICS)]


def _fits_nothing(spec: Spec, problem: str, path: tuple[str, ...], wanted: Mapping[str, Any],
                  runs: list[dict[str, Any]]) -> None:
    """A warning: a grid narrowed from the paper's can leave entries and rules with nothing to fit.
    An error if a value is none its key can take (a typo)."""
    for key, value in wanted.items():
        if not could_be(key, value):
            have = list({repr(run.get(key)): run.get(key) for run in runs}.values())
            hint = close_matches(value, [v for v in have if isinstance(v, str)]) if isinstance(value, str) else []
            raise spec.error(f"{problem}: {key}={value!r} is no value {key} takes"
                             + (f"; did you mean {hint[0]!r}?" if hint else ""), *path, key,
                             choices=sorted(map(str, have)))
    warnings.warn(f"{spec.path}:{spec.line(*path)}: {'.'.join(path)}: {problem} ({_show(wanted)}), so it is ignored",
                  SuiteWarning, stacklevel=3)


def _show(values: Mapping[str, Any]) -> str:
    """key=value pairs as the command line writes them (`schema.show_value`)."""
    return " ".join(f"{k}={show_value(v)}" for k, v in values.items())
