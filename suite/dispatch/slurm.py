"""The SLURM executor: runs go to the cluster as job arrays through submitit, without waiting.

Submission (`submit`): the code is snapshotted (suite.dispatch.snapshot), the runs are split into
chunks of at most the cluster's `MaxArraySize` and each chunk is ONE sbatch (`--array=0-N%P`) of
`SlurmRun` tasks; every run gets status `pending` with its `<array>_<task>` id, then the arrays
are released. Jobs are submitted held and released only once the store knows their ids, so a
task that starts at once can never have its own status overwritten by the submitter. Each
`pending` is written under the run's lock: a run another process (a local `suite run`) started
or ended since it was planned keeps that process's status, and its task is cancelled while held.

In the job, `SlurmRun` calls `suite.execute.execute`, the same function the local executor runs.
Time limits and pre-emption: sbatch sends USR2 `signal_delay_s` before the limit (submitit's
`--signal`); our handler only calls `request_checkpoint()`, so the training loop saves the exact
mid-epoch state at its next sync point and raises `Preempted`, and the task then requeues itself
(`scontrol requeue <array>_<task>`) and exits. The requeued task resumes from that checkpoint,
which it finds from the run directory at run time (nothing about it is frozen in the pickle).
Each requeue is counted in status.json (`requeues`); past `max_requeues` the run is recorded as
failed, its checkpoint kept for `suite run --retry-failed`. submitit's own handler (checkpoint
and requeue at once, before the loop can save) is replaced while the run executes; a signal that
comes earlier, while the task still imports, goes through it, and that requeue counts as well.
SLURM may send the signal up to 60 s earlier than `signal_delay_s` before the limit (`man sbatch`).

Following (`refresh`): for runs the store believes queued or running, `squeue` gives the SLURM
state while slurmctld holds the job, and `sacct` (read by submitit's parser) after it
forgets it; a job that ended without a result (cancelled, killed at the time limit, out of
memory, node failure) is recorded in the store as cancelled or failed (with its log tail as
error.txt), so nothing stays `running` forever; so is an array task cancelled while it waited, of
which SLURM keeps no record (`_dropped`); never one another user submitted where the cluster hides
other users' jobs (`_unseen`). `cancel` scancels.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import math
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from suite import files, locks, processes, store
from suite.ablations.expand import RunSpec
from suite.dispatch import node_asks, sbatch_check, snapshot, visibility
from suite.dispatch.cluster import ClusterOptions, summary
from suite.dispatch.plan import start_afresh_dir
from suite.errors import SuiteError, SuiteWarning, close_matches, count, shell_path, show_warning, together
from suite.models import get_model_info

T = TypeVar("T")
# SLURM states of a job that may still run (or run again); anything else is final.
# Not a SLURM state: slurmctld did not answer (down, unreachable), so nothing is known or decided.
NO_ANSWER = "NO_ANSWER"
# Not a SLURM state: another user's job, which the cluster's PrivateData hides from this one (visibility).
HIDDEN = "HIDDEN"
# Not a SLURM state: a job submitted on another cluster than this one (visibility): not asked about here.
ELSEWHERE = "ELSEWHERE"
ALIVE = frozenset({"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "COMPLETING", "CONFIGURING",
                   "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "UNKNOWN", NO_ANSWER, HIDDEN,
                   ELSEWHERE})
# A final SLURM state of a run that never wrote its result, as a store state.
ENDED = {"CANCELLED": "cancelled", "PREEMPTED": "interrupted"}  # everything else: failed
TRACKED = ("pending", "running", "interrupted")  # store states that may belong to a live job
# pending reasons of a job that waits until the cluster changes, in the words `suite status` explains them
NEVER_STARTS = {"BadConstraints": "no node can meet the request (GPUs, memory, CPUs, constraint)",
                "PartitionNodeLimit": "more nodes than the partition allows (or the nodes it needs are down or "
                                      "drained)",
                "PartitionTimeLimit": "a time limit above the partition's",
                "PartitionConfig": "a request the partition's configuration does not allow (CPUs, memory, GPUs)"}
# A job that neither slurmctld nor the accounting knows this long after its submission is lost (a
# cluster reset, a purged or never-recorded job; without accounting, any job that ended without
# writing its state, once slurmctld forgets it after MinJobAge): its run fails, so `suite run
# --retry-failed` takes it again. Until then UNKNOWN is a job the accounting has not heard of yet:
# it hears through slurmctld's queue of records for slurmdbd, seconds late or, after slurmdbd was down,
# much later, and submitit's files tell a killed task from a running one no sooner (README, SLURM).
LOST_AFTER_S = 600
IO_THREADS = 16  # store writes are fsync-bound: in parallel, 1,000 statuses take ~0.5 s instead of ~6 s


@dataclass(frozen=True)
class Submission:
    job_ids: dict[str, str]  # run_id -> `<array>_<task>` (or `<job>` for a chunk of one run)
    arrays: list[str]  # one SLURM job id per sbatch call that has a run to execute
    code: snapshot.Snapshot
    left: list[str]  # runs another process took since they were planned: their tasks are cancelled


# ------------------------------------------------------------------------------------- submit
@contextlib.contextmanager
def submission_lock(out: Path, timeout_s: float = 600) -> Iterator[None]:
    """Held from planning to the pending statuses, so two `suite run`s on one store cannot both
    submit the runs that neither has seen pending yet."""
    Path(out).mkdir(parents=True, exist_ok=True)  # the store `suite run` makes: the lock is in it
    lock = locks.Lock(Path(out) / ".submit.lock")
    try:
        try:
            lock.acquire(timeout=0)
        except locks.Held:  # said, so that the wait does not pass for a hang
            print(f"waiting for another `suite run` submitting to this store ({lock.lock_file})",
                  file=sys.stderr, flush=True)
            lock.acquire(timeout=timeout_s)
    except locks.Held:
        raise SuiteError(f"another `suite run` has been submitting to this store for {timeout_s:.0f} s",
                         file=str(Path(out) / ".submit.lock")) from None
    try:
        yield
    finally:
        lock.release()


def submit(runs: Sequence[RunSpec], out: Path, options: ClusterOptions, *, cluster: Reading, name: str = "suite",
           afresh: bool = False, again: str = "suite run --executor slurm --retry-failed") -> Submission:
    """Submit `runs` (already filtered to what must run) and return as soon as SLURM has them.
    `cluster`: what `check_options` read of it, which sizes the arrays (`layout`).

    `afresh` (--force): archive what the runs left behind, once sbatch has taken them (held), so a
    refused submission hides no result. `again` is the command that submits them again with the
    same options; each run records it, so the hints after a cancel or an exhausted requeue budget
    can print it. Refused or interrupted (Ctrl-C, SIGTERM, SIGHUP), it is withdrawn: the held
    jobs are cancelled and the store is left as it was (`_discard`: no snapshot or submitit file of its own)."""
    if shutil.which("sbatch") is None:
        raise SuiteError("`sbatch` not found: submit from a SLURM login node", key="executor")
    with processes.sigterm_raises():  # `kill` or a closed ssh session withdraws it as Ctrl-C does
        out = Path(out).resolve()
        size, shares = layout(len(runs), options, cluster)  # before anything is held: none to withdraw
        found = _listing(out)  # what a withdrawn submission removes is what was not there
        code = snapshot.take(out)
        executor = make_executor(out, options, code, name=name)
        planned = {store.run_dir(out, r.run_id) for r in runs if not store.run_dir(out, r.run_id).exists()}
        dirs = _parallel(lambda r: store.plan(out, r), runs)
        before = _parallel(_status_bytes, dirs)  # read before anything is held: a failure here queues nothing
        tasks = [SlurmRun(r, str(out), str(code.path), options.max_requeues,
                          get_model_info(r.config.model.name).source) for r in runs]
        try:
            jobs = submit_arrays(executor, tasks, size, shares)
        except BaseException as err:  # refused or interrupted: nothing queued (submit_arrays withdrew it)
            _parallel(_unplan, list(planned))  # nor planned
            _discard(out, found, code)
            if isinstance(err, SuiteError):  # sbatch names no option: show what was asked, so the culprit can be found
                err.said(f" (the options sent, beyond the defaults: {summary(options)})")
            raise
        archived: dict[Path, Path] = {}  # filled run by run: an interruption midway knows what it moved
        hold = bool(options.sbatch.get("hold"))  # recorded: `suite status` tells this hold from one left behind
        try:
            fields = dict(slurm_state=None, submitted_at=store.now(), executor="slurm", code=code.record(), requeues=0,
                          error=None, again=again, cancelled_at=None, sbatch_hold=hold,
                          slurm_user=visibility.user_name(), slurm_cluster=_cluster_name(cluster))
            claimed = _parallel(lambda djb: _claim(*djb, afresh=afresh, archived=archived, fields=fields),
                                list(zip(dirs, jobs, before)))
            taken = [(r, j) for r, j, ok in zip(runs, jobs, claimed) if ok]
            left = [(r, j) for r, j, ok in zip(runs, jobs, claimed) if not ok]
            if left:  # held, so none has started: cancelled, never to find its run busy
                subprocess.run(["scancel", *(j.job_id for _, j in left)], capture_output=True, timeout=60)
            arrays = list(dict.fromkeys(array_of(j.job_id) for _, j in taken))
            if not hold and arrays:  # a hold the user asked for is theirs to release
                try:
                    _slurm("scontrol", "release", ",".join(arrays))
                except SuiteError as err:  # e.g. more CPUs than a node has: sbatch takes it held, release refuses
                    raise SuiteError(f"SLURM took the jobs but will not run them: {err.message} (the options sent, "
                                     f"beyond the defaults: {summary(options)})", key="cluster") from None
        except BaseException:  # a refusal or an interruption: withdraw the held jobs, leave the store as it was
            try:
                subprocess.run(["scancel", *dict.fromkeys(array_of(j.job_id) for j in jobs)], capture_output=True,
                               timeout=60)
            finally:
                _parallel(lambda djb: _restore(djb[0], djb[1].job_id, djb[2], archived.get(djb[0])),
                          list(zip(dirs, jobs, before)))
                _parallel(_unplan, list(planned))
                _discard(out, found, code)
            raise
        return Submission({r.run_id: j.job_id for r, j in taken}, arrays, code, [r.run_id for r, _ in left])


# What submitit writes in `<out>/submitit/` when it submits (never a job's log or result): each
# task's pickle and the sbatch script under a temporary name, then renamed after the job id.
SUBMISSION_FILE = re.compile(r"[0-9a-f]{32}\.pkl|\.submission_file_[0-9a-f]{32}\.sh|\d+(_\d+)?_submitted\.pkl|"
                             r"\d+_submission\.sh")


def _listing(out: Path) -> dict[str, set[str] | None]:
    """The names in the store's `code/`, `submitit/` and `runs/` folders (None: no such folder)."""
    return {sub: set(os.listdir(out / sub)) if (out / sub).is_dir() else None for sub in ("code", "submitit", "runs")}


def _discard(out: Path, found: Mapping[str, set[str] | None], code: snapshot.Snapshot) -> None:
    """Remove what a withdrawn submission added to the store, so that it is as it was (`found`:
    `_listing` before it): its code snapshot, unless it was there before or a run's record names it
    (a job of another submission imports it), submitit's submission files, and the folders it made
    (`runs/` too, its planned runs taken back by `_unplan`), if empty. Submissions to a store take
    turns (`submission_lock`), so none other made them.
    Best effort: a removal refused (permissions) leaves files, never hides why it was withdrawn."""
    with contextlib.suppress(OSError):
        _discard_made(out, found, code)


def _discard_made(out: Path, found: Mapping[str, set[str] | None], code: snapshot.Snapshot) -> None:
    """`_discard` itself, any removal refused raising (`_discard` swallows it)."""
    runs = [d for d in (out / "runs").iterdir() if d.is_dir()] if (out / "runs").is_dir() else []
    if code.digest not in (found["code"] or set()) and not any(_parallel(lambda d: _names(d, code), runs)):
        snapshot.discard(code)
    folder = out / "submitit"
    made = set(os.listdir(folder)) if folder.is_dir() else set()
    for name in made - (found["submitit"] or set()):
        if SUBMISSION_FILE.fullmatch(name):
            (folder / name).unlink(missing_ok=True)
    for sub, names in found.items():
        if names is None:
            with contextlib.suppress(OSError):  # not empty: kept
                (out / sub).rmdir()


def _names(d: Path, code: snapshot.Snapshot) -> bool:
    """Whether the status of the run in `d` names the snapshot `code` (one it cannot read: as if it did)."""
    try:
        return code.digest.encode() in (_status_bytes(d) or b"")
    except OSError:
        return True


def _status_bytes(d: Path) -> bytes | None:
    path = d / "status.json"
    return path.read_bytes() if path.is_file() else None


def _claim(d: Path, job: Any, before: bytes | None, *, afresh: bool, archived: dict[Path, Path],
           fields: dict[str, Any]) -> bool:
    """Record the run as pending for `job` (archiving what it left behind, with `afresh`), under its
    lock: whether it did. A run whose lock another process holds (a local `suite run` that started
    it since it was planned), or whose status another process wrote meanwhile (it ran, or ran and
    stopped), is that process's: its `running` must not become this job's `pending`."""
    with store.idle(d, wait_s=store.LOCK_WAIT_S) as free:
        if not free or _status_bytes(d) != before:
            return False
        if afresh:
            start_afresh_dir(d, archived)
        store.set_status(d, "pending", **fields, slurm_job_id=job.job_id, slurm_log=str(job.paths.stderr))
        return True


def _unplan(d: Path) -> None:
    """Take back a run directory this submission planned, so a withdrawn submission leaves no run
    in the store; one that holds anything but its config and lock (another process planned and
    started the run meanwhile) is that process's and stays."""
    with contextlib.suppress(OSError):
        if {p.name for p in d.iterdir()} - {".lock"} == {"config.json"}:
            (d / "config.json").unlink()
            (d / ".lock").unlink(missing_ok=True)
            d.rmdir()


def _restore(d: Path, job_id: str, status: bytes | None, archive: Path | None) -> None:
    """A run directory as it was before a withdrawn submission: its archived files back, and its
    status; unless a process has taken the run since (it holds the lock, or wrote its own status),
    whose files and status are its own and stay, or it was deleted (`rm -rf`): nothing to restore."""
    with contextlib.suppress(files.Gone), store.idle(d, wait_s=store.LOCK_WAIT_S) as free:
        if not free or not _ours(d, job_id, status):
            return
        if archive is not None:
            store.unarchive(d, archive)
        if status is None:
            (d / "status.json").unlink(missing_ok=True)
        else:
            with files.replace(d / "status.json", durable=True, binary=True) as f:
                f.write(status)


def _ours(d: Path, job_id: str, before: bytes | None) -> bool:
    """Whether the run's status is the one the submission of `job_id` found or wrote (pending for it)."""
    if _status_bytes(d) == before:
        return True
    state = store.state_of(d).status or {}
    return state.get("state") == "pending" and state.get("slurm_job_id") == job_id


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def array_lengths(n_tasks: int, size: int) -> list[int]:
    """The number of tasks in each job array a submission of `n_tasks` is split into (`submit_arrays`
    makes one array per `size` tasks)."""
    return [len(chunk) for chunk in _chunks(range(n_tasks), size)]


def array_shares(lengths: Sequence[int], parallelism: int) -> list[int]:
    """Each array's throttle (sbatch `--array=...%N`) for arrays of `lengths` tasks: `parallelism`
    shared out among them, none given more than it has tasks, so that the grid, not each array of
    it, runs at most `parallelism` tasks at once. Fewer than one per array is refused: SLURM's throttle
    is per array, so a grid split into more arrays than that would run more at once."""
    if parallelism < len(lengths):
        raise SuiteError(f"{parallelism} is below the {len(lengths)} job arrays these "
                         f"{sum(lengths)} runs are split into (up to {max(lengths)} runs each), and each array "
                         f"runs at least one task at once: set array_parallelism {len(lengths)} or more, a larger "
                         "max_array_size if the cluster's MaxArraySize allows it, or submit fewer runs at a time "
                         "(a preset of part of the grid)", key="array_parallelism")
    shares, left = [0] * len(lengths), parallelism
    while left:  # round-robin, so that shares differ by one at most where the arrays have the tasks
        open_ = [i for i, n in enumerate(lengths) if shares[i] < n]
        if not open_:
            break
        for i in open_[:left]:
            shares[i] += 1
        left -= min(left, len(open_))
    return shares


def submit_arrays(executor: Any, tasks: Sequence[Callable[[], Any]], size: int,
                  shares: Sequence[int] | None = None) -> list[Any]:
    """One sbatch per chunk of at most `size` tasks (submitit's submit_array); the jobs in task order.
    `shares`: each chunk's array_parallelism (`array_shares`), else the executor's for every chunk.
    A refused sbatch cancels the chunks already submitted (they are held) and raises SuiteError."""
    from submitit.core.utils import FailedJobError

    jobs: list[Any] = []
    try:
        for i, chunk in enumerate(_chunks(tasks, size)):
            if shares is not None:
                executor.update_parameters(array_parallelism=shares[i])
            with contextlib.redirect_stderr(io.StringIO()):  # submitit echoes sbatch's error; ours says it once
                jobs += executor.submit_array(list(chunk))
    except BaseException as exc:  # a refusal or Ctrl-C between chunks: the chunks taken (held) are withdrawn
        if jobs:
            subprocess.run(["scancel", *{array_of(j.job_id) for j in jobs}], capture_output=True, timeout=60)
        if isinstance(exc, FailedJobError):
            raise SuiteError(f"sbatch refused the job: {str(exc).strip()}", key="cluster") from None
        raise
    return jobs


def make_executor(out: Path, options: ClusterOptions, code: snapshot.Snapshot, *, name: str) -> Any:
    """A submitit SlurmExecutor for `options`; jobs start held (see `submit`) and import `code`."""
    import submitit

    executor = submitit.SlurmExecutor(folder=Path(out) / "submitit", max_num_timeout=options.max_requeues)
    params: dict[str, Any] = dict(
        job_name=f"suite-{name}", time=options.timeout_min, nodes=options.nodes,
        ntasks_per_node=options.tasks_per_node, signal_delay_s=options.signal_delay_s,
        array_parallelism=options.array_parallelism, setup=[*options.setup, *job_environment(code)],
        additional_parameters={"hold": True, **options.sbatch},
        # A DDP task that fails (or is killed) ends the step: its peers would otherwise wait for it in
        # torch's rendezvous or a collective for 30 minutes, holding the allocation.
        srun_args=["--kill-on-bad-exit=1"],
    )
    optional = dict(partition=options.partition, account=options.account, qos=options.qos,
                    cpus_per_task=options.cpus_per_task, constraint=options.constraint,
                    gpus_per_node=options.gpus_per_node or None,
                    mem=None if options.mem_gb is None else f"{math.ceil(options.mem_gb * 1024)}M")
    params.update({k: v for k, v in optional.items() if v is not None})
    executor.update_parameters(**params)
    return executor


def job_environment(code: snapshot.Snapshot) -> list[str]:
    """Shell lines of every job: import the snapshot, report its commit (the snapshot is no git
    checkout; see suite.measure.env.code_version), one torch thread per allotted CPU."""
    lines = [f"export PYTHONPATH={shlex.quote(str(code.path))}${{PYTHONPATH:+:$PYTHONPATH}}",
             "export PYTHONSAFEPATH=1",
             "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}"]
    if code.git_commit:
        lines += [f"export SUITE_GIT_COMMIT={code.git_commit}", f"export SUITE_GIT_DIRTY={int(bool(code.git_dirty))}"]
    return lines


def max_array_size(cluster: Reading) -> int:
    """The cluster's MaxArraySize: array indices run 0 .. MaxArraySize - 1."""
    found = _config_number(cluster.config_text(), "MaxArraySize")
    if found is None:
        raise SuiteError("`scontrol show config` has no MaxArraySize; set cluster option max_array_size",
                         key="max_array_size")
    if found == 0:  # split into arrays of 0 tasks, the grid was a ValueError traceback
        raise SuiteError("this cluster has job arrays disabled (MaxArraySize=0 in `scontrol show config`), and runs "
                         "are submitted as job arrays: ask the cluster's administrators, or run them with "
                         "--executor local", key="cluster")
    return found


def controller_down() -> str | None:
    """What `scontrol ping` says where no slurmctld (primary or backup) answers; None where one
    does, or where there is no scontrol (off the cluster). The checks before a submission say
    nothing when SLURM does not answer: without this, a dry run gave no sign that they were not made."""
    if shutil.which("scontrol") is None:
        return None
    try:
        done = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return "slurmctld did not answer `scontrol ping` in 120 s"
    said = " ".join((done.stdout + done.stderr).split())
    if done.returncode == 0 and ping_answered(done.stdout):
        return None
    return f"slurmctld did not answer (`scontrol ping`: {said or f'exit status {done.returncode}'})"


def ping_answered(text: str) -> bool:
    """Whether `scontrol ping`'s `text` says a slurmctld answers. Slurm 20.11 and later say one line
    per controller (`Slurmctld(primary) at a is DOWN`, `Slurmctld(backup) at b is UP`); earlier ones
    one line of both (`Slurmctld(primary/backup) at a/b are DOWN/UP`, `a/(NULL) are UP/DOWN` without a
    backup), read as its first state only, a primary down and its backup up was taken for no answer."""
    return any("UP" in states.split("/") for states in re.findall(r"\b(?:is|are) ([A-Z]+(?:/[A-Z]+)*)\b", text))


def array_size(options: ClusterOptions, n_runs: int, cluster: Reading) -> int:
    """The most tasks an array of a submission of `n_runs` holds: max_array_size, else the
    cluster's MaxArraySize. A max_array_size above the cluster's, which a grid this large would
    use (indices from 0 to one below it), is refused where it was given: sbatch refused such an
    array only at submission, as an 'Invalid job array specification' naming no option."""
    if options.max_array_size is None:
        return max_array_size(cluster)
    try:
        limit = max_array_size(cluster)
    except SuiteError:  # not read (set here for that): the option is taken as given
        return options.max_array_size
    if min(options.max_array_size, n_runs) > limit:
        raise options.origin("max_array_size").error(
            f"{options.max_array_size} is above this cluster's MaxArraySize ({limit}, from `scontrol show config`), "
            f"and these {n_runs} runs would use array indices up to {min(options.max_array_size, n_runs) - 1}, which "
            f"sbatch refuses: set max_array_size {limit} or less, or leave it unset")
    return options.max_array_size


def _config_number(config: str, name: str) -> int | None:
    """The number `scontrol show config` gives for `name` (None: it lists no number for it)."""
    found = re.search(rf"^{name}\s*=\s*(\d+)", config, re.M)
    return int(found.group(1)) if found else None


def room_mistake(n_runs: int, cluster: Reading) -> SuiteError | None:
    """Why `n_runs` more jobs cannot all be queued now (`too_many_jobs`), from the cluster's
    MaxJobCount and the jobs slurmctld holds; None where they fit or SLURM does not answer (the
    submission then says whatever sbatch says)."""
    try:
        limit = _config_number(cluster.config_text(), "MaxJobCount")
        held = len(_slurm("squeue", "--all", "--noheader", "--array", "--states=all", "--format=%i").split())
    except SuiteError:
        return None
    return None if limit is None else too_many_jobs(n_runs, limit, held)


def too_many_jobs(n_runs: int, limit: int, held: int) -> SuiteError | None:
    """Why `n_runs` jobs (array tasks: each counts as a job) cannot be added to the `held` that
    slurmctld holds, at most MaxJobCount=`limit`: slurmctld refuses a job that would bring its count
    to the limit (which sbatch retries before it gives up), so a grid split into arrays would be
    withdrawn part-way. `held` counts the jobs this user can see (queued, running, or ended less
    than MinJobAge ago, which slurmctld still holds): where others' jobs are hidden, only a
    shortfall these alone make is found."""
    room = max(limit - 1 - held, 0)
    if n_runs <= room:
        return None
    fits = f"submit at most {room} runs at a time (a preset of part of the grid), and the rest once they have " \
        "ended; or wait until it holds fewer" if room else "no run fits now: wait until it holds fewer"
    return SuiteError(f"{count(n_runs, 'run')} do not fit in the cluster's queue: slurmctld holds at most "
                      f"MaxJobCount={limit} jobs, each array task counting as one, and {held} now (queued, running, "
                      f"or ended less than MinJobAge ago), and refuses the job that would reach the limit: {fits}; or "
                      "ask the cluster's administrators for a larger MaxJobCount", key="cluster")


@dataclass(frozen=True)
class Reading:
    """What the checks before a submission read of the cluster, read once and shared by them and
    the submission (or the dry run), where each check used to run `scontrol show config` or `sinfo`
    itself. A command that failed (or is absent, off the cluster) is kept as its error."""

    config: str | SuiteError  # `scontrol show config`
    nodes: str | SuiteError  # `sinfo` of every partition's kinds of node, as `_node_mistakes` reads it

    def config_text(self) -> str:
        """`scontrol show config`, or the error that it could not be read."""
        if isinstance(self.config, SuiteError):
            raise self.config
        return self.config


# sinfo's fields of each kind of node: partition (`*` after the default), memory MB, GRES, CPUs, tmp disk MB,
# sockets:cores:threads
SINFO = ("sinfo", "--all", "--noheader", "--format=%P|%m|%G|%c|%d|%z")


def read_cluster() -> Reading:
    """`scontrol show config` and `sinfo`, once (`Reading`)."""
    def answer(*command: str) -> str | SuiteError:
        try:
            return _slurm(*command)
        except SuiteError as err:
            return err

    return Reading(answer("scontrol", "show", "config"), answer(*SINFO))


def check_options(options: ClusterOptions) -> Reading:
    """Refuse what the cluster would refuse at submission though the options' own checks passed it
    (a dry run notes it; a submission says it before the store is touched): a partition it does not
    have, more of a node than its nodes have, an sbatch parameter sbatch does not take; each named
    where it was given, all at once. Returns what it read of the cluster, for `layout`.
    Nothing is said off the cluster (no SLURM commands: a dry run still shows the plan); on one whose
    slurmctld does not answer, that is the refusal, as none of the cluster's checks could be made."""
    if (down := controller_down()) is not None:
        raise SuiteError(f"{down}: nothing can be submitted, nor the partition, what the nodes have "
                         "or the room in the queue checked; try again once `sinfo` answers", key="cluster")
    cluster = read_cluster()
    mistakes = []
    if not isinstance(cluster.nodes, SuiteError):
        kinds = _kinds(cluster.nodes)  # sinfo's lines, read once for both checks
        mistakes += _partition_mistakes(options, kinds) + _node_mistakes(options, kinds)
    refused = sbatch_check.refusals(options.sbatch)
    mistakes += [options.origin(f"sbatch.{key}").error(said) for key, said in refused.items()]
    if mistakes:
        raise together(mistakes)
    return cluster


def layout(n_runs: int, options: ClusterOptions, cluster: Reading) -> tuple[int, list[int]]:
    """The most runs an array of a submission of `n_runs` holds, and each array's throttle; or the
    SuiteError that refuses it (no room in the queue, a max_array_size above the cluster's, fewer
    array_parallelism than arrays). A submission and a dry run make these same checks."""
    if (full := room_mistake(n_runs, cluster)) is not None:
        raise full
    size = array_size(options, n_runs, cluster)
    return size, array_shares(array_lengths(n_runs, size), options.array_parallelism)


def _partition_mistakes(options: ClusterOptions, kinds: Kinds) -> list[SuiteError]:
    """A partition this cluster does not have, with the ones it has (`kinds`: `_kinds`):
    sbatch's refusal ("invalid partition specified") names neither."""
    if not options.partition:
        return []
    names = list(kinds[0])
    wrong = [p for p in options.partition.split(",") if p not in names]  # sbatch takes a list: debug,gpu
    if not names or not wrong:
        return []
    hint = close_matches(wrong[0], names, n=1)
    return [options.origin("partition").error(
        f"this cluster has no partition {wrong[0]!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
        + " (`sinfo` lists them)", choices=names)]


# what sinfo says a kind of node has (`SINFO`'s fields): each as the end of a refusal says it, with
# the sinfo field that lists it
HAS = {"mem": ("%m", "the memory (MB)", lambda n: f"has at most {n:.0f} MB"),
       "gpus": ("%G", "the GPUs", lambda n: f"has at most {count(int(n), 'GPU')}" if n else
                "has no GPUs (no gpu GRES)"),
       "cpus": ("%c", "the CPUs", lambda n: f"has at most {count(int(n), 'CPU')}"),
       "tmp": ("%d", "the tmp disk (MB)", lambda n: f"has at most {n:.0f} MB of tmp disk"),
       "sockets": ("%z", "the sockets:cores:threads", lambda n: f"has at most {count(int(n), 'socket')}"),
       "cores": ("%z", "the sockets:cores:threads", lambda n: f"has at most {count(int(n), 'core')} a socket"),
       "threads": ("%z", "the sockets:cores:threads", lambda n: f"has at most {count(int(n), 'thread')} a core")}
WAITS = "the jobs would wait for ever (BadConstraints)"
# where mincpus makes a node's memory too little, sbatch takes the job (mem-per-cpu alone over it, it refuses)
BUSY = "the jobs would wait for ever (Resources, as if the node were busy)"


# each partition's kinds of node, as what each has of `HAS`; and the default partition
Kinds = tuple[dict[str, list[dict[str, float]]], list[str]]


def _kinds(nodes: str) -> Kinds:
    """Each partition's kinds of node, one `sinfo` line each (`Reading.nodes`), as what each has of
    `HAS`: inf where sinfo gives no exact number (`8+`); and the default partition."""
    kinds: dict[str, list[dict[str, float]]] = {}
    default: list[str] = []
    for line in nodes.splitlines():
        name, mem, gres, cpus, tmp, layout = (line.split("|") + [""] * 5)[:6]
        if name.endswith("*"):  # one line per kind of node: the default named once
            name = name[:-1]
            default = [*dict.fromkeys([*default, name])]
        sockets_cores_threads = (layout.split(":") + ["", ""])[:3]
        exact = {"mem": mem, "cpus": cpus, "tmp": tmp, **dict(zip(node_asks.LAYOUT, sockets_cores_threads))}
        kinds.setdefault(name, []).append({**{k: float(v) if v.isdigit() else math.inf for k, v in exact.items()},
                                           **node_asks.gpus_of_node(gres)})
    return kinds, default


def _node_mistakes(options: ClusterOptions, kinds: Kinds) -> list[SuiteError]:
    """More of a node (`_asks`) than any node of the partition has (or of the default one): sbatch
    takes such a job, held as a submission's are, and it waits for ever as BadConstraints, or
    `scontrol release` refuses it. `sinfo` (`kinds`: `Reading.nodes` read by `_kinds`) lists each
    partition's kinds of node; one it gives no exact number for (`8+`) is taken to have enough."""
    partitions, default = kinds
    wanted = [p for p in (options.partition.split(",") if options.partition else default) if p in partitions]
    if not wanted:  # a partition the cluster lacks: `_partition_mistakes` says so
        return []
    where = f"partition {' or '.join(repr(p) for p in wanted)}" + ("" if options.partition else " (the default)")
    most = {what: max(kind[what] for p in wanted for kind in partitions[p]) for what in HAS}
    mistakes = [options.origin(name).error(
        f"{said} but each node of {where} {HAS[what][2](most[what])}: {outcome}; `sinfo --format='%P "
        f"{HAS[what][0]}'` lists {HAS[what][1]} of each partition's nodes")
        for name, what, n, said, outcome in _asks(options) if n > most[what]]
    kinds = [kind for p in wanted for kind in partitions[p]]
    types = sorted({k.partition(":")[2] for kind in kinds for k in kind if k.startswith("gpu:")})
    for more in (_type_mistakes(options, types, where, most["gpus"]), _type_count_mistakes(options, kinds, where)):
        named = {e.key for e in mistakes}  # one mistake a key: the first found
        mistakes += [e for e in more if e.key not in named]
    return mistakes


def _type_mistakes(options: ClusterOptions, types: Sequence[str], where: str, gpus: float) -> list[SuiteError]:
    """A GPU type an sbatch parameter names that no node of the partition has (`types`, lower-case,
    as `_kinds` read sinfo's `%G`; `gpus`: the most GPUs a node has): sbatch takes the job, held as a
    submission's are, and it waits for ever as BadConstraints. Compared ignoring case, so a
    spelling the nodes may take is never refused."""
    has = ("the types they have: " + ", ".join(repr(t) for t in types) if types else
           "their GPUs have no type: gpu:COUNT" if gpus else "they have no GPUs")
    return [options.origin(f"sbatch.{key}").error(
        f"{key}={value} asks GPUs of type {wrong!r}, but no node of {where} has that type ({has}): {WAITS}; "
        "`sinfo --format='%P %G'` lists the GPUs of each partition's nodes")
        for key, value in options.sbatch.items()
        for wrong in [t for t in node_asks.gpu_types(key, value) if t.lower() not in types][:1]]


def _type_count_mistakes(options: ClusterOptions, kinds: Sequence[Mapping[str, float]], where: str) -> list[SuiteError]:
    """More GPUs of a type (`node_asks.gpus_of_type_per_node`) than any node of the partition has of
    it (`kinds`: its kinds of node, as `_kinds` read them): sbatch takes the job, held as a
    submission's are, and it waits for ever as BadConstraints. A type no node has is `_type_mistakes`'s."""
    mistakes = []
    for key, value in options.sbatch.items():
        try:
            asked = node_asks.gpus_of_type_per_node(key, value, nodes=options.nodes,
                                                    tasks_per_node=options.tasks_per_node)
        except node_asks.Malformed:  # refused where the options were read
            continue
        over = [(gpu, n, most) for gpu, n in asked.items()  # 0: no node has the type, `_type_mistakes` says
                if 0 < (most := max(node.get(f"gpu:{gpu.lower()}", 0) for node in kinds)) < n]
        mistakes += [options.origin(f"sbatch.{key}").error(
            f"{key}={value} asks {count(n, 'GPU')} of type {gpu!r} of a node, but each node of {where} has at most "
            f"{most:.0f} of that type: {WAITS}; `sinfo --format='%P %G'` lists the GPUs of each partition's nodes")
            for gpu, n, most in over[:1]]
    return mistakes


def _asks(options: ClusterOptions) -> list[tuple[str, str, float, str, str]]:
    """What the options ask of a node, each as (the option or `sbatch.KEY` that asks it, what of a node
    (`HAS`), how much, the words that say so, what SLURM does with a job asking more than a node has):
    GPUs (`gpus_per_node`, or sbatch's `gpus`, `gpus-per-task` and `gres` parameters: `node_asks.gpus_per_node`),
    memory (`mem_gb`), CPUs (`cpus_per_task` times `tasks_per_node`), and what sbatch's parameters of
    CPUs, memory and tmp disk ask (`node_asks.other_per_node`)."""
    asks = [("gpus_per_node", "gpus", options.gpus_per_node, f"{count(options.gpus_per_node, 'GPU')} a node,", WAITS)]
    for key, value in options.sbatch.items():
        with contextlib.suppress(node_asks.Malformed):  # refused where the options were read
            n = node_asks.gpus_per_node(key, value, nodes=options.nodes, tasks_per_node=options.tasks_per_node)
            if n is not None:
                asks.append((f"sbatch.{key}", "gpus", n, f"{key}={value} asks {count(n, 'GPU')} of a node,", WAITS))
    if options.mem_gb is not None:
        mb = math.ceil(options.mem_gb * 1024)
        asks.append(("mem_gb", "mem", mb, f"{options.mem_gb:g} GB ({mb} MB) a node,", WAITS))
    cpus = (options.cpus_per_task or 1) * options.tasks_per_node  # SLURM's default: 1 a task
    if options.cpus_per_task is not None:
        tasks = "" if options.tasks_per_node == 1 else f" times tasks_per_node={options.tasks_per_node}, {cpus} a node,"
        asks.append(("cpus_per_task", "cpus", cpus, f"{count(options.cpus_per_task, 'CPU')} a task{tasks}",
                     "SLURM would refuse to release the jobs (PartitionConfig)"))
    n_gpus = max(n for _, what, n, _, _ in asks if what == "gpus")  # each GPU ask holds: at least the most
    # slurmctld judges whether a node can hold a job by the most of its tasks' CPUs, cpus-per-gpu times its
    # GPUs (as for one where none is asked) and mincpus, and mem-per-cpu times those. On the test cluster
    # (8 CPUs, 21694 MB, held then released): gpus-per-node=2 cpus-per-gpu=2 ran with mem=20000M at
    # mem-per-cpu=5000 and waited for ever at 6000 (BadConstraints), as did cpus-per-gpu=8 and no GPU at 3000
    # (2000 ran); mincpus=8 mem-per-cpu=2000 ran, 3000 waited as Resources (cpus-per-gpu=4 beside it, equal:
    # BadConstraints)
    by = ""
    for key in ("cpus-per-gpu", "mincpus"):
        asked = node_asks.other_per_node(key, options.sbatch.get(key), cpus=1, gpus=n_gpus)
        if asked is not None and asked[1] > cpus:
            cpus, by = asked[1], key
    times = {"cpu": f" times {count(cpus, 'CPU')} a node" + (f" ({by})" if by else ""), None: "",
             "gpu": f" times {count(n_gpus, 'GPU')} a node" if n_gpus else ""}
    for key, value in options.sbatch.items():
        if (other := node_asks.other_per_node(key, value, cpus=cpus, gpus=n_gpus)) is not None:
            what, n = other
            per = node_asks.OTHERS[key][1]
            amount = {"cpus": count(n, "CPU"), "mem": f"{n} MB", "tmp": f"{n} MB of tmp disk",
                      "sockets": count(n, "socket"), "cores": f"{count(n, 'core')} a socket",
                      "threads": f"{count(n, 'thread')} a core"}[what]
            asks.append((f"sbatch.{key}", what, n, f"{key}={value}{times[per]} asks {amount} of a node,",
                         BUSY if per == "cpu" and by == "mincpus" else WAITS))
    return asks


# ---------------------------------------------------------------------------------------- job
@dataclass(frozen=True)
class SlurmRun:
    """What one array task runs. It holds the run and the store as a string: the run directory,
    its checkpoint and its logs are found from them when the task starts, so a requeued task
    resumes from the newest checkpoint."""

    run: RunSpec
    out: str
    code: str  # the snapshot directory this task must import `suite` from
    max_requeues: int
    model_source: str = "suite"  # where `suite run` had the model from (ModelInfo.source): a plugin the job needs too

    def __call__(self) -> dict[str, Any] | None:
        from submitit.core.job_environment import JobEnvironment

        from suite.execute import Busy, execute, rank
        from suite.train.checkpoint import Preempted, request_checkpoint

        signal.signal(JobEnvironment._usr_sig(), lambda signum, frame: request_checkpoint())
        warnings.showwarning = show_warning  # the job's log says `warning: ...`, as a local run's does
        d = store.run_dir(Path(self.out), self.run.run_id)
        if snapshot.loaded_from() != Path(self.code).resolve():
            message = (f"this job imported suite from {snapshot.loaded_from()}, not from the snapshot {self.code} "
                       f"taken at submission (check PYTHONPATH in the cluster setup lines; Python >= 3.11 needed)")
            store.set_status(d, "failed", error=message)
            raise RuntimeError(message)
        if (message := self._model_missing()) is not None:
            store.set_status(d, "failed", error=message)
            raise RuntimeError(message)
        try:
            result = execute(self.run, Path(self.out))
        except Busy as busy:  # another process executes the run: its status is that process's to write
            print(f"skipped: {busy}", file=sys.stderr, flush=True)
            return None
        except Preempted as stopped:
            if rank() == 0:
                self._requeue(d, stopped.iteration)
            return None  # other DDP ranks: rank 0 requeues the whole job
        return result.get("metrics")

    def _model_missing(self) -> str | None:
        """Why the job's Python cannot build the run's model, which `suite run` had from a plugin:
        the plugin is not installed (or fails to load) where the job runs; else None."""
        from suite.models import list_models

        name = self.run.config.model.name
        if self.model_source == "suite" or name in list_models():
            return None
        return (f"model {name!r} is unknown in this job: suite run had it from {self.model_source}, which this "
                f"job's Python ({sys.executable}) does not find or could not load (install the plugin in the "
                f"environment the cluster's setup lines activate; the job's log shows any warning loading it)")

    def checkpoint(self) -> Any:
        """submitit's requeue hook, used only if the signal comes before `__call__` replaces
        submitit's handler (while the job is still importing): nothing to save yet, but the
        requeue counts against `max_requeues` like any other."""
        from submitit.helpers import DelayedSubmission

        self._count_requeue(store.run_dir(Path(self.out), self.run.run_id), iteration=None)
        return DelayedSubmission(self)

    def _requeue(self, d: Path, iteration: int) -> NoReturn:
        self._count_requeue(d, iteration)
        job = _own_job_id()
        try:
            _slurm("scontrol", "requeue", job)
        except SuiteError as err:
            store.set_status(d, "failed", error=f"could not requeue {job}: {err.message}")
            raise
        raise SystemExit(-1)  # as submitit does: no result pickle, SLURM restarts the task

    def _count_requeue(self, d: Path, iteration: int | None) -> None:
        """Record one more requeue in status.json, or fail the run past `max_requeues`
        (`iteration` None: stopped before this attempt trained)."""
        status = store.state_of(d).status or {}
        done = int(status.get("requeues") or 0)
        if done >= self.max_requeues:
            where = "before training" if iteration is None else f"at iteration {iteration}"
            message = (f"stopped by a time limit or pre-emption {where} after {count(done, 'requeue')} "
                       f"(max_requeues={self.max_requeues}); `{status.get('again') or 'suite run --retry-failed'}` "
                       "resumes it from its checkpoint")
            store.set_status(d, "failed", error=message)
            raise RuntimeError(message)
        store.set_status(d, "pending", requeues=done + 1, requeued_at=store.now(), requeued_at_iteration=iteration,
                         error=None)


def _own_job_id() -> str:
    env = os.environ
    array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else env["SLURM_JOB_ID"]


# ------------------------------------------------------------------------------ follow, cancel
def slurm_states(job_ids: Iterable[str]) -> dict[str, str]:
    """SLURM state (first word: `CANCELLED by 0` -> CANCELLED) of each job id; UNKNOWN when SLURM
    does not know the job, NO_ANSWER when slurmctld did not answer and the accounting has nothing.

    slurmctld (squeue) first: it is current, while the accounting (sacct) learns of a start or an
    end seconds later, so sacct alone showed a running array task as UNKNOWN or PENDING. sacct,
    read by submitit's parser, for the jobs slurmctld has forgotten (`MinJobAge` after they end).
    An array task cancelled while it waited its turn leaves no record of its own: CANCELLED
    all the same (`_dropped`), not UNKNOWN, which fails a run only after LOST_AFTER_S."""
    ids = list(dict.fromkeys(job_ids))
    held, answered = _squeue(ids, "all", "%T")
    states = _per_task(ids, {j: state.split()[0] for j, state in held.items()})
    rest = [j for j in ids if j not in states]
    if rest:
        accounted, unread = _sacct(rest)
        ended = _per_task(rest, accounted)
        states.update(ended)
        if answered:
            states.update(dict.fromkeys(_dropped(rest, held, accounted, ended, unread), "CANCELLED"))
    return {j: states.get(j, "UNKNOWN" if answered else NO_ANSWER) for j in ids}


def _dropped(ids: Sequence[str], held: Mapping[str, str], accounted: Mapping[str, str],
             ended: Mapping[str, str], unread: set[str]) -> list[str]:
    """The array tasks of `ids` cancelled while they waited in their array's pending record (held,
    or throttled by `%N`): slurmctld takes such a task out of that record and keeps nothing of it,
    and the accounting has nothing of it either, so it was UNKNOWN, and its run pending, for
    LOST_AFTER_S. Told from a task between two states (starting, requeued, ending) by both
    records of its array: slurmctld, which is current, holds the array (`held`: squeue's records of
    the arrays of `ids`, array tasks one by one) but not the task, so the task is neither queued nor
    running nor ended less than MinJobAge ago; and the accounting, which has records of the array
    (`accounted`; so it works and has heard of it), has no end of the task, as it would have of a
    task that ran (none, or the pending array's record as it last heard of it: `ended`, each task's
    state in `accounted` by `_per_task`). `unread`: arrays sacct listed in a form not read, which may
    hold the task: not decided."""
    in_slurmctld = {array_of(j) for j in held}
    in_accounting = {array_of(j) for j in accounted}
    return [j for j in ids if "_" in j and array_of(j) in in_slurmctld and array_of(j) in in_accounting
            and array_of(j) not in unread and ended.get(j, "PENDING") == "PENDING"]


# Why a run's job ends TIMEOUT though the run saves and requeues itself before its time limit: the
# signal is acted on in training (and attacking) only, so measuring or evaluating the model outlasted it.
# `--retry-failed` with the same limit would end the same way, so the user is told to lengthen it.
TOO_SHORT = (": its time limit came before the run could save and requeue itself (it does so while training or "
             "attacking, soon after SLURM's signal, signal_delay_s before the limit; measuring or evaluating the "
             "model took longer than that): submit it again with a longer timeout_min")

# What a requeued job's `BeginTime` means: SLURM makes it wait a while before it starts again.
REQUEUED = "requeued, waiting to start again"


def pending_reasons(ids: Sequence[str]) -> dict[str, str]:
    """Why slurmctld keeps each pending job of `ids` waiting (`Priority`, `Resources`, or one it can
    never meet such as `BadConstraints`); what `suite status` shows next to the pending count. A
    job SLURM restarted (a requeue after a time limit or pre-emption) waits for a new begin time:
    said as REQUEUED, as `BeginTime` reads like a `--begin` the user asked for."""
    lines, _ = _ask(["squeue", "--noheader", "--array", "--states=PENDING",
                     "--Format=JobArrayID:0 ,RestartCnt:0 ,Reason:0"], ids)
    listed: dict[str, str] = {}
    for line in lines:
        job_id, restarts, reason = (line.split(maxsplit=2) + ["", ""])[:3]
        if reason.strip():
            listed[job_id] = REQUEUED if reason.strip() == "BeginTime" and restarts != "0" else reason.strip()
    return _per_task(ids, listed)


def _squeue(ids: Sequence[str], states: str, field: str) -> tuple[dict[str, str], bool]:
    """squeue's `field` for every job of the arrays of `ids` in `states` that slurmctld holds (array
    tasks one by one), and whether it answered."""
    lines, answered = _ask(["squeue", "--noheader", "--array", f"--states={states}", f"--format=%i {field}"], ids)
    listed: dict[str, str] = {}
    for line in lines:
        job_id, _, value = line.strip().partition(" ")
        if value:
            listed[job_id] = value
    return listed, answered


def _ask(command: Sequence[str], ids: Sequence[str]) -> tuple[list[str], bool]:
    """The output lines of `command --jobs ARRAYS` for the arrays of `ids`, 500 at a time (a short
    command line), and whether it answered for all of them. squeue fails when it knows none of the
    ids, and sacct on a cluster without accounting (slurmdbd) knows no job: answers too, unlike a
    controller or slurmdbd it cannot reach."""
    arrays = list(dict.fromkeys(array_of(j) for j in ids))
    lines: list[str] = []
    for start in range(0, len(arrays), 500):
        try:
            done = subprocess.run([*command, "--jobs", ",".join(arrays[start:start + 500])],
                                  capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        except (FileNotFoundError, subprocess.TimeoutExpired):
            return lines, False
        if done.returncode != 0:
            if "Invalid job id" not in done.stderr and "accounting storage is disabled" not in done.stderr:
                return lines, False
            continue
        lines += [line for line in done.stdout.splitlines() if line.strip()]
    return lines, True


def _sacct(ids: Sequence[str]) -> tuple[dict[str, str], set[str]]:
    """The states the accounting holds for the jobs of the arrays of `ids` (array tasks one by one,
    task ranges expanded), and the arrays it listed in a form the parser does not read; from sacct,
    its complaints kept off the terminal (a controller that does not answer is said once, by
    `suite status`)."""
    lines, _ = _ask(["sacct", "--format=JobID,State,NodeList", "--parsable2"], ids)
    info, unread = _records(next(iter(lines), ""), lines)
    states = {j: str(record.get("State") or "UNKNOWN").split()[0] for j, record in info.items()}
    return {j: state for j, state in states.items() if state != "UNKNOWN"}, unread


def _records(header: str, lines: Sequence[str]) -> tuple[dict[str, dict[str, str]], set[str]]:
    """squeue's or sacct's `|`-separated records (after a `header` of column names) by job id, read by
    submitit's parser, which expands task ranges such as `7_[1-3%2]`; and the arrays listed in a form
    it does not read, which stand for all their tasks."""
    from submitit.slurm.slurm import SlurmInfoWatcher, read_job_id

    readable, unread = [], set()
    for line in lines:
        if line == header:
            continue
        job_id = line.split("|")[0].split(".")[0].strip()
        try:
            read_job_id(job_id)
            readable.append(line)
        except ValueError:
            unread.add(array_of(job_id))
    return SlurmInfoWatcher(delay_s=0).read_info("\n".join([header, *readable])), unread


def _per_task(ids: Sequence[str], listed: Mapping[str, str]) -> dict[str, str]:
    """State of each of `ids` in `listed`. An array task SLURM has not split off yet (it never
    started) is part of the array's own record, which SLURM may list under the bare array id
    (`7 CANCELLED` for tasks cancelled while pending): it has that record's state."""
    states = {}
    for job_id in ids:
        state = listed.get(job_id) or listed.get(array_of(job_id))
        if state:
            states[job_id] = state
    return states


def array_of(job_id: str) -> str:
    """`7` for array task `7_3`; a plain job id is its own."""
    return job_id.split("_")[0]


def refresh(out: Path, run_ids: Iterable[str]) -> dict[str, str]:
    """Reconcile the store with SLURM for runs it believes queued or running; run_id -> SLURM state
    (HIDDEN: another user's job this user is not shown, `_unseen`; ELSEWHERE: a job of another
    cluster, `_elsewhere`)."""
    followed = _tracked(out, run_ids)  # each run's status.json read once, here, for every decision below
    config = functools.cache(_config)  # asked once, if at all, for both the cluster's name and PrivateData
    away = _elsewhere({rid: f.status for rid, f in followed.items()}, config)  # never asked about, nor judged
    followed = {rid: f for rid, f in followed.items() if rid not in away}
    if not followed:
        return away
    states = slurm_states(f.job_id for f in followed.values())
    states.update(_unseen(out, {rid: f for rid, f in followed.items() if states[f.job_id] == "UNKNOWN"}, config))
    lost = _lost([f.job_id for f in followed.values()
                  if states[f.job_id] == "UNKNOWN" and _submitted_long_ago(f.status)])
    out_states = dict(away)
    for rid, f in followed.items():
        job_id, slurm_state = f.job_id, states[f.job_id]
        out_states[rid] = slurm_state
        ended = "LOST" if job_id in lost else slurm_state
        # A live job owns its run directory: never write there from outside (the job may be writing
        # its own state this instant). `suite run` skips these runs whatever the directory says.
        if not _ends(f.status, job_id, ended):  # as read: the job may have written since, which the lock's read sees
            continue
        d = store.run_dir(out, rid)
        try:
            _record_end_under_lock(d, job_id, ended)
        except store.LockUnopenable as exc:  # a run's lock this user may not open
            _cannot_record(exc.file, job_id, ended, exc.message)
        except OSError as exc:  # a store this user may only read
            _cannot_record(d / "status.json", job_id, ended, exc.strerror or exc)
    return out_states


def _cannot_record(where: object, job_id: str, ended: str, why: object) -> None:
    """Warn that the end of `job_id` could not be recorded at `where`, so that `suite status` and
    reports still answer, and go on with the other runs."""
    warnings.warn(f"{where}: cannot record that SLURM job {job_id} ended {ended} ({why}): the run shows as last "
                  "recorded until a command that can write the store refreshes it", SuiteWarning, stacklevel=3)


def _cluster_name(cluster: Reading) -> str | None:
    """This cluster's name, as `check_options` read its config (None: unread)."""
    return visibility.cluster_name(cluster.config) if isinstance(cluster.config, str) else None


def _elsewhere(statuses: Mapping[str, Mapping[str, Any]], config: Callable[[], str]) -> dict[str, str]:
    """run_id -> ELSEWHERE for the runs of `statuses` (run_id -> its status.json as `_tracked` read
    it) whose job was submitted on another cluster than this one (`visibility.submitted_on`);
    NO_ANSWER for those recording a cluster where `config` (`_config`) does not answer. It is asked
    only where one records it."""
    on = {rid: visibility.submitted_on(status) for rid, status in statuses.items()}
    on = {rid: name for rid, name in on.items() if name}
    if not on:
        return {}
    try:
        here = visibility.cluster_name(config())
    except SuiteError:
        return dict.fromkeys(on, NO_ANSWER)
    return {rid: ELSEWHERE for rid, name in on.items() if here and name != here}  # no name here: cannot tell


def _unseen(out: Path, unknown: Mapping[str, Followed], config: Callable[[], str]) -> dict[str, str]:
    """Job id -> HIDDEN for the jobs of `unknown` (run_id -> a job SLURM says it does not know, as
    `_tracked` read it) that another user submitted, where the cluster's PrivateData hides jobs:
    never judged lost, nothing recorded (`visibility`); NO_ANSWER where `config` (`_config`)
    cannot say whether it does. It is asked only where another user submitted one of them."""
    me = visibility.user_name()
    by = {f.job_id: visibility.submitter(store.run_dir(out, rid), f.status) for rid, f in unknown.items()}
    maybe = [j for j, user in by.items() if visibility.hidden(user, True, me)]  # hidden, were jobs private
    if not maybe:
        return {}
    try:
        private = visibility.hides_jobs(config())
    except SuiteError:
        return dict.fromkeys(maybe, NO_ANSWER)
    return dict.fromkeys(maybe, HIDDEN) if private else {}  # maybe: another user's each


def _record_end_under_lock(d: Path, job_id: str, ended: str) -> None:
    """`_record_end` holding the run's lock, so a job starting now cannot be overwritten; nothing when
    another process (an earlier job) executes the run, or it was deleted meanwhile (`rm -rf`: no end
    to record, and it shows missing)."""
    with contextlib.suppress(files.Gone), store.idle(d) as free:
        if not free:
            return
        now = store.state_of(d)  # as the lock found it: the job, or a resubmission, may have written since
        if _follows(now) and _ends(now.status or {}, job_id, ended):
            _record_end(d, now, job_id, ended)


def _ends(status: Mapping[str, Any], job_id: str, ended: str) -> bool:
    """Whether a run whose status.json is `status` has an end to record: its job is `job_id`, which
    ended `ended` (a SLURM state, or LOST), not yet recorded, and it was not last stopped here
    outside SLURM (`_stopped_here`). A status that is not read ({}) has none."""
    if status.get("slurm_job_id") != job_id or _stopped_here(status):
        return False
    return ended == "LOST" or (ended not in ALIVE and status.get("slurm_state") != ended)


def _stopped_here(status: Mapping[str, Any]) -> bool:
    """Whether the run was last interrupted on this machine outside SLURM, under a job id that a
    submission wrote over the local run's `running` (the race of versions before `_claim`): that
    job never ran it (its task found the run busy and left), so its end says nothing of the run,
    which stays interrupted for the next `suite run` to resume."""
    return status.get("state") == "interrupted" and not status.get("slurm_node") and not status.get("slurm_state") \
        and status.get("host") == socket.gethostname()


def refresh_told(out: Path, name: str, runs: Sequence[RunSpec]) -> tuple[store.Scan, dict[str, str]]:
    """`refresh` for the runs of spec `name` where `store.told` finds them (a run `suite run` files
    under today's id is read where it is stored), so that neither `suite status`, `suite report`
    nor `tables.load` shows a dead job as running under either id: the scan, and run_id -> SLURM state."""
    ids = [r.run_id for r in runs]
    found = store.told(out, ids, name, {r.config.model.name for r in runs})
    return found, refresh(out, [*ids, *found.moves])


def refresh_store(out: Path) -> dict[str, str]:
    """`refresh` for every run of the store, so that neither `status` nor a report of the whole
    store shows a dead job as running; run_id -> SLURM state of the followed runs."""
    return refresh(out, store.stored_runs(out))


def _record_end(d: Path, now: store.RunState, job_id: str, slurm_state: str) -> None:
    """Write what became of a run whose job ended (or is lost) without writing its own state."""
    if slurm_state == "LOST":
        store.set_status(d, "failed", slurm_state="LOST", error=(
            f"SLURM has no record of job {job_id}, submitted {now.status.get('submitted_at') or 'earlier'}: "
            "neither slurmctld nor the accounting knows it (a cluster reset or a purge, or an array task cancelled "
            "while it waited, once slurmctld has forgotten its array; on a cluster without accounting: it ended "
            "without a result, e.g. out of memory, out of time or cancelled, and slurmctld has forgotten it)"))
        return
    log = Path(str(now.status.get("slurm_log") or ""))
    if now.state == "done":  # the result stands whatever the job's end
        if (now.status or {}).get("measuring_again"):  # the status says why it does
            store.set_status(d, "failed", slurm_state=slurm_state, measuring_again=None, error=f"measuring it again "
                             f"stopped: SLURM job {job_id} ended {slurm_state}; the earlier measurement stands; "
                             f"log: {shell_path(log)}")
        else:  # it ended after writing its result, before its status could say so (a full disk, a signal)
            store.set_status(d, "done", slurm_state=slurm_state, error=None)
        return
    if slurm_state not in ENDED and log.is_file():
        files.write_text(d / "error.txt", _log_tail(log))
    why = TOO_SHORT if slurm_state == "TIMEOUT" else ""
    error = f"SLURM job {job_id} ended {slurm_state} without a result{why}; log: {shell_path(log)}"
    if slurm_state == "CANCELLED" and not log.is_file():  # its log is made as it starts: none to point to
        error = f"SLURM job {job_id} was cancelled before it started"
    store.set_status(d, ENDED.get(slurm_state, "failed"), slurm_state=slurm_state, error=error)


def _submitted_long_ago(status: Mapping[str, Any]) -> bool:
    """Whether the submission `status` (a run's status.json) records is LOST_AFTER_S old."""
    try:
        submitted = dt.datetime.fromisoformat(str(status.get("submitted_at")))
    except ValueError:
        return False
    if submitted.tzinfo is None:  # store.now() writes UTC with its offset; a hand-edited time may lack it
        submitted = submitted.replace(tzinfo=dt.timezone.utc)
    return (dt.datetime.now(dt.timezone.utc) - submitted).total_seconds() > LOST_AFTER_S


def _lost(ids: Sequence[str]) -> set[str]:
    """Those of `ids` that slurmctld and the accounting both answer they do not know; none when
    either does not answer (a controller or slurmdbd down is not a lost job). A task is known by its
    own record, a task range of its array's (`7_[2-9%2]`), or the bare array's (tasks never split
    off). A task cancelled while it waited in its array is in none of them: `_dropped` tells it from a
    lost one while slurmctld still holds its array, and the accounting has heard of it."""
    if not ids:
        return set()
    known: set[str] = set()  # job ids listed, array tasks one by one, and arrays listed whole
    for command in (["squeue", "--noheader", "--array", "--states=all", "--format=%i"],
                    ["sacct", "--noheader", "--parsable2", "--format=JobID", "--starttime=1970-01-01"]):
        lines, answered = _ask(command, ids)
        if not answered:
            return set()
        info, unread = _records("JobID", lines)
        known |= info.keys() | unread
    return {j for j in ids if j not in known and array_of(j) not in known}


def _log_tail(stderr: Path, lines: int = 50) -> str:
    """The job's last lines of stderr, else of stdout: a failing `setup` line (module load, a
    venv's activate) may have printed only there."""
    for path in (stderr, stderr.with_suffix(".out")):
        text = path.read_text(errors="replace") if path.is_file() else ""
        if text.strip():
            return "".join(text.splitlines(True)[-lines:])
    return ""


def cancel(out: Path, run_ids: Iterable[str]) -> tuple[dict[str, str], dict[str, str], str]:
    """scancel the SLURM jobs of queued or running runs and record those it took as cancelled.

    Returns (run_id -> job id cancelled, run_id -> job id scancel refused, its complaints). A job
    that finished meanwhile is no complaint (its result, if it wrote one, still counts, as a result
    always does); a refused one (controller unreachable, another user's job) keeps its status."""
    followed = _tracked(out, run_ids)
    elsewhere = _elsewhere({rid: f.status for rid, f in followed.items()}, _config)
    away = {rid: followed.pop(rid) for rid, state in elsewhere.items() if state == ELSEWHERE}  # ids of here
    jobs = {rid: f.job_id for rid, f in followed.items()}
    ids = list(dict.fromkeys(jobs.values()))
    complaints = [f"job {f.job_id} of run {rid} was submitted on cluster {visibility.submitted_on(f.status)!r}, not "
                  "this one: cancel it there" for rid, f in away.items()]
    refused: set[str] = set()
    for start in range(0, len(ids), 500):  # keep the command line short
        chunk = ids[start:start + 500]
        try:
            done = subprocess.run(["scancel", *chunk], capture_output=True, text=True, timeout=120)
        except FileNotFoundError:
            raise SuiteError("`scancel` not found: is this a SLURM cluster?") from None
        except subprocess.TimeoutExpired:
            done = subprocess.CompletedProcess([], 1, "", "scancel did not answer in 120 s")
        if done.returncode != 0:  # each job it could not kill is named; none named: all of them
            refused |= set(re.findall(r"job id (\S+?):", done.stderr) or chunk)
        complaints.append(done.stderr.strip())
    taken = {rid: j for rid, j in jobs.items() if j not in refused}

    def record(rid: str) -> None:
        d, why = store.run_dir(out, rid), "cancelled by `suite cancel`"
        # Under the run's lock, as the other writes from outside its job, so that none lands amid another's
        # (a status recording the job's end, a refile); held still after LOCK_WAIT_S, its holder executes the
        # run: the job scancel took, which SLURM kills without a word of its own (submitit ignores the SIGTERM,
        # SIGKILL follows after KillWait; a result it finishes first counts whatever status.json says). It is
        # recorded all the same: waiting would hold `suite cancel` for KillWait, and the next refresh records no
        # end of a run whose status.json is unreadable. files.Gone: the run deleted meanwhile, nothing to record.
        with contextlib.suppress(files.Gone), store.idle(d, wait_s=store.LOCK_WAIT_S):
            if _status_unreadable(d):  # kept for a look, as any corrupt record
                why += f" (status.json was unreadable, kept as {store.set_aside(d / 'status.json')}; job " \
                       f"{taken[rid]} was found from its submission)"
            store.set_status(d, "cancelled", error=why, cancelled_at=store.now(), slurm_job_id=taken[rid])

    _parallel(record, list(taken))
    kept = {rid: j for rid, j in jobs.items() if j in refused} | {rid: f.job_id for rid, f in away.items()}
    return taken, kept, "\n".join(c for c in complaints if c)


# ------------------------------------------------------------------------------------ helpers
@dataclass(frozen=True)
class Followed:
    """A run `_tracked` found a job of, with its status.json as read then: the checks after it (its
    cluster, its submitter, its age, an end already recorded) reuse that read instead of making
    their own, one per run and check (~50 µs each: 0.5 s a check for 10,000 queued runs)."""
    job_id: str
    status: Mapping[str, Any]  # {}: unreadable, its job found from submitit's folder


def _tracked(out: Path, run_ids: Iterable[str]) -> dict[str, Followed]:
    """run_id -> the SLURM job of the runs the store has as queued or running under SLURM (a done
    run too, while a job measures it again), and of runs whose status.json is unreadable whose
    latest submission SLURM still has queued or running."""
    tracked: dict[str, Followed] = {}
    unreadable = set()
    for rid in run_ids:
        d = store.run_dir(out, rid)
        state = store.state_of(d)
        if _follows(state) and state.status and state.status.get("slurm_job_id"):
            tracked[rid] = Followed(str(state.status["slurm_job_id"]), state.status)
        elif state.corrupt and _status_unreadable(d):
            unreadable.add(rid)
    if unreadable:
        submitted = _latest_submissions(out, unreadable)
        live = slurm_states(submitted.values()) if submitted else {}
        tracked.update({rid: Followed(j, {}) for rid, j in submitted.items() if live[j] in ALIVE})
    return tracked


def _status_unreadable(d: Path) -> bool:
    """Whether the run's status.json is there and cannot be read (no word of a directory that cannot
    be looked into: it holds no status.json this user could set aside)."""
    try:
        return (d / "status.json").exists() and not isinstance(store.read_json(d / "status.json"), dict)
    except SuiteError:
        return True
    except OSError:  # Path.exists re-raises EACCES
        return False


def _latest_submissions(out: Path, run_ids: set[str]) -> dict[str, str]:
    """run_id -> the job id of its latest submission, from submitit's folder: each task's pickled
    SlurmRun names its run (the store's status.json does too, but that is what could not be read)."""
    import pickle

    latest: dict[str, tuple[float, str]] = {}
    for path in (out / "submitit").glob("*_submitted.pkl"):
        try:
            with open(path, "rb") as f:
                task = pickle.load(f).function
            rid, when = task.run.run_id, path.stat().st_mtime
        except Exception:  # noqa: BLE001 - another tool's pickle, or a damaged one: not a submission of ours
            continue
        if rid in run_ids and when >= latest.get(rid, (-1.0, ""))[0]:
            latest[rid] = (when, path.name.removesuffix("_submitted.pkl"))
    return {rid: job for rid, (_, job) in latest.items()}


def _follows(state: store.RunState) -> bool:
    """Whether a job may own the run: queued or running, or done and being measured again."""
    return state.state in TRACKED or (state.state == "done" and (state.status or {}).get("state") in ("pending", "running"))


def _config() -> str:
    """`scontrol show config`, for a refresh or a cancel (a submission's checks read it in `Reading`)."""
    return _slurm("scontrol", "show", "config")


def _slurm(*command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise SuiteError(f"`{command[0]}` not found: is this a SLURM cluster?", key="executor") from None
    if done.returncode != 0:
        raise SuiteError(f"`{' '.join(command[:3])}` failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def _parallel(fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
    if len(items) < 2:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(min(IO_THREADS, len(items))) as pool:
        return list(pool.map(fn, items))
