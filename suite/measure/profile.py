"""Profile registered models: complexity, throughput and peak memory, one subprocess per model.

A child process (`python -m suite.measure.profile JOB_JSON`) profiles one model and prints
`--result` followed by one JSON line (timm's bulk-runner protocol); the parent collects the rows.
So a crash, an out-of-memory kill or a bad option only costs that model its row (with an `error`
column), and no model's heap or allocator state inflates another's memory or timing figures.

Relative mode (`reference=`): absolute speeds on shared machines are noise, ratios measured side by
side are not. Each model's child first measures its own peak memory, then builds the reference
and times the two round-robin, step by step, in the same process; `*_throughput_vs_reference` is
the ratio of their samples/s, with the reference built at that model's input size. The reference
also gets plain rows of its own (ratio 1), one per input size the models use, so every printed
ratio has the reference row it is relative to.

Interrupted (Ctrl-C, SIGTERM), the running child is stopped and the finished rows are kept
(`Interrupted.rows`), so the command can still print and write them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import json
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from suite import files, processes
from suite.errors import SuiteError, TooSmall, unknown
from suite.measure.complexity import measure_complexity, sized_options, whole_count
from suite.measure.env import environment, resolve_device
from suite.measure.memory import MemoryProbe
from suite.measure.throughput import (
    STEPS,
    BenchSettings,
    Timing,
    load_libraries,
    prepare,
    summarize,
    time_steps,
    torch_settings_kept,
)
from suite.metrics import COST_LABELS
from suite.models import create_model, get_model_info, list_models, plugins, resolve_model_kwargs
from suite.models.sizes import FirstForward, data_whence
from suite.precision import AMP_DTYPES

if TYPE_CHECKING:
    from suite.config import RunConfig

BENCHES: dict[str, tuple[str, ...]] = {
    "complexity": (),
    "infer": ("infer",),
    "train": ("train",),
    "all": ("infer", "train"),
}
# timm's defaults on CUDA; on a CPU a batch of 256 takes minutes per step, so smaller ones there.
DEFAULTS: dict[str, dict[str, int]] = {
    "cuda": {"batch_size": 256, "warmup": 10, "steps": 40},
    "cpu": {"batch_size": 8, "warmup": 3, "steps": 10},
}
RESULT_MARKER = "--result"
_COUNTS = ("img_size", "batch_size", "warmup", "steps", "threads")  # a job's fields that are whole numbers >= 1
# `suite profile`'s flag for each job field it sets, so the command's errors name what was typed
FLAGS = {"img_size": "--input-size", "amp": "--amp", "channels_last": "--channels-last", "compile": "--compile",
         "batch_size": "--batch-size", "warmup": "--warmup", "steps": "--steps", "threads": "--threads",
         "reference": "--reference"}

# the job's field of each key the registry names as a config spells it (an unknown model): a job's own, or
# `suite profile`'s MODEL, which the command's own check of it names so too (select_models)
JOB_FIELDS = {"model.name": "model"}

# the spec key of each job field a run sets from a key of its own, so a run's errors name what its spec has
SPEC_KEYS = {"img_size": "data.input_size", "batch_size": "measure.batch_size", "warmup": "measure.warmup",
             "steps": "measure.steps"}


@dataclass(frozen=True)
class ProfileJob:
    """Everything one child needs; None means the model's or the device's default."""

    model: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    bench: str = "complexity"
    img_size: int | None = None
    device: str | None = None
    amp: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    batch_size: int | None = None
    warmup: int | None = None
    steps: int | None = None
    threads: int | None = None
    reference: str | None = None  # time against this model, side by side
    is_reference: bool = False  # the reference's own job: its ratio is 1

    def __post_init__(self) -> None:
        # a job made in Python skips the command's argument checks
        if not isinstance(self.model_kwargs, Mapping):
            raise SuiteError(f"expected a dict of model options, got {type(self.model_kwargs).__name__}",
                             key="model_kwargs")
        for key in _COUNTS:  # an int, so the job's JSON reads back in its child (numpy's int64 does not dump)
            if getattr(self, key) is not None:
                object.__setattr__(self, key, whole_count(getattr(self, key), key))
        _check_values(dataclasses.asdict(self))
        if self.amp not in AMP_DTYPES:
            raise unknown("amp", self.amp, list(AMP_DTYPES), key="amp")
        if self.reference is not None and not self.phases:  # complexity times nothing: no ratio would be made
            raise SuiteError("a reference compares throughput: use bench='infer', 'train' or 'all'", key="reference")

    @property
    def phases(self) -> tuple[str, ...]:
        return BENCHES[self.bench]


# -------------------------------------------------------------------------------------- planning
def select_models(patterns: Sequence[str], all_models: bool = False) -> list[str]:
    """Registered names matching the fnmatch patterns, in the order given, without repeats."""
    if all_models:
        return list_models()
    if not patterns:
        raise SuiteError("name at least one model or pattern, or pass --all", key="model")
    names: list[str] = []
    for pattern in patterns:
        matches = list_models(pattern)
        if not matches:
            if any(c in pattern for c in "*?["):  # with the plugins that failed: one may have been the match
                raise SuiteError(f"no model matches {pattern!r}", key="model", choices=list_models(),
                                 also=plugins.failures)
            raise unknown("model", pattern, list_models(), key="model")
        names += [m for m in matches if m not in names]
    return names


def plan(names: Sequence[str], reference: str | None = None, **options: Any) -> list[ProfileJob]:
    """One job per model; with a reference, first its own plain jobs: one per input size the models
    use, built as each model's ratio builds it, so each ratio has its reference row."""
    _check_options(options)
    if reference is not None:
        if not BENCHES[options.get("bench", "complexity")]:
            raise SuiteError("a reference compares throughput: use --bench infer, train or all", key="reference")
        sizes = list(dict.fromkeys(options.get("img_size") or get_model_info(n).input_size for n in names))
        kwargs = options.get("model_kwargs", {})
        for size in sizes:  # every row times the reference at its size: a reference that cannot run fails the command
            try:
                _check_reference(reference, kwargs, size, sized=options.get("img_size") is not None, names=names)
            except SuiteError as err:
                raise _respelt(err, _options(ProfileJob(reference, kwargs)), FLAGS, "model.{}") from None
        own = {**options, "model_kwargs": _shared_kwargs(reference, kwargs)}
        return [ProfileJob(reference, is_reference=True, **{**own, "img_size": size}) for size in sizes] + [
            ProfileJob(n, reference=reference, **options) for n in names if n != reference
        ]
    return [ProfileJob(n, **options) for n in names]


def _check_values(values: Mapping[str, Any]) -> None:
    """A bench the suite has and counts of at least 1, whoever made the job."""
    bench = values.get("bench", "complexity")
    if bench not in BENCHES:
        raise unknown("bench", bench, list(BENCHES), key="bench")
    for key in _COUNTS:
        value = values.get(key)
        if value is not None and value < 1:
            raise SuiteError(f"must be >= 1, got {value}", key=key)


def _check_options(options: dict[str, Any]) -> None:
    """What the children would only find out one by one."""
    _check_values(options)
    resolve_device(options.get("device"))  # complexity alone does not use it, but a wrong one is a mistake
    if not BENCHES[options.get("bench", "complexity")]:  # counted once in fp32: these would change nothing
        given = [flag for key, flag in FLAGS.items()
                 if key != "img_size" and options.get(key) not in (None, False, "fp32")]
        if given:
            raise SuiteError(f"{', '.join(given)} only {'changes' if len(given) == 1 else 'change'} timed "
                             "measurements: add --bench infer, train or all",
                             key=given[0])


def check_out(path: Path) -> None:
    """A --to that cannot be written fails before the profiling, not after it."""
    files.check_writable(path, key="--to")


def write_out(path: Path, text: str) -> None:
    """Write `text` to `path` whole, or raise a SuiteError leaving no file."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)  # --to in a new folder
        files.write_text(path, text)
    except OSError as exc:
        raise SuiteError(f"cannot write: {exc.strerror or exc}", file=str(path), key="--to") from None


# ------------------------------------------------------------------------------------- profiling
class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during `profile`: the rows finished before it, and the exit status."""

    def __init__(self, rows: list[dict[str, Any]], planned: int, status: int) -> None:
        super().__init__(f"interrupted after {len(rows)} of {planned} models")
        self.rows, self.planned, self.status = rows, planned, status


def profile(jobs: Sequence[ProfileJob]) -> list[dict[str, Any]]:
    """Rows for all jobs. Complexity of a single model runs in this process; anything else one
    subprocess per job, so a failure is an `error` in its row instead of the end of the run.
    Interrupted, it raises Interrupted with the rows finished so far."""
    if len(jobs) == 1 and not jobs[0].phases:
        try:
            return [_measure(jobs[0])]
        except SuiteError as err:
            raise _flagged(err, jobs[0]) from None
        except Exception as exc:  # noqa: BLE001 - as from a child: a row with the error, not a traceback
            return [_error_row(jobs[0], exc)]
    from tqdm import tqdm

    rows: list[dict[str, Any]] = []
    # disable=None: a bar on a terminal only, none in logs or pipes
    bar = tqdm(jobs, desc="profile", unit="model", disable=None if len(jobs) > 1 else True, file=sys.stderr)
    try:
        with processes.sigterm_raises():
            for job in bar:
                bar.set_postfix_str(job.model)
                rows.append(run_isolated(job))
    except KeyboardInterrupt as exc:
        raise Interrupted(rows, len(jobs), getattr(exc, "status", 130)) from None
    finally:
        bar.close()
    return rows


def run_isolated(job: ProfileJob) -> dict[str, Any]:
    """Profile `job` in a fresh Python process; failures come back as a row with `error`."""
    proc = processes.run(child_command(job), capture=True, env=processes.suite_env())
    lines = proc.stdout.splitlines()
    if proc.returncode == 0 and RESULT_MARKER in lines:
        return json.loads(lines[lines.index(RESULT_MARKER) + 1])
    status = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
    tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
    return {"model": job.model, **_job_columns(job), "error": f"child process died ({status}): {tail}".rstrip(": ")}


def child_command(job: ProfileJob) -> list[str]:
    return [sys.executable, "-m", "suite.measure.profile", json.dumps(dataclasses.asdict(job))]


def profile_model(job: ProfileJob) -> dict[str, Any]:
    """One row for one model, in this process; raises on failure, a SuiteError naming a job's field
    or model option as Python gives it (img_size, model_kwargs['padding']). The job's `threads` and,
    on CUDA, cuDNN autotuning hold while it runs: the caller's settings are restored after (_measure),
    so a notebook's later cells keep theirs."""
    try:
        return _measure(job)
    except SuiteError as err:
        _respelt(err, _options(job), JOB_FIELDS, "model_kwargs[{!r}]")
        raise


@torch_settings_kept()  # whichever entry point measures in its process
def _measure(job: ProfileJob, whence: str = "") -> dict[str, Any]:
    """profile_model's row; a SuiteError names a job's field or model option bare, for its caller to
    spell (_respelt). `whence`: how a run came by the size, said if the model's first forward finds
    it cannot take it (FirstForward)."""
    if job.threads is not None:
        torch.set_num_threads(job.threads)
    img_size, kwargs = sized_options(job.model, job.model_kwargs, job.img_size)
    if job.reference is not None:  # before the model is timed: the reference is built after it, from these
        reference_kwargs = _check_reference(job.reference, job.model_kwargs, img_size, sized=job.img_size is not None,
                                            names=[job.model])
    build = functools.partial(create_model, job.model, **kwargs)
    row: dict[str, Any] = {"model": job.model, "img_size": img_size, **_job_columns(job)}
    if not job.phases:
        model = build()
        with FirstForward(model, job.model, img_size, key="img_size", whence=whence):
            row.update(measure_complexity(model, img_size).as_row())
        row["torch_version"] = torch.__version__
        return row

    device = resolve_device(job.device)
    defaults = DEFAULTS[device.type]
    settings = BenchSettings(
        device=device,
        img_size=img_size,
        amp=job.amp,
        channels_last=job.channels_last,
        warmup=defaults["warmup"] if job.warmup is None else job.warmup,
        steps=defaults["steps"] if job.steps is None else job.steps,
    )
    batch_size = defaults["batch_size"] if job.batch_size is None else job.batch_size
    load_libraries(job.phases, settings)  # torch's one-off imports are not the model's memory
    probe = MemoryProbe.start(device)  # before the model exists: its weights count in the peak
    model = _place(build(), job, device)
    reference = None if job.reference is None else \
        (lambda: _place(create_model(job.reference, **reference_kwargs), job, device))
    first = FirstForward(model, job.model, img_size, key="img_size", whence=whence)
    timings, ratios = benchmark(model, job.phases, settings, probe, batch_size, reference, first=first)

    del model, reference
    # on the CPU, in fp32, uncompiled, on a copy of its own, once every step is measured: what
    # the trace leaves in the heap is no step's memory
    row.update(measure_complexity(build(), img_size).as_row())
    row.update(
        batch_size=batch_size,
        warmup=settings.warmup,
        steps=settings.steps,
        amp=job.amp,
        channels_last=job.channels_last,
        compile=job.compile,
        **environment(device),
        memory_method=probe.method,
    )
    for phase, timing in timings.items():
        row.update(timing.as_row(phase))
    peaks = [t.peak_memory_mb for t in timings.values() if t.peak_memory_mb is not None]
    row["peak_memory_mb"] = round(max(peaks), 1) if peaks else None
    if job.reference is not None:
        row["reference"] = job.reference
        row.update({f"{phase}_throughput_vs_reference": round(r, 4) for phase, r in ratios.items()})
    if job.is_reference:  # the reference's own row: ratio 1 by definition
        row["reference"] = job.model
        row.update({f"{phase}_throughput_vs_reference": 1.0 for phase in timings})
    return row


def measure_run(config: RunConfig) -> dict[str, Any]:
    """A run's `complexity` and `throughput` sections (as selected by `measure.*`), measured in this
    process at the run's input size, device, amp and channels_last: a run is a job of its own.

    Keys that the run's config already holds (batch size, amp, device, ...) or that its `env`
    records are left out, so the store's flat row has one column per fact.
    """
    m = config.measure
    if not (m.complexity or m.throughput):
        return {}
    job = ProfileJob(
        model=config.model.name,
        model_kwargs=dict(config.model.kwargs),
        bench="all" if m.throughput else "complexity",
        img_size=config.data.input_size,
        device=config.device,
        amp=config.amp,
        channels_last=config.channels_last,
        batch_size=m.batch_size,
        warmup=m.warmup,
        steps=m.steps,
    )
    try:
        row = _measure(job, whence=data_whence(config.data.name, job.img_size))
    except SuiteError as err:
        raise _respelt(err, _options(job), SPEC_KEYS, "model.{}") from None
    out: dict[str, Any] = {}
    if m.complexity:
        out["complexity"] = {k: row[k] for k in _COMPLEXITY_KEYS if k in row}
    if m.throughput:
        out["throughput"] = {k: v for k, v in row.items() if k.startswith(("infer_", "train_")) or k in _MEMORY_KEYS}
    return out


_COMPLEXITY_KEYS = ("params", "trainable_params", "gmacs", "macts", "macts_error", "unsupported_ops", "skipped_ops",
                    "counter")  # fmt: skip
_MEMORY_KEYS = ("peak_memory_mb", "memory_method")


def benchmark(
    model: nn.Module,
    phases: Sequence[str],
    settings: BenchSettings,
    probe: MemoryProbe,
    batch_size: int,
    reference: Callable[[], nn.Module] | None = None,
    *,
    first: contextlib.AbstractContextManager[Any] = contextlib.nullcontext(),
) -> tuple[dict[str, Timing], dict[str, float]]:
    """Per phase: warm up (backing off on OOM), one step for peak memory, then the timed steps;
    with a reference, the timing waits until every memory figure is taken without it. `first`
    guards the model's warm-up, where it first meets the input size (FirstForward)."""
    fitted: dict[str, tuple[int, float | None]] = {}
    timings: dict[str, Timing] = {}
    for phase in phases:
        with first:
            prepared = prepare(functools.partial(STEPS[phase], model, s=settings), batch_size, settings)
        memory = probe.peak_mb(prepared.step)
        if reference is None:
            (times,) = time_steps([prepared.step], settings.steps, settings.device)
            timings[phase] = summarize(times, prepared.batch_size, memory)
        fitted[phase] = (prepared.batch_size, memory)
        del prepared  # frees the batch, gradients and optimizer state before the next phase
        gc.collect()
    if reference is None:
        return timings, {}

    other = reference()
    ratios = {}
    for phase in phases:
        batch, memory = fitted[phase]
        mine = prepare(functools.partial(STEPS[phase], model, s=settings), batch, settings)
        # at the batch size this model fitted, so the ratio compares the two at one batch size
        # (unless the reference must back off further)
        theirs = prepare(functools.partial(STEPS[phase], other, s=settings), batch, settings)
        mine_times, their_times = time_steps([mine.step, theirs.step], settings.steps, settings.device)
        timings[phase] = summarize(mine_times, mine.batch_size, memory)
        ratios[phase] = timings[phase].samples_per_sec / summarize(their_times, theirs.batch_size).samples_per_sec
        del mine, theirs
        gc.collect()
    return timings, ratios


def _check_reference(reference: str, model_kwargs: Mapping[str, Any], img_size: int, *, sized: bool,
                     names: Sequence[str]) -> dict[str, Any]:
    """The options `reference` is built with, checked (the job builds it from these); else raise what
    keeps `reference` from being timed beside the models `names` of `model_kwargs` at `img_size`,
    keyed by the job's field that set it: an unknown reference by `reference`, a size it
    cannot take by `img_size` where given (else it is the model's own size, which the reference
    cannot take), a bare option (the models' options it has are its own too) for the caller to spell
    (_respelt); the message names the reference, as a row's error names its model. Inputs too small
    for an option one of `names` lacks get a size advised, not the option: it would go to that model
    too, which refuses it, and no option reaches the reference alone."""
    try:
        return _reference_kwargs(reference, dict(model_kwargs), img_size)
    except SuiteError as err:
        size_key = "img_size" if sized else "reference"
        if err.key == "model.name":  # its message names it
            raise err.rekeyed("reference") from None
        if isinstance(err, TooSmall) and (lacking := [n for n in names if err.key not in get_model_info(n).options]):
            raise SuiteError(f"{err.problem} (the reference, {reference}); use inputs of {err.smallest} px or more "
                             f"(the option {err.key} would go to {lacking[0]} too, which has no such option)",
                             key=size_key) from None
        if err.key is None:
            err.rekeyed(size_key)
        raise err.said(f" (the reference, {reference})") from None


def _reference_kwargs(reference: str, model_kwargs: dict[str, Any], img_size: int) -> dict[str, Any]:
    """The reference's options, checked for `img_size`."""
    return resolve_model_kwargs(reference, _shared_kwargs(reference, model_kwargs), input_size=img_size)


def _shared_kwargs(reference: str, model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The models' options that the reference has too (e.g. num_classes)."""
    return {k: v for k, v in model_kwargs.items() if k in get_model_info(reference).options}


def _place(model: nn.Module, job: ProfileJob, device: torch.device) -> nn.Module:
    model = model.to(device)
    if job.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return torch.compile(model) if job.compile else model


def _job_columns(job: ProfileJob) -> dict[str, Any]:
    return {"model_kwargs": " ".join(f"model.{k}={v}" for k, v in job.model_kwargs.items())}  # as typed


# ---------------------------------------------------------------------------------------- output
# Settings shared by every row are printed once above the table instead of as columns.
_CONTEXT = (
    "counter", "torch_version", "device", "device_name", "cuda_version", "cudnn_version", "gpu_driver", "threads", "amp", "channels_last", "compile",
    "batch_size", "infer_batch_size", "train_batch_size", "warmup", "steps", "memory_method", "reference",
    "img_size", "model_kwargs",
)  # fmt: skip


def _table_columns() -> list[tuple[str, tuple[str, ...], Callable[..., str]]]:
    """(label, row keys, how their values are shown) of the readable table: the costs headed and
    shown as the reports head and show them (suite.metrics.COST_LABELS; parameters in millions)."""
    columns = [("model", ("model",), str), ("input", ("img_size",), str), ("options", ("model_kwargs",), str),
               (COST_LABELS["params_m"], ("params",), _millions), (COST_LABELS["gmacs"], ("gmacs",), "{:.3f}".format),
               (COST_LABELS["macts"], ("macts",), "{:.2f}".format)]
    for p in ("infer", "train"):
        columns += [
            (COST_LABELS[f"{p}_samples_per_sec"], (f"{p}_samples_per_sec",), "{:.2f}".format),
            (f"{p} ms (IQR)", (f"{p}_step_time", f"{p}_step_time_iqr"), "{:.1f} ({:.1f})".format),
            (f"{p} batch", (f"{p}_batch_size",), "{:d}".format),
            (COST_LABELS[f"{p}_peak_memory_mb"], (f"{p}_peak_memory_mb",), "{:.0f}".format),
            (f"{p} vs ref", (f"{p}_throughput_vs_reference",), "{:.3f}".format),
        ]
    return columns + [("unsupported ops", ("unsupported_ops",), str), ("error", ("error",), str)]


def _millions(count: int) -> str:
    """A parameter count in millions, with the reports' decimals (0.275, 13.70), so it reads the same there."""
    from suite.report.tables import num  # pandas and the report code, only when a table is printed

    return num(count / 1e6)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A readable table: settings shared by all rows in a header, then one line per model. Times are
    the median step in ms (interquartile range), memory the step's peak in MiB, parameters in
    millions as the reports show them; JSON and CSV keep every column under its full name, and the
    exact parameter count."""
    import textwrap

    ok = [r for r in rows if "error" not in r] or list(rows)  # an error row lacks most settings
    shared = {k: ok[0].get(k) for k in _CONTEXT if k in ok[0] and all(r.get(k) == ok[0][k] for r in ok)}
    # the options as typed (model.base_width=4), the other settings as key=value
    header = "  ".join(v if k == "model_kwargs" else f"{k}={v}" for k, v in shared.items() if v not in (None, ""))
    columns = [c for c in _table_columns() if c[1][0] not in shared and any(c[1][0] in r for r in rows)]
    cells = [[_cell(row, keys, shown) for _, keys, shown in columns] for row in rows]
    widths = [max(len(label), *(len(line[i]) for line in cells)) for i, (label, _, _) in enumerate(columns)]
    left = [shown is str for _, _, shown in columns]  # text left, numbers right
    lines = [[label for label, _, _ in columns], *cells]
    lines = ["  ".join(v.ljust(w) if lft else v.rjust(w) for v, w, lft in zip(line, widths, left)) for line in lines]
    wrapped = textwrap.wrap(header, width=120, break_on_hyphens=False) if header else []
    return "\n".join(wrapped + [line.rstrip() for line in lines])


def _cell(row: dict[str, Any], keys: tuple[str, ...], shown: Callable[..., str]) -> str:
    """`shown(*values)` of the row's `keys`; "-" where the row has no value (an error row lacks most)."""
    values = [row.get(k) for k in keys]
    if any(v is None or v == "" for v in values):
        return "-"
    return shown(*values)


def render(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    """`fmt`: "table" (format_table), "json" (a list of row objects) or "csv" (every column)."""
    if fmt == "json":
        return json.dumps(list(rows), indent=2) + "\n"
    if fmt == "csv":
        import pandas as pd

        return pd.DataFrame(list(rows)).to_csv(index=False)
    return format_table(rows) + "\n"


def _flagged(err: SuiteError, job: ProfileJob) -> SuiteError:
    """A job's error as `suite profile` says it: naming the flag that set the field, an option model.KEY."""
    return _respelt(err, _options(job), {**FLAGS, **JOB_FIELDS}, "model.{}")


def _options(job: ProfileJob) -> set[str]:
    """The model options a job's error may name: those given, and the model's and the reference's
    own (a check may name one at its default), of those registered."""
    names = {job.model, job.reference} & set(list_models())
    return {*job.model_kwargs, *(o for n in names for o in get_model_info(n).options)}


def _respelt(err: SuiteError, options: Collection[str], fields: Mapping[str, str], option: str) -> SuiteError:
    """`err` from _measure (or a check of the reference), which names a job's fields and model
    options bare (as the models' checks do), keyed as the caller that made the job spells them: a
    field by `fields`, an option (one of `options`: given, misspelt or not, or one a model's check
    names at its default) by the `option` format."""
    if err.key is None:
        return err
    if err.key in options:
        return err.rekeyed(option.format(err.key))
    return err.rekeyed(fields[err.key]) if err.key in fields else err


def _error_row(job: ProfileJob, exc: Exception) -> dict[str, Any]:
    """A failed job's row; an exception's first line only (PyTorch's C++ errors go on for pages)."""
    lines = str(exc).strip().splitlines() or [""]
    message = str(exc) if isinstance(exc, SuiteError) else f"{type(exc).__name__}: {lines[0]}".rstrip(": ")
    return {"model": job.model, **_job_columns(job), "error": message}


# ----------------------------------------------------------------------------------------- child
def _child(argv: Sequence[str]) -> int:
    if len(argv) != 1 or argv[0] in ("-h", "--help"):  # a user's try, not a job: no IndexError traceback
        print("usage: python -m suite.measure.profile JOB_JSON\n\nOne model's measurement, the child process of "
              "`suite profile`: run `suite profile MODEL` instead.", file=sys.stderr)
        return 2
    job = ProfileJob(**json.loads(argv[0]))
    try:
        row = _measure(job)
    except SuiteError as err:
        row = _error_row(job, _flagged(err, job))
    except Exception as exc:  # noqa: BLE001 - the row carries the error; the parent goes on
        import traceback

        traceback.print_exc()
        row = _error_row(job, exc)
    print(RESULT_MARKER)
    print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
