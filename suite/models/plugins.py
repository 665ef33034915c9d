"""Models from other distributions: the `attention_suite.models` entry points.

A researcher's own model lives in their own package, not in `suite/models/`; its distribution
declares an entry point in this group naming a module (or a no-argument function) that registers
models with `register_model` when imported (or called). The registry loads every such entry point
once per process, the first time it is asked about models, so the CLI, each local run process,
each SLURM task and each DDP rank (all fresh interpreters) see the same models, as long as the
distribution is installed in the environment they run in.

A plugin that fails (its import raises, it registers a name already taken, a builder's options
cannot be type-checked) is left out whole (whatever it registered before failing is removed, so
every process sees the same registry) and its error is kept: a warning says it once per process,
`suite models` reports it as an error, and a lookup of a model name nobody registered adds it to
its "unknown model" error, since that model may be the plugin's. The shipped models and the other
plugins stay usable.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import sys
import time
import traceback
import types
import warnings
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite import PACKAGE_DIR
from suite.errors import SuiteError, SuiteWarning

GROUP = "attention_suite.models"  # the distribution is attention-suite; entry-point groups use the import name


@dataclass(frozen=True)
class Plugin:
    """One entry point of the group, named as a user would look it up (pyproject.toml, pip list)."""

    name: str  # the entry point's name
    value: str  # `module` or `module:function`
    distribution: str  # the distribution declaring it, with its version

    def __str__(self) -> str:
        return f"model plugin {self.name!r} ({self.value}, from distribution {self.distribution})"


# Every suite process pays a plugin's import (each local run, each SLURM task, each command that looks a
# model up): one slower than this is said, as its author can move what is heavy into the builders.
SLOW_IMPORT_S = 2.0
failures: list[SuiteError] = []  # of the plugins this process failed to load, in load order
_loading: Plugin | None = None  # the plugin being loaded, whose distribution its models are registered from


def loading() -> Plugin | None:
    """The plugin whose import is registering models right now, or None (the suite's own models)."""
    return _loading


def discover() -> list[tuple[Plugin, importlib.metadata.EntryPoint]]:
    """The group's entry points, in an order independent of sys.path (distribution, then name), so
    that every process loads them alike and the same plugin is blamed for a clash. (A malformed
    entry_points.txt of any distribution is not caught here: `import torch` reads them all first,
    and fails on it.)"""
    found = []
    for ep in importlib.metadata.entry_points(group=GROUP):  # of a distribution found twice, the first
        dist = getattr(ep, "dist", None)
        distribution = f"{dist.name} {dist.version}" if dist is not None else "unknown"
        found.append((Plugin(ep.name, ep.value, distribution), ep))
    return sorted(found, key=lambda p: (p[0].distribution.lower(), p[0].name))


def load_all(registry: MutableMapping[str, Any]) -> None:
    """Load every plugin into `registry` (the registry's own dict), keeping each failure in
    `failures` and warning about it; a plugin that fails leaves no model behind."""
    for plugin, ep in discover():
        before, started = set(registry), time.perf_counter()
        try:
            # what it prints goes to stderr: stdout may be a table or JSON (`suite report --to -`, `suite train`)
            with _registering(plugin), contextlib.redirect_stdout(sys.stderr):
                _load(ep, registry)
        except Exception as exc:  # noqa: BLE001  a plugin's bug of any kind is reported, not raised here
            for name in set(registry) - before:
                del registry[name]
            failures.append(_failure(plugin, exc))
            warnings.warn(str(failures[-1]) + "; its models are left out", SuiteWarning, stacklevel=2)
            continue
        if not set(registry) - before:
            warnings.warn(f"{plugin} registered no models (does the module it names import the one that "
                          f"calls register_model?)", SuiteWarning, stacklevel=2)
        if (took := time.perf_counter() - started) > SLOW_IMPORT_S:
            warnings.warn(f"{plugin} took {took:.1f} s to load, which every suite process pays (each run, each "
                          f"SLURM task, each command that looks a model up): import what is heavy inside its "
                          f"builders", SuiteWarning, stacklevel=2)


def _load(ep: importlib.metadata.EntryPoint, registry: MutableMapping[str, Any]) -> None:
    if not ep.pattern.match(ep.value):  # else ep.load() fails with an AttributeError about a regex match
        raise ValueError(f"{ep.value!r} is not a module's dotted name, nor `module:function`")
    target = ep.load()
    if isinstance(target, types.ModuleType):
        return  # importing it registered its models
    if getattr(getattr(target, "__wrapped__", None), "__name__", None) in registry:
        return  # a registered builder itself (`module:builder`): importing its module registered it
    if not callable(target):
        raise TypeError(f"it names a {type(target).__name__}, not a module or a function that registers models")
    target()


@contextlib.contextmanager
def _registering(plugin: Plugin) -> Iterator[None]:
    global _loading
    previous, _loading = _loading, plugin
    try:
        yield
    finally:
        _loading = previous


def _failure(plugin: Plugin, exc: BaseException) -> SuiteError:
    """The plugin's error as a user fixes it: what went wrong, and where in their code."""
    text = str(exc) if isinstance(exc, SuiteError) else f"{type(exc).__name__}: {exc}"
    where = where_in(exc)
    error = SuiteError(f"{plugin} failed to load: {text}" + (f" (at {where})" if where else ""))
    error.__cause__ = exc  # the whole traceback, for a debugger
    return error


def where_in(exc: BaseException) -> str | None:
    """The innermost frame of `exc` in the plugin's own code (not the suite's, not importlib's)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith("<") and PACKAGE_DIR not in Path(f.filename).resolve().parents
              and "importlib" not in Path(f.filename).parts]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None
