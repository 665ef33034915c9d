"""`execute(run, out)`: the one function every job runs, on this machine or in a SLURM array task.

It owns a run directory for the duration of the run (a lock file, so two array tasks never run the
same run), measures the model (complexity and throughput, cached in `measure.json` with the
`measure.*` settings it was made with, so a resumed run does not measure twice), trains and
evaluates it (resuming from the run's checkpoint), and writes `result.json` atomically. A done run
asked for with other `measure.*` settings (not part of its identity) is measured again and its
result rewritten with the training kept. A failure is recorded with its traceback and re-raised,
so the caller (local runner or SLURM) sees it too; an interruption leaves the checkpoint for the
next attempt.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import sys
import time
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import torch

from suite import files, locks, processes, store
from suite.ablations.expand import RunSpec
from suite.config import RunConfig
from suite.errors import SuiteError, SuiteWarning, show_warning
from suite.train.checkpoint import Preempted
from suite.train.distributed import Dist

# How long to wait for the run's lock: `store.executing` (a planner's probe) holds it for an instant.
LOCK_WAIT_S = store.LOCK_WAIT_S
BUSY_EXIT = 75  # EX_TEMPFAIL: another process holds the run; `main` exits with it and touches nothing


class Busy(SuiteError):
    """The run's lock is held: another process (a second `suite run`, an array task) is executing it."""


class Interrupted(KeyboardInterrupt):
    """The run was stopped from outside (signal, pre-emption); its checkpoint is kept. A
    KeyboardInterrupt, as Ctrl-C is, so that no `except Exception` (a checkpoint's load, an
    optional measurement) takes it for a failure of its own and carries on."""


def execute(run: RunSpec, out: Path, *, progress: bool = False) -> dict[str, Any]:
    """Run one grid point to completion (or resume it) and return its result record.

    In a multi-process (DDP) run, the ranks form their process group first, and rank 0 tells the
    others what it decided under the run's lock (skip a run another process executes, return a done
    one, train): a rank that decided alone could wait to train with a rank 0 that has left."""
    from suite.train.distributed import distributed, world_size

    d = store.plan(Path(out), run)
    if world_size() == 1:
        return _lead(run, d, progress=progress)
    with distributed(run.config.device) as (env, _):
        return _lead(run, d, progress=progress, env=env) if env.is_main else _follow(run, d)


def _attempts_made(status: dict[str, Any] | None, d: Path, said: list[str]) -> int:
    """The attempts the run's status records; one recorded as no count (a hand edit, another
    program) is counted afresh from 0 and said in `said` (naming file and key), rather than stop
    every retry before it starts."""
    made = (status or {}).get("attempts")
    if made is None or (isinstance(made, int) and not isinstance(made, bool) and made >= 0):
        return made or 0
    said.append(f"{d / 'status.json'}: attempts: {json.dumps(made)} is not a count of attempts; counted afresh")
    warnings.warn(said[-1], SuiteWarning)
    return 0


def _lead(run: RunSpec, d: Path, *, progress: bool, env: Dist | None = None) -> dict[str, Any]:
    """Rank 0 (or the only process): owns the run directory (lock, status, measurement, result),
    and says what it does to the other ranks of `env`."""
    lock = store.run_lock(d)
    try:
        lock.acquire(timeout=LOCK_WAIT_S)
    except locks.Held:
        _tell(env, BUSY)
        raise Busy(f"run {run.run_id} is already being executed by another process", file=str(d)) from None
    except files.Gone:  # deleted since it was planned: not made again (the runner says so)
        _tell(env, NO_LOCK)
        raise
    except OSError as exc:  # a lock left by another user (`sudo suite run`): named, not a traceback
        _tell(env, NO_LOCK)
        raise SuiteError(f"cannot take the run's lock ({exc.strerror or exc})", file=str(lock.lock_file)) from None
    try:
        store.sweep(d)  # what an attempt killed mid-write (OOM, SIGKILL) left: this one writes those files anew
        current = store.state_of(d)
        if current.state == "done" and current.result is not None:
            _tell(env, DONE)
            if not store.measured_otherwise(run, current.result):
                return current.result
            return _measure_again(run, d, current.result)
        _tell(env, TRAIN)
        said = []
        if current.corrupt and (d / "result.json").exists():  # kept for a look, not overwritten by this attempt
            said.append(f"{current.note}; moved to {store.set_aside(d / 'result.json')}, and the run runs again")
            warnings.warn(said[-1], SuiteWarning)
        attempts = _attempts_made(current.status, d, said) + 1
        store.set_status(d, "running", host=socket.gethostname(), pid=os.getpid(), attempts=attempts,
                         threads=torch.get_num_threads(),  # `suite status`'s rerun hint keeps them (CPU sums depend on them)
                         started_at=store.now(), error=None, warnings=said, measuring_again=None, **_slurm_ids())
        # the log's attempts apart (log.txt gets every attempt's lines, a SLURM log a requeue's)
        print(f"attempt {attempts} of run {run.run_id}: {socket.gethostname()}, pid {os.getpid()}, {store.now()}",
              file=sys.stderr, flush=True)
        try:
            with _recorded_warnings(d):
                from suite.measure.env import unseen_gpus

                if why := unseen_gpus(run.config.device):
                    warnings.warn(why, SuiteWarning)
                result = _run(run, d, progress=progress)
            store.write_result(d, result)
        except BaseException as exc:
            if (written := store.state_of(d).result) is None:
                _record_end(d, exc)
                raise
            # in place when the signal or error came: the run is done, whatever status.json could say
            with contextlib.suppress(OSError):  # a disk that filled up with the result: status.json says running
                store.set_status(d, "done", error=None)
            return written
        return result
    finally:
        lock.release()


def _stop_in(exc: BaseException) -> BaseException | None:
    """The signal or time limit that ended the attempt, `exc` itself or one it was raised while
    handling: a stop that lands inside library code can come out as another error (an import cut
    in two, a cleanup failing on what the stop left half done), and that error is not the run's."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (KeyboardInterrupt, Preempted)):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _record_end(d: Path, exc: BaseException) -> None:
    """Record how a training attempt ended without a result: interrupted (a signal, a time limit),
    failed by a user's mistake (its message says all: no traceback kept), or failed otherwise."""
    if (stop := _stop_in(exc)) is not None:
        # with this process's job (none locally): a job id another process wrote meanwhile would make
        # `suite status` record that job's end as this run's
        store.set_status(d, "interrupted", error=f"interrupted: {stop or type(stop).__name__}", **_slurm_ids())
    elif isinstance(exc, SuiteError):
        (d / "error.txt").unlink(missing_ok=True)
        store.set_status(d, "failed", error=str(exc))
    else:
        text = traceback.format_exc()
        store.set_status(d, "failed", error=text.strip().splitlines()[-1] if text.strip() else repr(exc))
        with contextlib.suppress(OSError):  # a full disk must not hide the failure it is recording
            files.write_text(d / "error.txt", text)


def _run(run: RunSpec, d: Path, *, progress: bool) -> dict[str, Any]:
    from suite.data.loaders import check_readable
    from suite.measure.env import code_version, environment
    from suite.models import get_model_info
    from suite.train import run as train
    from suite.train.distributed import world_size

    code = code_version()  # the code this process loaded: the tree may be committed or checked out meanwhile
    measured = _cached_measurement(d / "measure.json", run)
    if measured is None:
        check_readable(run.config.data)
        measured = _measure(run, d)
    metrics = train(run.config, d, resume=True, progress=progress)
    # the run's time over all its attempts (the README's figures): measured once, trained over sessions (the loop's clock)
    wall = metrics["wall_time_s"] + float(measured.get("wall_time_s") or 0.0)
    return {
        "run_id": run.run_id,
        "config": run.config.flat(),
        "metrics": {**metrics, "wall_time_s": wall},
        "complexity": measured.get("complexity"),
        "throughput": measured.get("throughput"),
        "attack": _attack(run.config, d),
        # processes: BN normalises each one's share of a batch, so results depend on their number;
        # model_source: a plugin's distribution and version (its code is not in git_commit, nor in the run id)
        "env": {**environment(run.config.device), **code, "processes": world_size(),
                "model_source": get_model_info(run.config.model.name).source},
    }


def _attack(config: RunConfig, d: Path) -> dict[str, Any] | None:
    """The trained network attacked (suite.measure.attack) if `config` asks for it: after training,
    from the final checkpoint, so a done run asked for it later is attacked the same way."""
    from suite.measure.attack import measure_attack

    return measure_attack(config, d) if config.measure.attack else None


def _views(config: RunConfig, d: Path) -> dict[str, float | None] | None:
    """The trained network's errors on the turned test images if `config` asks for them, from the
    final checkpoint: a done run asked for them later (training evaluates them itself)."""
    from suite.train.loop import evaluate_views

    return evaluate_views(config, d) if config.measure.views else None


def _measure(run: RunSpec, d: Path) -> dict[str, Any]:
    """Measure the run's model and cache the measurement, with its settings, in measure.json."""
    from suite.measure import measure_run

    start = time.perf_counter()
    measured = {**measure_run(run.config), "wall_time_s": time.perf_counter() - start, "settings": _cached_with(run)}
    store.write_json(d / "measure.json", measured)
    return measured


def _measure_again(run: RunSpec, d: Path, result: dict[str, Any]) -> dict[str, Any]:
    """A done run's stale measurement parts measured with the run's `measure.*` settings; its
    training and any current part are kept.

    The earlier result.json is kept in the run's archive. With throughput measured again, the
    result's `env` becomes the measurement's (timings mean nothing without it) and the one it was
    trained in stays as `trained_env`. Its config's `measure.*` values say what each part was made
    with. If measuring fails, the earlier result stands and status.json says why (`suite status`
    shows it beside the done run).
    """
    from suite.measure import measure_run
    from suite.measure.env import code_version, environment

    code = code_version()  # the code this process loaded: the tree may be committed or checked out while it measures
    stale = store.stale_parts(run, result)
    how = ", ".join(item for items in stale.values() for item in items)
    store.set_status(d, "running", host=socket.gethostname(), pid=os.getpid(), error=None, warnings=[],
                     measuring_again=how, **_slurm_ids())  # a running record beside a result: only this says why
    parts = {part: part in stale for part in store.MEASURED_WITH}
    only = dataclasses.replace(run.config, measure=dataclasses.replace(run.config.measure, **parts))
    try:
        with _recorded_warnings(d):
            measured = {**measure_run(only), "attack": _attack(only, d), "views": _views(only, d)}
    except BaseException as exc:
        if (stop := _stop_in(exc)) is not None:  # Ctrl-C, a signal, a time limit
            why = f"was interrupted ({stop or type(stop).__name__})"
        else:
            why = f"failed ({exc if isinstance(exc, SuiteError) else traceback.format_exc().strip().splitlines()[-1]})"
        store.set_status(d, "done", error=f"measuring again ({how}) {why}; the earlier measurement stands",
                         measuring_again=None)
        raise
    config = run.config.flat()
    made = result.get("config") or {}
    for part, keys in store.MEASURED_WITH.items():
        if part not in stale:  # kept: its settings are those it was made with
            config.update({k: made[k] for k in keys if k in made})
    again = {**result, "config": config, **{part: measured.get(part) for part in stale if part != "views"},
             "measured_at": store.now()}
    if "views" in stale:  # metrics of the trained network, as a run trained with measure.views has them
        again["metrics"] = {**result["metrics"], **measured["views"]}
    if "throughput" in stale:  # timings mean nothing without where they were taken
        again.update(env={**environment(run.config.device), **code},
                     trained_env=result.get("trained_env") or result.get("env"))
    store.replace_result(d, again)
    # The cache held the first measurement, which result.json no longer has (the archive does);
    # a --force rerun measures afresh anyway, since its settings are no longer the run's.
    (d / "measure.json").unlink(missing_ok=True)
    store.set_status(d, "done", error=None, measuring_again=None)
    return again


def _cached_with(run: RunSpec) -> dict[str, Any]:
    """The settings measure.json's parts are made with (the attack and the views come after training, not from it)."""
    after = (*store.MEASURED_WITH["attack"], *store.MEASURED_WITH["views"])
    return {k: v for k, v in run.config.measure_settings().items() if k not in after}


def _cached_measurement(path: Path, run: RunSpec) -> dict[str, Any] | None:
    """The measurement an earlier attempt cached with the run's `measure.*` settings; an unreadable
    one is set aside and measured again (it is only a cache: failing the run on it would fail every
    retry), and one made with other settings is measured again."""
    if not path.exists():
        return None
    try:
        measured = store.read_json(path)
        if isinstance(measured, dict):
            return measured if measured.get("settings") == _cached_with(run) else None
        problem = f"{path}: not a measurement record"
    except SuiteError as err:
        problem = str(err)
    warnings.warn(f"{problem}; moved to {store.set_aside(path)}, and the model is measured again", SuiteWarning)
    return None


@contextlib.contextmanager
def _recorded_warnings(d: Path) -> Iterator[None]:
    """The attempt's SuiteWarnings (a resume with another thread count, ...) go to status.json as
    well as to the log: the local runner prints them, and nobody reads a log that says nothing failed."""
    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        shown(message, category, *args, **kwargs)
        if issubclass(category, SuiteWarning):
            earlier = (store.state_of(d).status or {}).get("warnings") or []
            store.set_status(d, "running", warnings=[*earlier, str(message)])

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def rank() -> int:
    """This process's rank in a multi-process (DDP) run: torchrun's RANK, or the task of a
    multi-task SLURM step (the rules of suite.train.distributed); 0 for a single process."""
    from suite.train.distributed import slurm_step_tasks

    env = os.environ
    if "RANK" in env:
        return int(env["RANK"])
    if slurm_step_tasks() > 1:
        return int(env.get("SLURM_PROCID", "0"))
    return 0


def _follow(run: RunSpec, d: Path) -> dict[str, Any]:
    """A DDP rank other than 0: does what rank 0 decided (`_lead`). It trains alongside rank 0,
    which alone owns the run directory; the training loop already writes from rank 0 only. A done
    run (sent again to be measured otherwise) rank 0 does not train: joining the training would
    wait for it until the timeout."""
    from suite.train import run as train

    decided = _hear()
    if decided == BUSY:
        raise Busy(f"run {run.run_id} is already being executed by another process", file=str(d))
    if decided == NO_LOCK:
        raise SuiteError("rank 0 could not take the run's lock", file=str(d / ".lock"))
    if decided == DONE:
        return store.state_of(d).result or {"run_id": run.run_id}
    return {"run_id": run.run_id, "metrics": train(run.config, d, resume=True, progress=False)}


# What rank 0 decided under the run's lock, for the other ranks.
BUSY, NO_LOCK, DONE, TRAIN = "busy", "no lock", "done", "train"


def _tell(env: Dist | None, decided: str) -> None:
    """Rank 0's decision to the other ranks (none in a single process)."""
    if env is not None and env.enabled:
        torch.distributed.broadcast_object_list([decided], src=0)


def _hear() -> str:
    """Rank 0's decision (`_tell`)."""
    said: list[Any] = [None]
    torch.distributed.broadcast_object_list(said, src=0)
    return str(said[0])


def _slurm_ids() -> dict[str, Any]:
    """The SLURM job this attempt runs in, or None fields outside SLURM: an earlier attempt's job
    (and the state recorded when it ended) must not stay with the run, or following that job
    would mark this attempt ended. And the GPUs this attempt may use, in SLURM or not: an earlier
    attempt's would otherwise stay, naming GPUs this one never saw."""
    env = os.environ
    gpus = {"cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES")}
    if "SLURM_JOB_ID" not in env:
        return {"slurm_job_id": None, "slurm_state": None, "slurm_node": None, **gpus}
    array = env.get("SLURM_ARRAY_JOB_ID")
    task = env.get("SLURM_ARRAY_TASK_ID")
    job_id = f"{array}_{task}" if array and task else env["SLURM_JOB_ID"]
    return {"slurm_job_id": job_id, "slurm_state": None, "slurm_node": env.get("SLURMD_NODENAME"), **gpus}


def main(argv: list[str] | None = None) -> int:
    """`python -m suite.execute RUN_DIR`: run the planned run in RUN_DIR (used by the local runner)."""
    from suite.ablations.expand import RunSpec
    from suite.config import resolve

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):  # not a traceback (no argument) nor a run dir named `--help`
        print("usage: python -m suite.execute RUN_DIR\n\nRun the planned run in RUN_DIR (<out>/runs/<run_id>, its "
              "config.json written by `suite run`): what each local run's child process runs.",
              file=sys.stdout if argv in (["-h"], ["--help"]) else sys.stderr)
        return 0 if argv in (["-h"], ["--help"]) else 2
    warnings.showwarning = show_warning  # the run's log says `warning: ...`, as the console would
    processes.handle(processes.INTERRUPTS, _interrupt)
    d = Path(argv[0])
    try:
        # held while starting (processes.die_with_parent): the handlers are in place now
        signal.pthread_sigmask(signal.SIG_UNBLOCK, processes.INTERRUPTS)
        if (runner := processes.runner_gone()) is not None:  # as the SIGTERM it would have sent ends a run
            record_stop(d, os.getpid(), f"interrupted: its runner (pid {runner}) was gone before the run started")
            return 128 + signal.SIGTERM
        planned = store.read_json(d / "config.json")
        try:
            run = RunSpec(spec=planned["spec"], point=planned["point"], seed=planned["seed"],
                          config=resolve(planned["config"]), preset=planned.get("preset"))
        except (KeyError, TypeError) as exc:
            raise SuiteError(f"not a planned run ({type(exc).__name__}: {exc})", file=str(d / "config.json")) from None
        except SuiteError as err:  # a value this version cannot read: `suite run` plans the run again
            raise err.where(file=str(d / "config.json")) from None
        if run.run_id != d.name:
            raise SuiteError(f"config resolves to run {run.run_id}, not {d.name}: the code changed how runs are "
                             f"identified", file=str(d / "config.json"))
        execute(run, d.parent.parent)
    except Busy as err:
        print(f"skipped: {err}", file=sys.stderr)
        return BUSY_EXIT
    except SuiteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        return _stopped(d, exc)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        traceback.print_exc()
        if isinstance(stop := _stop_in(exc), Interrupted):  # the signal's doing, come out as another error
            return _stopped(d, stop)
        return 1
    return 0


def _stopped(d: Path, stop: Interrupted) -> int:
    """Record the run in `d` stopped by the signal `stop` names, and return the shell's status for it,
    as the runner exits. Recorded here, maybe before a word of this process's (stopped while
    starting), and not left to the runner: it records its runs' stops once all have stopped
    (seconds, a checkpoint being written), and killed meanwhile (`kill -9` after the Ctrl-C, a CI
    job's SIGKILL after its SIGTERM) or gone already (its death signal), it records nothing."""
    with contextlib.suppress(OSError, files.Gone):  # a full disk: the exit status says it all the same
        record_stop(d, os.getpid(), f"interrupted: {stop}")
    return 128 + signal.Signals[str(stop)]


def record_stop(d: Path, pid: int, why: str) -> None:
    """Record the run in `d` interrupted (`why`, its note) unless its process `pid` recorded its own
    end, or it is done: a process stopped while still starting, or in the instant between recording
    itself running and its handler taking over, left an earlier attempt's record (failed: not
    resumed by a plain `suite run`), none (missing), or `running`."""
    with store.idle(d, store.LOCK_WAIT_S) as free:
        if not free:  # another process executes the run now: the record is its own
            return
        now = store.state_of(d)
        status = now.status or {}
        if now.state == "done" or (status.get("pid") == pid and status.get("state") in ("interrupted", "failed")):
            return
        store.set_status(d, "interrupted", error=why)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Once: Ctrl-C reaches the run and its runner, which then passes it on (or a SIGTERM follows:
    `kill` of the runner after a Ctrl-C); a second signal would break off the recording of the
    first (the run was said to be stopped by the later one).
    The later ones go to `_ignore`, not SIG_IGN: a signal already pending when this runs would
    find SIG_IGN, and CPython then prints `OSError: Signal 15 ignored due to race condition`
    with a traceback into the run's log. One that comes while this handler runs, before it has
    put `_ignore` in place, CPython hands to this handler again, within it: that call returns,
    or its exception would replace the first signal's."""
    if _within_interrupt(frame):
        return
    processes.handle(processes.INTERRUPTS, _ignore)
    raise Interrupted(signal.Signals(signum).name)


def _within_interrupt(frame: FrameType | None) -> bool:
    """Whether `frame`, where a signal's handler was called, is in a call of `_interrupt`."""
    while frame is not None:
        if frame.f_code is _interrupt.__code__:
            return True
        frame = frame.f_back
    return False


def _ignore(signum: int, frame: object) -> None:
    """A stop signal after the first: the run is stopping already."""


if __name__ == "__main__":
    raise SystemExit(main())
