"""The run store: one directory per run, every write atomic, collected into a DataFrame.

Layout (`<out>` is `results/` by default or `--out DIR`):

    <out>/runs/<run_id>/config.json     resolved config + identity (written when a run is planned)
                        status.json     state, host/pid, attempts, SLURM ids, last error line
                        result.json     final metrics; present and complete <=> the run is done
                        measure.json    the model's measurement with its measure.* settings (a cache)
                        error.txt       traceback of the last failure (none for a SuiteError: status.json has its message)
                        log.txt         the run's stdout/stderr, run locally (SLURM's: status.json's slurm_log)
                        metrics.jsonl   per-epoch metrics (written by the training loop)
                        checkpoint.pt   latest checkpoint (resume)
    <out>/runs/.ids.json                the ids `scan` resolved for runs planned before `id_scheme` (suite.idcache)
    <out>/runs/.queued/<host>-<pid>.*   the runs a local `suite run` has still to start (dispatch.queued)

Runs are keyed by run_id alone, so a run shared by several specs (Attention-56 with a sigmoid
mask appears in RAN Tables 1, 3 and 4) is trained once. Files are written to a temporary name in
the same directory and renamed, so a reader sees the old or the new record, never half of one.
The process executing a run holds its `.lock`, so concurrent array tasks never execute one run; a
runner or `suite status` records the end of a run whose process or job died only while holding
that lock itself (`idle`), or after the process is gone. A local run recorded as running whose
lock nobody holds is interrupted, whatever process now has its pid.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import json
import math
import os
import shlex
import shutil
import socket
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd

from suite import files, idcache, locks
from suite.ablations.expand import RunSpec
from suite.config import ID_SCHEME, MEASURE, RunConfig, current_spelling, flatten
from suite.data.views import VIEW_METRICS
from suite.errors import SuiteError, SuiteWarning, not_utf8
from suite.metrics import RUN_METRICS, percent

SCHEMA = 1
STATES = ("done", "failed", "running", "pending", "cancelled", "interrupted", "missing")
TO_RUN = frozenset({"missing", "interrupted"})  # what `suite run` (re)starts; failed only with --retry-failed


DEFAULT_STORE = "results"  # the store `suite run` uses in a folder without --out or $SUITE_OUT


def default_out() -> Path:
    """$SUITE_OUT, else ./results; an empty or blank $SUITE_OUT counts as unset (it would name the
    current directory, or a folder named by spaces), as `--out ''` and `--out ' '` are refused."""
    value = os.environ.get("SUITE_OUT", "")
    return Path(value if value.strip() else DEFAULT_STORE)


def named_by(given: str | None) -> str | None:
    """What named the run store, for its messages: `given` (the caller's option, `--out` or `out`)
    when the caller gave one, else $SUITE_OUT when it is set, else None: the default folder, which no
    one named."""
    if given:
        return given
    return "$SUITE_OUT" if os.environ.get("SUITE_OUT", "").strip() else None


def not_there(named: str | None, option: str) -> str:
    """Why no store is where a reader looked (after `no runs in OUT`): a mistyped `option` (as the
    caller spells it: `--out`, `out=`) or $SUITE_OUT, whichever `named_by` it; else no store is at the
    default folder, which either names another of."""
    if named is None:
        return f"no store at the default {DEFAULT_STORE}/ under this folder; give {option} or $SUITE_OUT"
    return f"no such folder: is {'$SUITE_OUT' if named == '$SUITE_OUT' else option} right?"


def present(out: Path, *, key: str | None) -> bool:
    """Whether the run store `out` (named by `key`) is there to read. A file, or a path the OS cannot
    look up, is a SuiteError naming it; an absent folder is False: its runs are all missing, which a
    caller reading it says, since a mistyped path would read as no run done."""
    files.check_lookup(out, key=key)
    if out.exists() and not out.is_dir():
        raise SuiteError("is a file, not a run store directory", file=str(out), key=key)
    return out.exists()


def run_dir(out: Path, run_id: str) -> Path:
    return Path(out) / "runs" / run_id


def check_writable(out: Path, *, key: str | None) -> None:
    """Fail before any run starts when the store cannot hold runs (a file named runs, no permission,
    a file system without flock, where no run's lock can be taken), saying what to do: its runs stay
    readable where they are (`suite status`, `suite report --to`)."""
    try:
        files.check_writable(Path(out) / "runs", key=key, directory=True, locked=True)  # where its runs will be
    except files.Unlockable as err:
        raise SuiteError(f"{err.message}, so no run's lock can be taken, and no run can start without it (on Lustre, "
                         f"mount it with -o flock); give {key or '--out'} a folder on one that does (`suite status` "
                         "and `suite report` still read this one)", file=str(out), key=key) from None
    except SuiteError as err:
        err.said(f"; give {key or '--out'} a folder this user can write")
        raise


def newer(record: Any, path: Path) -> SuiteError | None:
    """Why `record` (read from `path`) is not this version's to read, or None: it says it was
    written by a newer version of the suite (a `schema` above SCHEMA). Read as this version's, its
    fields could mean something else; set aside, a newer version would lose its run."""
    schema = record.get("schema") if isinstance(record, dict) else None
    if isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA:
        return SuiteError(f"{schema}, written by a newer version of the suite (this one reads schema {SCHEMA}): "
                          "upgrade the suite to read it", file=str(path), key="schema")
    return None


def check_run_readable(d: Path) -> None:
    """Fail before any run starts when a run it would start has records a newer version of the
    suite wrote: run again, they would be overwritten or set aside as corrupt."""
    for name in ("config.json", "result.json", "status.json"):
        why = None
        with contextlib.suppress(SuiteError, OSError):  # an unreadable record has its own handling
            why = newer(read_json(d / name), d / name) if (d / name).exists() else None
        if why is not None:
            raise SuiteError(f"{why.message}; no run was started", file=why.file, key=why.key)


def check_run_writable(d: Path, *, key: str | None) -> None:
    """Fail before any run starts when a run's process could not record it: its directory or its
    `.lock` is not this user's to write (a teammate's run in a shared store, a lock left by `sudo
    suite run`). A run not planned yet is made in `<out>/runs`, which `check_writable` checks."""
    if not d.exists():
        return
    files.check_writable(d, key=key, directory=True)  # a file made there: os.access says yes to root
    lock = d / ".lock"
    if lock.exists() and not os.access(lock, os.W_OK):
        raise SuiteError("cannot write the run's lock (left by another user, or by `sudo suite run`?)",
                         file=str(lock), key=key)


# How long to wait for a run's lock before taking it as held: a probe (`executing`, `state_of`)
# holds it for an instant, which is no process executing the run.
LOCK_WAIT_S = 1.0


def run_lock(d: Path) -> locks.Lock:
    """The run's single-writer lock: the process executing it holds it. Taking it never makes `d`
    (files.Gone when it is not there)."""
    return locks.Lock(d / ".lock")


# The run's files only a process holding its lock writes (the one executing it; `refile` under `idle`).
LOCKED_FILES = ("result.json", "measure.json", "metrics.jsonl", "checkpoint.pt")


def sweep(d: Path) -> None:
    """Remove the temporary files that writers killed mid-write (SIGKILL, OOM) left in `d` (a
    checkpoint's is as large as the checkpoint): those of every file whose writer is provably gone
    (`files.sweep`: status.json's and config.json's too, written from outside the run's process
    without its lock). Called holding the run's lock, so an older version's unlocked temporaries of
    LOCKED_FILES are no live writer's either; its others stay (a planner may be writing one)."""
    files.sweep(d, unlocked=LOCKED_FILES)


@contextlib.contextmanager
def idle(d: Path, wait_s: float = 0) -> Iterator[bool]:
    """False when a process holds the run's lock (it is executing the run, whatever status.json
    says: a corrupt one, or one a withdrawn job's id overwrote); else True, holding the lock for the
    block, so that what is written from outside the run's job cannot interleave with a job starting.
    A writer that must not mistake a probe for a run waits `wait_s` (LOCK_WAIT_S) for the lock.
    files.Gone, running no block, when the folder is not there (never planned, or deleted): nothing
    executes such a run, and a block run without the lock would write into the folder a planner
    may make again that instant, beside a run process that takes its lock.
    A lock this user cannot open (another user's, or `sudo suite run`'s) is refused, naming it, in a
    folder this user can write: the block's writes would land beside a run that holds it. In one
    this user may only read (status, report of a teammate's store), True: nothing of theirs is written."""
    lock = run_lock(d)
    try:
        lock.acquire(timeout=wait_s)
    except locks.Held:
        yield False
        return
    except OSError as exc:
        if _can_write_into(d):
            why = "this file system does not lock files (on Lustre, mount it with -o flock)" \
                if exc.errno in files.NO_FLOCK else "left by another user, or by `sudo suite run`?"
            raise LockUnopenable(f"cannot {'lock' if exc.errno in files.NO_FLOCK else 'open'} the run's lock "
                                 f"({exc.strerror or exc}): nothing is written into the run without it ({why})",
                                 file=lock.lock_file) from None
        yield True
        return
    try:
        yield True
    finally:
        lock.release()


class LockUnopenable(SuiteError):
    """A run's `.lock` this user cannot open (or, on a file system without flock, lock), in a
    folder it can write (`idle`): what would write
    into the run refuses, naming the lock; what only reads the store says the run is unknown and
    goes on with the others, so that one odd run stops no listing of a store."""


def _can_write_into(d: Path) -> bool:
    """Whether this user can make a file in `d`, as a write does (os.access says yes to root on a
    read-only mount: `files.check_writable` makes one)."""
    try:
        files.check_writable(d, key="", directory=True)
    except SuiteError:
        return False
    return True


def executing(d: Path) -> bool:
    """Whether a process is executing the run now (holds its lock); LockUnopenable when that cannot
    be told (`idle`)."""
    try:
        with idle(d) as free:
            return not free
    except files.Gone:  # never planned, or deleted
        return False


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, obj: Any) -> None:
    """Replace `path` with JSON, whole and durably."""
    with files.replace(path, durable=True) as f:
        json.dump(obj, f, indent=1, sort_keys=True, default=str)


def read_json(path: Path) -> Any:
    """JSON from `path`; a corrupt, truncated or unreadable file (a folder, no permission) raises
    SuiteError naming it."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        at = "" if exc.msg.endswith(" at") else " at"  # json's own: "Unterminated string starting at"
        raise SuiteError(f"corrupt record ({exc.msg}{at} line {exc.lineno}, column {exc.colno})", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise SuiteError(f"corrupt record ({not_utf8(exc)})", file=str(path)) from None
    except RecursionError:  # valid JSON nested deeper than the decoder goes: no record the suite writes
        raise SuiteError("corrupt record (nested too deeply)", file=str(path)) from None
    except OSError as exc:
        raise SuiteError(f"unreadable record ({exc.strerror or exc})", file=str(path)) from None


def set_aside(path: Path) -> str:
    """Rename an unreadable record to `<stem>.corrupt-<time>.json`, kept for a look; its new name."""
    kept = path.with_name(f"{path.stem}.corrupt-{now().replace(':', '')}.json")
    path.rename(kept)
    return kept.name


def plan(out: Path, run: RunSpec) -> Path:
    """Create the run directory with its config; returns the directory.

    Idempotent, except that the planned config follows the latest plan: `python -m suite.execute`
    runs what config.json says, and with the run's identity fixed by its id, what can differ is
    how it is measured (`measure.*`), where it runs, or how an older version of the suite spelled
    a value (a model option that was a boolean), which this version could not read back.
    The spec, point and seed that planned it first stay.
    """
    d = run_dir(out, run.run_id)
    made = not d.is_dir()
    d.mkdir(parents=True, exist_ok=True)  # the one place a run's folder is made (no write makes its folder)
    try:
        _plan(d, run)
    except BaseException:  # a stop signal, a full disk: no folder left without its plan (one that looks like a run)
        if made:
            with contextlib.suppress(OSError):  # only if empty: a folder another process wrote into meanwhile stays
                d.rmdir()
        raise
    return d


def _plan(d: Path, run: RunSpec) -> None:
    """`plan`'s record in its folder `d`, which is there."""
    path = d / "config.json"
    planned = None
    if path.exists():
        try:
            planned = read_json(path)
            problem = "" if isinstance(planned, dict) and isinstance(planned.get("config"), dict) else \
                f"{path}: not a planned run"
        except SuiteError as err:
            problem = str(err)
        if problem:  # the plan is the run's own (its id is its config's): written again, the unreadable one kept
            try:
                moved = f"moved to {set_aside(path)}"
            except FileNotFoundError:  # another process planning the run at once moved it first
                moved = "moved aside by another process"
            warnings.warn(f"{problem}; {moved} and written again", SuiteWarning, stacklevel=2)
            planned = None
    if planned is not None:
        if planned["config"] != run.config.to_dict() or planned.get("id_scheme") != ID_SCHEME:
            write_json(path, {**planned, "config": run.config.to_dict(), "identity": run.config.identity(),
                              "id_scheme": ID_SCHEME})
    else:
        write_json(path, {
            "schema": SCHEMA,
            "run_id": run.run_id,
            "id_scheme": ID_SCHEME,
            "config": run.config.to_dict(),
            "identity": run.config.identity(),
            "spec": run.spec,
            "point": run.point,
            "seed": run.seed,
            "preset": run.preset,
            "overrides": run.given(),
        })


def set_status(d: Path, state: str, **info: Any) -> None:
    """Record a run's state; keeps earlier fields (attempts, job ids) unless overwritten. A status
    a newer version of the suite wrote is refused (SuiteError naming it): rewritten as this
    version's, its fields would be read as this version's."""
    assert state in STATES, state
    path = d / "status.json"
    previous = {}
    if path.exists():
        try:
            previous = read_json(path)
        except SuiteError:
            pass
    if why := newer(previous, path):
        raise why
    if not isinstance(previous, dict):  # a corrupt record: state_of flags it, this replaces it
        previous = {}
    write_json(path, {**previous, **info, "schema": SCHEMA, "state": state, "updated_at": now()})


def write_result(d: Path, result: dict[str, Any]) -> None:
    _write_result(d, {"schema": SCHEMA, "finished_at": now(), **result})
    set_status(d, "done", error=None)


def _write_result(d: Path, result: dict[str, Any]) -> None:
    """Write result.json; a write that fails (a full disk) is a SuiteError that says what it leaves
    (the earlier result, the checkpoint), which the run's status.json records as its failure."""
    path = d / "result.json"
    try:
        write_json(path, _readable(d, result))
    except OSError as exc:
        raise SuiteError(f"cannot write the result: {exc.strerror or exc} (an earlier result stays as it was; "
                         "the checkpoint keeps the training)", file=str(path)) from None


def _readable(d: Path, result: dict[str, Any]) -> dict[str, Any]:
    """`result`, if `state_of` will read it back as a result: one it reads as no result would make
    every later `suite run` run the run again, only to write the same."""
    if wrong := _wrong_section(result):
        raise SuiteError(f"not written: the store would not read it back ({wrong})", file=str(d / "result.json"))
    return result


# The measure.* settings each part of a measurement depends on: a part measured with them is current.
MEASURED_WITH = {"complexity": ("measure.complexity",),
                 "throughput": ("measure.throughput", "measure.batch_size", "measure.warmup", "measure.steps"),
                 "attack": ("measure.attack", "measure.attack_eps", "measure.attack_images"),
                 "views": ("measure.views",)}
# What a result written before a setting existed was made with: no attack (complexity and
# throughput settings a result does not record are taken as the wanted ones; the views, see made_with).
MADE_BEFORE = {"measure.attack": False}


def made_with(result: dict[str, Any]) -> dict[str, Any]:
    """The `measure.*` settings a done run's `result` was made with, where its config says nothing:
    MADE_BEFORE's, and the views if its metrics have them (every run was evaluated on them from when
    they existed until measure.views)."""
    metrics = result.get("metrics") or {}
    views = all(metrics.get(m) is not None for m in VIEW_METRICS)
    return {**MADE_BEFORE, "measure.views": views, **(result.get("config") or {})}


def stale_parts(run: RunSpec, result: dict[str, Any]) -> dict[str, list[str]]:
    """The parts of a done run's measurement that `run` asks for and that were not made with its
    settings -> how they differ, as 'key (made, not wanted)'. A part it does not ask for is never
    stale (a result with more than asked is current), nor one its result says nothing about."""
    made, wanted = made_with(result), run.config.measure_settings()
    out = {}
    for part, keys in MEASURED_WITH.items():
        if wanted[keys[0]]:
            differ = [f"{k} ({made[k]}, not {wanted[k]})" for k in keys if k in made and made[k] != wanted[k]]
            if not made.get(keys[0], True):  # not made at all: its other settings say nothing
                differ = differ[:1]
            if differ:
                out[part] = differ
    return out


def measured_otherwise(run: RunSpec, result: dict[str, Any]) -> list[str]:
    """How a done run's measurement differs from the one `run` asks for ('key (made, not wanted)'
    items); empty when it is current. Such a run is measured again, and its training kept."""
    return [item for items in stale_parts(run, result).values() for item in items]


def measured_otherwise_in(runs: Iterable[RunSpec], frame: pd.DataFrame) -> dict[str, list[str]]:
    """`measured_otherwise` for the done runs of `collect(out, [r.run_id for r in runs])` (its rows
    in the runs' order), from the frame's `measure.*` columns: run_id -> items, measured otherwise only."""
    out = {}
    for run, (_, row) in zip(runs, frame.iterrows()):
        if row["status"] == "done":
            made = {k: row[k] for k in run.config.measure_settings() if k in row and not pd.isna(row[k])}
            views = {m: row[m] for m in VIEW_METRICS if m in row and not pd.isna(row[m])}
            if items := measured_otherwise(run, {"config": made, "metrics": views}):
                out[row["run_id"]] = items
    return out


def archive(d: Path) -> Path:
    """Move everything but the planned config into `archive/<time>/` so the run starts afresh.

    `--force` uses this instead of deleting: a finished result is never destroyed by a re-run.
    """
    target = _archive_dir(d)
    for item in d.iterdir():
        if item.name not in ("config.json", "archive", ".lock"):
            item.rename(target / item.name)
    return target


def unarchive(d: Path, target: Path) -> None:
    """Undo `archive(d)` (a submission refused after it): what it moved comes back, replacing
    what was written since."""
    for item in target.iterdir():
        if (d / item.name).is_dir():
            shutil.rmtree(d / item.name)
        item.replace(d / item.name)
    target.rmdir()
    with contextlib.suppress(OSError):  # other archives stay
        target.parent.rmdir()


def replace_result(d: Path, result: dict[str, Any]) -> Path:
    """Rewrite a done run's result.json, the earlier one kept in `archive/<time>/`; where it went."""
    target = _archive_dir(d)
    shutil.copy2(d / "result.json", target / "result.json")
    _write_result(d, result)
    return target


def _archive_dir(d: Path) -> Path:
    """A new folder in the run's archive; the run's folder must be there (not made again if deleted)."""
    target = d / "archive" / dt.datetime.now().strftime("%Y%m%dT%H%M%S%f")
    try:
        target.parent.mkdir(exist_ok=True)
        target.mkdir()
    except FileNotFoundError:
        raise files.Gone.at(d) from None
    return target


@dataclass(frozen=True)
class RunState:
    run_id: str
    state: str
    note: str = ""
    status: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    corrupt: bool = False  # a record exists but cannot be read: reported, and the run counts as missing


# A result's sections of measurements, each key a column of the run's row (`collect`), and the
# columns that say which run it is and how it stands (a dotted key is a config's or env's).
MEASURED = ("metrics", "complexity", "throughput", "attack")
# The keys of those sections that hold text (what counted, which ops, how memory was read); every
# other one holds a number, or null: not measured.
TEXT = frozenset({"counter", "unsupported_ops", "skipped_ops", "macts_error", "memory_method"})
OWN_COLUMNS = frozenset({"run_id", "status", "note", "spec", "preset", "overrides", "seed", "attempts",
                         "slurm_job_id", "finished_at"})


def _wrong_section(result: Any) -> str | None:
    """What makes a result record unreadable (None: nothing): not an object, or a section not one."""
    if not isinstance(result, dict):
        return f"{_json_kind(result)}, not an object"
    if "metrics" not in result:
        return "no metrics"
    if not isinstance(result["metrics"], dict):
        return f"metrics: {_json_kind(result['metrics'])}, not an object"
    for key in ("config", "complexity", "throughput", "attack", "env"):  # optional: null or missing is none
        if not isinstance(result.get(key) or {}, dict):
            return f"{key}: {_json_kind(result[key])}, not an object"
    for section in MEASURED:  # their keys become the run's columns: none may pose as the run's own
        if taken := [k for k in result.get(section) or {} if k in OWN_COLUMNS or "." in str(k)]:
            return f"{section}: {taken[0]!r} names a column of the run's own, not a measurement"
        for key, value in (result.get(section) or {}).items():
            if wrong := _wrong_number(str(key), value):
                return f"{section}: {key} is {wrong}"
    return None


def _wrong_number(key: str, value: Any) -> str | None:
    """What is wrong with a measurement the suite writes as a number (None: nothing). A diverged run
    fails instead of recording NaN, and nothing it counts or times is below zero, so a string, a
    NaN, -5 parameters or an error of 140 % was made by hand (or by another program)."""
    if value is None or key in TEXT:
        return None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value):
        return f"{json.dumps(value)}, not a finite number"
    if percent(key) and not 0 <= value <= 100:
        return f"{value}, not a percentage in [0, 100]"
    return f"{value}, below zero" if value < 0 else None


def _json_kind(value: Any) -> str:
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def state_of(d: Path) -> RunState:
    """A run's state from its files; never raises: corrupt records come back flagged, and so does a
    directory that cannot be looked into (another user's, mode 700 in a shared store), counted as
    missing as a corrupt record is, so that one run cannot stop a command about all of them."""
    try:
        return _state_from_files(d)
    except OSError as exc:  # Path.exists re-raises EACCES (read_json reports an unreadable record itself)
        return RunState(d.name, "missing", f"{d}: unreadable run directory ({exc.strerror or exc})", corrupt=True)


def _state_from_files(d: Path) -> RunState:
    run_id = d.name
    if (d / "result.json").exists():
        try:
            result = read_json(d / "result.json")
        except SuiteError as err:
            return RunState(run_id, "missing", str(err), corrupt=True)
        if why := newer(result, d / "result.json"):
            return RunState(run_id, "missing", str(why), corrupt=True)
        wrong = _wrong_section(result)
        if wrong is None and result.get("run_id") != run_id:  # copied over, or stores merged by hand
            whose = f"the record of run {result['run_id']!r}" if "run_id" in result else \
                "a record without run_id (so of no run known)"
            return RunState(run_id, "missing", f"{d / 'result.json'}: {whose}, not of {run_id!r}, whose directory "
                            "it is in", corrupt=True)
        if wrong is None:
            status = _status_beside_result(d)
            if why := newer(status, d / "status.json"):  # its state is the newer version's to tell
                return RunState(run_id, "missing", str(why), corrupt=True)
            note = str(status.get("error") or "")
            if status.get("state") == "running" and status.get("measuring_again") and _died_here(status, d):
                note = f"measuring it again stopped (process {status.get('pid')} is gone); the earlier measurement stands"
            return RunState(run_id, "done", note, status or None, result)
        return RunState(run_id, "missing", f"{d / 'result.json'}: incomplete record ({wrong})", corrupt=True)
    if not (d / "status.json").exists():
        return RunState(run_id, "missing")
    try:
        status = read_json(d / "status.json")
    except SuiteError as err:
        return RunState(run_id, "missing", str(err), corrupt=True)
    if why := newer(status, d / "status.json"):  # a state it names may not be one this version knows
        return RunState(run_id, "missing", str(why), corrupt=True)
    state = status.get("state", "missing") if isinstance(status, dict) else None
    if state not in STATES:
        return RunState(run_id, "missing", f"{d / 'status.json'}: not a run status (state {state!r})", corrupt=True)
    if state == "done":  # only a complete result.json makes a run done
        return RunState(run_id, "missing", f"{d / 'result.json'}: missing, though status.json says done", status,
                        corrupt=True)
    # A local run whose process died is interrupted; a SLURM job's state comes from SLURM instead
    # (dispatch.slurm.refresh): a requeued job's old process is gone while SLURM has it pending.
    if state == "running" and _died_here(status, d):
        return RunState(run_id, "interrupted", f"process {status.get('pid')} is gone", status)
    return RunState(run_id, state, status.get("error") or "", status)


def _status_beside_result(d: Path) -> dict[str, Any]:
    """A done run's status.json, or {}: it says whether the run is being measured again (and by
    which SLURM job), or how measuring it again failed; the result alone makes the run done."""
    try:
        status = read_json(d / "status.json") if (d / "status.json").exists() else {}
    except SuiteError:
        return {}
    return status if isinstance(status, dict) else {}


def _died_here(status: dict[str, Any], d: Path) -> bool:
    """A local process of this host recorded the run as running and is gone, or no process holds the
    run's lock (the recorded pid now belongs to another process). A SLURM job's state comes from
    SLURM instead: a requeued job's old process is gone while SLURM has it pending."""
    if status.get("slurm_job_id") or status.get("host") != socket.gethostname():
        return False
    return not _alive(status.get("pid")) or _lock_free(d)


def _lock_free(d: Path) -> bool:
    """Whether the run's lock can be taken now; False when it cannot be probed (a read-only store)."""
    lock = run_lock(d)
    try:
        lock.acquire(timeout=0)
    except (locks.Held, OSError, files.Gone):
        return False
    lock.release()
    return True


def _alive(pid: Any) -> bool:
    """Whether `pid` is a live process. A recorded value no process can have (not a positive integer:
    0 and -1 name process groups; one past the kernel's range, from a hand-edited record) is none."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


RECORDS = ("config.json", "status.json", "result.json")  # what makes a directory under runs/ a run


def stored_runs(out: Path) -> list[str]:
    """The runs of the store, sorted: the directories under `<out>/runs` holding a run's record, or
    that cannot be looked into (reported as unreadable, not passed over); a symlink loop is none."""
    runs = Path(out) / "runs"
    if not runs.is_dir():
        return []
    try:
        dirs = [p for p in runs.iterdir() if p.is_dir()]  # Path.is_dir, unlike DirEntry's, is False on a loop
    except OSError as exc:
        raise SuiteError(f"cannot list the runs ({exc.strerror or exc})", file=str(runs)) from None
    return sorted(p.name for p in dirs if _holds_a_run(p))


def model_sources(out: Path) -> dict[str, list[str]]:
    """Model name -> the plugins (`distribution version`, or a module's name) that trained the store's
    done runs of it, from their result.json: what an `unknown model` error about them can name,
    once the plugin is gone. Unreadable records are passed over: this only adds to an error."""
    found: dict[str, list[str]] = {}
    for rid in stored_runs(out):
        try:
            result = read_json(Path(out) / "runs" / rid / "result.json")
        except (SuiteError, OSError):
            continue
        if not isinstance(result, dict) or not isinstance(result.get("config"), dict):
            continue
        env = result.get("trained_env") or result.get("env") or {}
        name, source = result["config"].get("model.name"), env.get("model_source") if isinstance(env, dict) else None
        if isinstance(name, str) and isinstance(source, str) and source != "suite":
            found.setdefault(name, [])
            if source not in found[name]:
                found[name].append(source)
    return found


def _holds_a_run(d: Path) -> bool:
    try:
        return any((d / f).exists() for f in RECORDS)
    except OSError:  # no permission to look: state_of says so
        return True


def filed_as(d: Path, plan: Any = None) -> str | None:
    """The id this version of the suite gives the run stored in `d`, from its plan's config (else
    its result's). It differs from the directory's name when an older version hashed the same
    config otherwise (before `measure.*` left the identity, a run with a non-default
    `measure.batch_size` had another id). A plan that records this version's id scheme
    (`id_scheme`) under its directory's id is filed right: not resolved again, which costs about a
    millisecond a run (seconds a command in a store of thousands). None when there is nothing to
    tell it from (no record, or a directory this user may not look into: `state_of` names it);
    SuiteError, naming the file and the key, when this version cannot read the config its records
    hold (an option or model since removed, a corrupt record) or a newer version wrote them.
    `plan`: its config.json as `_read_record` read it already (`scan` reads each record once)."""
    from suite.config import resolve

    why = None
    for name in ("config.json", "result.json"):
        path = d / name
        record = plan if name == "config.json" and plan is not None else _read_record(path)
        if record is _UNLOOKABLE:
            return None
        if record is _ABSENT:
            continue
        if isinstance(record, SuiteError):
            why = why or record
            continue
        if later := newer(record, path) or _newer_scheme(record, path):
            raise later  # filed by a version this one does not know: not for it to move
        try:
            if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
                raise SuiteError("not a run's record (no config)", file=str(path), key="config")
            if record.get("id_scheme") == ID_SCHEME and record.get("run_id") == d.name:
                return d.name
            return resolve(current_spelling(flatten(record["config"])), file=str(path)).run_id
        except SuiteError as err:
            why = why or err
        except (KeyError, TypeError, AttributeError, ValueError) as exc:  # a value no check foresaw
            why = why or SuiteError(f"cannot be resolved ({type(exc).__name__}: {exc})", file=str(path))
    if why is not None:
        raise why
    return None


_ABSENT, _UNLOOKABLE = object(), object()  # no such record; a directory this user may not look into


def _read_record(path: Path) -> Any:
    """The record at `path`, a SuiteError naming it when it cannot be read, _ABSENT when there is
    none, _UNLOOKABLE when its directory cannot be looked into."""
    try:
        if not path.exists():
            return _ABSENT
    except OSError:
        return _UNLOOKABLE
    try:
        return read_json(path)
    except SuiteError as err:
        return err


def _newer_scheme(record: Any, path: Path) -> SuiteError | None:
    """Why the run whose plan `record` is (read from `path`) is not this version's to file, or
    None: a newer version of the suite filed it (a higher `id_scheme`), under an id this one
    cannot compute (moved to this one's, the newer version would move it back)."""
    scheme = record.get("id_scheme") if isinstance(record, dict) else None
    if isinstance(scheme, int) and not isinstance(scheme, bool) and scheme > ID_SCHEME:
        return SuiteError(f"{scheme}, filed by a newer version of the suite (this one computes run ids by scheme "
                          f"{ID_SCHEME}): upgrade the suite to tell which run it is", file=str(path), key="id_scheme")
    return None


@dataclass(frozen=True)
class Scan:
    """One pass over the stored runs outside those asked about (`scan`)."""

    moves: dict[str, str]  # the runs an older version filed under another id: old id -> today's
    # the stored runs whose id this version cannot tell, run id -> why (file and key): a run asked
    # about that one of them may be counts as missing, and this says why
    unreadable: dict[str, SuiteError]
    # the states of the runs the spec asked about planned first and that it no longer expands to
    # (other overrides or presets, an edited spec file), whose queued jobs no `suite cancel` of it reaches
    of_spec: dict[str, RunState]

    @property
    def stored_as(self) -> dict[str, str]:
        """The moves the other way, today's id -> where the run is stored: how `collect` reads them."""
        return {new: old for old, new in self.moves.items()}

    def into(self, out: Path, wanted: Iterable[str]) -> Scan:
        """This scan with only its moves into runs of `wanted` that `refile` makes (not one whose new
        id has a run stored again): what `told` says of them, from a scan of more of the store
        (`suite report --all` shares one scan of the whole store across its tables)."""
        wanted = set(wanted)
        return dataclasses.replace(self, moves={old: new for old, new in self.moves.items() if new in wanted
                                                and old not in wanted and not stored_again(out, old, new)})


def scan(out: Path, wanted: Iterable[str] | None = None, spec: str | None = None,
         models: Collection[str] | None = None) -> Scan:
    """The store read once for what lies outside the runs in `wanted` (every stored run when None):
    each run's plan is read once, and only the runs `spec` planned first have their state read.
    `models`: the model names of the runs in `wanted`; a stored run of another registered model
    cannot be one of them (`_could_be`), so its config is not resolved.

    Runs whose directory is not the id this version gives them: old id -> today's, only those whose
    today's id is in `wanted` (when given). `suite run` files them under today's id (`refile`)
    instead of training them again; without that an upgrade would orphan them. Runs under an id in
    `wanted` are not looked into; of the others, those this version cannot read are left as they
    are, and come back in `unreadable` when one of `wanted` is not stored (it may be that one)."""
    wanted = None if wanted is None else set(wanted)
    stored = stored_runs(out)
    absent = wanted is None or bool(wanted - set(stored))
    moves, unreadable, of_spec = {}, {}, {}
    cache = idcache.IdCache(out, stored)
    could_be = _could_be(models)
    for d in _outside(out, stored, wanted):
        rid = d.name
        before = idcache.key(d)  # before the plan is read: one replaced meanwhile is not cached under its new stat
        plan = _read_record(d / "config.json")
        if _planned_by(plan, spec):
            of_spec[rid] = state_of(d)
        if not could_be(plan):
            continue
        cached = cache.get(rid, before)
        try:
            new = cached or filed_as(d, plan)
        except SuiteError as err:
            if absent:
                unreadable[rid] = err
            new = None
        recorded = isinstance(plan, dict) and plan.get("id_scheme") == ID_SCHEME and plan.get("run_id") == rid
        if new is not None and not cached and not recorded:  # resolved (a millisecond): kept for the next scan
            cache.put(rid, before, new, idcache.key(d))
        if new is not None and new != rid and (wanted is None or new in wanted):
            moves[rid] = new
    cache.save()
    return Scan(moves, unreadable, of_spec)


def _could_be(models: Collection[str] | None) -> Callable[[Any], bool]:
    """Whether a stored run whose plan (config.json as `_read_record` read it) is given could be a
    run of one of `models` (any run when None). A run's identity holds its model's name as stored
    (no alias, no respelling), so a plan naming another registered model cannot; one whose plan or
    model name this version cannot read may be (a model since renamed), so it is resolved, which
    says why it is unreadable."""
    if models is None:
        return lambda plan: True
    from suite.models import list_models

    others = set(list_models()) - set(models)

    def could_be(plan: Any) -> bool:
        config = plan.get("config") if isinstance(plan, dict) else None
        if not isinstance(config, dict):
            return True
        name = flatten(config).get("model.name")
        return not isinstance(name, str) or name not in others
    return could_be


def runs_of_spec(out: Path, wanted: Iterable[str], spec: str) -> dict[str, RunState]:
    """`scan(out, wanted, spec).of_spec` alone, for a command that files no run under another id
    (`suite cancel`): no stored config is resolved, which the first such command in a store planned
    before `id_scheme` did for every run outside `wanted` (a second at 3,000 runs)."""
    return {d.name: state_of(d) for d, _ in _spec_runs_outside(out, set(wanted), spec)}


def told(out: Path, wanted: Iterable[str], spec: str, models: Collection[str] | None = None) -> Scan:
    """What `suite status SPEC` and `suite report SPEC` say of the store outside the runs in
    `wanted`: `scan`'s moves but those `refile` leaves (a run stored under the new id already),
    its unreadable runs, and the spec's runs outside but the moves (said as such). When every run
    in `wanted` is stored, no move is left and no unreadable run is named, so only the spec's own
    runs outside are resolved, not every stored run (a second at 3,000 runs planned before
    `id_scheme`, a sixth with the id cache)."""
    wanted = set(wanted)
    if any(not _holds_a_run(run_dir(out, rid)) for rid in wanted):
        found = scan(out, wanted, spec, models)
        moves = found.into(out, wanted).moves
        return Scan(moves, found.unreadable,
                    {rid: s for rid, s in found.of_spec.items() if rid in moves or rid not in found.moves})
    return Scan({}, {}, {d.name: state_of(d) for d, plan in _spec_runs_outside(out, wanted, spec)
                         if _moves_into(d, plan, wanted) is None})


def _spec_runs_outside(out: Path, wanted: set[str], spec: str) -> Iterator[tuple[Path, Any]]:
    """The stored runs outside `wanted` that `spec` planned first, each with its plan as read (once)."""
    for d in _outside(out, stored_runs(out), wanted):
        plan = _read_record(d / "config.json")
        if _planned_by(plan, spec):
            yield d, plan


def stored_under_older_ids(out: Path, rids: Iterable[str], wanted: Iterable[str]) -> dict[str, str]:
    """Of the stored runs `rids`, those an older version stored under another id for one of
    `wanted`: old id -> today's. Only these are resolved (`suite cancel` asks it of the spec's
    queued runs outside its expansion, not of every stored run)."""
    wanted = set(wanted)
    found = {rid: _moves_into(run_dir(out, rid), None, wanted) for rid in rids}
    return {old: new for old, new in found.items() if new is not None}


def _moves_into(d: Path, plan: Any, wanted: set[str]) -> str | None:
    """The run of `wanted` that the run stored in `d` (its plan as read, or None to read it) is
    under an older id, or None: the one check `told` and `suite cancel` make of a stored run."""
    try:
        new = filed_as(d, plan)
    except SuiteError:  # unreadable: it cannot be told to be one (scan names it when a run of `wanted` is not stored)
        return None
    return new if new is not None and new != d.name and new in wanted else None


def _outside(out: Path, stored: Iterable[str], wanted: set[str] | None) -> Iterator[Path]:
    """The directories of the `stored` runs not in `wanted` (all of them when None)."""
    runs = Path(out) / "runs"
    return (runs / rid for rid in stored if wanted is None or rid not in wanted)


def _planned_by(plan: Any, spec: str | None) -> bool:
    """Whether `plan` (a config.json as `_read_record` read it) is of a run `spec` planned first."""
    return spec is not None and isinstance(plan, dict) and plan.get("spec") == spec


def stored_again(out: Path, old: str, new: str) -> str | None:
    """Why the run stored as `old` cannot be filed as `new`, because a run is stored under `new`
    already (planned or trained again since), or None: `refile` leaves it, so `suite status` and
    `suite run --dry-run` must not say it will be filed."""
    src, dst = run_dir(out, old), run_dir(out, new)
    return f"{dst} exists (the run was stored again under its new id): {src} left as it is" if dst.exists() else None


def in_use(d: Path) -> str | None:
    """Why the run in `d` cannot be moved now (`refile` refuses it), or None: `suite run --dry-run`
    must neither promise to file it nor start it anew while its job may still write there."""
    try:
        with idle(d) as free:
            return _in_use(d, free)
    except files.Gone:  # filed by another `suite run` since it was looked at, or deleted: none uses it
        return None
    except LockUnopenable as err:  # `refile` refuses it, naming the lock
        return str(err)


def _in_use(d: Path, free: bool) -> str | None:
    """`in_use` for a run whose lock was just probed (`free`: nobody held it)."""
    if not free:
        return f"{d}: a process is executing it"
    if (state := state_of(d).state) in ("pending", "running"):  # a queued job would make the old one again
        return f"{d}: {state} (its job runs the older version's code); refiled once it has ended"
    return None


def refile(out: Path, old: str, config: RunConfig) -> str | None:
    """Move the run stored as `old` to `config`'s id (the run this version resolved it to: the
    caller has it, so its stored config is not resolved again), with the id in its records and
    checkpoint; None when done (by this call, or by another `suite run` filing it at the same
    time), else why not (a run already stored under the new id, or a process executing `old`)."""
    new = config.run_id
    src, dst = run_dir(out, old), run_dir(out, new)
    if taken := stored_again(out, old, new):
        return taken
    looked_at = src.stat().st_ino if src.exists() else None  # the folder filed: one made there later is no run
    try:
        with idle(src) as free:
            if problem := _in_use(src, free):
                return problem
            before = _record_id(src, new, config)
    except files.Gone:  # another `suite run` filed it since it was looked at: filed all the same
        if not dst.is_dir():
            raise
        return None
    try:
        src.rename(dst)
    except FileNotFoundError:  # filed by another `suite run` in the instant since: filed all the same
        if not dst.is_dir():
            raise
    except OSError as exc:  # the target is there and not empty (ENOTEMPTY, or EEXIST on some systems)
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not dst.is_dir():
            raise
        if _same_inode(src, looked_at):  # the run is still here: a run was stored under its new id meanwhile
            _record_back(src, before, old)  # left where it is, as its records say
            return stored_again(out, old, new)
        # else another `suite run` filed it, and the folder there now is another's (nothing here makes a run's
        # folder again: not its lock, not a write), which is left as it is
    return None


def _record_id(d: Path, new: str, config: RunConfig) -> dict[str, bytes]:
    """Record `new` as the id of the run in `d`, in its records (its plan in this version's id
    scheme, written before the move so that a crash between leaves a run the next scan files) and
    its checkpoint; returns the records as they were, for `_record_back`."""
    before = {}
    for name in ("config.json", "result.json"):
        path = d / name
        with contextlib.suppress(SuiteError):
            record = read_json(path) if path.exists() else None
            if isinstance(record, dict) and "run_id" in record:
                before[name] = path.read_bytes()
                if name == "config.json":
                    record.update(identity=config.identity(), id_scheme=ID_SCHEME)
                write_json(path, {**record, "run_id": new})
    _checkpoint_id(d / "checkpoint.pt", new)
    return before


def _record_back(d: Path, before: Mapping[str, bytes], old: str) -> None:
    """Undo `_record_id` for a run that could not be moved: records naming the new id in the old
    folder would make it a corrupt record of another run there."""
    for name, data in before.items():
        with files.replace(d / name, binary=True, durable=True) as f:
            f.write(data)
    _checkpoint_id(d / "checkpoint.pt", old)


def _checkpoint_id(ckpt: Path, run_id: str) -> None:
    """Record `run_id` in the checkpoint at `ckpt` (if any, and if it names its run): the run resumes from it."""
    if ckpt.exists():
        from suite.train import checkpoint

        state = checkpoint.load(ckpt)
        if isinstance(state, dict) and "run_id" in state:
            checkpoint.save(ckpt, {**state, "run_id": run_id})


def _same_inode(d: Path, ino: int | None) -> bool:
    """Whether `d` is still the folder whose inode was `ino` (not gone, nor made again)."""
    try:
        return d.stat().st_ino == ino
    except FileNotFoundError:
        return False


# No run stored under an older id (run id -> that id): the read-only default of `stored_as`, `elsewhere`.
NOT_MOVED: Mapping[str, str] = MappingProxyType({})


def collect(out: Path, run_ids: Iterable[str] | None = None, stored_as: Mapping[str, str] = NOT_MOVED) -> pd.DataFrame:
    """One row per run: run_id, status, note, flattened config, metrics, complexity, throughput, env.

    With `run_ids`, exactly those rows (absent ones as `missing`); otherwise every run directory
    (one that holds none of a run's records is no run). Corrupt or partial files never stop the
    collection: the row says what is wrong and a warning names the file.
    `stored_as`: run id -> the id an older version stored it under (`scan`'s moves, reversed): its
    row is read there, under the id `suite run` files it as, so it shows as it will be once filed.
    """
    runs = Path(out) / "runs"
    ids = stored_runs(out) if run_ids is None else list(dict.fromkeys(run_ids))
    states = [dataclasses.replace(state_of(runs / stored_as.get(rid, rid)), run_id=rid) for rid in ids]
    rows = [_row(runs / stored_as.get(s.run_id, s.run_id), s) for s in states]
    problems = [s.note for s in states if s.corrupt]
    for problem in problems:
        warnings.warn(f"skipped a corrupt record: {problem}", SuiteWarning, stacklevel=2)
    frame = pd.DataFrame(rows, columns=_ordered_columns(rows))
    frame.attrs["problems"] = problems
    # where each row was read, when not under its id: the report's curves are read there too
    frame.attrs["stored_as"] = {rid: stored_as[rid] for rid in ids if rid in stored_as}
    # what the done runs' processes warned of (their status.json, read with their state): `suite status`
    # repeats a SLURM job's, whose console nobody watched
    frame.attrs["warnings"] = {s.run_id: [str(w) for w in s.status["warnings"]] for s in states
                               if s.state == "done" and s.status and isinstance(s.status.get("warnings"), list)}
    return frame


def _row(d: Path, state: RunState) -> dict[str, Any]:
    row: dict[str, Any] = {"run_id": state.run_id, "status": state.state, "note": state.note}
    config_path = d / "config.json"
    if os.path.exists(config_path):  # False in a directory that cannot be looked into: the state says so
        try:
            planned = read_json(config_path)
            if not isinstance(planned, dict) or not isinstance(planned.get("config", {}), dict) \
                    or not isinstance(planned.get("spec", ""), (str, type(None))):  # runs are grouped by spec
                raise SuiteError("not a planned run (expected {spec, point, seed, config: {...}})", file=str(config_path))
            row.update(current_spelling(flatten(planned.get("config", {}))))
            row["spec"] = planned.get("spec")
            if isinstance(planned.get("preset"), str):  # `suite status` names it beside the spec
                row["preset"] = planned["preset"]
            given = planned.get("overrides")  # and these: "" for none; no value for a run planned before
            if isinstance(given, list) and all(isinstance(item, str) for item in given):  # they were recorded
                row["overrides"] = shlex.join(given)
            elif given is not None:  # listed as such a run, not as one given none
                warnings.warn(str(SuiteError(f"{json.dumps(given)}, not a list of key=value items: the run is listed "
                                             "as planned before overrides were recorded", file=str(config_path),
                                             key="overrides")), SuiteWarning, stacklevel=3)
        except SuiteError as err:
            warnings.warn(f"skipped a corrupt record: {err}", SuiteWarning, stacklevel=3)
            row["note"] = row["note"] or str(err)
    if state.status:
        row["attempts"] = state.status.get("attempts")
        row["slurm_job_id"] = state.status.get("slurm_job_id")
    if state.result is not None:
        result = state.result
        # how the result was measured is its own config's to say (one written before a measure.*
        # setting existed says nothing of it, see MADE_BEFORE): not the latest plan's
        row = {k: v for k, v in row.items() if not k.startswith(MEASURE)}
        row.update(current_spelling(result.get("config", {})))
        configured = set(row)  # the config's keys (a section naming a column of the run's own is unreadable)
        measured_in: dict[str, str] = {}  # key -> the section whose value holds its column
        clashes = []
        for section in MEASURED:
            for key, value in (result.get(section) or {}).items():
                if key in configured and key not in RUN_METRICS:  # `epochs`, `iterations`: what the run did
                    clashes.append(f"{section}: {key!r} is named as a config key of the run, so that column holds "
                                   f"the config's value and this measurement is column '{section}.{key}'")
                    key = f"{section}.{key}"
                elif key in measured_in:  # the first section's holds the column, as the config's does
                    clashes.append(f"{section}: {key!r} is measured in {measured_in[key]} too, so that column holds "
                                   f"{measured_in[key]}'s value and this measurement is column '{section}.{key}'")
                    key = f"{section}.{key}"
                else:
                    measured_in[key] = section
                row[key] = value
        if clashes:  # the config's value is what the run was: its axis, its comparison with the paper
            warnings.warn(f"{d / 'result.json'}: {'; '.join(clashes)}", SuiteWarning, stacklevel=3)
        row.update({f"env.{k}": v for k, v in (result.get("env") or {}).items()})
        # a run measured again keeps the environment that trained it: which code made its metrics
        row.update({f"trained_env.{k}": v for k, v in (result.get("trained_env") or {}).items()})
        row["finished_at"] = result.get("finished_at")
    return row


def _ordered_columns(rows: list[dict[str, Any]]) -> list[str]:
    columns = dict.fromkeys(["run_id", "status", "note", "spec"])
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns)


def count_states(states: Iterable[str]) -> dict[str, int]:
    """Runs per state, every state present (zeros included), in STATES order."""
    out = dict.fromkeys(STATES, 0)
    for state in states:
        out[state] += 1
    return out
