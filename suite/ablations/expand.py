"""Expanding a spec into runs: grid x zip groups x seeds, each resolved into a checked RunConfig.

Precedence, lowest first: `base`, the grid point, the preset, command-line overrides, the seed.
The preset comes after the point because it exists to make *every* point cheap (e.g. swap the
data set), even one whose axis it touches. Every run is resolved before anything starts, so a typo
anywhere in the grid fails the whole spec up front, at the file and line that caused it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from suite.ablations.spec import Rule, Spec
from suite.config import SECTIONS, DataConfig, RunConfig, resolve
from suite.errors import SuiteError, unknown


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

    @property
    def run_id(self) -> str:
        return self.config.run_id

    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in self.point.items()] + [f"seed={self.seed}"]
        return " ".join(parts)


def expand(spec: Spec, preset: str | None = None, overrides: Mapping[str, Any] | None = None) -> list[RunSpec]:
    """All runs of `spec` (optionally under a preset and CLI overrides), validated, in grid order."""
    sources: dict[str, tuple[str, ...]] = {}
    base = _flatten(spec.base, ("base",), sources)
    preset_values: dict[str, Any] = {}
    axis_values: dict[str, list[Any]] = {}
    preset_rules: list[Rule] = []
    seeds = spec.seeds
    if preset is not None:
        if preset not in spec.presets:
            raise unknown("preset", preset, spec.presets, file=str(spec.path), key="presets")
        raw = dict(spec.presets[preset])
        if "seeds" in raw:
            seeds = list(range(raw["seeds"])) if isinstance(raw["seeds"], int) else list(raw["seeds"])
        axis_values = raw.pop("grid", {})
        preset_rules = raw.pop("when", [])
        raw.pop("seeds", None)
        preset_values = _flatten(raw, ("presets", preset), sources)
    overrides = dict(overrides or {})
    for key in overrides:
        sources[key] = ("<command line>",)

    runs: list[RunSpec] = []
    seen: dict[str, RunSpec] = {}
    for point, point_sources in _points(spec, axis_values, preset):
        for seed in seeds:
            values = {**base, **point}
            where = {**sources, **point_sources}
            _apply(spec.when, values, where)
            values.update(preset_values)
            _apply(preset_rules, values, where)
            values.update({**overrides, "seed": seed})
            try:
                config = resolve(values)
            except SuiteError as err:
                raise _locate(err, spec, where, point, seed) from None
            run = RunSpec(
                spec=spec.name,
                point=point,
                seed=seed,
                config=config,
                preset=preset,
                reference=_reference_for(spec, point),
                reference_data={**base, **point}.get("data.name", DataConfig.name),
            )
            if run.run_id in seen:
                other = seen[run.run_id]
                raise spec.error(
                    f"duplicate runs: [{other.label()}] and [{run.label()}] resolve to the same config "
                    f"(run {run.run_id}); an axis value may be overridden by the preset or repeat a default",
                    *_first_axis_path(spec),
                )
            seen[run.run_id] = run
            runs.append(run)
    if not runs:
        raise spec.error("the grid has no runs")
    return runs


def _points(spec: Spec, replaced: dict[str, list[Any]], preset: str | None
            ) -> list[tuple[dict[str, Any], dict[str, tuple[str, ...]]]]:
    """Cartesian product of the grid axes (values possibly replaced by the preset) and the zip
    groups, as (point, key -> yaml path of the value)."""
    factors: list[list[tuple[dict[str, Any], dict[str, tuple[str, ...]]]]] = []
    for axis, values in spec.grid.items():
        where = ("presets", str(preset), "grid", axis) if axis in replaced else ("grid", axis)
        factors.append([({axis: v}, {axis: where + (str(i),)}) for i, v in enumerate(replaced.get(axis, values))])
    for g, group in enumerate(spec.zip):
        length = len(next(iter(group.values())))
        factors.append([
            ({axis: vals[i] for axis, vals in group.items()},
             {axis: ("zip", str(g), axis, str(i)) for axis in group})
            for i in range(length)
        ])
    out = []
    for combo in itertools.product(*factors):
        point: dict[str, Any] = {}
        where: dict[str, tuple[str, ...]] = {}
        for values, paths in combo:
            point.update(values)
            where.update(paths)
        out.append((point, where))
    return out


def _apply(rules: list[Rule], values: dict[str, Any], sources: dict[str, tuple[str, ...]]) -> None:
    for rule in rules:
        if rule.applies(values):
            for key, value in _flatten(rule.set, rule.path + ("set",), sources).items():
                values[key] = value


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


def _locate(err: SuiteError, spec: Spec, sources: dict[str, tuple[str, ...]], point: dict[str, Any], seed: int) -> SuiteError:
    """Re-raise a resolve() error at the spec key (and line) that set the offending value."""
    key = err.key or ""
    path = sources.get(key) or (sources.get("model.name") if key.startswith("model.") else None) or ("base",)
    run = " ".join(f"{k}={v}" for k, v in point.items()) or "base"
    message = f"{err.message} [run {run} seed={seed}]"
    if path[0] == "<command line>":
        return SuiteError(message, file="<command line>", key=key or None, choices=err.choices)
    if path[-1].isdigit():  # a list item: name the axis, point at the item's line
        return SuiteError(message, file=str(spec.path), key=".".join(path[:-1]), line=spec.line(*path), choices=err.choices)
    return spec.error(message, *path, choices=err.choices)


def _first_axis_path(spec: Spec) -> tuple[str, ...]:
    if spec.grid:
        return ("grid",)
    return ("zip",) if spec.zip else ("base",)


def _reference_for(spec: Spec, point: Mapping[str, Any]) -> dict[str, float]:
    """Metrics of the first reference entry whose axis values all match the point."""
    for entry in spec.reference:
        axes = {k: v for k, v in entry.items() if k in point or k in spec.axes}
        if all(point.get(k) == v for k, v in axes.items()):
            return {k: float(v) for k, v in entry.items() if k not in axes}
    return {}
