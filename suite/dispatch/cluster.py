"""SLURM options of a submission: one schema, read from four layers.

Precedence, lowest first: the defaults below < the user's file (`$SUITE_CLUSTER`, else
`~/.config/suite/cluster.yaml`) < the spec's `cluster:` section < command-line flags. The keys are
the same everywhere (flags spell them with dashes: `--gpus-per-node 1`). A key replaces the value
under it, except `sbatch` (extra sbatch parameters), which is merged parameter by parameter, so a
site-wide `sbatch: {exclude: node7}` survives a spec that adds `mail-type`. Each layer is checked
on its own, so a mistake names its file and line (or flag); all the layers' mistakes are named at once.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.dispatch import node_asks
from suite.errors import SuiteError, together, unknown
from suite.files import check_lookup
from suite.schema import coerce, read_yaml, show_value


def _option(default: Any, metavar: str, doc: str) -> Any:
    """A field with its command-line metavar and help (the CLI builds one flag per field)."""
    meta = {"metavar": metavar, "help": doc}
    if isinstance(default, (dict, list)):
        return field(default_factory=type(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ClusterOptions:
    partition: str | None = _option(None, "NAME", "SLURM partition (default: the cluster's)")
    account: str | None = _option(None, "NAME", "account to charge")
    qos: str | None = _option(None, "NAME", "quality of service")
    timeout_min: int = _option(60, "MIN", "time limit of one job in minutes; a longer run checkpoints and is requeued")
    nodes: int = _option(1, "N", "nodes per run (DDP across nodes)")
    tasks_per_node: int = _option(1, "N", "processes per node; more than 1 means DDP, one process per GPU")
    gpus_per_node: int = _option(0, "N", "GPUs per node (sbatch --gpus-per-node)")
    cpus_per_task: int | None = _option(None, "N", "CPUs per process (default: the cluster's, usually 1); "
                                                   "also the torch thread count")
    mem_gb: float | None = _option(None, "GB", "memory per node in GB (default: the cluster's)")
    constraint: str | None = _option(None, "EXPR", "node features, e.g. 'a100|h100'")
    sbatch: dict[str, Any] = _option({}, "KEY[=VALUE]", "any other sbatch parameter (repeatable): KEY=VALUE, e.g. "
                                                        "exclude=node7 or mail-type=END, or a bare KEY for a flag "
                                                        "that takes no value, e.g. `--sbatch hold` (not hold=true, "
                                                        "which sbatch refuses)")
    setup: list[str] = _option([], "LINE", "shell line run before each job, e.g. 'module load cuda' (repeatable)")
    array_parallelism: int = _option(256, "N", "array tasks running at once (a grid's, shared out among "
                                                "its job arrays when it is split)")
    max_array_size: int | None = _option(None, "N", "runs per job array (default: the cluster's MaxArraySize); "
                                                     "larger grids are split")
    max_requeues: int = _option(3, "N", "requeues per run after a time limit or pre-emption before it counts "
                                        "as failed")
    signal_delay_s: int = _option(120, "SECONDS", "seconds before the time limit at which a run checkpoints "
                                                  "and requeues itself (SLURM may signal up to 60 s earlier)")
    # where each value came from (`sbatch.KEY` per sbatch parameter), so a message about a value,
    # such as a refused sbatch, can name the layer to fix; not an option
    origins: Mapping[str, Origin] = field(default_factory=dict, compare=False, repr=False)

    def origin(self, name: str) -> Origin:
        """Where option `name` (`partition`, `sbatch.KEY`) was set (options made in code: nowhere known)."""
        return self.origins.get(name) or Origin(None, None, name)


COMMAND_LINE = "<command line>"


@dataclass(frozen=True)
class Origin:
    """Where a cluster option was set: a check made later than the layers' own (a partition or an
    sbatch key the cluster refuses) names the file, line and key to fix as a layer's own check does."""

    file: str | None  # the user's file, the spec, or COMMAND_LINE
    line: int | None
    key: str  # as its layer spells it: `partition` (the user's file), `cluster.partition` (a spec), `--partition`

    def __str__(self) -> str:
        """`file:line`, or the flag (what `summary` and the range errors print in parentheses)."""
        return self.key.split(".")[0] if self.file == COMMAND_LINE else _place(self.file or "", self.line)

    def error(self, message: str, **kwargs: Any) -> SuiteError:
        """`message` as an error of this place, so a later check names the file, line and key to fix."""
        return SuiteError(message, file=self.file, line=self.line, key=self.key, **kwargs)


# A layer's line of a key path, for its errors: line("partition"), line("sbatch", "mem_per_gpu") (the
# parameter as written); the enclosing key's line where the path has none of its own; None: unknown.
Line = typing.Callable[..., int | None]


def _nowhere(*path: str) -> None:
    """The `Line` of a layer without lines (the command line)."""
    return None


EARLY_SIGNAL_S = 60  # `man sbatch`, --signal: "may be sent up to 60 seconds earlier than specified"
FIELDS = {f.name: f for f in dataclasses.fields(ClusterOptions) if "metavar" in f.metadata}
HINTS = typing.get_type_hints(ClusterOptions)
MINIMUM = {"timeout_min": 1, "nodes": 1, "tasks_per_node": 1, "gpus_per_node": 0, "cpus_per_task": 1,
           "mem_gb": 0.001, "array_parallelism": 1, "max_array_size": 1, "max_requeues": 0, "signal_delay_s": 1}
# sbatch parameters that an option above (or the dispatcher itself) owns.
OWNED = {"partition": "partition", "account": "account", "qos": "qos", "time": "timeout_min",
         "nodes": "nodes", "ntasks-per-node": "tasks_per_node", "ntasks": "tasks_per_node",
         "gpus-per-node": "gpus_per_node", "cpus-per-task": "cpus_per_task", "mem": "mem_gb",
         "constraint": "constraint", "signal": "signal_delay_s", "array": None, "output": None, "error": None,
         "job-name": None}
# sbatch's short options (`sbatch --help`, Slurm 22.05). A key is passed as `--KEY`, so a one-letter
# key never reaches sbatch as its short option: `--p=gpu` is ambiguous (--partition, --parsable,
# ...), `--G=1` unknown, and `--j=x` is taken as --job-name, the dispatcher's own.
SHORT = {"a": "array", "A": "account", "b": "begin", "B": "extra-node-info", "c": "cpus-per-task",
         "C": "constraint", "d": "dependency", "D": "chdir", "e": "error", "F": "nodefile", "G": "gpus",
         "h": "help", "H": "hold", "i": "input", "J": "job-name", "k": "no-kill", "L": "licenses",
         "m": "distribution", "M": "clusters", "n": "ntasks", "N": "nodes", "o": "output", "O": "overcommit",
         "p": "partition", "q": "qos", "Q": "quiet", "s": "oversubscribe", "S": "core-spec", "t": "time",
         "v": "verbose", "V": "version", "w": "nodelist", "W": "wait", "x": "exclude"}
# sbatch parses options with getopt_long, which takes any unambiguous prefix of a long option
# (`part=gpu` is --partition); these real options are prefixes of owned ones, not abbreviations.
NOT_ABBREVIATIONS = {"gpus"}


def _owned_as(key: str) -> str | None:
    """The owned sbatch option that `key` is or abbreviates (None: not owned)."""
    if key in OWNED:
        return key
    if key not in NOT_ABBREVIATIONS:
        return next((name for name in OWNED if name.startswith(key)), None)
    return None


def user_file() -> Path | None:
    """The user's cluster file: `$SUITE_CLUSTER` (empty = none), else `$XDG_CONFIG_HOME/suite/cluster.yaml`."""
    if "SUITE_CLUSTER" in os.environ:
        value = os.environ["SUITE_CLUSTER"]
        if value:
            check_lookup(Path(value), key="$SUITE_CLUSTER")
        if value and not Path(value).is_file():
            what = "a directory, not a file" if Path(value).is_dir() else "no such file"
            raise SuiteError(f"{what} (named by $SUITE_CLUSTER)", file=value)
        return Path(value) if value else None
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = config_home / "suite" / "cluster.yaml"
    return path if path.is_file() else None


def resolve_options(spec_section: Mapping[str, Any] | None = None, cli: Mapping[str, Any] | None = None, *,
                    spec_file: str | None = None, spec_line: Line | None = None,
                    user: Path | None | typing.Literal["default"] = "default") -> ClusterOptions:
    """Merge the layers (defaults < user file < spec `cluster:` < command line) into checked options.

    `spec_line(*path)` gives the line of a key path in the spec's `cluster:` section (`Line`) for
    error messages; `user` overrides the user-file lookup (None: no user file)."""
    path = user_file() if user == "default" else user
    spec_line = spec_line or _nowhere
    layers: list[tuple[dict[str, Any], typing.Callable[..., Origin]]] = []  # values, where a key came from
    mistakes: list[SuiteError] = []  # every layer's, named at once
    if path is not None:
        values, line = _read_yaml(path)
        layers.append((_check(values, line, mistakes, file=str(path)), _where(str(path), line, values, str)))
    if spec_section:
        layers.append((_check(spec_section, spec_line, mistakes, file=spec_file, prefix="cluster."),
                       _where(spec_file or "the spec", spec_line, spec_section, lambda key: f"cluster.{key}")))
    if cli:
        layers.append((_check(cli, _nowhere, mistakes, file=COMMAND_LINE, flags=True),
                       _where(COMMAND_LINE, _nowhere, {}, flag)))
    if mistakes:
        raise together(mistakes)
    merged: dict[str, Any] = {}
    origin: dict[str, Origin] = {}
    for layer, where in layers:
        for key, value in layer.items():
            merged[key] = {**merged.get(key, {}), **value} if key == "sbatch" else value
            origin[key] = where(key)
            if key == "sbatch":
                origin.update({f"sbatch.{k}": where(key, k) for k in value})
    if "sbatch" in merged:  # null unsets a parameter a lower layer (a site-wide user file) set
        merged["sbatch"] = {k: v for k, v in merged["sbatch"].items() if v is not None}
    options = ClusterOptions(**merged, origins=origin)
    if options.signal_delay_s + EARLY_SIGNAL_S >= options.timeout_min * 60:
        mistakes.append(SuiteError(
            f"signal_delay_s={options.signal_delay_s} ({origin.get('signal_delay_s', 'the default')}) plus the "
            f"{EARLY_SIGNAL_S} s by which SLURM may signal early must be shorter than the time limit, "
            f"timeout_min={options.timeout_min} ({origin.get('timeout_min', 'the default')}), i.e. "
            f"{options.timeout_min * 60} s: the run could be stopped before it starts training; give timeout_min "
            f"{(options.signal_delay_s + EARLY_SIGNAL_S) // 60 + 1} or more, or a smaller signal_delay_s",
            key="signal_delay_s"))
    if 0 < options.gpus_per_node < options.tasks_per_node:  # two processes on one GPU: NCCL refuses at start
        mistakes.append(SuiteError(
            f"tasks_per_node={options.tasks_per_node} ({origin.get('tasks_per_node', 'the default')}) is more than "
            f"gpus_per_node={options.gpus_per_node} ({origin['gpus_per_node']}): DDP runs one process per GPU",
            key="tasks_per_node"))
    if options.cpus_per_task is not None and "cpus-per-gpu" in options.sbatch:  # sbatch refuses them together
        mistakes.append(options.origin("sbatch.cpus-per-gpu").error(
            f"cpus-per-gpu={options.sbatch['cpus-per-gpu']} cannot be given beside cpus_per_task="
            f"{options.cpus_per_task} ({options.origin('cpus_per_task')}): sbatch takes one or the other "
            "(\"--cpus-per-gpu is mutually exclusive with --cpus-per-task\") and would refuse the submission; "
            "drop one of them"))
    if "gpus-per-socket" in options.sbatch and "sockets-per-node" not in options.sbatch:  # sbatch: at submission
        mistakes.append(options.origin("sbatch.gpus-per-socket").error(
            f"gpus-per-socket={options.sbatch['gpus-per-socket']} needs sockets-per-node beside it (e.g. `--sbatch "
            "sockets-per-node=1`): sbatch refuses it alone (\"--gpus-per-socket option requires --sockets-per-node "
            "specification\") and would refuse the submission"))
    if mistakes:
        raise together(mistakes)
    return options


def section_mistakes(section: Mapping[str, Any], line: Line, file: str) -> list[SuiteError]:
    """The mistakes of a spec's `cluster:` section on its own (when the spec is read, whatever the
    executor), all of them; a time limit it sets too short for the signal delay it sets is wrong
    whatever the other layers say."""
    mistakes: list[SuiteError] = []
    checked = _check(section, line, mistakes, file=file, prefix="cluster.")
    both = {k: checked[k] for k in ("timeout_min", "signal_delay_s") if checked.get(k) is not None}
    if len(both) == 2:
        try:
            resolve_options(both, spec_file=file, spec_line=line, user=None)
        except SuiteError as err:
            mistakes.append(err)
    return mistakes


def _where(file: str, line: Line, written: Mapping[str, Any],
           name: typing.Callable[[str], str]) -> typing.Callable[..., Origin]:
    """Where a layer (`written`, as read from `file`) set option `key`, or `param`, the sbatch
    parameter `sbatch_key` makes of one it writes (mem_per_gpu: mem-per-gpu), at that one's own line.
    `name`: how the layer spells a key (`cluster.partition` in a spec, `--partition` on the command line)."""
    sbatch = written.get("sbatch")
    spelt = {sbatch_key(k): str(k) for k in sbatch} if isinstance(sbatch, Mapping) else {}

    def where(key: str, param: str | None = None) -> Origin:
        if param is None:
            return Origin(file, line(key), name(key))
        return Origin(file, line(key, spelt.get(param, param)), f"{name(key)}.{param}")
    return where


def sbatch_key(written: Any) -> str:
    """The sbatch parameter a key written under `sbatch` stands for: `--mem_per_gpu` is mem-per-gpu."""
    return str(written).lstrip("-").replace("_", "-")


def _place(file: str, line: int | None) -> str:
    return f"{file}:{line}" if line else file


def parse_cli(values: Mapping[str, Any]) -> dict[str, Any]:
    """Argparse values (None = not given) -> a layer. `sbatch` stays the list of items as typed
    (KEY=VALUE or a bare KEY): `_check` reads it, so a repeated key is one mistake among the rest."""
    return {k: v for k, v in values.items() if v is not None and v != []}


def _sbatch_items(items: list[str], where: dict[str, Any], mistakes: list[SuiteError]) -> dict[str, Any]:
    """`--sbatch` items -> parameters, each repeated key added to `mistakes`. A VALUE is kept as
    typed (`--sbatch comment=007` stays '007'): sbatch reads strings."""
    params: dict[str, Any] = {}
    typed: dict[str, str] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if key in params:
            mistakes.append(SuiteError(f"given twice, as {typed[key]!r} and {item!r}: give it once",
                                       key=f"--sbatch.{key}", **where))
            continue
        params[key], typed[key] = (text if sep else True), item
    return params


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _read_yaml(path: Path) -> tuple[dict[str, Any], Line]:
    raw, lines = read_yaml(path, "cluster options")
    if raw is None:
        return {}, _nowhere
    if not isinstance(raw, Mapping):
        raise SuiteError("expected a mapping of cluster options (partition: ..., gpus_per_node: ...)", file=str(path))

    def line(*path: str) -> int | None:
        return next((lines[path[:n]] for n in range(len(path), 0, -1) if path[:n] in lines), None)
    return {str(k): v for k, v in raw.items()}, line


def _check(values: Mapping[str, Any], line: Line, mistakes: list[SuiteError], *,
           file: str | None, flags: bool = False, prefix: str = "") -> dict[str, Any]:
    """The values of one layer that pass, each mistake added to `mistakes` (so that every one is
    named at once, not one per try). `prefix`: where the keys sit in their file (`cluster.` in a
    spec), for the errors' key."""
    out = {}
    for key, value in values.items():
        where = {"file": file, "line": line(key)}
        name = flag(key) if flags else prefix + key
        if flags and key == "sbatch":
            value = _sbatch_items(value, where, mistakes)
        try:
            value = _checked(key, value, name, where, flags=flags)
        except SuiteError as err:
            mistakes.append(err)
            continue
        if key == "sbatch":  # each parameter named at its own line
            value = _check_sbatch(value, name, lambda param: {"file": file, "line": line(key, str(param))}, mistakes)
        out[key] = value
    return out


def _checked(key: str, value: Any, name: str, where: dict[str, Any], *, flags: bool) -> Any:
    """One option's value, coerced to its type, or its first mistake raised (the later checks
    need the type)."""
    if key not in FIELDS:
        raise unknown("cluster option", flag(key) if flags else key, [flag(f) if flags else f for f in FIELDS],
                      key=name, **where)
    given = value  # echoed as written: `mem_gb: -1` is "got -1", not the -1.0 it is checked as
    try:
        value = coerce(value, HINTS[key])
    except ValueError as exc:
        raise SuiteError(f"{exc}, got {show_value(value)}", key=name, **where) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise SuiteError(f"must be a finite number, got {given}", key=name, **where)
    if key in MINIMUM and value is not None and value < MINIMUM[key]:
        raise SuiteError(f"must be at least {MINIMUM[key]}, got {given}", key=name, **where)
    if isinstance(value, str) and not value.strip():
        raise SuiteError("must not be empty (leave the option out for the cluster's default)", key=name, **where)
    if key == "setup" and any(not shell.strip() for shell in value):
        raise SuiteError(f"a setup line must not be empty, got {value!r}", key=name, **where)
    if key == "sbatch" and not isinstance(value, Mapping):
        raise SuiteError(f"expected a mapping of sbatch parameters, got {show_value(value)}", key=name, **where)
    return list(value) if key == "setup" else value


def _check_sbatch(value: Mapping[str, Any], name: str, where: typing.Callable[[Any], dict[str, Any]],
                  mistakes: list[SuiteError]) -> dict[str, Any]:
    """The sbatch parameters that pass, each mistake added to `mistakes` (`where`: a parameter's file
    and line, from its key as written)."""
    params = {}
    for raw_key, v in value.items():
        key = sbatch_key(raw_key)
        try:
            _check_parameter(key, raw_key, v, params, name, where(raw_key))
        except SuiteError as err:
            mistakes.append(err)
            continue
        params[key] = v
    return params


def _check_parameter(key: str, raw_key: Any, v: Any, params: Mapping[str, Any], name: str,
                     where: dict[str, Any]) -> None:
    """Raise the mistake in one sbatch parameter (`params`: those before it), if any."""
    if not key:
        raise SuiteError(f"an sbatch parameter needs a name, e.g. exclude=node7; got {raw_key!r}", key=name, **where)
    if len(key) == 1:
        raise _one_letter(key, f"{name}.{raw_key}", where)
    owned = _owned_as(key)
    if owned is not None:
        reads = "" if owned == key else f" (it abbreviates --{owned})"
        raise SuiteError(f"sbatch parameter {key!r}{reads} cannot be set here: {instead(owned)}", key=f"{name}.{raw_key}",
                         **where)
    if v is not None and (not isinstance(v, (str, int, float, bool)) or v is False):
        raise SuiteError(f"an sbatch value is a string, a number, true (a bare flag) or null (unset what a "
                         f"lower layer set), got {show_value(v)}", key=f"{name}.{raw_key}", **where)
    if key in params:
        raise SuiteError(f"sbatch parameter {key!r} is given twice (spelt differently)", key=f"{name}.{raw_key}",
                         **where)
    try:
        node_asks.gpus_per_node(key, v, nodes=1, tasks_per_node=1)
    except node_asks.Malformed as exc:
        raise SuiteError(str(exc), key=f"{name}.{raw_key}", **where) from None


def _one_letter(key: str, name: str, where: dict[str, Any]) -> SuiteError:
    """A one-letter key: passed as `--KEY`, which sbatch reads as a prefix of its long options,
    never as its short option `-KEY`; refused here, not at submission, with the long name."""
    long = SHORT.get(key)
    said = f"sbatch parameter {key!r} is one letter: sbatch would read it as --{key}, not -{key}"
    if long is None:
        owned = _owned_as(key)
        if owned:
            return SuiteError(f"{said}, a prefix of its long options: here --{owned}, which cannot be set here: "
                              f"{instead(owned)}", key=name, **where)
        return SuiteError(f"{said}, a prefix of its long options; write the long option's name", key=name, **where)
    if long in OWNED:
        return SuiteError(f"{said}; -{key} is --{long}, which cannot be set here: {instead(long)}", key=name,
                          **where)
    return SuiteError(f"{said}; write {long!r} (-{key} is --{long})", key=name, **where)


def instead(owned: str) -> str:
    """What sets an owned sbatch option instead: an option of the suite's, or the dispatcher."""
    return f"use the {OWNED[owned]!r} option" if OWNED[owned] else "the dispatcher sets it"


def summary(options: ClusterOptions) -> str:
    """The options that differ from the defaults, as `key=value (where it was set)`, sbatch
    parameters one by one (what a dry run and a refused sbatch print)."""
    defaults = ClusterOptions()
    values = [(k, getattr(options, k)) for k in FIELDS if k != "sbatch" and getattr(options, k) != getattr(defaults, k)]
    values += [(f"sbatch.{k}", v) for k, v in options.sbatch.items()]
    parts = [f"{k}={v!r}" + (f" ({options.origins[k]})" if k in options.origins else "") for k, v in values]
    return ", ".join(parts) or "defaults"
