"""The resolved configuration of one run, and the one function that decides a run's identity.

Every way of describing a run (the `suite train` command line, an ablation spec's base + grid
point + preset, a Python dict) ends in `resolve()`, which applies the recipe, checks every key
and value, fills derived values (classes and image size from the data set) and returns a frozen
`RunConfig`. Its dotted keys are the vocabulary used everywhere: `model.name`, `model.mask_norm`,
`data.name`, `data.clean_ratio`, `measure.batch_size`, and the training keys at the top level
(`seed`, `recipe`, `epochs`, `lr`, ...).

`run_id()` hashes the resolved values that differ from their defaults, minus the keys that only
say *where* a run executes (device, data root, workers) or *how it is measured* (`measure.*`): so
key order, spelling a default out, moving a run from a laptop to a cluster or measuring it at
another batch size never changes its identity, while any change in what is trained does. A done
run whose measurement was made with other `measure.*` settings is measured again, not retrained
(`suite.execute`).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import hashlib
import json
import math
import os
import re
import typing
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from suite.data.catalog import DATASETS
from suite.errors import SuiteError, close_matches, unknown
from suite.schema import as_written, coerce, load_yaml, show_value, yaml_problem
from suite.train.recipes import RECIPES

DEVICES = ("auto", "cpu", "cuda", "cuda:N")  # what `device` may name, in a config and on the command line
DatasetName = Literal["digits", "cifar10", "cifar100", "imagenet", "synthetic"]


@dataclass(frozen=True)
class DataConfig:
    name: DatasetName = "digits"
    root: str | None = None  # where the files are (resolve(): $SUITE_DATA; unset there too: ~/.cache/suite/data)
    download: bool = False  # fetch CIFAR through torchvision when missing (needs internet)
    workers: int = 4  # DataLoader workers for image-folder data (at most the cores this process may use)
    clean_ratio: float = 1.0  # RAN Table 5: fraction r of training labels kept; the rest uniform over other classes
    input_size: int | None = None  # training resolution; resolved to the data set's (or, for synthetic, the model's)
    eval_size: int | None = None  # evaluation resolution; resolved to input_size (Attention-92 is tested at 320)


@dataclass(frozen=True)
class MeasureConfig:
    complexity: bool = True  # params and fvcore multiply-adds
    throughput: bool = True  # inference and training-step samples/s and peak memory
    batch_size: int = 8
    warmup: int = 2
    steps: int = 5
    # the trained network's robustness to a targeted PGD attack (suite.measure.attack), after training
    attack: bool = False
    attack_eps: float = 8.0  # the L-infinity bound, in pixel levels of 255
    attack_images: int = 1000  # test images attacked, spread evenly over the split (all of a smaller one)
    # the trained network's errors on the rotated and flipped test images (suite.data.views), after training:
    # four more evaluations of the test split, a sixth of a one-epoch SAN run on digits
    views: bool = False


@dataclass(frozen=True)
class ModelConfig:
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)  # every option of the model, resolved


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig
    data: DataConfig = DataConfig()
    measure: MeasureConfig = MeasureConfig()
    recipe: str = "smoke"
    seed: int = 0
    # Training length: exactly one of epochs / iterations (setting one clears the other).
    epochs: float | None = None
    iterations: int | None = None
    batch_size: int = 32
    optimizer: Literal["sgd"] = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    schedule: Literal["step", "cosine", "constant"] = "step"
    lr_milestones: tuple[float, ...] = ()  # fractions of the training length where lr *= lr_decay
    lr_decay: float = 0.1
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    amp: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = False
    eval_every: int = 1  # epochs between evaluations (the last epoch is always evaluated)
    device: str = "auto"  # auto | cpu | cuda | cuda:N

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict (the `config` of a run directory's config.json)."""
        out = dataclasses.asdict(self)
        out["model"] = {"name": self.model.name, **self.model.kwargs}
        return _plain(out)

    def flat(self) -> dict[str, Any]:
        """Dotted keys -> values (what DataFrame columns and grid axes use)."""
        return flatten(self.to_dict())

    def identity(self) -> dict[str, Any]:
        """The dotted values that make a run what it is: non-default keys that change what is trained."""
        defaults = _defaults_flat()
        from suite.models import get_model_info

        model_defaults = {f"model.{k}": v for k, v in get_model_info(self.model.name).defaults.items()}
        out = {}
        for key, value in self.flat().items():
            if not is_identity_key(key):
                continue
            default = model_defaults.get(key, defaults.get(key, _MISSING))
            if key == "model.name" or _plain(default) != value:
                out[key] = value
        return out

    def measure_settings(self) -> dict[str, Any]:
        """The `measure.*` values: how the run's model is measured (not part of its identity)."""
        return {f"{MEASURE}{k}": v for k, v in dataclasses.asdict(self.measure).items()}

    @functools.cached_property
    def run_id(self) -> str:
        return run_id(self)


EXECUTION_KEYS = frozenset({"device", "data.root", "data.download", "data.workers"})
MEASURE = "measure."  # the prefix of the keys that say how a run is measured
MAX_SEED = 2**63 - 1
SECTIONS = {"model": None, "data": DataConfig, "measure": MeasureConfig}
_MISSING = object()


# Values an older version of the suite stored that this one spells otherwise (dotted key -> old -> new):
# records are read in today's spelling, so a done run keeps its paper values and its grid point.
RESPELLED: dict[str, dict[Any, Any]] = {"model.position_encoding": {True: "relative", False: "none"}}


# Model options an older version stored as null for "the model's default" (SAN's position_encoding
# before 36829aa: on for pairwise, off for patchwise), which today's default of the model spells.
NULL_WAS_DEFAULT = frozenset({"model.position_encoding"})


def current_spelling(flat: Mapping[str, Any]) -> dict[str, Any]:
    """A stored flat config with every value an older version spelled otherwise in today's spelling."""
    out = {k: RESPELLED[k].get(v, v) if k in RESPELLED and isinstance(v, bool) else v for k, v in flat.items()}
    if any(out.get(k, False) is None for k in NULL_WAS_DEFAULT):
        from suite.models import get_model_info, list_models

        name = out.get("model.name")
        defaults = get_model_info(name).defaults if isinstance(name, str) and name in list_models() else {}
        for key in NULL_WAS_DEFAULT:
            option = key[len("model."):]
            if out.get(key, False) is None and option in defaults:
                out[key] = defaults[option]
    return out


def is_identity_key(key: str) -> bool:
    """Whether a dotted key can make a run another run: where it executes and how it is measured cannot."""
    return key not in EXECUTION_KEYS and not key.startswith(MEASURE)


# How run ids are computed, numbered. A run's config.json records the scheme that filed it, so that
# finding the runs an older version filed under another id (store.scan) resolves only the runs
# filed by another scheme, or before schemes were recorded. Bump it with any change that can make a
# stored config resolve to another id than it was filed under, or to none: what identity() keeps or
# how run_id() hashes it, a default (identities leave defaults out), a respelling (RESPELLED), a
# model or option removed. tests/test_compat.py pins the ids of stored configs under this scheme.
ID_SCHEME = 1


def run_id(config: RunConfig) -> str:
    """12 hex digits of sha256 over the canonical JSON of `config.identity()`."""
    text = json.dumps(config.identity(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def resolve(values: Mapping[str, Any], *, file: str | None = None) -> RunConfig:
    """Build a checked RunConfig from nested and/or dotted keys; SuiteError names file and key."""
    try:
        return _resolve(flatten(values))
    except SuiteError as err:
        raise err.where(file=file)


def could_be(key: str, pattern: Any) -> bool:
    """Whether `pattern` (a `when:` match or reference value) fits a value `key` takes in some run:
    a string as an fnmatch pattern of a registered model, a recipe or a choice of a Literal key or
    model option; anything else as a value of the key's type. Keys the suite does not know fit
    anything (their own check names them)."""
    from suite.models import get_model_info, list_models

    if key == "model.name":
        return _fits(pattern, list_models(), str)
    if key.startswith("model."):
        options = [o for n in list_models() if (o := get_model_info(n).options.get(key[len("model."):]))]
        return not options or any(_fits(pattern, o.choices, o.annotation) for o in options)
    if key == "recipe":
        return _fits(pattern, list(RECIPES), str)
    if key in _hints_flat():
        hint = _hints_flat()[key]
        return _fits(pattern, typing.get_args(hint) if typing.get_origin(hint) is Literal else None, hint)
    return True


def whole_numbers(key: str) -> bool:
    """Whether `key` takes whole numbers only (batch_size, iterations, model.base_width): a float
    value of it (a pandas column holds 8 as 8.0 beside a NaN) is an integer that lost its kind."""
    return could_be(key, 1) and not could_be(key, 0.5)


def check_key(key: str, value: Any) -> None:
    """Raise the error a run would give if no run can take `key`, or `value` for it (`could_be`):
    what can be checked of a layer, such as a preset not being expanded, without its runs."""
    from suite.models import get_model_info, list_models

    if key.startswith("model.") and key != "model.name":
        option = key[len("model."):]
        options = {n: o for n in list_models() if (o := get_model_info(n).options.get(option))}
        if not options:
            names = sorted({o for n in list_models() for o in get_model_info(n).options})
            hint = close_matches(option, names)
            raise SuiteError("no model has this option" + (f"; did you mean 'model.{hint[0]}'?" if hint else ""),
                             key=key, choices=[f"model.{o}" for o in names])
        if not any(_fits(value, o.choices, o.annotation) for o in options.values()):  # could_be, options at hand
            choices = sorted({str(c) for o in options.values() for c in o.choices or ()}) or None
            raise SuiteError(f"{_shown(value)}: no model takes it for {option}", key=key, choices=choices)
        return
    if key != "model.name" and key not in _defaults_flat():
        raise _unknown_key(key)
    if not could_be(key, value):
        if key in _hints_flat():
            _check_field(key, value)  # its message, which says why
        choices = list_models() if key == "model.name" else list(RECIPES) if key == "recipe" else None
        from suite.models import plugins  # a model no one registered may be a broken plugin's

        raise SuiteError(f"{_shown(value)}: no run takes it for {key}", key=key, choices=choices,
                         also=plugins.failures if key == "model.name" else ())


def _shown(value: Any) -> str:
    """A value in an error: `lr=` and `lr:` read as None, which is no value a user typed."""
    return "an empty value" if value is None else f"invalid value {show_value(value)}"


def _fits(pattern: Any, choices: Iterable[Any] | None, annotation: Any) -> bool:
    if isinstance(pattern, str) and choices:
        return any(isinstance(c, str) and fnmatch.fnmatchcase(c, pattern) for c in choices)
    try:
        coerce(pattern, annotation)
    except ValueError:
        return False
    return True


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """`["lr=0.05", "model.mask_norm=spatial", "lr_milestones=[0.5]"]` -> dotted dict (YAML values)."""
    out: dict[str, Any] = {}
    given: dict[str, str] = {}  # dotted key -> the item that set it, so `model.t=3 'model={t: 2}'` clash too
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SuiteError(f"expected key=value, got {item!r}")
        try:
            value = load_yaml(text) if text.strip() else None
        except yaml.YAMLError as exc:
            problem, _, column = yaml_problem(exc, text)  # one line: PyYAML's own message draws a caret diagram
            where = f" at column {column}" if column is not None and "\n" not in text else ""
            raise SuiteError(f"cannot parse value {text!r}{where}: {problem}", key=key) from None
        dotted = [key, *flatten({key: value})]
        if twice := next((k for k in dotted if k in given), None):  # the last would win silently
            raise SuiteError(f"given twice on the command line: {given[twice]!r} and {item!r}",
                             key=twice, file="<command line>")
        given.update(dict.fromkeys(dotted, item))
        out[key] = value
    return out


def rooted(values: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """`values` (dotted keys, or a `data` section) with a relative `data.root` made absolute against
    `folder`: a SLURM job, a resubmission or a command pasted in another folder would read it
    against their own working directory, and the runs record it. A `data` section giving it
    becomes its dotted keys (as the runs record them); everything else is kept as given."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        flat = flatten({key: value})
        root = flat.get("data.root")
        if not isinstance(root, str) or not root.strip() or root.startswith("~") or Path(root).is_absolute():
            out[key] = value
            continue
        flat["data.root"] = str(Path(folder) / root)
        out.update(flat)
    return out


def suite_data() -> str | None:
    """$SUITE_DATA (blank counts as unset), a relative one made absolute against this process's
    folder as a command line's data.root is (`rooted`). Read here alone, where runs are resolved, so
    a run records the folder its caller meant: a job (a SLURM task started elsewhere, a resubmission)
    would read a relative one against its own working folder."""
    text = os.environ.get("SUITE_DATA", "")
    return rooted({"data.root": text}, Path.cwd())["data.root"] if text.strip() else None


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections -> dotted keys. Only the config sections nest; other dict values are leaves."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        key = str(key)
        full = f"{prefix}{key}"
        if not prefix and key in SECTIONS and isinstance(value, Mapping):
            out.update(flatten(value, prefix=f"{key}."))
        else:
            out[full] = value
    return out


def unflatten(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        section, dot, rest = key.partition(".")
        if dot:
            out.setdefault(section, {})[rest] = value
        else:
            out[key] = value
    return out


def _resolve(user: dict[str, Any]) -> RunConfig:
    recipe_name = user.get("recipe", RunConfig.recipe)
    if not isinstance(recipe_name, str):  # a list or mapping is not hashable, let alone a recipe
        raise SuiteError(f"expected a recipe name, got {show_value(recipe_name)}", key="recipe", choices=RECIPES)
    if recipe_name not in RECIPES:
        raise unknown("recipe", str(recipe_name), RECIPES, key="recipe")
    merged = dict(_defaults_flat())  # a copy: the cached defaults stay untouched
    merged.update({k: v for k, v in RECIPES[recipe_name].values.items()})
    # The training length is one quantity: naming epochs clears iterations and vice versa.
    if "epochs" in user and "iterations" not in user:
        merged["iterations"] = None
    if "iterations" in user and "epochs" not in user:
        merged["epochs"] = None
    model_keys = {}
    for key, value in user.items():
        if key.startswith("model."):
            model_keys[key[len("model."):]] = value
        elif key in merged:
            merged[key] = value
        else:
            raise _unknown_key(key, user.get("model.name"))
    if "name" not in model_keys or model_keys["name"] in (None, ""):
        raise SuiteError("missing: every run needs a model", key="model.name")
    model_name = model_keys.pop("name")
    if not isinstance(model_name, str):
        raise SuiteError(f"expected a model name, got {show_value(model_name)}", key="model.name")

    if merged["data.root"] is None:
        merged["data.root"] = suite_data()
    checked = {k: _check_field(k, v) for k, v in merged.items() if not k.startswith("model.")}
    nested = unflatten(checked)
    data = DataConfig(**nested.pop("data"))
    measure = MeasureConfig(**nested.pop("measure"))
    nested.pop("model", None)

    from suite.models import get_model_info, resolve_model_kwargs

    info = get_model_info(model_name)
    dataset = DATASETS[data.name]
    if "num_classes" in info.options and "num_classes" not in model_keys and dataset.num_classes is not None:
        model_keys["num_classes"] = dataset.num_classes
    input_size = next(s for s in (data.input_size, dataset.input_size, info.input_size) if s is not None)
    data = dataclasses.replace(data, input_size=input_size,
                               eval_size=input_size if data.eval_size is None else data.eval_size)
    _check_ranges(nested, data, measure, given=merged, user=user.keys())
    try:
        kwargs = resolve_model_kwargs(model_name, model_keys)
    except SuiteError as err:
        raise err.where(key="model") if err.key != "model.name" else err
    if dataset.classes_fixed and kwargs.get("num_classes", dataset.num_classes) != dataset.num_classes:
        raise SuiteError(f"{data.name} has {dataset.num_classes} classes but the model would predict "
                         f"{kwargs['num_classes']}", key="model.num_classes")
    # again for the smaller of the two sizes: an error now is about the size, which is said
    size_key, size = min(("data.input_size", data.input_size), ("data.eval_size", data.eval_size), key=lambda t: t[1])
    try:
        resolve_model_kwargs(model_name, kwargs, input_size=size)
    except SuiteError as err:
        err.said(f" ({size_key} is {size})")
        raise err.where(key="model" if err.key else size_key) from None  # keyed: an option that could fix it
    return RunConfig(model=ModelConfig(model_name, kwargs), data=data, measure=measure, **nested)


def _check_field(key: str, value: Any) -> Any:
    annotation = _hints_flat()[key]
    try:
        return coerce(value, annotation)
    except ValueError as exc:
        if typing.get_origin(annotation) is Literal:
            raise SuiteError(_shown(value), key=key, choices=typing.get_args(annotation)) from None
        raise SuiteError(f"{_shown(value)}: {exc}", key=key) from None


def _check_ranges(top: Mapping[str, Any], data: DataConfig, measure: MeasureConfig, *,
                  given: Mapping[str, Any], user: Collection[str]) -> None:
    """What type hints cannot say: signs, intervals, finiteness, order. A value is said as `given`
    (dotted keys, before coercion) spelt it: `lr: -1` is "got -1", not the -1.0 it is checked as;
    a clash of two keys is blamed on the one the user set (`user`), not the recipe's."""
    values = as_written({**top, **{f"data.{k}": v for k, v in dataclasses.asdict(data).items()},
                         **{f"measure.{k}": v for k, v in dataclasses.asdict(measure).items()}}, given)
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise SuiteError(f"must be a finite number, got {value}", key=key)
    if (values["epochs"] is None) == (values["iterations"] is None):
        raise SuiteError("set exactly one of epochs and iterations", key="epochs")
    # measure.warmup: the first warm-up step is where an out-of-memory error shows (measure.throughput.prepare)
    positive = ("epochs", "iterations", "batch_size", "eval_every", "lr_decay", "measure.batch_size", "measure.steps",
                "measure.warmup", "measure.attack_eps", "measure.attack_images", "data.input_size", "data.eval_size")
    non_negative = ("lr", "weight_decay", "warmup_epochs", "data.workers")
    for key in positive:
        if values[key] is not None and values[key] <= 0:
            raise SuiteError(f"must be positive, got {values[key]}", key=key)
    for key in non_negative:
        if values[key] < 0:
            raise SuiteError(f"must not be negative, got {values[key]}", key=key)
    if not 0 <= values["seed"] <= MAX_SEED:
        raise SuiteError(f"must be in [0, 2**63 - 1] (torch's generators take 64-bit seeds), got {values['seed']}",
                         key="seed")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", values["device"]):
        raise SuiteError(f"invalid device {values['device']!r}", key="device", choices=DEVICES)
    if values["nesterov"] and values["momentum"] == 0:
        # blamed on the one of the two that was given: a recipe's nesterov under `momentum=0` named the
        # spec's base (where the recipe is chosen) and the key the user never wrote
        key = "momentum" if "momentum" in user and "nesterov" not in user else "nesterov"
        raise SuiteError("Nesterov momentum (nesterov: true) needs momentum > 0: with momentum 0 set nesterov: false "
                         "too", key=key)
    train_size = DATASETS[data.name].train_size  # data.name is a known data set here
    if train_size is not None and values["batch_size"] > train_size:  # an epoch would have no step
        raise SuiteError(f"batch_size {values['batch_size']} is larger than the training set ({data.name}: "
                         f"{train_size:,} images)", key="batch_size")
    if measure.attack and not DATASETS[data.name].accuracy:
        raise SuiteError(f"{data.name} labels mean nothing, so an attack towards other labels measures nothing",
                         key="measure.attack")
    if measure.views and not DATASETS[data.name].accuracy:
        raise SuiteError(f"{data.name} labels mean nothing, so errors on turned images measure nothing",
                         key="measure.views")
    if not 0.0 < values["data.clean_ratio"] <= 1.0:
        raise SuiteError(f"must be in (0, 1], got {values['data.clean_ratio']}", key="data.clean_ratio")
    for key in ("label_smoothing", "momentum"):
        if not 0.0 <= values[key] < 1.0:
            raise SuiteError(f"must be in [0, 1), got {values[key]}", key=key)
    milestones = list(values["lr_milestones"])
    if any(not 0.0 < m < 1.0 for m in milestones) or milestones != sorted(set(milestones)):
        raise SuiteError(f"milestones are increasing fractions of training in (0, 1), got {milestones}",
                         key="lr_milestones")


def check_schedule(given: Mapping[str, Any], config: RunConfig) -> None:
    """Milestones or a decay `given` (a spec's or a command line's values, dotted) for a run whose
    schedule has none: they changed its id but not its training, so a grid of them trained one
    network under several ids. Checked where runs are described, not in `resolve`, so a stored
    record from before (its whole config) still reads; a recipe's own milestones under a schedule
    the user changed are one id, and are left."""
    if config.schedule == "step":
        return
    where = "as given" if "schedule" in given else f"from recipe {config.recipe}"
    for key, unused in (("lr_milestones", bool(given.get("lr_milestones"))),
                        ("lr_decay", "lr_decay" in given and config.lr_decay != _defaults_flat()["lr_decay"])):
        if unused:
            raise SuiteError(f"only schedule step uses it, and this run's schedule is {config.schedule} ({where}): "
                             f"the run would train the same network whatever {key} says; set schedule: step beside it "
                             "(a `when:` rule sets it on a grid's step runs alone), or leave it out", key=key)


def _unknown_key(key: str, model: object = None) -> SuiteError:
    from suite.models import get_model_info, list_models

    valid = [k for k in _defaults_flat() if not k.startswith("model.")]
    if key == "seeds":  # close to 'seed', which a spec's runs refuse
        return SuiteError("unknown key: a spec's seeds are its `seeds:` (or a preset's), one run's is seed=N "
                          "(suite train)", key=key)
    if key in SECTIONS:  # `model: ran56_cifar`: a section given a value instead of its keys
        example = "{name: ran56_cifar, ...} or model.name: ran56_cifar" if key == "model" else \
            f"{{{next(f.name for f in dataclasses.fields(SECTIONS[key]))}: ...}}"
        return SuiteError(f"expected a mapping of {key} keys, such as {key}: {example}", key=key,
                          choices=sorted(k for k in valid if k.startswith(f"{key}.")) or ["model.<option>"])
    hint = close_matches(key, valid)
    if isinstance(model, str) and model in list_models() and key in get_model_info(model).options:
        hint = [f"model.{key}"]  # a model option given without its prefix
    elif not hint and "." in key:  # a misspelt section: modle.base_width
        section, rest = key.split(".", 1)
        hint = [f"{near}.{rest}" for near in close_matches(section, SECTIONS)]
    did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
    return SuiteError(f"unknown key{did_you_mean}", key=key, choices=sorted(valid) + ["model.<option>"])


@functools.cache
def _defaults_flat() -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(RunConfig):
        if f.name == "model":
            continue
        if f.name in SECTIONS:
            for sub in dataclasses.fields(SECTIONS[f.name]):
                out[f"{f.name}.{sub.name}"] = sub.default
        else:
            out[f.name] = f.default
    return out


@functools.cache
def _hints_flat() -> dict[str, Any]:
    out = {}
    for name, hint in typing.get_type_hints(RunConfig).items():
        if name in SECTIONS and SECTIONS[name] is not None:
            out.update({f"{name}.{k}": v for k, v in typing.get_type_hints(SECTIONS[name]).items()})
        elif name != "model":
            out[name] = hint
    return out


def _plain(value: Any) -> Any:
    """Tuples -> lists, recursively: the JSON/YAML shape of a value."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
