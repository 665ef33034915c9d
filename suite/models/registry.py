"""Model registry in the spirit of timm: builders register by name, kwargs are validated.

A builder's keyword-only parameters *are* its documented options: their type hints
(`Literal[...]`, `int`, `float`, `bool`, `tuple[int, ...]`) are what `create_model` checks a value
against, so a wrong key or value fails before any module is built, with the valid choices. What
hints cannot say (a value against a range or another option, the smallest input the model takes)
is the family's `check`, registered with the model: specs run it for every grid point when they
are loaded, so a bad combination fails up front instead of when its run builds the model.

Models of other distributions register the same way, from the modules their `attention_suite.models`
entry points name (`suite.models.plugins`): every lookup (`list_models`, `get_model_info` and
what goes through it) loads those once first, so every process sees them.
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from suite.errors import SuiteError, close_matches, named_as_called, unknown
from suite.models import plugins
from suite.schema import as_written, checkable, coerce, show_value, type_name

Builder = Callable[..., nn.Module]
# (resolved options, smallest input size in px or None if unknown) -> None; raises SuiteError naming the option
Check = Callable[[Mapping[str, Any], "int | None"], None]


@dataclass(frozen=True)
class Option:
    """One keyword a builder accepts: default, expected type and, for Literals, the choices."""

    name: str
    default: Any
    annotation: Any
    choices: tuple[Any, ...] | None = None

    def check(self, value: Any, model: str) -> Any:
        """Return `value` coerced to the option's type, or raise naming the model and key."""
        try:
            return coerce(value, self.annotation)
        except (TypeError, ValueError) as exc:
            raise SuiteError(
                f"invalid value {show_value(value)} for model {model!r}: {exc}",  # as YAML spells it
                key=self.name,
                choices=self.choices,
            ) from None


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: its builder plus what the suite needs to know without building it."""

    name: str
    builder: Builder
    family: str
    input_size: int
    options: dict[str, Option]
    label: str  # what the papers' tables call it (Attention-92), for reports; the name if none does
    paper: Mapping[str, Any] = field(default_factory=dict)
    check: Check | None = None
    plugin: plugins.Plugin | None = None  # the entry point that registered it; None: one of the suite's own

    @property
    def source(self) -> str:
        """Where the model comes from, as `suite models` shows it: `suite` (its own models), the
        plugin's distribution, or the module of a builder registered by a plain import."""
        if self.plugin is not None:
            return self.plugin.distribution
        module = self.builder.__module__
        return "suite" if module == "suite" or module.startswith("suite.") else module

    @property
    def defaults(self) -> dict[str, Any]:
        return {k: o.default for k, o in self.options.items()}


_REGISTRY: dict[str, ModelInfo] = {}
_plugins_loaded = False


def register_model(
    fn: Builder | None = None,
    *,
    input_size: int = 224,
    paper: Mapping[str, Any] | None = None,
    check: Check | None = None,
    label: str | None = None,
) -> Any:
    """Register `fn` under its function name; calling it directly checks its options too.

    `input_size` is the model's natural resolution (what complexity tables use); `paper` holds the
    published figures for it at its default options (e.g. `{"params_m": 31.9, "gmacs": 6.3,
    "top1_err": 21.76, "top5_err": 5.9, "source": "RAN Table 7"}`: errors on ImageNet, or
    `cifar10_top1_err` and `cifar100_top1_err`; `eval_size` if tested at another size), the one
    place they live: the complexity page and every spec's run of the model at its defaults
    (`suite.models.papers.run_reference`) put them beside measured ones; `label` is the name the papers' tables give it
    (`Attention-92`), which reports show for it instead of the registry name.

    Every option must be keyword-only, with a default and a type hint `create_model` can check a
    value against (bool, int, float, str, None, a Literal of these, unions, tuples and lists of
    them), since its values go into run configs, run ids and JSON records; else TypeError.
    """

    def wrap(builder: Builder) -> Builder:
        name = builder.__name__
        held = _REGISTRY.get(name)
        if held is not None and not _same_builder(held, builder):
            raise (RuntimeError if plugins.loading() is None else SuiteError)(
                f"model {name!r} is registered already, by {_holder(held)}")
        _REGISTRY[name] = ModelInfo(
            name=name,
            builder=builder,
            family=builder.__module__.rsplit(".", 1)[-1],
            input_size=input_size,
            options=_options_of(builder),
            label=label or name,
            paper=dict(paper or {}),
            check=check,
            plugin=plugins.loading(),
        )

        @functools.wraps(builder)
        def checked(**kwargs: Any) -> nn.Module:
            return create_model(name, **kwargs)

        return checked

    return wrap(fn) if fn is not None else wrap


def _same_builder(held: ModelInfo, builder: Builder) -> bool:
    """Whether `builder` is the registered one defined again where it was (a notebook cell run
    again after an edit, a module reloaded): it then replaces it, as the edit means it to."""
    return (held.plugin == plugins.loading() and held.builder.__module__ == builder.__module__
            and held.builder.__qualname__ == builder.__qualname__)


def _holder(info: ModelInfo) -> str:
    """Who registered a model, as an error about its name says it."""
    if info.plugin is not None:
        return str(info.plugin)
    if info.source == "suite":
        return "the suite itself"
    return f"module {info.source!r} ({info.builder.__qualname__})"


def list_models(pattern: str | list[str] = "*", *, family: str | None = None) -> list[str]:
    """Registered names matching any fnmatch pattern, in natural order (ran56, ran92, ran128).

    `pattern` is one pattern or a list of them; `family` ('ran', 'san' or 'resnet', the module that
    registered the model) keeps that family's only. No match is an empty list (`suite models` says
    it is an error); a family no model has is a SuiteError (a misspelt one would read as "none")."""
    load_plugins()
    families = {info.family for info in _REGISTRY.values()}
    if family is not None and family not in families:
        raise unknown("model family", family, families, key="family")
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    return sorted(
        (n for n, info in _REGISTRY.items()
         if any(fnmatch.fnmatchcase(n, p) for p in patterns) and (family is None or info.family == family)),
        key=lambda n: [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", n)],
    )


def get_model_info(name: str) -> ModelInfo:
    """A registered model's ModelInfo (options, defaults, natural input size, paper figures); an
    unknown name raises SuiteError with the registered names (and the plugins that failed to load:
    the model may be one of theirs)."""
    if not isinstance(name, str):  # close matches were looked for in it: "'int' object has no attribute 'lower'"
        raise TypeError(f"a model's name is a string such as 'ran56_cifar', got {type(name).__name__} {name!r}")
    load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise unknown("model", name, list_models(), key="model.name", also=plugins.failures) from None


def load_plugins() -> list[SuiteError]:
    """Load the `attention_suite.models` plugins, once per process (later calls return at once);
    returns the errors of those that failed, which are left out (see `suite.models.plugins`)."""
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True  # first: a plugin that lists models while it loads must not load them again
        plugins.load_all(_REGISTRY)
    return list(plugins.failures)


def resolve_model_kwargs(name: str, kwargs: Mapping[str, Any], *, input_size: int | None = None) -> dict[str, Any]:
    """All of the model's options with `kwargs` applied and checked (for inputs of `input_size` px
    if given); raises SuiteError naming the key."""
    info = get_model_info(name)
    resolved = info.defaults
    for key, value in kwargs.items():
        option = info.options.get(key)
        if option is None:
            hint = close_matches(key, info.options)
            did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
            raise SuiteError(
                f"model {name!r} has no option {key!r}{did_you_mean}", key=key, choices=sorted(info.options)
            )
        resolved[key] = option.check(value, name)
    if info.check is not None:  # with the numbers as given: its message says `dropout: 1`, not 1.0
        try:
            info.check(as_written(resolved, kwargs), input_size)
        except SuiteError:
            raise
        except Exception as exc:
            if info.source == "suite":
                raise
            raise _broken_check(info, exc) from exc
    return resolved


def _broken_check(info: ModelInfo, exc: Exception) -> SuiteError:
    """A user's check that raised anything but SuiteError (a typo in it: KeyError): its bug, said
    as one, where in their code, rather than a traceback that reads as the suite's."""
    where = plugins.where_in(exc)
    return SuiteError(f"the check of model {info.name!r} ({_holder(info)}) failed: {type(exc).__name__}: {exc}"
                      + (f" (at {where})" if where else "") + "; a check raises SuiteError naming the option it refuses",
                      key="model.name")


@named_as_called({"model.name": "name"})
def create_model(name: str, /, **kwargs: Any) -> nn.Module:
    """Build a registered model; unknown names, unknown options, values of the wrong type or choice,
    and combinations the family's check refuses (an even SAN footprint) raise SuiteError naming the
    key and the valid choices."""
    resolved = resolve_model_kwargs(name, kwargs)
    return get_model_info(name).builder(**resolved)


def _options_of(builder: Builder) -> dict[str, Option]:
    try:
        hints = typing.get_type_hints(builder)
    except Exception as exc:  # a hint naming what its module does not define (NameError): the builder's mistake
        raise TypeError(f"{builder.__name__}: its type hints cannot be read ({type(exc).__name__}: {exc})") from None
    options = {}
    for p in inspect.signature(builder).parameters.values():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is inspect.Parameter.empty:
            raise TypeError(f"{builder.__name__}: every option must be keyword-only with a default ({p.name})")
        if p.name == "name":  # config's model section is {name: <model>, **options}: the option would replace it
            raise TypeError(f"{builder.__name__}: option 'name' would be the model's own name (model.name in a "
                            f"spec); call it something else")
        annotation = hints.get(p.name)
        if annotation is None or not checkable(annotation):
            raise TypeError(f"{builder.__name__}: option {p.name!r} needs a type hint the registry can check values "
                            f"against (bool, int, float, str, None, a Literal of these, unions, tuples and lists of "
                            f"them), not {'none' if annotation is None else type_name(annotation)}")
        try:
            coerce(p.default, annotation)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{builder.__name__}: option {p.name!r} defaults to {show_value(p.default)}, which its "
                            f"type hint refuses ({exc})") from None
        choices = typing.get_args(annotation) if typing.get_origin(annotation) is Literal else None
        options[p.name] = Option(p.name, p.default, annotation, choices)
    return options
