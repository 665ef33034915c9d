"""The `suite` command: a thin argparse layer over the library; no logic of its own.

Each subcommand is a pair `_add_<name>(subparsers)` / `_<name>(args) -> int`. Library imports
happen inside the handlers so `suite --help` stays fast. A SuiteError (a mistake the user can fix)
is printed without a traceback and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from suite.errors import SuiteError, SuiteWarning, close_matches, count, shell_path, show_warning, shown_warnings

if TYPE_CHECKING:
    import pandas

    from suite.ablations.expand import RunSpec
    from suite.ablations.spec import Spec
    from suite.config import RunConfig
    from suite.dispatch.cluster import ClusterOptions
    from suite.dispatch.plan import Plan
    from suite.dispatch.slurm import Reading
    from suite.store import RunState, Scan

def _no_store(args: argparse.Namespace) -> str:
    """After "no runs in <out>" where the store's folder does not exist (status, report, cancel)."""
    from suite import store

    return f" ({store.not_there(_store_key(args), '--out')})"


def _note_no_store(out: Path, args: argparse.Namespace) -> None:
    """Say on stderr that store `out` is not there: with a mistyped --out, a spec's runs read as all
    missing (status, report) or as nothing queued (cancel)."""
    if not out.exists():
        print(f"note: no runs in {shell_path(out)}{_no_store(args)}", file=sys.stderr)


class _Intermixed(argparse.ArgumentParser):
    """Subcommand parser that accepts `key=value` positionals after options
    (`suite train M --dataset digits seed=3`), which plain argparse rejects."""

    _inner = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._inner:  # parse_known_intermixed_args calls back into parse_known_args
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def _count(least: int) -> Callable[[str], int]:
    """argparse type: an integer >= least (a zero or negative count would hang or crash later)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value

    return parse


def _number(text: str) -> int | float:
    """argparse type of a float option: the number as typed (`--mem-gb 1` an integer, as YAML reads
    it), so that its check echoes `-1`, not -1.0; the check makes it a float."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(f"{text!r} is not a number")


def parser() -> argparse.ArgumentParser:
    """The `suite` command's argument parser, every subcommand in it."""
    top = argparse.ArgumentParser(prog="suite", description="Benchmarks and ablations for attention in image "
                                  "classifiers (RAN, SAN): models, ablation specs, runs, reports. `suite COMMAND "
                                  "--help` describes each command.")
    from suite import __version__

    top.add_argument("--version", action="version", version=f"suite {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Intermixed)
    for add in (_add_models, _add_specs, _add_run, _add_status, _add_cancel, _add_profile, _add_report, _add_train,
                _add_bench):
        add(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            shown_warnings.clear()
            code = int(args.handler(args) or 0)
            sys.stdout.flush()  # here, not at exit: a piped stdout is buffered, and its reader may have gone
            return code
    except SuiteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM or SIGHUP where processes.sigterm_raises handles them
        print("interrupted", file=sys.stderr)
        return getattr(stop, "status", 130)  # 130, 143 or 129: as the shell reports a process the signal ended
    except BrokenPipeError:  # `suite status | head`: the reader has gone, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor is the flush at exit
        return 0


# ---------------------------------------------------------------------------------------- models
def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered models with their parameter counts")
    p.add_argument("pattern", nargs="*", default=["*"], metavar="PATTERN",
                   help="model names or fnmatch patterns, e.g. 'san1*' (default: every model)")
    p.add_argument("--options", action="store_true", help="also list each model's options and defaults")
    p.set_defaults(handler=_models)


def _models(args: argparse.Namespace) -> int:
    from suite.measure.complexity import count_params
    from suite.measure.profile import select_models
    from suite.models import get_model_info
    from suite.models.registry import load_plugins
    from suite.schema import show_value

    with warnings.catch_warnings():  # a broken plugin is said below, as an error, not also as a warning
        warnings.filterwarnings("ignore", r"model plugin .* failed to load", SuiteWarning)
        broken = load_plugins()
    names = select_models(args.pattern)  # a pattern that matches nothing is an error, not a shorter list
    print(f"{'model':<22} {'family':<8} {'input':>5} {'params (M)':>11}  paper name")
    for name in names:  # the paper's name last (the name the reports show): it can be long
        info = get_model_info(name)
        source = "" if info.source == "suite" else f"  (from {info.source})"  # not the suite's own: whose
        print(f"{name:<22} {info.family:<8} {info.input_size:>5} {count_params(name) / 1e6:>11.2f}  {info.label}"
              f"{source}")
        if args.options:
            for opt in info.options.values():
                choices = f"  {{{', '.join(map(show_value, opt.choices))}}}" if opt.choices else ""
                print(f"    {opt.name} = {show_value(opt.default)}{choices}")  # as a spec or override writes it
    for err in broken:  # what a user installing a plugin runs to see it: its failure is this command's
        print(f"error: {err}", file=sys.stderr)
    return 2 if broken else 0


# ----------------------------------------------------------------------------- specs, run, status
def _add_specs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("specs", help="list and check the ablation specs (every preset too), with their run counts "
                                     "and data sets")
    p.add_argument("specs", nargs="*", metavar="SPEC",
                   help="spec names, fnmatch patterns ('san_*') or YAML paths to check (default: every spec found: "
                        "$SUITE_ABLATIONS, the suite's ablations/, ./ablations)")
    p.add_argument("--preset", help="count and check runs under this preset only")
    p.set_defaults(handler=_specs)


DATA_WIDTH = len("cifar10, cifar100")  # the data column of `suite specs`
DESCRIPTION_WIDTH = 60  # of a description's first line in `suite specs`


def _clip(text: str, width: int = DESCRIPTION_WIDTH) -> str:
    """`text` cut to `width` characters at a word's end, with an ellipsis when cut: a cut mid-word
    reads as a typo in the spec."""
    if len(text) <= width:
        return text
    head = text[:width]  # the ellipsis takes the place of the space, or of a last character cut
    words = head[:head.rfind(" ")] if " " in head else head[:width - 1]
    return words.rstrip(" ,;:-") + "…"


def _specs(args: argparse.Namespace) -> int:
    from suite import ablations

    chosen = ablations.select(args.specs) if args.specs else ablations.list()  # a pattern matching none: said first
    print(f"{'spec':<24} {'runs':>5}  {'data':<{DATA_WIDTH}}  paper / description")
    invalid = having = unread = 0
    presets: set[str] = set()  # of the specs read, for a misspelt --preset's "did you mean"
    for name in chosen:
        problems: list[str] = []
        spec = None
        try:  # one broken spec file must not hide the others
            spec = ablations.load(name)
            name = spec.name
            presets.update(spec.presets)
            if args.preset is not None and args.preset not in spec.presets:
                print(f"{name:<24} {'-':>5}  (no preset {args.preset!r})")
                continue
            having += 1
            runs = ablations.expand(spec, preset=args.preset)
        except SuiteError as err:
            problems.append(str(err))
            unread += spec is None  # a file not read: whether it has the preset cannot be told
        else:
            for preset in spec.presets if args.preset is None else []:  # each is checked only when used
                try:
                    ablations.expand(spec, preset=preset)
                except SuiteError as err:
                    problems.append(f"under --preset {preset}: {err}")
        if problems:
            text = "\n".join(problems).replace("\n", "\n" + " " * 32)  # under the description column
            print(f"{name:<24} {'-':>5}  invalid: {text}")
            invalid += 1
            continue
        where = " ".join(str(v) for v in spec.paper.values()) or _clip(next(iter(spec.description.splitlines()), ""))
        data = ", ".join(dict.fromkeys(r.config.data.name for r in runs))
        if not spec.gives("data.name", args.preset):
            data += " (default)"
        print(f"{name:<24} {len(runs):>5}  {data:<{DATA_WIDTH}}  {where}")
    if args.preset is not None and not having:
        hint = close_matches(args.preset, presets)
        some = f"no spec that could be read ({count(unread, 'spec')} could not, above)" if unread else "no spec"
        print(f"error: --preset: {some} has the preset {args.preset!r}"
              + (f"; did you mean {hint[0]!r}?" if hint else ""), file=sys.stderr)
        return 2
    return 2 if invalid else 0


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the missing runs of an ablation spec")
    _spec_arguments(p)
    p.add_argument("--executor", choices=["local", "slurm"], default="local",
                   help="local: this machine (default); slurm: submit job arrays through submitit")
    p.add_argument("--dry-run", action="store_true", help="print the plan (runs and their states) and stop")
    p.add_argument("--max-parallel", type=_count(1), default=1, metavar="N", help="local runs at a time (default: 1)")
    p.add_argument("--threads", type=_count(1), metavar="N",
                   help="torch CPU threads of each local run (default: the cores divided by --max-parallel; "
                        "1 is much faster on a busy small machine)")
    p.add_argument("--retry-failed", action="store_true", help="also rerun failed and cancelled runs")
    p.add_argument("--force", action="store_true", help="rerun everything (earlier results are archived, not deleted)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar: a line per finished run instead")
    _overrides_argument(p, run=True)
    _cluster_arguments(p)
    p.set_defaults(handler=_run)


def _cluster_arguments(p: argparse.ArgumentParser) -> None:
    """One flag per cluster option (suite/dispatch/cluster.py), over the spec's `cluster:` section
    and the user's ~/.config/suite/cluster.yaml."""
    import dataclasses

    from suite.dispatch.cluster import FIELDS, HINTS, flag

    group = p.add_argument_group("SLURM options (with --executor slurm; also a spec's cluster: section and "
                                 "$SUITE_CLUSTER, else ~/.config/suite/cluster.yaml)")
    for name, f in FIELDS.items():
        hint = HINTS[name]
        kind = next((t for t in (int, float, str) if t == hint or t in getattr(hint, "__args__", ())), str)
        kind = _number if kind is float else kind
        if f.default is dataclasses.MISSING:  # sbatch, setup: repeatable
            group.add_argument(flag(name), dest=f"cluster_{name}", action="append", metavar=f.metadata["metavar"],
                               help=f.metadata["help"])
        else:
            group.add_argument(flag(name), dest=f"cluster_{name}", type=kind, metavar=f.metadata["metavar"],
                               help=f"{f.metadata['help']} (default: {f.default})" if f.default is not None
                               else f.metadata["help"])


def _spec_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", help="spec name (`suite specs` lists them) or path to a spec file")
    p.add_argument("--preset", help="named overrides from the spec, e.g. smoke")
    _store_argument(p)


def _store_argument(p: argparse.ArgumentParser) -> None:
    """--out, the run store that `_store_dir` resolves."""
    p.add_argument("--out", type=_path, default=None, metavar="DIR",
                   help="run store directory (default: $SUITE_OUT or ./results)")


def _renamed(p: argparse.ArgumentParser, old: str, new: str, why: str) -> None:
    """`old`, this command's former name of `new`, refused with the new name (`--out` is the run store
    in every other command, and profile's output file or train's run directory would be mistaken for it;
    profile's `--num-classes` was a second spelling of `model.num_classes`)."""

    def refuse(text: str) -> None:
        raise argparse.ArgumentTypeError(f"this command's {old} is now {new} ({why})")

    p.add_argument(old, type=refuse, help=argparse.SUPPRESS)


def _path(text: str) -> Path:
    """An option's path: an empty one (`--out ''`, an unset variable) would name the current directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; leave the option out for its default")
    return Path(text)


def _target(text: str) -> str:
    """`--to`'s FILE ('-': stdout) as given: an empty one would read as no --to, and the store's own
    tables would be written instead."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; leave the option out for the store's own files")
    return text


def _store_dir(args: argparse.Namespace, *, writing: bool = False) -> Path:
    """The run store `--out` (else $SUITE_OUT, else ./results) names; refused if it is a file, and
    when `writing`, if it cannot hold runs."""
    from suite import store

    out = args.out or store.default_out()
    key = _store_key(args)
    store.present(out, key=key)
    if writing:
        store.check_writable(out, key=key)
    return out


def _store_key(args: argparse.Namespace) -> str | None:
    """What named the run store, for its errors (None: the default folder, which no one named)."""
    from suite import store

    return store.named_by("--out" if args.out else None)


def _overrides_argument(p: argparse.ArgumentParser, *, run: bool = False) -> None:
    # run, status, cancel and report take the same overrides: they are part of the runs' identity.
    p.add_argument("overrides", nargs="*", default=[], metavar="key=value",
                   help="config overrides for every run (e.g. epochs=1)" + ("" if run else ", as given to `suite run`"))


def _expand(args: argparse.Namespace) -> tuple[Spec, list[RunSpec]]:
    """args.spec and its runs under args.preset and the command line's key=value overrides, which
    become the runs' as they record them (a relative data.root made absolute: `config.rooted`), so
    that every hint names what the records do."""
    from suite import ablations
    from suite.config import parse_overrides

    try:
        spec = ablations.load(args.spec)
    except SuiteError as err:
        raise _named_in_store(err, args) from None
    try:
        runs = ablations.expand(spec, preset=args.preset, overrides=parse_overrides(args.overrides))
    except SuiteError as err:
        raise _model_in_store(err, args) from None
    args.overrides = runs[0].given()
    return spec, runs


def _model_in_store(err: SuiteError, args: argparse.Namespace) -> SuiteError:
    """`err`, and where it calls a model unknown that the store's runs were trained with from a
    plugin: which plugin, and that this environment lacks it (uninstalled) or no longer registers
    the model, since the runs themselves are intact."""
    import importlib.metadata

    from suite import store

    text = str(err)
    if "unknown model" not in text:  # the store's records are read only for an error they can add to
        return err
    out = args.out or store.default_out()
    gone = {n: s for n, s in store.model_sources(out).items() if f"unknown model {n!r}" in text}
    for name, sources in gone.items():
        distribution = sources[0].rpartition(" ")[0]
        said = f"; the runs of {name!r} in {out} were trained with it from {' and '.join(sources)}"
        if not distribution:  # a module the training code imported, not an installed plugin
            err.said(f"{said} (a module, which registers it only where it is imported)")
            continue
        try:
            here = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            err.said(f"{said}, a model plugin this environment does not have: install it again to plan or report "
                     f"them (`suite status` lists them without it)")
        else:
            err.said(f"{said}, and {distribution} {here} here does not register it")
    return err


def _named_in_store(err: SuiteError, args: argparse.Namespace) -> SuiteError:
    """`err`, and where the store knows an unknown spec name from: a spec run by its path is listed by
    name (`suite status` of the store), and that name alone was refused with only the shipped specs."""
    from suite import ablations, store
    from suite.ablations import names

    if err.key != "spec" or ablations.find(args.spec) is not None or not err.message.startswith("unknown spec"):
        return err
    out = args.out or store.default_out()
    held = names.recorded(out).get(args.spec)
    if held is None:
        return err
    return err.said(f"; {out} has its runs from the spec file {shell_path(held)}: name that file")


def _same_runs(args: argparse.Namespace, absolute: bool = False) -> str:
    """The arguments that name the same runs again, for the hints printed after `suite run`;
    `absolute`: with the spec file and the store as absolute paths (a command kept for later)."""
    from suite import again

    return again.same_runs(args.spec, args.preset, args.out, args.overrides, lasting=absolute)


def _cluster_values(args: argparse.Namespace) -> dict[str, Any]:
    """The cluster options given as flags (`_cluster_arguments`), by option name."""
    return {k[len("cluster_"):]: v for k, v in vars(args).items() if k.startswith("cluster_") and v is not None}


def _cluster_flags(args: argparse.Namespace) -> list[str]:
    """The SLURM flags given on the command line, as typed (for hints, and to refuse them locally)."""
    from suite.dispatch.cluster import flag

    words = []
    for name, value in _cluster_values(args).items():
        for item in value if isinstance(value, list) else [value]:
            words += [flag(name), str(item)]
    return words


def _same_slurm_runs(args: argparse.Namespace, absolute: bool = False) -> str:
    """`_same_runs` for a resubmission: on SLURM, with the same cluster flags, but not `--sbatch
    hold` (one holds a submission to look at it; a resubmission is to run)."""
    words = _cluster_flags(args)  # flag, value, flag, value, ...
    kept = []
    for flag, value in zip(words[::2], words[1::2]):
        if not (flag == "--sbatch" and value.split("=")[0] == "hold"):
            kept += [flag, value]
    return " ".join([_same_runs(args, absolute), "--executor slurm", *map(shlex.quote, kept)])


def _same_local_runs(args: argparse.Namespace) -> str:
    """`_same_runs` for a local re-run: with the same --max-parallel and --threads, hence the same
    threads per run (CPU results depend on the thread count)."""
    parallel = f" --max-parallel {args.max_parallel}" if args.max_parallel != 1 else ""
    threads = f" --threads {args.threads}" if args.threads is not None else ""
    return _same_runs(args) + parallel + threads


def _resubmit_hint(out: Path, statuses: Sequence[Mapping[str, Any] | None],
                   args: argparse.Namespace) -> tuple[str, str]:
    """The command that submits these runs again as they were submitted (cluster flags included),
    and a note: the one `suite run` recorded with them (`statuses`: their status.json, as read
    where they are stored: a run an older version filed under another id has its own there); for
    runs submitted by different commands (another spec sharing a run, other flags), this command's
    runs with the latest one's flags."""
    statuses = [s or {} for s in statuses]
    recorded = {_recorded_again(s) for s in statuses}
    if len(recorded) == 1 and None not in recorded:
        words = shlex.split(recorded.pop())
        if "--out" in words[:-1]:  # the store as it is now (it may have been moved or copied since)
            words[words.index("--out") + 1] = str(Path(out).resolve())
        return shlex.join(words), ""
    flags = {again: _recorded_flags(again) for again in recorded if again}
    if not flags:
        return f"suite run {_same_slurm_runs(args, absolute=True)} --retry-failed", ""
    latest = max((s for s in statuses if _recorded_again(s)), key=lambda s: str(s.get("submitted_at") or ""))
    command = shlex.join(["suite", "run", *shlex.split(_same_runs(args, absolute=True)), "--executor", "slurm",
                          *flags[_recorded_again(latest)], "--retry-failed"])
    differ = len({tuple(f) for f in flags.values()}) > 1
    return command, " (with the cluster flags of their latest submission; they were submitted with different ones)" \
        if differ else ""


def _recorded_again(status: Mapping[str, Any]) -> str | None:
    """The resubmit command a run's status recorded, or None: none, or one that is no command (not
    text, or text shlex cannot split: a hand edit, another program), which no hint repeats."""
    again = status.get("again")
    if not isinstance(again, str) or not again:
        return None
    try:
        shlex.split(again)
    except ValueError:
        return None
    return again


def _recorded_threads(statuses: Sequence[Mapping[str, Any] | None]) -> str:
    """` --threads N` when these local runs (`statuses`: their status.json) last ran with N torch
    threads, so a retry resumes them as they ran (CPU results depend on the thread count); empty
    when they differ or are unknown."""
    threads = [(s or {}).get("threads") for s in statuses]
    value = threads[0] if threads and all(t == threads[0] for t in threads) else None
    return f" --threads {value}" if isinstance(value, int) and not isinstance(value, bool) and value > 0 else ""


def _recorded_flags(again: str) -> list[str]:
    """The cluster flags of a recorded resubmit command (`_same_slurm_runs`: between `--executor
    slurm` and `--retry-failed`)."""
    words = shlex.split(again)
    if "--executor" not in words:
        return []
    return [w for w in words[words.index("--executor") + 2:] if w != "--retry-failed"]


def _run(args: argparse.Namespace) -> int:
    """`suite run`, SIGTERM and SIGHUP handled as Ctrl-C from the start: one that came during the
    first scan of the store or the planning, before the runner's handlers, ended the command on the
    spot, leaving a temporary file, or a run's folder made without its plan."""
    from suite import processes

    with processes.sigterm_raises():
        return _run_spec(args)


def _run_spec(args: argparse.Namespace) -> int:
    from suite.dispatch import cluster, slurm

    from suite.ablations import names

    out = _store_dir(args, writing=not args.dry_run)
    spec, runs = _expand(args)
    names.claim(out, spec, record=False)  # said before anything is planned; recorded once runs start
    options = None
    given = _cluster_flags(args)
    if args.executor == "local" and given:
        raise SuiteError(f"{given[0]} is a SLURM option: add --executor slurm", key="executor")
    if args.executor == "slurm":  # checked before anything is planned or submitted
        if args.max_parallel != 1:
            raise SuiteError("--max-parallel is for local runs; on SLURM use --array-parallelism", key="max_parallel")
        if args.threads is not None:
            raise SuiteError("--threads is for local runs; on SLURM a run takes --cpus-per-task threads", key="threads")
        cli = cluster.parse_cli(_cluster_values(args))
        options = cluster.resolve_options(spec.cluster, cli, spec_file=str(spec.path),
                                          spec_line=lambda *path: spec.line("cluster", *path))
        if not args.dry_run:  # two submissions at once would both submit the runs neither saw pending
            checked = slurm.check_options(options)  # before the lock: a refusal leaves a new store unmade
            with slurm.submission_lock(out):
                return _run_planned(args, spec, runs, out, options, checked)
    return _run_planned(args, spec, runs, out, options)


# `--dry-run` lists the done runs it skips while there are at most this many: a large grid's
# thousands of them hid the runs that would start.
DONE_LISTED = 50


def _print_arrays(n_runs: int, options: ClusterOptions) -> None:
    """How a submission of `n_runs` would be split into job arrays and throttled, or why it would be
    refused: the checks a submission makes (`slurm.check_options`, then `slurm.layout`), each
    reading of the cluster made once; nothing off the cluster (no scontrol: the dry run still shows
    the plan)."""
    from suite.dispatch import slurm

    if not n_runs:
        return
    checked = None
    try:
        checked = slurm.check_options(options)
        size, shares = slurm.layout(n_runs, options, checked)
    except SuiteError as err:
        # off the cluster, the one refusal is that `scontrol show config` is not there to read
        if checked is None or err is not checked.config or shutil.which("scontrol"):
            print(f"note: a real submission would be refused: {err}")
        return
    lengths = slurm.array_lengths(n_runs, size)
    split = f"{len(lengths)} job arrays of up to {size} runs" if len(lengths) > 1 else "1 job array"
    print(f"would be submitted as {split}, at most {sum(shares)} running at once")


def _retry_hint(args: argparse.Namespace, plan: Plan, out: Path, options: ClusterOptions | None) -> str:
    """How to rerun the failed and cancelled runs a plan leaves out (without --retry-failed), or ''."""
    starting = {r.run_id for r in plan.to_run}  # once: built in the condition, it was built for every run
    stopped = [rid for rid, state in plan.states.items()
               if rid not in starting and state.state in ("failed", "cancelled")]
    if not stopped:
        return ""
    again = f"suite run {_same_local_runs(args)} --retry-failed" if options is None else \
        "".join(_resubmit_hint(out, [plan.states[rid].status for rid in stopped], args))
    return f"; rerun the {len(stopped)} failed or cancelled: {again}"


def _print_left(left: Sequence[str]) -> None:
    """Name the runs a submission left to the process that took them since they were planned (a
    local `suite run`): their jobs were cancelled before they could start, and `suite status` shows
    that process's state of them."""
    if left:
        print(f"left {count(len(left), 'run')} to the other process that started or ended "
              f"{'it' if len(left) == 1 else 'them'} meanwhile (not submitted): {' '.join(left)}")


def _refile(out: Path, runs: Sequence[RunSpec], found: Scan, *,
            dry_run: bool) -> tuple[dict[str, str], dict[str, str]]:
    """File the runs an older version of the suite stored under other ids (it hashed their config
    otherwise; `found` by `store.scan`) under the ids this version gives them, so that an upgrade
    does not train them again; `--dry-run` only names them. Returns (today's id -> the old one) the
    runs a dry run would file, for its plan, and the runs left where they are because a job or a
    process may still be writing there: started anew, they would be trained twice and the old one
    could never be filed (a later `suite run` files them once that has ended)."""
    from suite import store

    unmoved, waiting = {}, {}
    configs = {r.run_id: r.config for r in runs}
    _note_unreadable(found.unreadable, sys.stdout)
    for old, new in found.moves.items():
        if problem := store.stored_again(out, old, new):
            print(f"note: run {old}, stored under an older version's id for {new}, is not refiled: {problem}")
        elif problem := store.in_use(store.run_dir(out, old)) if dry_run else store.refile(out, old, configs[new]):
            waiting[new] = old
            print(f"note: run {new} is waiting for its job under the id an older version gave it ({old}), "
                  f"not started again: {problem}")
        elif dry_run:
            unmoved[new] = old
            print(f"note: run {old} is stored under the id an older version of the suite gave it; "
                  f"`suite run` files it as {new} (its training kept)")
        else:
            print(f"refiled run {old} as {new} (the id this version of the suite gives it; its training kept)")
    return unmoved, waiting


def _check_this_machine(configs: Iterable[RunConfig]) -> None:
    """What would fail every run on this machine: a data set not on it, a device it lacks."""
    from suite.data import check_present
    from suite.measure.env import resolve_device

    configs = list(configs)
    for data, num_classes in dict.fromkeys((c.data, c.model.kwargs.get("num_classes")) for c in configs):
        check_present(data, num_classes)
    for device in dict.fromkeys(c.device for c in configs):
        resolve_device(device)


def _run_planned(args: argparse.Namespace, spec: Spec, runs: list[RunSpec], out: Path,
                 options: ClusterOptions | None, checked: Reading | None = None) -> int:
    """`checked`: what `slurm.check_options` read of the cluster for a submission."""
    from suite import store
    from suite.ablations import names
    from suite.dispatch import cluster, slurm
    from suite.dispatch.local import run_local
    from suite.dispatch.plan import make_plan

    # Runs submitted earlier: still queued or running (left alone), or ended without a result (recorded).
    found = store.scan(out, [r.run_id for r in runs], spec.name, {r.config.model.name for r in runs})
    # before refiling: a job of a run stored under an older id that has ended is recorded so, and the run filed
    alive = slurm.refresh(out, [*(r.run_id for r in runs), *found.moves])
    stored_as, waiting = _refile(out, runs, found, dry_run=args.dry_run)
    busy = {rid for rid, state in alive.items() if state in slurm.ALIVE}
    # a dry run reads the runs it would file where they are: the state they will have once filed
    plan = make_plan(runs, out, retry_failed=args.retry_failed, force=args.force, busy=busy,
                     elsewhere={**stored_as, **waiting})
    _print_counts(spec.name, plan.counts())
    _print_remeasure(plan.remeasure, "measured again, their training kept")
    said = {old for old in found.moves if not store.run_dir(out, old).exists()} | set(waiting.values())
    _note_runs_elsewhere(out, spec.name, {rid: s for rid, s in found.of_spec.items() if rid not in said}, "cancel",
                         sys.stdout, states=("pending", "running"))
    if options is None:  # on this machine: a missing data set or device is one error, not one per run
        try:
            _check_this_machine(r.config for r in plan.to_run)
        except SuiteError as err:
            if not args.dry_run:
                raise
            print(f"note: a real run would stop before starting any: {err}")
    if args.dry_run and plan.to_run:  # a real run checks the store first (`_store_dir`); a dry run only looks
        try:
            store.check_writable(out, key=_store_key(args))
        except SuiteError as err:
            stop = "run would stop before starting any" if options is None else "submission would be refused"
            print(f"note: a real {stop}: {err}")
    if args.dry_run:
        to_run = {r.run_id for r in plan.to_run}
        problems = {}
        for run in plan.runs:
            state = plan.states[run.run_id]
            problems[run.run_id] = "  (another process is executing it)" if run.run_id in plan.executing else \
                f"  (unknown: {plan.unknown[run.run_id]}; a real run refuses it)" if run.run_id in plan.unknown else \
                f"  (waiting for its job under an older version's id, {waiting[run.run_id]})" \
                if run.run_id in waiting else \
                f"  ({state.note})" if state.corrupt else \
                f"  (measure again: {', '.join(plan.remeasure[run.run_id])})" if run.run_id in plan.remeasure else ""
        # a run an older version stored under another id: `suite run` files it under this one first
        for rid, old in stored_as.items():
            problems[rid] = f"  (stored as {old} by an older version: filed under this id first){problems[rid]}"
        plain_done = [r.run_id for r in plan.runs if r.run_id not in to_run and not problems[r.run_id]
                      and plan.states[r.run_id].state == "done"]
        unlisted = set(plain_done) if len(plain_done) > DONE_LISTED else set()
        for run in plan.runs:
            if run.run_id not in unlisted:
                mark = "run " if run.run_id in to_run else "file" if run.run_id in stored_as else "skip"
                print(f"  {mark} {run.run_id} {plan.states[run.run_id].state:<11} {run.label()}{problems[run.run_id]}")
        if unlisted:
            print(f"  skip {count(len(unlisted), 'done run')} (listed one by one only up to {DONE_LISTED})")
        starting = len(plan.to_run)
        retry = _retry_hint(args, plan, out, options)
        print(f"{starting} of {count(len(plan.runs), 'run')} would start (out: {shell_path(out)}){retry}")
        if options is not None:
            print(f"cluster options: {cluster.summary(options)}")
            _print_arrays(starting, options)
        return 0
    if plan.unknown:  # whether such a run is executing is unknown: nothing starts beside it
        raise next(iter(plan.unknown.values())).said("; no run was started")
    if not plan.to_run:
        counts = ", ".join(f"{n} {state}" for state, n in plan.counts().items() if n)
        executing = f" ({len(plan.executing)} of them being executed by another process)" if plan.executing else ""
        print(f"nothing to run: {counts}{executing} (out: {shell_path(out)}){_retry_hint(args, plan, out, options)}")
        return 0
    for run in plan.to_run:  # before anything starts or is archived: each run's process must record its end
        store.check_run_writable(store.run_dir(out, run.run_id), key=_store_key(args))
        store.check_run_readable(store.run_dir(out, run.run_id))
    if options is not None:
        # --force archives the earlier results only once sbatch has taken the runs (held)
        assert checked is not None  # `_run_spec` checked the options of a submission
        submission = slurm.submit(plan.to_run, out, options, cluster=checked, name=spec.name, afresh=args.force,
                                  again=f"suite run {_same_slurm_runs(args, absolute=True)} --retry-failed")
        n, code = len(submission.arrays), submission.code
        _print_left(submission.left)
        if not submission.job_ids:
            print(f"nothing submitted (out: {shell_path(out)})")
            return 0
        names.claim(out, spec)
        print(f"submitted {count(len(submission.job_ids), 'run')} as {count(n, 'job array')}: "
              f"{' '.join(submission.arrays)} (out: {shell_path(out)})")
        commit = "not in git" if not code.git_commit else \
            f"git {code.git_commit[:10]}" + (" + uncommitted changes" if code.git_dirty else "")
        print(f"code snapshot: {shell_path(code.path)} ({commit})")
        again = _same_runs(args)
        print(f"follow: suite status {again}    stop: suite cancel {again}")
        return 0
    names.claim(out, spec)
    outcome = run_local(plan.to_run, out, max_parallel=args.max_parallel, threads=args.threads, afresh=args.force,
                        progress=not args.no_progress)
    busy = f", {len(outcome.busy)} left to the other process executing them" if outcome.busy else ""
    stopped = f", {len(outcome.stopped)} interrupted" if outcome.stopped else ""
    skipped = f", {len(outcome.skipped)} skipped (another process ended or queued them meanwhile)" \
        if outcome.skipped else ""
    unstarted = f", {len(outcome.unstarted)} not started (deleted)" if outcome.unstarted else ""
    print(f"{len(outcome.done)} done, {len(outcome.failed)} failed{stopped}{busy}{skipped}{unstarted} "
          f"(out: {shell_path(out)})")
    if outcome.failed:
        print(f"see: suite status {_same_runs(args)}")
    if outcome.stopped and not outcome.interrupted:
        print(f"the same command resumes the interrupted runs: suite run {_same_local_runs(args)}")
    if outcome.interrupted:
        # the stopped ones resume with the rest
        settled = {*outcome.done, *outcome.failed, *outcome.busy, *outcome.skipped, *outcome.unstarted}
        left = [r.run_id for r in plan.to_run if r.run_id not in settled]
        print(f"interrupted: {count(len(left), 'run')} not finished{_resume_hint(args, plan, left, out)}")
        return 128 + outcome.interrupted  # 130 after Ctrl-C, 143 after SIGTERM, as the shell reports them
    return 1 if outcome.failed or outcome.stopped or outcome.unstarted else 0


def _resume_hint(args: argparse.Namespace, plan: Plan, left: list[str], out: Path) -> str:
    """What brings back the runs an interrupted `suite run` left (`left`), as the store now has them.
    The plain command resumes the interrupted and missing ones; a run that --force or --retry-failed
    planned and the stop kept from starting is as it was (its earlier result, or failure), which the
    plain command leaves: those are counted apart, with the flag that runs them again."""
    from suite.dispatch.plan import make_plan

    if not left:
        return ""
    wanted = set(left)  # once, not once a run of the plan as in the condition
    again = make_plan([r for r in plan.runs if r.run_id in wanted], out)
    resumed = {r.run_id for r in again.to_run}
    which = f" ({len(again.remeasure)} of them done, to be measured again)" if again.remeasure else ""
    command = f"suite run {_same_local_runs(args)}"
    if len(resumed) == len(left):
        return f"{which}; the same command resumes them: {command}"
    kept = Counter(again.states[rid].state for rid in left if rid not in resumed)
    flag = "--force" if "done" in kept else "--retry-failed"
    states = ", ".join(f"{n} {state}" for state, n in kept.items())
    one = kept.total() == 1
    rest = f"{count(kept.total(), 'run')} not started {'keeps its' if one else 'keep their'} earlier state " \
           f"({states}): only {flag} runs {'it' if one else 'them'} again"
    if not resumed:
        return f"; the same command starts none of them: {rest}"
    return f"; the same command resumes {len(resumed)} of them{which}: {command}; {rest}"


def _add_status(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="done / pending / running / failed / interrupted / cancelled / missing runs "
                                             "of a spec (or of the whole store)")
    p.add_argument("spec", nargs="?", metavar="SPEC", help="spec name or path (default: every spec in the store)")
    p.add_argument("--preset", help="the preset the runs were expanded with")
    _store_argument(p)
    p.add_argument("--lines", type=_count(0), default=5, metavar="N",
                   help="lines of each failed run's error to show (default: 5)")
    _overrides_argument(p)
    p.set_defaults(handler=_status)


def _status(args: argparse.Namespace) -> int:
    from suite import store
    from suite.ablations import names
    from suite.dispatch import queued, slurm

    out = _store_dir(args)
    nowhere = "" if out.exists() else _no_store(args)
    if args.spec:
        spec, runs = _expand(args)
        _note_no_store(out, args)
        ids = [r.run_id for r in runs]
        # the runs `suite run` files under today's id are shown as they will be once filed (as its --dry-run
        # lists them): their state, and SLURM's of their job, read where they are stored
        found, slurm_states = slurm.refresh_told(out, spec.name, runs)
        stored_as = found.stored_as
        slurm_states.update({new: slurm_states.pop(old) for new, old in stored_as.items() if old in slurm_states})
        frame = store.collect(out, ids, stored_as=stored_as)
        groups = {(spec.name, "", ""): frame}  # headed as before: the command names its preset and overrides
        _note_misfiled(out, found, args, sys.stdout, "shown in {its} stored state here: the next")
    else:
        if args.preset or args.overrides:  # they pick a spec's runs: without one they would be ignored
            raise SuiteError("--preset and key=value overrides pick a spec's runs: name the spec",
                             key="preset" if args.preset else "overrides")
        slurm_states = slurm.refresh_store(out)
        frame = store.collect(out)
        stored_as = {}
        if frame.empty:
            print(f"no runs in {shell_path(out)}{nowhere}")
            return 0
        unknown = "(spec unknown: config.json missing or unreadable)"
        # by spec, preset and command-line overrides (as recorded when planned): a preset's runs, or an
        # override's, are their own, and the hints below name them; a run of a known spec planned
        # before overrides were recorded has none recorded (not "": none given), and is listed apart
        # text columns as objects: one no run recorded (every config.json gone) is all NaN, a float column
        # that pandas refuses to fill with text
        specs = frame["spec"].astype(object)
        presets = frame["preset"].astype(object).fillna("") if "preset" in frame else specs.map(lambda _: "")
        recorded = frame["overrides"].astype(object) if "overrides" in frame else specs.map(lambda _: None)
        given = recorded.where(recorded.notna() | specs.isna(), UNRECORDED).fillna("")
        groups = {(str(name), preset, items): part for (name, preset, items), part
                  in frame.groupby([specs.fillna(unknown), presets, given], sort=True)}
    waiting = queued.queued(out)
    unrecorded = any(items == UNRECORDED for _, _, items in groups)
    held = {} if args.spec else names.recorded(out)  # the files of the specs run by their path, read once

    def where(rid: str) -> Path:
        return store.run_dir(out, stored_as.get(rid, rid))

    for (name, preset, items), part in groups.items():
        # the runs as `suite run` was given them
        these = " ".join([name, *(["--preset", preset] if preset else []), *([items] if items else [])])
        _print_counts(these, store.count_states(part["status"]), stored=not args.spec)
        _print_queued(part, waiting)
        why = "" if args.spec else _unnamed(args, name, held)  # the command names its spec
        same = _group_runs(args, name, preset, items, held, why)
        unnamed = "" if same is not None else why or \
            "their config.json does not record the key=value overrides they were given"
        if args.spec:
            remeasure = store.measured_otherwise_in(runs, part)
            in_slurm = {rid for rid in remeasure if slurm_states.get(rid) in slurm.ALIVE}
            idle = {rid: how for rid, how in remeasure.items() if rid not in in_slurm}
            on_slurm = "slurm_job_id" in part and part[part["run_id"].isin(idle)]["slurm_job_id"].notna().any()
            _print_remeasure(idle, f"`suite run {same}` measures them again" + (
                " (add `--executor slurm` and your cluster flags to measure them where they ran)" if on_slurm else ""))
            _print_remeasure({rid: how for rid, how in remeasure.items() if rid in in_slurm},
                             "their jobs measuring them again are queued or running (slurm, below)")
        if args.spec:  # the spec's jobs from before an edit of its file are noted even beside its own
            _note_runs_elsewhere(out, spec.name, _untold(found), "status", sys.stdout,
                                 states=("pending", "running") if part["status"].isin(LIVE).any() else LIVE)
        _print_slurm(part, slurm_states, where, same, unnamed)
        _print_running_elsewhere(where, part, _resume_command(args, name, preset, items, same, held, why))
        for _, row in part[(part["status"] == "done") & (part["note"] != "")].iterrows():
            print(f"  done {row['run_id']}: {row['note']}")
        _print_slurm_warnings(frame.attrs["warnings"], part)
        for _, row in part[(part["status"] == "missing") & (part["note"] != "")].iterrows():
            lost = "status.json" in row["note"] and not name.startswith("(")  # its job id was there; a known spec
            print(f"  missing {row['run_id']}: {row['note']} (`suite run` runs it again"
                  + (f"; a SLURM job of it may still be queued: `squeue --name suite-{name}`)" if lost else ")"))
        stopped_rows = part[part["status"].isin(["failed", "cancelled", "interrupted"])]
        csv = f" (no `suite report` lists every run: {unnamed})" if same is None else \
            f" (`suite report {same} --to - --format csv` lists every run)"
        groups = _same_message(stopped_rows)
        for rid, state, note in zip(stopped_rows["run_id"], stopped_rows["status"], stopped_rows["note"]):
            ids = groups[state, note]
            others = ids[1:] if len(ids) > SAME_MESSAGE_SHOWN else []
            if others and rid != ids[0]:
                continue  # counted under the group's first run
            d = where(rid)
            print(f"  {state} {rid}: {note or '(no reason recorded)'}")
            archived = sorted((d / "archive").glob("*/result.json"))
            if archived:  # --force moved a finished result aside: the failed attempt did not destroy it
                print(f"      its result from before --force is kept in {shell_path(archived[-1].parent)}")
            error = d / "error.txt"
            if state == "failed" and error.exists():
                for line in error.read_text(errors="replace").strip().splitlines()[-args.lines:] if args.lines else []:
                    print(f"      {line}")
            if others:
                kept = sum(any((where(rid) / "archive").glob("*/result.json")) for rid in others)
                shown = " ".join(others[:SAME_MESSAGE_IDS]) + \
                    (f" ...{csv}" if len(others) > SAME_MESSAGE_IDS else "")
                print(f"      and {len(others)} more {state} with the same message: {shown}"
                      + (f"; {kept} of them keep their result from before --force in their archive/" if kept else ""))
        stopped = list(part.loc[part["status"].isin(["failed", "cancelled"]), "run_id"])
        if args.spec and stopped:  # interrupted runs resume with the plain `suite run`
            on_slurm = part.loc[part["run_id"].isin(stopped), "slurm_job_id"].notna().any() \
                if "slurm_job_id" in part else False  # the last attempt's job; None for a local one
            statuses = [store.state_of(where(rid)).status for rid in stopped]
            again = "".join(_resubmit_hint(out, statuses, args)) if on_slurm else \
                f"suite run {_same_runs(args)}{_recorded_threads(statuses)} --retry-failed"
            print(f"  rerun the {len(stopped)} failed or cancelled: {again}")
    if not args.spec:
        print("(each run under the spec, preset and key=value overrides that planned it first; `suite status SPEC "
              "[--preset P] [key=value ...]` counts all of their runs, those not planned yet included)")
        if unrecorded:
            print(f"({UNRECORDED}: runs planned before the suite recorded them, given some or none; `suite status "
                  "SPEC [--preset P]` with the overrides `suite run` was given counts them among the spec's runs)")
    return 0


# How `suite status` of a store names the overrides of a run planned before they were recorded.
UNRECORDED = "[key=value overrides not recorded]"


def _print_queued(frame: pandas.DataFrame, waiting: Mapping[str, tuple[str, ...]]) -> None:
    """Which of the runs the store counts missing (or interrupted, failed, cancelled: their last
    attempt) local `suite run`s have planned and are about to start (`waiting`: `queued.queued`):
    a run queued in two of them is said to be in both, not in one (stopping that one would not
    keep the run from starting)."""
    idle = frame[frame["status"].isin(["missing", "interrupted", "failed", "cancelled"])]
    by: dict[tuple[tuple[str, ...], str], int] = {}
    for rid, state in zip(idle["run_id"], idle["status"]):
        if rid in waiting:
            by[waiting[rid], state] = by.get((waiting[rid], state), 0) + 1
    for (who, state), n in by.items():
        it = "it" if n == 1 else "them"
        where = f"a local `suite run` ({who[0]}), which starts {it} in turn" if len(who) == 1 else \
            f"{len(who)} local `suite run`s ({', '.join(who)}): whichever reaches {'it' if n == 1 else 'each'} " \
            "first starts it"
        print(f"  {n} of the {state} {'is' if n == 1 else 'are'} queued in {where}")


# The states of runs `suite run` did something with: none of a spec's runs in them hints at other overrides.
LIVE = ("done", "pending", "running")
# A message more runs than this share (a grid's runs all failing alike, or all cancelled) is printed
# once, with its first run, and the other runs counted: a run's line each made thousands of lines.
SAME_MESSAGE_SHOWN = 3
SAME_MESSAGE_IDS = 8  # of the other runs, the ids shown


def _same_message(rows: pandas.DataFrame) -> dict[tuple[str, str], list[str]]:
    """The run ids of `rows` by (status, note), in the order the rows come."""
    groups: dict[tuple[str, str], list[str]] = {}
    for rid, state, note in zip(rows["run_id"], rows["status"], rows["note"]):
        groups.setdefault((state, note), []).append(rid)
    return groups


def _print_slurm_warnings(warned: Mapping[str, list[str]], frame: pandas.DataFrame) -> None:
    """The warnings a SLURM job recorded in its done run's status.json (`warned`: collect's, run id
    -> messages; training on the CPU beside GPUs it was given, a resume with another thread count):
    a local `suite run` prints them as they come, but nobody watches a job's console, and its log is
    read when something failed."""
    if "slurm_job_id" not in frame:
        return
    said: dict[str, list[str]] = {}
    for rid in frame.loc[(frame["status"] == "done") & frame["slurm_job_id"].notna(), "run_id"]:
        for message in warned.get(rid, ()):
            said.setdefault(message, []).append(str(rid))
    for message, ids in said.items():
        shown = " ".join(ids[:SAME_MESSAGE_IDS]) + (" ..." if len(ids) > SAME_MESSAGE_IDS else "")
        print(f"  warned {count(len(ids), 'done run')} ({shown}): {message}")


def _untold(found: Scan) -> dict[str, RunState]:
    """The spec's runs outside its expansion (`Scan.of_spec`) but those `_note_misfiled` named: no
    other note is to count them again."""
    return {rid: state for rid, state in found.of_spec.items()
            if rid not in found.moves and rid not in found.unreadable}


def _note_misfiled(out: Path, found: Scan, args: argparse.Namespace, file: TextIO, how: str) -> None:
    """Say which of the runs asked about an older version of the suite stored under another id
    (`found`: `store.told`, SLURM's view of their jobs refreshed) and `how` they are shown ('shown in
    {its} stored state here: the next', `{its}` for its or their): `suite run` files them under
    today's id (`_refile`)."""
    from suite import store

    _note_unreadable(found.unreadable, file)
    if moves := found.moves:
        one = len(moves) == 1
        pairs = ", ".join(f"{old} for {new}" for old, new in list(moves.items())[:3])
        pairs += f", and {len(moves) - 3} more" if len(moves) > 3 else ""
        waiting = [old for old in moves if store.in_use(store.run_dir(out, old))]
        shown = ", ".join(waiting[:3]) + (" ..." if len(waiting) > 3 else "")
        jobs = "its job" if len(waiting) == 1 else "their jobs"
        wait = f" ({shown}: once {jobs} under the old id ended; not started again until then)" if waiting else ""
        print(f"note: {count(len(moves), 'run')} of these {'is' if one else 'are'} stored under the id an older "
              f"version of the suite gave {'it' if one else 'them'} ({pairs}), "
              f"{how.format(its='its' if one else 'their')} `suite run {_same_runs(args)}` files "
              f"{'it' if one else 'them'} under today's id{wait}, training and checkpoint kept", file=file)


UNREADABLE_REASONS = 3  # of the reasons the stored runs this version cannot read have, the ones shown


def _note_unreadable(unreadable: Mapping[str, SuiteError], file: TextIO) -> None:
    """Say, once, which stored runs this version cannot tell the id of (`store.scan`), and why:
    one of them may be a run asked about, filed by an older version under another id, which would
    otherwise count as missing with nothing said. Runs alike (one removed model) share a line."""
    if not unreadable:
        return
    alike: dict[tuple[str | None, str], list[str]] = {}
    for rid, err in unreadable.items():
        alike.setdefault((err.key, err.message), []).append(rid)
    one = len(unreadable) == 1
    print(f"note: this version of the suite cannot read {count(len(unreadable), 'stored run')} (left as "
          f"{'it is' if one else 'they are'}): {'it' if one else 'one'} may be a run of these that an older version "
          f"filed under another id, counted missing here:", file=file)
    for (key, message), ids in list(alike.items())[:UNREADABLE_REASONS]:
        where = unreadable[ids[0]].file
        print(f"  {ids[0]}: {where + ': ' if where else ''}{key + ': ' if key else ''}{message}", file=file)
        if len(ids) > 1:
            shown = " ".join(ids[1:1 + SAME_MESSAGE_IDS]) + (" ..." if len(ids) > 1 + SAME_MESSAGE_IDS else "")
            print(f"      and {len(ids) - 1} more alike: {shown}", file=file)
    rest = sum(len(ids) for ids in list(alike.values())[UNREADABLE_REASONS:])
    if rest:
        print(f"  and {count(rest, 'more run')} for other reasons", file=file)


def _note_runs_elsewhere(out: Path, spec: str, others: Mapping[str, RunState], command: str, file: TextIO,
                         states: tuple[str, ...] = ("done",)) -> None:
    """The spec's runs in `states` outside those asked about (`others`: `Scan.of_spec`, their states
    as read): of other overrides or presets (the usual cause: `suite run` was given key=value
    overrides or a preset this command lacks), or of the spec as it was before an edit, whose queued
    jobs are named for `scancel`."""
    from suite import store
    from suite.dispatch import slurm

    others = {rid: state for rid, state in others.items() if state.state in states}
    what = " or ".join({"done": "done", "pending": "queued", "running": "running"}[s] for s in states)
    # A job submitted before the spec file was edited is in no expansion of it, so no `suite cancel`
    # reaches it: its ids (up to date with SLURM) are the one handle left.
    queued = [rid for rid, state in others.items() if state.state in ("pending", "running")]
    alive = slurm.refresh(out, queued) if queued else {}
    others.update({rid: store.state_of(store.run_dir(out, rid)) for rid in queued})  # SLURM may have ended them
    jobs = [str(job) for rid in queued if alive.get(rid) in slurm.ALIVE
            and (job := (others[rid].status or {}).get("slurm_job_id"))]
    others = {rid: state for rid, state in others.items() if state.state in states}
    if others:
        print(f"note: {count(len(others), 'run')} of {spec} in {shell_path(out)} ({what}) "
              f"{'is' if len(others) == 1 else 'are'} "
              f"of another preset, other key=value overrides or an earlier version of the spec file: give "
              f"`suite {command}` the ones given to `suite run`"
              + (f"; `scancel {' '.join(sorted(jobs))}` stops {'its job' if len(jobs) == 1 else 'their jobs'} "
                 "whatever the spec file says now" if jobs else ""), file=file)


def _group_runs(args: argparse.Namespace, name: str, preset: str, items: str,
                held: Mapping[str, Path], why: str) -> str | None:
    """The arguments (`_same_runs`) that name the runs `suite status` lists under the spec `name`,
    `preset` and the overrides `items` (a whole store's: as config.json recorded them, quoted; else
    the command's own), in the same store: other overrides or another store name other runs. None
    where the store does not know them (no readable config.json, overrides not recorded).
    `held`: the store's spec files by name (`names.recorded`); `why`: `_unnamed`."""
    if args.spec:
        return _same_runs(args)
    if why or items == UNRECORDED:
        return None
    return _listed_runs(args, name, preset, shlex.split(items), held)


def _unnamed(args: argparse.Namespace, name: str, held: Mapping[str, Path]) -> str:
    """Why no command can name the spec `suite status` of a whole store lists a group under: its
    runs' config.json is gone, or the spec is found neither from this folder nor by the store's
    record of its file (moved, renamed or deleted since; `held`, `names.recorded`); '' where one can."""
    from suite import ablations
    from suite.ablations import names

    if name.startswith("("):
        return "their config.json, which names their spec, is missing or unreadable"
    out = _store_dir(args)
    if ablations.find(name) is None and name not in held:
        return (f"no spec {name} is found from this folder, and {shell_path(out / names.RECORD)} names no file of it "
                "that still exists (moved, renamed or deleted?)")
    return ""


def _listed_runs(args: argparse.Namespace, name: str, preset: str, overrides: list[str],
                 held: Mapping[str, Path]) -> str:
    """`_same_runs` for a spec `suite status` of a whole store lists by `name`: a spec run by its
    path (in `held`, `names.recorded`) is named by that path, as the name alone is refused."""
    from suite import again

    return again.same_runs(str(held.get(name) or name), preset or None, args.out, overrides)


def _resume_command(args: argparse.Namespace, name: str, preset: str, items: str, same: str | None,
                    held: Mapping[str, Path], why: str) -> str:
    """The `suite run` that resumes a group's runs (`same`: `_group_runs`), or, where the store does
    not know them (`why`: `_unnamed`), what it lacks, rather than a command that would start other runs."""
    if same is not None:
        return f"`suite run {same}`"
    if name.startswith("("):
        return f"the `suite run` that planned it ({why})"
    if items == UNRECORDED:
        return f"`suite run {_listed_runs(args, name, preset, [], held)}`, with the key=value overrides it was given " \
            "(its config.json does not record them),"
    # the spec is found from no folder here (`why`): its folder, on that host, may find it
    return f"`suite run {_listed_runs(args, name, preset, shlex.split(items), held)}` in a folder where spec {name} " \
        f"is found ({why})"


def _print_running_elsewhere(where: Callable[[str], Path], frame: pandas.DataFrame, again: str) -> None:
    """Local runs another machine records as running: only that machine can see whether their
    process is gone (then `suite run` there resumes them), so say where they are (`where`: a run's
    directory; `again`: `_resume_command`)."""
    import socket

    from suite import store

    for rid in frame.loc[frame["status"] == "running", "run_id"]:
        status = store.state_of(where(rid)).status or {}
        host = status.get("host")
        if status.get("slurm_job_id") or not host or host == socket.gethostname():
            continue
        print(f"  running {rid}: on {host}, pid {status.get('pid')}, since {status.get('started_at')}; if that "
              f"process is gone, {again} on {host} finds it so and resumes the run")


def _print_slurm(frame: pandas.DataFrame, states: dict[str, str], where: Callable[[str], Path],
                 same_runs: str | None, unnamed: str) -> None:
    """SLURM's view of the runs the store has as queued or running (done runs too, while a job
    measures them again): counts per state, job arrays. `where`: a run's directory (a run to be
    filed under today's id has its record, and the hold it asked for, where it is stored).
    `same_runs`: the arguments that name these runs (`_group_runs`), for the hints; None where the
    store does not know them, `unnamed` saying why."""
    from suite import store
    from suite.dispatch import slurm, visibility

    live = frame[frame["status"].isin(["pending", "running", "interrupted", "done"]) & frame["run_id"].isin(list(states))]
    if live.empty:
        return
    counts: dict[str, int] = {}
    for rid in live["run_id"]:
        counts[states[rid]] = counts.get(states[rid], 0) + 1
    arrays = _arrays(live["slurm_job_id"])
    print(f"  slurm: {', '.join(f'{n} {s}' for s, n in sorted(counts.items()))} (jobs {arrays})")
    pending = [str(j) for rid, j in zip(live["run_id"], live["slurm_job_id"]) if states[rid] == "PENDING"]
    if pending:  # e.g. BadConstraints: a request the cluster can never meet waits forever
        from suite.dispatch.slurm import NEVER_STARTS, pending_reasons

        reason_of = pending_reasons(pending)
        reasons = Counter(reason_of.values())
        if reasons:
            print(f"  pending because: {', '.join(f'{r} ({n})' for r, n in sorted(reasons.items()))}")
        held = {rid: str(j) for rid, j in zip(live["run_id"], live["slurm_job_id"])
                if reason_of.get(str(j)) == "JobHeldUser"}
        asked = {rid for rid in held if (store.state_of(where(rid)).status or {}).get("sbatch_hold")}
        if asked:
            release = _arrays(held[rid] for rid in asked).replace(" ", ",")
            print(f"  held as asked (sbatch hold): `scontrol release {release}` lets them start")
        if held.keys() - asked:  # a submission killed before it released them, or `scontrol hold`
            release = _arrays(held[rid] for rid in held.keys() - asked).replace(" ", ",")
            cancel = f"`suite cancel {same_runs}` cancels the queued runs and prints the command that submits them " \
                "again" if same_runs is not None else f"`scancel {release.replace(',', ' ')}` cancels them (no " \
                f"`suite cancel` names these runs: {unnamed})"
            print(f"  held, though no hold was asked (a submission stopped before it released them, or `scontrol "
                  f"hold`): `scontrol release {release}` lets them start; or {cancel}")
        if "JobArrayTaskLimit" in reasons:  # the submission's own throttle, not the cluster's
            print("  JobArrayTaskLimit: waiting their turn, as array_parallelism (`--array-parallelism N`, or the "
                  "cluster file's or spec's) caps the tasks of one submission running at once")
        for reason, why in NEVER_STARTS.items():
            if reason in reasons:
                print(f"  {reason}: {why}: these wait until the cluster changes; `suite cancel` with the same "
                      f"arguments, then submit with a smaller request")
    if "UNKNOWN" in counts:  # neither slurmctld nor the accounting knows the job (purged, or another cluster)
        from suite.dispatch.slurm import LOST_AFTER_S

        print(f"  SLURM has no record of {count(counts['UNKNOWN'], 'job')}: a run whose job it still does not know "
              f"{LOST_AFTER_S // 60} min after submission fails (`--retry-failed` submits it again); `suite cancel` "
              "with the same arguments settles them now, with every other queued or running job of these runs")
    if "NO_ANSWER" in counts:
        print(f"  SLURM did not answer for {count(counts['NO_ANSWER'], 'job')} (squeue failed or is not installed "
              "here): their states are not checked and nothing is decided about them")
    if slurm.ELSEWHERE in counts:
        on = sorted({str(visibility.submitted_on(store.state_of(where(rid)).status or {}))
                     for rid in live["run_id"] if states[rid] == slurm.ELSEWHERE})
        print(f"  on another cluster: {count(counts[slurm.ELSEWHERE], 'job')} submitted on {', '.join(on)}, not this "
              "one (`scontrol show config`: ClusterName), so their states are not checked here and nothing is "
              f"recorded about them; `suite status` on a login node of {' or '.join(on)} follows them")
    if slurm.HIDDEN in counts:
        users = sorted({visibility.submitter(where(rid), store.state_of(where(rid)).status or {})
                        for rid in live["run_id"] if states[rid] == slurm.HIDDEN})
        print(f"  unknown to this user (PrivateData): {count(counts[slurm.HIDDEN], 'job')} submitted by "
              f"{', '.join(users)}: this cluster hides other users' jobs from you (`scontrol show config`: "
              "PrivateData includes jobs), so their states are not checked and nothing is recorded about them; "
              f"`suite status` run by {' or '.join(users)} follows them")


def _add_cancel(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cancel", help="cancel the queued and running SLURM jobs of a spec's runs")
    _spec_arguments(p)
    _overrides_argument(p)
    p.set_defaults(handler=_cancel)


def _cancel(args: argparse.Namespace) -> int:
    from suite import store
    from suite.dispatch import slurm

    out = _store_dir(args)
    spec, runs = _expand(args)
    _note_no_store(out, args)
    ids = [r.run_id for r in runs]
    others = store.runs_of_spec(out, ids, spec.name)
    # the spec's runs queued under the id an older version gave them: `suite status` counts them as the
    # spec's, and their jobs are theirs to cancel (the runs are filed under today's id once they ended)
    older = store.stored_under_older_ids(out, [rid for rid, s in others.items() if s.state in ("pending", "running")],
                                         ids)
    states = slurm.refresh(out, [*ids, *older])
    cancelled, refused, complaints = slurm.cancel(out, [*ids, *older])
    if complaints:
        print(complaints, file=sys.stderr)
    if not cancelled and not refused:
        print(f"{spec.name}: nothing queued or running on SLURM (out: {shell_path(out)})")
    if cancelled:
        command, note = _resubmit_hint(out, [store.state_of(store.run_dir(out, rid)).status for rid in cancelled],
                                       args)
        print(f"{spec.name}: cancelled {count(len(cancelled), 'run')} (jobs {_arrays(cancelled.values())}); "
              f"`{command}` submits {'it' if len(cancelled) == 1 else 'them'} again{note}")
        running = sum(states.get(rid) == "RUNNING" for rid in cancelled)
        if running:  # scancel's SIGTERM, then SIGKILL after the cluster's KillWait: a run may finish meanwhile
            print(f"  {running} {'was' if running == 1 else 'were'} running: SLURM stops "
                  f"{'it' if running == 1 else 'them'} within its KillWait; a run that finishes first keeps its result "
                  "(`suite status` shows it done)")
    _note_runs_elsewhere(out, spec.name, {rid: s for rid, s in others.items() if rid not in older}, "cancel",
                         sys.stdout, states=("pending", "running"))
    if refused:
        print(f"error: scancel did not take the jobs of {count(len(refused), 'run')} (jobs {_arrays(refused.values())})"
              f": they are still queued or running, as recorded; `suite cancel` again once SLURM answers, on the "
              "cluster they were submitted to",
              file=sys.stderr)
        return 1
    return 0


def _arrays(job_ids: Iterable[str]) -> str:
    """The job arrays (or plain jobs) of some job ids, in submission order."""
    from suite.dispatch.slurm import array_of

    return " ".join(sorted({array_of(str(j)) for j in job_ids}, key=lambda j: (len(j), j)))


def _print_remeasure(remeasure: Mapping[str, Sequence[str]], then: str) -> None:
    """The done runs measured with other `measure.*` settings than the spec's, and what happens to them."""
    if remeasure:
        how = sorted({item for items in remeasure.values() for item in items})
        print(f"  {count(len(remeasure), 'done run')} measured with other settings, {', '.join(how)}: {then}")


def _print_counts(name: str, counts: dict[str, int], *, stored: bool = False) -> None:
    """`stored`: the runs the store holds, not all a spec plans (so no count of the missing ones)."""
    shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n or (s == "done" or s == "missing" and not stored))
    print(f"{name}: {count(sum(counts.values()), 'run')}{' in the store' if stored else ''}: {shown}")


# ---------------------------------------------------------------------------------------- profile
def _add_profile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile",
        help="params, multiply-adds (gmacs), activations, throughput and peak memory of models",
        description="Profile models (one subprocess each when there are several or when timing). The table "
        "heads its columns as the reports do; the --json, --csv and --to rows keep timm's benchmark.py names. See "
        "the README, 'What the numbers mean'.",
    )
    p.add_argument("items", nargs="*", metavar="MODEL|model.KEY=VALUE",
                   help="model names or fnmatch patterns ('san10_*'), and model options as model.KEY=VALUE "
                        "(model.base_width=4), as `suite train` and specs write them")
    p.add_argument("--all", action="store_true", help="every registered model")
    p.add_argument("--bench", choices=["complexity", "infer", "train", "all"],
                   help="what to measure (default: complexity, or infer with --reference)")
    p.add_argument("--input-size", dest="img_size", type=_count(1), metavar="N",
                   help="square input size (default: each model's natural size)")
    _renamed(p, "--num-classes", "model.num_classes=N", "a model option, spelt as every other one")
    p.add_argument("--batch-size", type=_count(1), metavar="N",
                   help="requested batch, reduced on out-of-memory (default: 256 on CUDA, 8 on CPU)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--amp", choices=["fp32", "bf16", "fp16"], default="fp32", help="autocast dtype (default: fp32)")
    p.add_argument("--channels-last", action="store_true", help="NHWC model and input")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (complexity is counted before)")
    p.add_argument("--warmup", type=_count(1), metavar="N",
                   help="untimed steps, at least 1: out-of-memory shows there (default: 10 on CUDA, 3 on CPU)")
    p.add_argument("--steps", type=_count(1), metavar="N", help="timed steps (default: 40 on CUDA, 10 on CPU)")
    p.add_argument("--threads", type=_count(1), metavar="N", help="torch CPU threads (default: torch's choice)")
    p.add_argument("--reference", metavar="MODEL",
                   help="time MODEL interleaved with each model; adds *_throughput_vs_reference")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON rows instead of the table")
    fmt.add_argument("--csv", action="store_true", help="CSV rows instead of the table")
    p.add_argument("--to", type=_path, metavar="FILE",
                   help="write the rows to FILE (JSON with --json, CSV with --csv, else by its suffix: *.json "
                        "JSON, any other CSV) and print the table")
    _renamed(p, "--out", "--to FILE", "--out names a run store, in suite run, status, cancel and report")
    p.set_defaults(handler=_profile)


def _profile(args: argparse.Namespace) -> int:
    from suite.config import parse_overrides
    from suite.measure import profile

    kwargs = _model_options(parse_overrides(i for i in args.items if "=" in i))
    names = profile.select_models([i for i in args.items if "=" not in i], all_models=args.all)
    options = {k: getattr(args, k) for k in ("img_size", "device", "amp", "channels_last", "compile",
                                             "batch_size", "warmup", "steps", "threads")}
    bench = args.bench or ("infer" if args.reference else "complexity")
    jobs = profile.plan(names, reference=args.reference, bench=bench, model_kwargs=kwargs, **options)
    if args.to and str(args.to) == "-":  # `suite report --to -` prints: here it would be a file named '-'
        raise SuiteError("--json or --csv print the rows on stdout; --to takes a file", key="--to")
    if args.to:
        profile.check_out(args.to)  # before the long part
    partial = None
    try:
        rows = profile.profile(jobs)
    except profile.Interrupted as stop:  # the finished rows are still printed and written
        rows, partial = stop.rows, stop
        if not rows:
            print("interrupted", file=sys.stderr)
            return stop.status
    note = f"partial: {partial}; these rows are the finished ones\n" if partial else ""
    fmt = "json" if args.json or (args.to and not args.csv and args.to.suffix.lower() == ".json") else "csv"
    if args.to:
        print(profile.render(rows, "table") + note, end="")
        out, kept = args.to, ""
        if partial and out.exists():  # a complete table of an earlier run is worth more than these rows
            out = out.with_name(f"{out.stem}.partial{out.suffix}")
            kept = f"; {shell_path(args.to)} is left as it was"
        profile.write_out(out, profile.render(rows, fmt))
        print(f"wrote {count(len(rows), 'row')} to {shell_path(out)}" + (f" (partial{kept})" if partial else ""))
    elif args.json or args.csv:
        print(profile.render(rows, fmt), end="")
        print(note, end="", file=sys.stderr)
    else:
        print(profile.render(rows, "table") + note, end="")
    errors = [r for r in rows if r.get("error")]
    for row in errors:
        print(f"error: {row['model']}: {row['error']}", file=sys.stderr)
    if partial:
        return partial.status
    return 1 if errors else 0


def _model_options(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`suite profile`'s `model.KEY=VALUE` items as the model's keyword arguments: spelt as `suite train`
    and specs spell a model option, so one line works in all three. Anything else is refused, saying
    the spelling: a bare `base_width=4` (this command's old spelling) or a training key would
    otherwise be an unknown option, or silently not what was measured."""
    from suite.config import flatten

    options: dict[str, Any] = {}
    for key, value in flatten(overrides).items():
        section, _, name = key.partition(".")
        if section == "model" and name and name != "name":
            options[name] = value
            continue
        if section == "model":
            message = "name the models as arguments: suite profile MODEL ..."
        elif "." in key:
            message = ("`suite profile` takes model options only (model.KEY=VALUE); data, recipe and training "
                       "settings are `suite train`'s and `suite run`'s")
        else:
            message = f"a model option is given as model.{key}=VALUE, as `suite train` and specs give it"
        raise SuiteError(message, key=key, file="<command line>")
    return options


# ----------------------------------------------------------------------------------------- report
def _metric_names(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:  # `--metric ''` would silently mean the default metrics
        raise argparse.ArgumentTypeError(f"expected NAME[,NAME], got {text!r}")
    return names


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="tables and plots of a spec's runs (Markdown, CSV, LaTeX, HTML)",
        description="Tables (mean ± std (n) over seeds, paper values and differences, costs) and figures "
        "of every run of a spec, missing and failed runs included. Written next to the run store: "
        "<out>/SPEC[.PRESET][+KEY=VALUE...][@METRIC...].md|csv|tex|html and "
        "<out>/figures/SPEC[.PRESET][+KEY=VALUE...][@METRIC...]_*.png|svg.",
    )
    p.add_argument("spec", nargs="?", metavar="SPEC", help="spec name or path (omit with --all)")
    p.add_argument("--preset", help="the preset the runs were expanded with (file names get .PRESET)")
    _store_argument(p)
    p.add_argument("--format", metavar="FMT[,FMT]", help="md,csv,tex,html (default: md,csv; with --to: the file's suffix; "
                   "--into alone splices Markdown and takes none)")
    p.add_argument("--metric", action="extend", type=_metric_names,
                   metavar="NAME[,NAME]", help="metrics to tabulate, repeatable (default: the spec's "
                   "report.metrics, else top1_err; others add @NAME to file names); one value each, so the spec "
                   "after it stays the spec")
    p.add_argument("--to", type=_target, metavar="FILE",
                   help="write one format to FILE ('-': stdout) instead of the default files")
    p.add_argument("--into", type=_path, metavar="FILE",
                   help="replace the table between <!-- suite:report SPEC --> and <!-- /suite:report --> in FILE")
    p.add_argument("--all", action="store_true",
                   help="every spec (and preset) with a done run, and <out>/complexity.md")
    _overrides_argument(p)
    p.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from suite.ablations import names
    from suite.dispatch import slurm
    from suite.report import files, formats, tables
    from suite.files import check_writable
    from suite.report.splice import splice_file

    out = _store_dir(args)
    into_store = args.all or not (args.to or args.into)  # the tables go into the store itself, beside runs/
    if into_store and not out.exists():  # a mistyped --out would be a new folder holding a table of runs all missing
        raise SuiteError(f"no runs to tabulate{_no_store(args)}; nothing was written", file=str(out),
                         key=_store_key(args))
    _note_no_store(out, args)  # --to or --into: the table is written, of runs all missing
    if into_store:
        try:
            check_writable(out, key=_store_key(args), directory=True)
        except SuiteError as err:
            elsewhere = "" if args.all else "; `--to FILE` writes the table elsewhere"
            raise SuiteError(f"{err.message}{elsewhere}", file=err.file, key=err.key) from None
    chosen = files.parse_formats(args.format)
    if chosen and args.into and not args.to:  # --into writes no file of the store: the formats would go nowhere
        raise SuiteError("--into splices the Markdown table and writes no other file: --format chooses the store's "
                         "files (without --into) or --to FILE's format", key="--format")
    if args.to and args.into and args.to != "-" and Path(args.to).resolve() == args.into.resolve():
        # --to would replace the whole file before --into looked for its block: a README lost to one table
        raise SuiteError("--to writes a whole file and --into fills a block of one: name one file once",
                         file=args.to, key="--to")
    log = sys.stderr if args.to == "-" else sys.stdout
    if args.all:
        if args.spec or args.to or args.into or args.overrides:
            raise SuiteError("--all writes every table to the store; it takes no spec, overrides, --to or --into",
                             key="all")
        slurm.refresh_store(out)
        _, errors, untabled = files.write_all(out, preset=args.preset, formats=chosen or files.DEFAULT_FORMATS,
                                              metrics=args.metric, say=lambda line: print(line, file=log))
        if untabled:
            print(f"note: {count(len(untabled), 'done run')} in {shell_path(out)} "
                  f"{'is' if len(untabled) == 1 else 'are'} in no table "
                  "--all writes: run with key=value overrides, another preset or a spec file outside the spec folder; "
                  "`suite report SPEC [--preset P] [key=value ...]` tabulates them", file=log)
        for error in errors:  # after every table that could be written
            print(f"error: {error}", file=sys.stderr)
        return 2 if errors else 0
    if not args.spec:
        raise SuiteError("name a spec, or pass --all", key="spec")
    spec, runs = _expand(args)
    if not (args.to or args.into):  # the tables go into the store, under the spec's name
        names.claim(out, spec)
    # as `suite status` does: a done run `suite run` files under today's id is a finished result
    found, _ = slurm.refresh_told(out, spec.name, runs)
    frame = tables.collect(out, spec, runs, found)
    report = tables.build(spec, runs, frame, out=out, preset=args.preset, metrics=args.metric)
    # A table from a store where none of the spec's runs is done would only lose results: files and
    # README blocks that exist are left as they are (--to writes anyway).
    nothing_done = not report.counts.get("done")
    kept = []
    if args.to:
        used = files.write_to(report, args.to, chosen)
        if args.to != "-":
            print(f"wrote {shell_path(args.to)} ({used})", file=log)
    try:
        if args.into and nothing_done:
            splice_file(args.into, report.name, "", write=False)  # a file without the block says so all the same
            kept.append(f"the {report.name} block in {shell_path(args.into)}")
        elif args.into:
            splice_file(args.into, report.name, formats.fragment(report))
            print(f"updated the {report.name} block in {shell_path(args.into)}", file=log)
    except SuiteError as err:
        raise err.where(key="--into") from None
    if not (args.to or args.into):
        paths = files.table_paths(report, chosen or files.DEFAULT_FORMATS)
        if nothing_done and any(p.exists() for p in paths):
            kept += [shell_path(p) for p in paths if p.exists()]
        else:
            for path in files.write(report, chosen or files.DEFAULT_FORMATS):
                print(f"wrote {shell_path(path)}", file=log)
    _note_misfiled(out, found, args, log, "tabulated in {its} stored state here: the next")
    if nothing_done:
        _note_runs_elsewhere(out, report.spec.name, _untold(found), "report", log)
    if kept:
        print(f"no run of {report.name} is done in {shell_path(out)}: left {', '.join(kept)} as "
              f"{'it was' if len(kept) == 1 else 'they were'} (--to FILE writes this store's table anyway)", file=log)
        return 0
    for note in report.notes:
        print(f"  {note}", file=log)
    return 0


# ----------------------------------------------------------------------------------------- train
def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train and evaluate one model; prints the final metrics as a JSON line",
        description="Train MODEL with a recipe; key=value overrides any config key (seed=3, epochs=2, "
                    "model.mask_norm=spatial, data.clean_ratio=0.7). Re-running the same command resumes "
                    "from the run directory's checkpoint. The last stdout line is the final metrics (JSON).",
    )
    p.add_argument("model", metavar="MODEL", help="registered model name (see `suite models`)")
    p.add_argument("overrides", nargs="*", default=[], metavar="key=value", help="config overrides")
    p.add_argument("--dataset", help="data.name (default: digits)")
    p.add_argument("--recipe", help="training recipe (default: smoke)")
    p.add_argument("--run-dir", type=_path, metavar="DIR",
                   help="the run's own directory: checkpoint, metrics, log (default: ~/.cache/suite/train/<run_id>)")
    _renamed(p, "--out", "--run-dir DIR", "--out names a run store, in suite run, status, cancel and report; this "
             "is one run's directory")
    p.add_argument("--threads", type=_count(1), metavar="N",
                   help="torch CPU threads (default: torch's choice; 1 is much faster on a busy small machine)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_train)


# what `suite train`'s errors call the config key each argument sets: its MODEL as `suite profile` and
# `suite models` call theirs, and its flags
_TRAIN_ARGUMENTS = {"model.name": "model", "data.name": "--dataset", "recipe": "--recipe"}


def _train(args: argparse.Namespace) -> int:
    import json

    from suite import processes
    from suite.config import MEASURE, check_schedule, flatten, parse_overrides, resolve, rooted
    from suite.train import run

    values = {"model.name": args.model}
    if args.dataset:
        values["data.name"] = args.dataset
    if args.recipe:
        values["recipe"] = args.recipe
    given = {"model.name": "MODEL", "data.name": "--dataset", "recipe": "--recipe"}
    # a relative data.root is this folder's, as `suite run`'s is: the same command run again from
    # another folder resumes the run reading the same data
    overrides = rooted(parse_overrides(args.overrides), Path.cwd())
    for key in flatten(overrides):
        if key in values:  # the override would win silently over what the arguments say
            raise SuiteError(f"given twice: as {given[key]} and as an override; give it once", key=key,
                             file="<command line>")
        if key.startswith(MEASURE):
            raise SuiteError("`suite train` trains and evaluates only: measurements are `suite run`'s (with this "
                             "override) or `suite profile`'s", key=key, file="<command line>")
    try:  # every value is the command line's: its errors say so, as `suite run`'s overrides' do
        config = resolve({**values, **overrides})
        check_schedule(flatten(overrides), config)
    except SuiteError as err:
        if err.key in values:  # a value of MODEL, --dataset or --recipe: named as typed, as `suite profile` names
            raise err.rekeyed(_TRAIN_ARGUMENTS[err.key]) from None  # its arguments (model, --input-size)
        raise err.where(file="<command line>") from None
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    _check_this_machine([config])  # before the run directory is made
    out = args.run_dir or Path("~/.cache/suite/train").expanduser() / config.run_id
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SuiteError(f"cannot make the run directory: {exc.strerror or exc}", file=str(out),
                         key="--run-dir") from None
    print(f"run {config.run_id}: {shell_path(out)}", file=sys.stderr)
    try:
        with processes.sigterm_raises():  # as Ctrl-C: the last epoch's checkpoint stays, and the command resumes
            metrics = run(config, out, resume=True, progress=not args.no_progress)
    except processes.Terminated as stop:
        print(f"interrupted; the same command resumes from {shell_path(out)}", file=sys.stderr)
        return stop.status
    print(json.dumps(metrics))
    return 0


# ----------------------------------------------------------------------------------------- bench
def _add_bench(sub: argparse._SubParsersAction) -> None:
    from suite.bench import revs, run  # no torch: the defaults the help states are the ones used
    p = sub.add_parser(
        "bench", help="throughput regression testing: run tests/benchmarks, save baselines, compare",
        description="Run the pytest-benchmark benchmarks in tests/benchmarks (each timed interleaved with a "
        "reference workload), save them as a named baseline, or compare them with one and exit 1 when a "
        "benchmark got slower than --fail-above. See the README, 'Throughput regression testing'.",
    )
    p.add_argument("--save", metavar="NAME", help="save this run as baseline NAME")
    p.add_argument("--compare", metavar="NAME|FILE", help="compare this run with baseline NAME (or a pytest-benchmark JSON file)")
    p.add_argument("--compare-rev", metavar="REV",
                   help="measure git revision REV and the working tree interleaved in one run, and compare them")
    p.add_argument("--list", action="store_true", help="list the saved baselines")
    p.add_argument("--fail-above", default="10%", metavar="PCT",
                   help="a benchmark whose median got slower by more than PCT is a regression (default: 10%%)")
    p.add_argument("--absolute", action="store_true",
                   help="judge absolute times instead of ratios to the reference workload (same machine only)")
    p.add_argument("-k", dest="select", metavar="EXPR", help="only benchmarks matching this pytest -k expression")
    p.add_argument("--rounds", type=_count(1), metavar="N",
                   help=f"rounds per interleaved benchmark (default: at least {run.DEFAULT_ROUNDS}, and more for a short "
                   f"benchmark, as many as fit in {run.ROUNDS_TIME_S:g} s; with --compare-rev at least "
                   f"{revs.DEFAULT_ROUNDS} per block and tree, as many as fit in {run.ROUNDS_TIME_S:g} s over the "
                   "blocks); the report and SLURM benchmarks fix their own")
    p.add_argument("--blocks", type=_count(1), metavar="N",
                   help=f"--compare-rev: blocks alternating the two trees (default: {revs.DEFAULT_BLOCKS})")
    p.add_argument("--threads", type=_count(1), default=1, metavar="N",
                   help="torch CPU threads (default: 1, the stable choice on a shared machine)")
    p.add_argument("--storage", type=_path, metavar="DIR",
                   help="baseline directory of --save, --compare and --list (default: <checkout>/.benchmarks)")
    p.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    from suite import processes
    from suite.bench import compare, revs, run

    for option, given in (("--save", args.save), ("--compare-rev", args.compare_rev)):
        if args.list and given:  # it measures nothing: the option would be ignored
            raise SuiteError(f"--list lists the saved baselines and measures nothing: no {option}", key=option)
    storage = args.storage or run.default_storage()
    if not args.compare_rev:
        run.check_storage(storage, write=bool(args.save))
    if args.list:
        baselines = run.list_baselines(storage)
        print(f"{'name':<20} {'saved (UTC)':<20} {'commit':<16} {'n':>3}  machine")
        for b in baselines:
            if b.error:
                print(f"{b.name:<20} {'unreadable':<20} {'?':<16} {'?':>3}  {shell_path(b.path)}")
            else:
                print(f"{b.name:<20} {b.saved[:19]:<20} {b.commit:<16} {b.count:>3}  {b.machine}")
        broken = [b for b in baselines if b.error]
        print(f"{count(len(baselines) - len(broken), 'baseline')} in {shell_path(storage)}"
              + (f", {len(broken)} unreadable" if broken else ""))
        for b in broken:
            warnings.warn(f"{b.path}: unreadable baseline {b.name!r}: {b.error}", SuiteWarning)
        return 0
    threshold = compare.parse_threshold(args.fail_above)
    options = {"select": args.select, "threads": args.threads}
    if args.blocks is not None and not args.compare_rev:
        raise SuiteError("--blocks only applies to --compare-rev", key="--blocks")
    if args.compare_rev and (args.save or args.compare):
        raise SuiteError("--compare-rev measures both sides itself: no --save or --compare", key="--compare-rev")
    if args.compare_rev and args.storage:
        raise SuiteError("--compare-rev measures both sides itself and reads or saves no baseline: no --storage",
                         key="--storage")
    rounds = args.rounds or (revs.DEFAULT_ROUNDS if args.compare_rev else run.DEFAULT_ROUNDS)
    max_time = 0.0 if args.rounds else run.ROUNDS_TIME_S  # --rounds N: N rounds; by default more for short benchmarks
    base = None
    if args.compare:  # loaded and checked before the long part
        path = run.find_baseline(storage, args.compare)
        base = compare.load_run(path, args.compare)
        compare.check_can_gate(base, rounds, file=str(path))
    try:
        if args.compare_rev:
            base, current = revs.compare_rev(run.project_root(), args.compare_rev, blocks=args.blocks or revs.DEFAULT_BLOCKS,
                                             rounds=rounds, max_time=max_time, **options)
        else:
            current = run.measure(run.project_root(), "working tree", rounds=rounds, max_time=max_time, save=args.save,
                                  storage=storage, **options)
            if args.save:
                print(f"saved baseline {args.save!r} in {shell_path(storage)}")
            if base is None:
                return 0
    except run.BenchmarkFailed as exc:
        print(f"error: {exc}; nothing compared", file=sys.stderr)
        return 1
    except processes.Terminated as stop:  # the benchmarks' pytest is stopped and temporary files are gone
        print("terminated", file=sys.stderr)
        return stop.status
    rows = compare.compare(base, current, threshold, absolute=args.absolute)
    print(compare.render(rows, base, current, threshold), end="")
    if reason := compare.nothing_judged(rows, base, current):  # a gate that could not fail must not pass
        print(f"error: {reason}", file=sys.stderr)
        return 2
    slower = compare.failures(rows)
    if slower:
        print(f"REGRESSION: {len(slower)} benchmark(s) more than {compare.percent(threshold)} slower than {base.label}")
        return 1
    return 0


if __name__ == "__main__":  # `python -m suite.cli`, as `python -m suite` (the module the entry point names)
    raise SystemExit(main())
