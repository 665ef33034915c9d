"""The embedded default executor: runs on this machine, N runs at a time, each in its own process.

A child process per run (`python -m suite.execute RUN_DIR`) means a crash, an out-of-memory kill
or a NaN in one run cannot take the others down, and memory is returned between runs. Threads are
split between concurrent runs so N runs do not oversubscribe the cores. Ctrl-C, SIGTERM or SIGHUP stops
the children (the signal is passed on: they record themselves as interrupted by it, keeping their
checkpoints, even while still starting; one that ended without a word, the runner records so);
a second signal while they stop kills them, and the runner records them so all the same; finished
runs are never touched, and the next `suite run` starts only what is missing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from suite import files, processes, store
from suite.ablations.expand import RunSpec
from suite.dispatch import queued
from suite.dispatch.plan import start_afresh
from suite.errors import SuiteError, SuiteWarning, shell_path
from suite.execute import BUSY_EXIT, record_stop

STOP_WAIT_S = 60.0  # how long the runs, together, get to record their stop before they are killed
STOP_POLL_S = 0.05  # how often the runner, waiting for them, looks for a further stop signal


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # being executed by another process; left alone
    stopped: list[str] = field(default_factory=list)  # their process got a signal and recorded it: they resume
    skipped: list[str] = field(default_factory=list)  # ended or queued by another process since planned: left so
    unstarted: list[str] = field(default_factory=list)  # their folder, or the store, deleted before they started
    interrupted: int = 0  # the signal that stopped the runner (SIGINT, SIGTERM, SIGHUP), else 0


def run_local(runs: list[RunSpec], out: Path, *, max_parallel: int = 1, threads: int | None = None,
              afresh: bool = False, progress: bool = True, poll_s: float = 0.2) -> Outcome:
    """Execute `runs` (already filtered to what must run) and wait for them, each with `threads`
    torch threads (default: the cores shared out among the `max_parallel` runs).

    With `afresh` (--force), each run's earlier files are archived just before it starts, so runs
    an interruption keeps from starting keep their results.
    """
    out = Path(out)
    threads = threads or max(1, (os.cpu_count() or 1) // max(1, max_parallel))
    env = processes.suite_env({**os.environ, "OMP_NUM_THREADS": str(threads), processes.RUNNER_PID: str(os.getpid())})
    active: dict[subprocess.Popen, Path] = {}
    outcome = Outcome()
    bar = tqdm(total=len(runs), desc="runs", unit="run", disable=not progress, dynamic_ncols=True)

    def book(d: Path, ended: str) -> None:
        bar.update(1)
        bar.set_postfix(done=len(outcome.done), failed=len(outcome.failed))
        if not progress:  # a line per run where no bar is drawn (logs, CI)
            settled = sum(map(len, (outcome.done, outcome.failed, outcome.busy, outcome.stopped, outcome.skipped,
                                    outcome.unstarted)))
            _say(f"run {d.name} {ended} ({settled} of {bar.total})", sys.stdout)

    planned: dict[Path, RunSpec] = {}  # all planned first, so that `suite status` knows them all
    for run in runs:
        d = store.run_dir(out, run.run_id)
        try:
            planned[store.plan(out, run)] = run
        except OSError as exc:
            book(d, _unwritable(d, exc, outcome))
    seen = {d: store.state_of(d).state for d in planned}  # as the caller chose them (`make_plan`)
    queue = list(planned)
    # announced: `suite status` in another terminal tells the runs still to start from missing ones;
    # SIGTERM or SIGHUP stops the children as Ctrl-C does
    with queued.announced(out, [d.name for d in queue]) as announced, processes.sigterm_raises() as stops:
        try:
            while queue or active:
                while queue and len(active) < max_parallel:
                    d = queue.pop(0)
                    announced.started(d.name)
                    if not d.is_dir():  # deleted since planned (`rm -rf`): not made again
                        if not (out / "runs").is_dir():  # the whole store: said once, for all still queued
                            _store_gone(out, [d, *queue], outcome)
                            bar.update(len(queue) + 1)
                            queue.clear()
                        else:
                            book(d, _not_started(d, outcome))
                        continue
                    now = store.state_of(d)
                    if not afresh and _done_as_asked(now, planned[d]):  # by the other runner of the spec, say
                        outcome.done.append(d.name)
                        book(d, "done by another process")
                        continue
                    if why := _settled_meanwhile(now.state, seen[d]):
                        outcome.skipped.append(d.name)
                        book(d, why)
                        continue
                    with stops.held():  # from archiving (--force) to tracking: a started run is told to stop
                        try:
                            if afresh:
                                start_afresh([planned[d]], out)
                            log = open(d / "log.txt", "ab")
                        except (OSError, files.Gone) as exc:  # gone: deleted in the instant since the check
                            book(d, _not_started(d, outcome) if not d.is_dir() else _unwritable(d, exc, outcome))
                            continue
                        with log:  # the child has its own copy of the descriptor
                            child = subprocess.Popen([sys.executable, "-m", "suite.execute", str(d)], stdout=log,
                                                     stderr=subprocess.STDOUT, env=env,
                                                     preexec_fn=processes.die_with_parent)
                        active[child] = d
                time.sleep(poll_s)
                for child in [c for c in active if c.poll() is not None]:
                    with stops.held():  # an ended run leaves the list booked (counted, its end recorded)
                        d = active.pop(child)
                        try:
                            ended = _settle(child.returncode, d, planned[d], outcome, pid=child.pid, threads=threads)
                        except (OSError, files.Gone) as exc:  # gone: deleted as its end was being recorded
                            ended = _gone(d, outcome) if not d.is_dir() else _unwritable(d, exc, outcome)
                        book(d, ended)
            _stopped_elsewhere(out, outcome)
        except KeyboardInterrupt as stop:  # a further stop signal raises nowhere now (`Stops.again`): it hurries the stop
            outcome.interrupted = stop.signum if isinstance(stop, processes.Terminated) else signal.SIGINT
            _stop(list(active), outcome.interrupted, stops)
            for child, d in active.items():
                if _done_as_asked(store.state_of(d), planned[d]):  # it finished before the signal, or as it came
                    outcome.done.append(d.name)
                elif child.returncode == BUSY_EXIT:  # left to the process executing it, which records its end
                    outcome.busy.append(d.name)
                elif not d.is_dir():
                    _gone(d, outcome)
                else:
                    try:
                        record_stop(d, child.pid, f"interrupted: {signal.Signals(outcome.interrupted).name}")
                    except (OSError, files.Gone) as exc:  # a full disk, say: the other runs are booked all the same
                        _gone(d, outcome) if not d.is_dir() else _unwritable(d, exc, outcome)
            _stopped_elsewhere(out, outcome)
        finally:
            bar.close()
    return outcome


def _stop(children: list[subprocess.Popen], signum: int, stops: processes.Stops) -> None:
    """Pass the runner's stop signal `signum` on to `children` (the run records it), give them
    STOP_WAIT_S together to stop (a checkpoint being written, a measurement), and kill those still
    running then, or as soon as a further stop signal says the user will not wait."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signum)
    deadline = time.monotonic() + STOP_WAIT_S  # one for all: not STOP_WAIT_S for each in turn
    for child in children:
        while child.poll() is None and stops.again is None and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):  # in slices: a further signal interrupts no wait
                child.wait(timeout=min(left, STOP_POLL_S))
    if stops.again is not None and any(child.poll() is None for child in children):
        _say(f"{signal.Signals(stops.again).name} again: killing the runs still stopping")
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()


def _stopped_elsewhere(out: Path, outcome: Outcome) -> None:
    """Book as stopped the runs left to another process that has stopped them since (the other
    `suite run` of the spec interrupted): the console said they were left to a process executing
    them, and at the end no process does; the same command resumes them, as it does this one's."""
    for run_id in [r for r in outcome.busy if store.state_of(store.run_dir(out, r)).state == "interrupted"]:
        outcome.busy.remove(run_id)
        outcome.stopped.append(run_id)


def _settled_meanwhile(now: str, seen: str) -> str | None:
    """Why not to start a run, in state `now`, that another process (an overlapping spec's `suite
    run`, a submission) ended without a result or queued on SLURM since this runner planned it (in
    state `seen`): a plain `suite run` leaves those to --retry-failed and to their job, whichever
    runner reaches them first."""
    if now == seen or now not in ("failed", "cancelled", "pending"):
        return None
    if now == "pending":
        return "skipped: queued on SLURM meanwhile, left to its job"
    return f"skipped: {now} meanwhile in another process (`--retry-failed` runs it again)"


def _settle(code: int, d: Path, run: RunSpec, outcome: Outcome, pid: int, threads: int) -> str:
    """Book the finished child `pid` of `run` and say how it ended; a child killed before it could
    record anything is marked failed here, with the `threads` it was given (`suite status`'s rerun
    hint keeps them, as it keeps those a child records)."""
    if code == BUSY_EXIT:
        outcome.busy.append(d.name)
        return "left to the process running it"
    if not d.is_dir():
        return _gone(d, outcome)
    try:  # none: the child failed before it could record anything (an unreadable config.json)
        status = store.read_json(d / "status.json") if (d / "status.json").exists() else {}
    except SuiteError:  # a corrupt record: state_of below says so
        status = {}
    for message in status.get("warnings") or [] if isinstance(status, dict) else []:  # the log is not read
        warnings.warn(f"run {d.name}: {message}", SuiteWarning)
    now = store.state_of(d)
    if _done_as_asked(now, run):  # whatever its exit status: a signal may come once it is done
        outcome.done.append(d.name)
        # a run another process finished since this one planned it: its child found the result and left
        return "done" if status.get("pid") == pid else "done by another process"
    if (signum := _stopped_by(code)) is not None:
        # someone stopped this child (kill, Ctrl-C on its group): a plain `suite run` resumes the run,
        # which a failed run would need --retry-failed for. Its exit status says so even when it was
        # still starting, before it could record a word (an earlier attempt's record is no word of its)
        record_stop(d, pid, f"interrupted: {signum.name}")
        outcome.stopped.append(d.name)
        return "interrupted"
    reason = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
    hint = " (out of memory?)" if code == -signal.SIGKILL else ""
    if code < 0:  # its log ends without a word of why
        with open(d / "log.txt", "a") as log:
            print(f"suite run: the run process was {reason}{hint}", file=log)
    with store.idle(d, store.LOCK_WAIT_S) as free:
        if not free:  # another process (the other runner of the spec) took the run since: the record is its
            outcome.busy.append(d.name)
            return "left to the process running it"
        now = store.state_of(d)
        status = now.status or {}
        if now.state in ("running", "missing", "interrupted") or \
                (now.state in ("failed", "cancelled") and status.get("pid") != pid):  # an earlier attempt's end
            store.set_status(d, "failed", error=f"run process {reason}{hint}; see {shell_path(d / 'log.txt')}",
                             threads=threads)
        elif now.state == "done" and status.get("state") == "running" and status.get("measuring_again"):
            # died while measuring a done run again, before it could say so: the result stands
            store.set_status(d, "done", error=f"measuring it again stopped, the earlier measurement stands: run "
                                              f"process {reason}{hint}; see {shell_path(d / 'log.txt')}")
    outcome.failed.append(d.name)
    return "failed"


def _done_as_asked(now: store.RunState, run: RunSpec) -> bool:
    """Whether `now`, a run's state in the store, is `run` done and measured as it asks: nothing
    left for the same command, so the console counts it done as the store does, however its
    process ended (a signal once its status said done: exit 143). A done run stopped while being
    measured again keeps its earlier measurement, and the same command measures it again."""
    return now.state == "done" and not store.measured_otherwise(run, now.result or {})


def _stopped_by(code: int) -> signal.Signals | None:
    """The stop signal (processes.INTERRUPTS) a run process's exit status `code` says ended it: killed by it
    while still starting (its handlers not installed yet), or stopped by it (exit 128 + signal,
    `python -m suite.execute`'s); None for any other end."""
    for signum in processes.INTERRUPTS:
        if code in (-signum, 128 + signum):
            return signum
    return None


def _gone(d: Path, outcome: Outcome) -> str:
    """Book as failed a run whose folder was deleted while it ran (`rm -rf` of the run, or of the
    store), saying so on stderr: recording its end would make the folder again, holding a status
    alone (no config.json: a folder that looks like a run and is none). Nothing of it is left, so
    the next `suite run` starts it afresh."""
    outcome.failed.append(d.name)
    _say(f"error: {d}: the run's folder was deleted while the run was running; run {d.name} failed, nothing "
         "of it is kept, and the next `suite run` starts it afresh")
    return "failed"


def _not_started(d: Path, outcome: Outcome) -> str:
    """Book as not started a queued run whose folder was deleted before it started, saying so on stderr."""
    outcome.unstarted.append(d.name)
    _say(f"error: {d}: the run's folder was deleted before the run started; run {d.name} was not started, and the "
         "next `suite run` starts it afresh")
    return "not started"


def _store_gone(out: Path, queued: list[Path], outcome: Outcome) -> None:
    """Book as not started the runs still queued when the store was deleted (`rm -rf <out>`), said once:
    each would otherwise fail on a folder that is not there (or make the store again)."""
    outcome.unstarted += [d.name for d in queued]
    _say(f"error: {out}: the store was deleted while `suite run` ran; its {len(queued)} queued run"
         f"{'s were' if len(queued) != 1 else ' was'} not started and nothing was made again (runs and tables "
         "stored elsewhere are untouched)")


def _unwritable(d: Path, exc: Exception, outcome: Outcome) -> str:
    """Book as failed a run whose directory this process cannot write (another user's, a read-only
    copy), saying so on stderr, as its status.json cannot: the runner goes on with the others."""
    outcome.failed.append(d.name)
    why = getattr(exc, "strerror", None) or exc
    _say(f"error: {d}: cannot write into the run directory ({why}); run {d.name} failed, and its status.json does not "
         "say so")
    return "failed"


def _say(message: str, to: TextIO | None = None) -> None:
    """Print `message` on `to` (stderr by default), if it takes it: a closed terminal (SIGHUP, then
    every write fails with EIO) must not stop the runner stopping, booking and recording its runs."""
    with contextlib.suppress(OSError):
        print(message, file=to or sys.stderr, flush=True)
