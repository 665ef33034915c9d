"""Ablation spec files: the YAML schema, loading with line numbers, and structural checks.

A spec describes a grid of runs relative to a base config:

    name: ran_mask_norm                     # must equal the file name
    description: ...
    paper: {paper: ..., table: Table 1}
    base: {model: {name: ran56_cifar}, data: {name: cifar10}, recipe: ran_cifar}
    grid: {model.mask_norm: [mixed, channel, spatial]}     # cartesian product of axes
    zip: [{model.name: [...], recipe: [...]}]               # groups of axes that vary together
    when: [{match: {model.name: "san*"}, set: {model.padding: zeros}}]  # conditional overrides
    seeds: [0, 1, 2]                                        # or a count: 3
    presets: {smoke: {data.name: digits, recipe: smoke, seeds: [0], grid: {model.mask_norm: [mixed]}}}
    reference: [{model.mask_norm: channel, top1_err: ...}, ...]  # the paper's numbers at points off the
                                                 # model's defaults (those are its registration's)
    report: {rows: [model.mask_norm], columns: [], metrics: [top1_err]}
    labels: {model.mask_norm: {name: Attention type, values: {mixed: Mixed, channel: Channel, spatial: Spatial}}}
                                                            # the paper's names, for reports (every value or none)
    cluster: {partition: gpu, gpus_per_node: 1, timeout_min: 2880}  # SLURM options

This module only checks the *shape* of the file; whether each run's keys and values are valid is
decided by `suite.config.resolve` during expansion (expand.py), which maps errors back to the line
of the key that caused them.
"""

from __future__ import annotations

import fnmatch
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from suite.config import MAX_SEED, MEASURE, SECTIONS, check_key, flatten
from suite.data.catalog import DATASETS
from suite.errors import SuiteError, close_matches, together
from suite.metrics import COSTS, REFERENCE_METRICS, RUN_METRICS, column_names, percent
from suite.schema import load_yaml, read_yaml, show, show_value

TOP_LEVEL = ("name", "description", "paper", "base", "grid", "zip", "when", "seeds", "presets", "reference", "report",
             "labels", "cluster")
REPORT_KEYS = ("rows", "columns", "metrics")
LABEL_KEYS = ("name", "values")  # an axis' title in tables, and its values' labels
# A figure's legend beside three panels: 400 characters collapsed the panels to nothing (the
# papers' longest name, `L-R-L (official: BN-R-L-BN-R-L)`, has 31).
MAX_LABEL = 40
PAPER_KEYS = ("paper", "table", "url")  # shown beside the table, joined: which paper, which of its tables
# Applied under every spec's own `presets.smoke`: the whole grid on the offline digits data, one seed.
DEFAULT_SMOKE = {"data.name": "digits", "recipe": "smoke", "seeds": [0]}
# Spec and preset names become file names (`SPEC.PRESET.md`) and `--into` marker names: no '.'
# (`a.b` would be spec a under preset b), no spaces (a marker name ends at one), nothing a shell quotes.
NAME = re.compile(r"\w[\w-]*")
RESERVED = ("complexity",)  # <out>/complexity.md and .csv are the model-complexity page
# Bytes of UTF-8 per spec or preset name: both go into one report name (suite.report.names), which keeps within
# its NAME_BYTES (199) the two at their longest, a '.' and the '~' and 8 hex digits every override adds: 2 * 94 + 10.
NAME_BYTES = 94
PRESET_KEYS = ("grid", "when", "seeds")  # a preset's own keys; the rest are config values


@dataclass(frozen=True)
class Rule:
    """Conditional overrides: `set` applies to every run whose values match all of `match`
    (fnmatch patterns for strings, equality otherwise), e.g. zero padding for SAN models only."""

    match: dict[str, Any]
    set: dict[str, Any]
    path: tuple[str, ...]  # where the rule is in the file, for error lines

    def applies(self, values: dict[str, Any]) -> bool:
        return all(matches(values.get(k), v) for k, v in self.match.items())


def matches(value: Any, pattern: Any) -> bool:
    """fnmatch for strings, equality otherwise."""
    if isinstance(pattern, str) and isinstance(value, str):
        return fnmatch.fnmatchcase(value, pattern)
    return value == pattern


@dataclass(frozen=True)
class AxisLabels:
    """How a report names an axis and its values where the paper's table names them otherwise
    than the config does (`data.clean_ratio` 0.9 is the noise level 10%). The config keeps the
    keys and values: they are the runs' identity."""

    name: str | None = None
    values: dict[Any, str] = field(default_factory=dict)  # axis value (as the grid writes it) -> label


@dataclass(frozen=True)
class Spec:
    name: str
    path: Path
    description: str
    paper: dict[str, Any]
    base: dict[str, Any]
    grid: dict[str, list[Any]]  # a preset's `grid` replaces the values of these axes
    zip: list[dict[str, list[Any]]]
    seeds: list[int]
    presets: dict[str, dict[str, Any]]
    reference: list[dict[str, Any]]
    report: dict[str, list[str]]
    cluster: dict[str, Any]
    when: list[Rule] = field(default_factory=list)
    labels: dict[str, AxisLabels] = field(default_factory=dict)
    lines: dict[tuple[str, ...], int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def axes(self) -> list[str]:
        """Every varied key, grid axes first, in file order."""
        return list(self.grid) + [k for group in self.zip for k in group]

    def line(self, *path: str) -> int | None:
        return _Where(self.path, self.lines).line(path)

    def gives(self, key: str, preset: str | None = None) -> bool:
        """Whether the spec (under `preset`) sets `key` anywhere: in base, as an axis, by a rule or
        in the preset. If not, every run takes the key's default, and `suite specs` says so, as a
        dropped `data: {name: ...}` line would otherwise train on digits unseen."""
        values = self.presets[preset] if preset is not None else {}
        plain = {k: v for k, v in values.items() if k not in PRESET_KEYS}
        rules = [*self.when, *values.get("when", [])]
        return (key in flatten(self.base) or key in self.axes or key in flatten(plain)
                or any(key in flatten(rule.set) for rule in rules))

    def error(self, message: str, *path: str, **kwargs: Any) -> SuiteError:
        return _Where(self.path, self.lines).error(message, *path, **kwargs)


def parse(path: Path) -> Spec:
    """Read and structurally check one spec file."""
    raw, lines = read_yaml(path, "spec")
    where = _Where(path, lines)
    if not isinstance(raw, Mapping):
        raise where.error("a spec must be a mapping of keys (name, base, grid, ...)")
    for key in raw:
        if key not in TOP_LEVEL:
            hint = close_matches(str(key), TOP_LEVEL)
            raise where.error(f"unknown spec key{'; did you mean ' + repr(hint[0]) + '?' if hint else ''}",
                              str(key), choices=TOP_LEVEL)
    name = raw.get("name", path.stem)
    if name is None:
        raise where.error(f"the spec name is empty: write the file's (name: {path.stem}) or leave the key out", "name")
    if not isinstance(name, str):
        shown = show_value(name)
        raise where.error(f"the spec name must be text, got {shown} (quote it: name: \"{shown}\")", "name")
    if name != path.stem:
        raise where.error(f"the spec name {name!r} must equal the file name {path.stem!r}", "name")
    _check_name(str(name), "spec", where, "name")
    base = _mapping(raw.get("base", {}), where, "base")
    _given_twice(base, where, "base")
    grid = _axes(raw.get("grid", {}), where, "grid")
    zips = raw.get("zip", [])
    if not isinstance(zips, list):
        raise where.error("expected a list of axis groups", "zip")
    zip_groups = []
    for i, group in enumerate(zips):
        axes = _axes(group, where, "zip", str(i))
        if not axes:
            raise where.error("empty zip group: give it the axes that vary together, or remove it", "zip", str(i))
        lengths = {len(v) for v in axes.values()}
        if len(lengths) > 1:
            raise where.error("axes in a zip group vary together, so their lists need equal lengths, got "
                              + ", ".join(f"{k}: {len(v)}" for k, v in axes.items()), "zip", str(i))
        zip_groups.append(axes)
    seen: dict[str, str] = {}
    for section, axes in [(("grid",), grid)] + [(("zip", str(i)), g) for i, g in enumerate(zip_groups)]:
        for axis in axes:
            place = " ".join(section).replace("zip ", "zip group ")
            if axis in seen:
                raise where.error(f"axis appears twice (in {seen[axis]} and {place})", *section, axis)
            seen[axis] = place
    presets = {str(k): _mapping(v, where, "presets", str(k)) for k, v in _mapping(raw.get("presets", {}), where, "presets").items()}
    folded = {"smoke": "smoke"}  # every spec has a smoke preset, written or not
    for preset, values in presets.items():
        _check_name(preset, "preset", where, "presets", preset)
        if folded.setdefault(preset.casefold(), preset) != preset:  # macOS' and Windows' file names ignore case
            other = folded[preset.casefold()]
            raise where.error(f"preset {preset!r} and preset {other!r}{' (every spec has one)' * (other == 'smoke')} "
                              f"differ only in case: their reports ({name}.{other}.md, {name}.{preset}.md) would be "
                              "one file where file names ignore case (macOS, Windows); rename one", "presets", preset)
        _given_twice(values, where, "presets", preset)
        if "grid" in values:
            values["grid"] = _axes(values["grid"], where, "presets", preset, "grid")
    presets["smoke"] = _smoke(presets.get("smoke", {}), base, grid, zip_groups)
    spec = Spec(
        name=name,
        path=path,
        description=_description(raw.get("description", ""), where),
        paper=_paper(raw.get("paper", {}), where),
        base=base,
        grid=grid,
        zip=zip_groups,
        seeds=_seeds(raw.get("seeds", [0]), where, "seeds"),
        presets=presets,
        reference=_reference(raw.get("reference", []), where, list(seen)),
        report=_report(raw.get("report", {}), where, list(seen)),
        cluster=_mapping(raw.get("cluster", {}), where, "cluster"),
        when=_rules(raw.get("when", []), where, "when"),
        labels=_labels(raw.get("labels", {}), where, _values(grid, zip_groups, {}),
                       {name: _values(grid, zip_groups, {name: p}) for name, p in presets.items()}),
        lines=lines,
    )
    from suite.dispatch.cluster import section_mistakes

    # a typo shows before any run, whatever the executor, beside the presets' mistakes
    mistakes = section_mistakes(spec.cluster, lambda *path: spec.line("cluster", *path), str(path))
    for preset, values in spec.presets.items():
        if "seeds" in values:
            values["seeds"] = _seeds(values["seeds"], where, "presets", preset, "seeds")  # a count as its list
        if "when" in values:
            values["when"] = _rules(values["when"], where, "presets", preset, "when")
        mistakes += _check_keys(values, list(grid), where, "presets", preset)  # for every command, not only --preset's
        for axis in values.get("grid", {}):
            group = next((i for i, axes in enumerate(zip_groups) if axis in axes), None)
            if group is not None:
                mistakes.append(where.error(f"{axis} is an axis of zip group {group}: a preset sets a zipped axis "
                                            f"with a plain value ({axis}: VALUE), not under grid:",
                                            "presets", preset, "grid", axis))
            elif axis not in grid:
                mistakes.append(where.error("a preset can only replace the values of a grid axis", "presets", preset,
                                            "grid", axis, choices=list(grid) or None))
    if mistakes:
        raise together(mistakes)
    return spec


@dataclass(frozen=True)
class _Where:
    path: Path
    lines: dict[tuple[str, ...], int]

    def line(self, path: tuple[str, ...]) -> int | None:
        """1-based line of a key, or of its nearest enclosing key."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    def error(self, message: str, *path: str, **kwargs: Any) -> SuiteError:
        return SuiteError(message, file=str(self.path), key=".".join(path) or None, line=self.line(path), **kwargs)


def _mapping(value: Any, where: _Where, *path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise where.error(f"expected a mapping, got {type(value).__name__}", *path)
    return {str(k): v for k, v in value.items()}


def _axes(value: Any, where: _Where, *path: str) -> dict[str, list[Any]]:
    axes = _mapping(value, where, *path)
    _given_twice(axes, where, *path)
    for axis, values in axes.items():
        if not isinstance(values, list):
            nested = isinstance(values, Mapping) and values and all(isinstance(v, list) for v in values.values())
            hint = f" (an axis is one dotted key: {axis}.{next(iter(values))}: [...])" if nested else ""
            raise where.error(f"an axis takes a list of values, got {show_value(values)}{hint}", *path, axis)
        if not values:
            raise where.error("empty axis: the grid would have no runs", *path, axis)
        if axis.startswith(MEASURE) or axis == MEASURE[:-1]:
            raise where.error("measure.* keys say how a run is measured, not what is trained, so grid points that "
                              "differ only in them are one run: set them in base or a preset, and compare batch "
                              "sizes with `suite profile MODEL --bench all --batch-size N`", *path, axis)
        if axis in SECTIONS:  # its values' keys would escape the label checks, rules and error lines
            sub = next((str(k) for v in values if isinstance(v, Mapping) for k in v), "name")
            raise where.error(f"{axis!r} is a config section, not an axis: an axis varies one dotted key "
                              f"({axis}.{sub}: [...]); to change several keys together, use a zip group of "
                              f"dotted axes or a when: rule", *path, axis)
    return axes


def _given_twice(values: Mapping[str, Any], where: _Where, *path: str) -> None:
    """`data: {name: x}` beside `data.name: y` in one mapping: flattening would keep whichever
    comes last, silently, so it is an error at the second one."""
    seen: dict[str, tuple[str, ...]] = {}
    for key, value in values.items():
        if key in SECTIONS and isinstance(value, Mapping):
            names = [(f"{key}.{sub}", (key, str(sub))) for sub in value]
        else:
            names = [(key, (key,))]
        for dotted, sub in names:
            if dotted in seen:
                first = where.line((*path, *seen[dotted]))
                raise where.error(f"{dotted!r} is given twice, nested and dotted"
                                  + (f" (first on line {first})" if first else "") + "; keep one", *path, *sub)
            seen[dotted] = sub


def _check_keys(preset: Mapping[str, Any], axes: list[str], where: _Where, *path: str) -> list[SuiteError]:
    """The mistakes in a preset's keys and values, its grid values (of the spec's grid `axes`) and
    its rules', as far as they show without its runs (their expansion checks the rest): a typo must
    not wait until the preset is used."""
    plain = {k: v for k, v in preset.items() if k not in PRESET_KEYS}
    pairs = [(key, value, (*path, *key.split("."))) for key, value in flatten(plain).items()]
    pairs += [(axis, value, (*path, "grid", axis)) for axis, values in preset.get("grid", {}).items() if axis in axes
              for value in values]
    for rule in preset.get("when", []):
        pairs += [(key, value, (*rule.path, "match", *key.split("."))) for key, value in rule.match.items()]
        pairs += [(key, value, (*rule.path, "set", *key.split("."))) for key, value in flatten(rule.set).items()]
    mistakes = []
    for key, value, at in pairs:
        try:
            check_key(key, value)
        except SuiteError as err:
            mistakes.append(where.error(err.message, *at, choices=err.choices))
            mistakes[-1].also = list(err.also)  # a broken model plugin, said once by `together`
    return mistakes


def _description(value: Any, where: _Where) -> str:
    if not isinstance(value, str):  # a list or mapping would be printed as such in every report
        raise where.error(f"expected text, got {type(value).__name__}", "description")
    return value.strip()


def _check_name(name: str, kind: str, where: _Where, *path: str) -> None:
    """A name that report files and `--into` markers can carry unambiguously."""
    if not NAME.fullmatch(name):
        raise where.error(f"a {kind} name may only have letters, digits, '_' and '-' (and not start with '-'), "
                          f"got {name!r}: it names report files (SPEC.PRESET.md) and --into markers", *path)
    if len(name.encode()) > NAME_BYTES:
        raise where.error(f"a {kind} name may have at most {NAME_BYTES} bytes (UTF-8), got {len(name.encode())}: "
                          "it names report files (SPEC.PRESET.md), and file names are limited", *path)
    if kind == "spec" and name in RESERVED:
        raise where.error(f"{name!r} is reserved: the report of a spec named so would overwrite "
                          f"<out>/{name}.md; choose another name", *path)


def _smoke(own: dict[str, Any], base: Mapping[str, Any], grid: Mapping[str, list[Any]],
           zip_groups: list[dict[str, list[Any]]]) -> dict[str, Any]:
    """The spec's `presets.smoke` over DEFAULT_SMOKE. A default for a grid axis goes into the
    preset's `grid:` instead (a preset's plain value must not set an axis: the runs would keep the
    grid's label), unless the spec's smoke sets that key itself. Where the spec sets the number of
    classes for its own data, the smoke's data set brings its own: zip points that differed only
    in data and classes become one run."""
    given = set(flatten({k: v for k, v in own.items() if k != "grid"})) | set(own.get("grid") or {})
    defaults = dict(DEFAULT_SMOKE)
    spec_keys = set(flatten(dict(base))) | set(grid) | {a for g in zip_groups for a in g}
    if "data.name" not in given and "model.num_classes" not in given and "model.num_classes" in spec_keys:
        defaults["model.num_classes"] = DATASETS[DEFAULT_SMOKE["data.name"]].num_classes
    smoke = {k: v for k, v in defaults.items() if k not in grid and k not in given}
    smoke.update(own)
    replaced = {k: [v] for k, v in defaults.items() if k in grid and k not in given}
    if replaced:
        smoke["grid"] = {**(own.get("grid") or {}), **replaced}
    return smoke


# More runs than this from one spec is a typo (seeds: 1e6), not an ablation; expanding them would
# take minutes and gigabytes before anything could say so.
MAX_RUNS = 10_000


def _seeds(value: Any, where: _Where, *path: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_RUNS:
            raise where.error(f"a seed count must be in [1, {MAX_RUNS:,}] (the runs one spec may have), got {value}",
                              *path)
        return list(range(value))
    if not isinstance(value, list) or not value or not all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        raise where.error(f"expected a non-empty list of integer seeds or a count, got {show_value(value)}", *path)
    if len(set(value)) != len(value):
        raise where.error(f"duplicate seeds in {value}", *path)
    if not all(0 <= s <= MAX_SEED for s in value):
        raise where.error(f"seeds must be in [0, 2**63 - 1] (torch's generators take 64-bit seeds), got {value}", *path)
    return list(value)


def _reference(value: Any, where: _Where, axes: list[str]) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise where.error("expected a list of {axis: value, ..., metric: number} entries", "reference")
    out = []
    for i, entry in enumerate(value):
        entry = _mapping(entry, where, "reference", str(i))
        for key, v in entry.items():
            if key in REFERENCE_METRICS:
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                    raise where.error(f"a reference value must be a finite number (leave out a value the paper "
                                      f"does not give), got {show_value(v)}", "reference", str(i), key)
                if percent(key) and not 0 <= v <= 100:
                    raise where.error(f"{key} is a percentage, in [0, 100]; got {v}", "reference", str(i), key)
            elif key not in axes:
                hint = close_matches(str(key), [*axes, *REFERENCE_METRICS], n=1)
                mean = f"; did you mean {hint[0]!r}?" if hint else ""
                raise where.error(f"{key!r} is neither a grid axis nor a reference metric{mean}", "reference", str(i),
                                  key, choices=list(axes) + list(REFERENCE_METRICS))
        if not any(k in REFERENCE_METRICS for k in entry):
            raise where.error("a reference entry needs at least one metric", "reference", str(i),
                              choices=REFERENCE_METRICS)
        if axes and all(k in REFERENCE_METRICS for k in entry):
            raise where.error("a reference entry names no grid point, so it would give every point these paper "
                              "values: add the axis values it is for", "reference", str(i), choices=axes)
        out.append(entry)
    return out


def _paper(value: Any, where: _Where) -> dict[str, Any]:
    paper = _mapping(value, where, "paper")
    for key, text in paper.items():
        if key not in PAPER_KEYS:
            raise where.error("unknown paper key", "paper", key, choices=PAPER_KEYS)
        if not isinstance(text, (str, int, float)) or isinstance(text, bool):
            raise where.error(f"expected text, got {show_value(text)}", "paper", key)
    return paper


def _report(value: Any, where: _Where, axes: list[str]) -> dict[str, list[str]]:
    report = _mapping(value, where, "report")
    for key, items in report.items():
        if key not in REPORT_KEYS:
            raise where.error("unknown report key", "report", key, choices=REPORT_KEYS)
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise where.error("expected a list of names", "report", key)
        twice = [i for n, i in enumerate(items) if i in items[:n]]
        if twice:  # a table cannot show a column twice: it would shift every cell after it
            raise where.error(f"{twice[0]!r} is listed twice", "report", key)
        if key in ("rows", "columns"):
            for item in items:
                if item not in axes and item != "seed":
                    near = close_matches(item, axes, n=1)  # a typo in the grid key as likely as here
                    hint = f"; is {near[0]!r} or {item!r} misspelt?" if near else ""
                    raise where.error(f"{item!r} is not a grid axis{hint}" if axes else
                                      f"{item!r} is not a grid axis: the spec has no grid", "report", key,
                                      choices=axes or None)
        wrong = [m for m in items if m not in RUN_METRICS + COSTS] if key == "metrics" else []
        if wrong:
            hint = close_matches(wrong[0], RUN_METRICS + COSTS)
            raise where.error(f"unknown metric {wrong[0]!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""),
                              "report", key, choices=RUN_METRICS + COSTS)
    both = [a for a in report.get("rows", []) if a in report.get("columns", [])]
    if both:  # rows and column blocks split the axes between them
        raise where.error(f"{both[0]!r} is in both report.rows and report.columns: put each axis in one",
                          "report", "columns")
    return report


def _values(grid: Mapping[str, list[Any]], zip_groups: list[dict[str, list[Any]]],
             presets: Mapping[str, Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Every value each axis takes: in the grid, zip groups and any preset (its grid, or a plain
    value for a zip axis)."""
    values = {axis: list(v) for axes in [grid, *zip_groups] for axis, v in axes.items()}
    for preset in presets.values():
        plain = flatten({k: v for k, v in preset.items() if k not in PRESET_KEYS})
        for axis, taken in values.items():
            taken += preset.get("grid", {}).get(axis, []) + ([plain[axis]] if axis in plain else [])
    return values


def _same(a: Any, b: Any) -> bool:
    """YAML values equal as the spec writes them: 1 is not true, 3 is 3.0."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _labels(value: Any, where: _Where, own: Mapping[str, list[Any]],
            presets: Mapping[str, Mapping[str, list[Any]]]) -> dict[str, AxisLabels]:
    """`own`: each axis' values in the grid and zip groups; `presets`: with each preset's (a value
    missing a label is named with the presets it comes from)."""
    values = {axis: [*taken, *(v for p in presets.values() for v in p[axis])] for axis, taken in own.items()}
    out = {}
    for axis, entry in _mapping(value, where, "labels").items():
        if axis not in values:
            raise where.error(f"{axis!r} is not an axis of the spec: labels name axes and their values", "labels",
                              axis, choices=list(values) or None)
        entry = _mapping(entry, where, "labels", axis)
        for key in entry:
            if key not in LABEL_KEYS:
                raise where.error("unknown labels key (name: the axis' title, values: {VALUE: LABEL})", "labels",
                                  axis, key, choices=LABEL_KEYS)
        name = entry.get("name")
        if name is not None:
            _label_text(name, where, "labels", axis, "name")
        given = entry.get("values") or {}
        if not isinstance(given, Mapping):
            raise where.error(f"expected a mapping of the axis' values to labels, got {show_value(given)}", "labels",
                              axis, "values")
        labels: dict[Any, str] = {}
        written: dict[str, str] = {}  # value as written -> its label
        for v, text in given.items():
            at = ("labels", axis, "values", _key_as_written(where, v, "labels", axis, "values"))
            if not any(_same(v, taken) for taken in values[axis]):
                spelt = [show_value(t) for t in values[axis] if isinstance(v, str) and v in (show(t), str(t))]
                hint = f" (the grid's {spelt[0]} is not text: write it unquoted)" if spelt else ""
                if not spelt:  # a typo in the grid ('sumation') shows here first, blamed on the label spelt right
                    hint = _unlabelled_look_alike(v, values[axis], given, axis, where)
                raise where.error(f"{show_value(v)} is not a value of {axis}{hint}", *at,
                                  choices=list(dict.fromkeys(map(show_value, values[axis]))))
            _label_text(text, where, *at)
            same = [(w, t) for w, t in written.items() if nfc(t) == nfc(text)]
            if same:  # two rows of one name: which is which? (é composed or not reads the same)
                spelt = "" if same[0][1] == text else \
                    f", spelt {ascii(same[0][1])} and {ascii(text)} (one composes an accent the other adds)"
                raise where.error(f"the label {text!r} is given twice, for {same[0][0]} and {show_value(v)}{spelt}",
                                  *at)
            written[show_value(v)] = text
            if any(nfc(text) == nfc(show(other)) and not _same(v, other) for other in values[axis]):
                raise where.error(f"the label {text!r} is another value of {axis} as the spec writes it: "
                                  f"its row would read as that value's", *at)
            # keyed as the grid writes the value: reports match a run's value as written (1.0 is not "1")
            labels |= {taken: text for taken in values[axis] if _same(v, taken)}
        missing = [_source(v, axis, own, presets) for v in values[axis]
                   if labels and not any(_same(v, k) for k in labels)]
        if missing:  # 0.8 under "noise level" would pass for one, as it is a clean-label ratio
            raise where.error(f"no label for {', '.join(dict.fromkeys(missing))}: label every value of the axis "
                              f"(as the grid and presets give them), or none", "labels", axis, "values")
        out[axis] = AxisLabels(name, labels)
    _check_names(out, list(values), where)
    return out


def _check_names(labels: Mapping[str, AxisLabels], axes: list[str], where: _Where) -> None:
    """An axis named as another axis (its key or name) or as a column a report's table may have
    (`runs`, `params (M)`, a metric's): the table or its legend would give two things one name,
    one read as the other. Refused when the spec is read, not once its grid has trained."""
    columns = column_names()
    for axis, entry in labels.items():
        title = entry.name
        if title is None:
            continue
        clash = next((f"the key of axis {other}" for other in axes if other != axis and nfc(title) == nfc(other)),
                     None)
        clash = clash or next((f"the name of axis {other} (labels.{other}.name)" for other, e in labels.items()
                               if other != axis and e.name is not None and nfc(title) == nfc(e.name)), None)
        if clash is None and nfc(title) in columns:
            clash = "a column a report's table may have"
        if clash:
            raise where.error(f"the axis name {title!r} is also {clash}: two columns (or legend entries) of one "
                              "name, one read as the other; give the axis another name", "labels", axis, "name")


def nfc(text: str) -> str:
    """`text` as a reader sees it: `é` and `e` + a combining accent are one letter."""
    return unicodedata.normalize("NFC", text)


def _key_as_written(where: _Where, value: Any, *path: str) -> str:
    """A mapping key as the file writes it (1e-3, True; '0.1' without its quotes, as the file's
    lines are keyed), so that an error names it so and finds its line (not its mapping's)."""
    for written in (p[-1] for p in where.lines if p[:-1] == path):
        try:
            if written == value or _same(load_yaml(written), value):
                return written
        except yaml.YAMLError:  # a key no plain scalar reads back as (`a: b`): not this one
            continue
    return show_value(value)


def _unlabelled_look_alike(label_key: Any, taken: list[Any], given: Mapping[Any, Any], axis: str,
                           where: _Where) -> str:
    """A hint naming the axis value, as the spec writes it, that this label key looks like and that
    has no label of its own: one of the two is misspelt, and the label is read first, before the
    runs' values are checked against the model's options, so the grid's typo must be named here."""
    unlabelled = [t for t in taken if isinstance(t, str) and not any(_same(t, k) for k in given)]
    near = close_matches(str(label_key), unlabelled, n=1) if isinstance(label_key, str) else []
    if not near:
        return ""
    line = next((n for path, n in where.lines.items() if path[-1] == axis and path[0] in ("grid", "zip", "presets")),
                None)  # the grid's, a zip group's or a preset's line of the axis, whichever the file has first
    at = f"{where.path}:{line}" if line else str(where.path)
    return (f"; the axis has {show_value(near[0])} ({at}), which has no label and looks like it: mend whichever of "
            "the two is misspelt")


def _source(value: Any, axis: str, own: Mapping[str, list[Any]],
            presets: Mapping[str, Mapping[str, list[Any]]]) -> str:
    """A value with the presets it comes from where the grid has it not: `digits (preset smoke)`,
    which the user never wrote (every spec's smoke preset trains on digits)."""
    if any(_same(value, v) for v in own[axis]):
        return show_value(value)
    giving = [name for name, taken in presets.items() if any(_same(value, v) for v in taken[axis])]
    return f"{show_value(value)} (preset {', '.join(giving)})"


def _label_text(text: Any, where: _Where, *path: str) -> None:
    """One line of text as it is shown: a line break ended a Markdown row and a LaTeX comment (the
    table's legend), and spaces around it are dropped by Markdown, so ' a' and 'a' read alike."""
    if not isinstance(text, str) or not text.strip():
        raise where.error(f"a label is text, got {show_value(text)} (quote a number: \"10%\")", *path)
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text):
        raise where.error(f"a label is one line of text, got {show_value(text)}: no line breaks, tabs or other "
                          f"control characters", *path)
    if text != text.strip():
        raise where.error(f"a label has no spaces around it, got {show_value(text)}", *path)
    if len(text) > MAX_LABEL:
        raise where.error(f"a label is at most {MAX_LABEL} characters (it heads a table's column and sits in a "
                          f"figure's legend), got {len(text)}: {show_value(text)}", *path)


def _rules(value: Any, where: _Where, *path: str) -> list[Rule]:
    if not isinstance(value, list):
        raise where.error("expected a list of {match: {...}, set: {...}} rules", *path)
    rules = []
    for i, rule in enumerate(value):
        rule = _mapping(rule, where, *path, str(i))
        extra = set(rule) - {"match", "set"}
        if extra or "match" not in rule or "set" not in rule:
            raise where.error("a rule has exactly two keys, match and set", *path, str(i), choices=["match", "set"])
        match = _mapping(rule["match"], where, *path, str(i), "match")
        sets = _mapping(rule["set"], where, *path, str(i), "set")
        _given_twice(match, where, *path, str(i), "match")
        _given_twice(sets, where, *path, str(i), "set")
        rules.append(Rule(flatten(match), sets, tuple(path) + (str(i),)))
    return rules
