"""`suite run --executor slurm` against the real local cluster (slurm/local-cluster.sh).

Every run is a few seconds of a width-4 ran56_cifar on 8x8 synthetic images, measurement off, so
the tests time SLURM's turnaround, not training. Each test uses a fresh store in tmp_path (job ids
restart after a cluster reset: a reused submitit folder would hold stale result pickles) and
cancels whatever it left queued. The CLI runs in-process; the jobs import the code snapshot.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import torch
import yaml
from submitit.core.utils import pickle_load

from denied import deny_open
from plugins import fresh_registry, tiny_se, write_plugin
from suite import ablations, store
from suite.cli import _print_arrays, main
from suite.dispatch import sbatch_check, slurm
from suite.dispatch.cluster import ClusterOptions, resolve_options
from suite.errors import SuiteError
from suite.report import tables
from suite.train import checkpoint

pytestmark = pytest.mark.slurm

BASE = {"model": {"name": "ran56_cifar", "base_width": 4}, "data": {"name": "synthetic", "input_size": 8, "workers": 0},
        "recipe": "smoke", "batch_size": 16, "iterations": 4, "measure": {"throughput": False, "complexity": False}}
FINAL = ("done", "failed", "cancelled")
PREFIX = "st_"  # spec names, hence job names suite-st_*


@pytest.fixture(autouse=True)
def isolated(slurm_cluster, monkeypatch, tmp_path):
    """No user cluster file; afterwards, cancel the test's jobs that are still queued or running."""
    monkeypatch.setenv("SUITE_CLUSTER", "")
    yield
    cancel_jobs_writing_under(tmp_path)


def cancel_jobs_writing_under(folder: Path) -> None:
    """scancel the jobs whose output file lies under `folder`, a test's tmp_path (every job a test
    submits writes there: its stores' submitit logs, or sbatch --output): those and no others, as
    on a shared cluster jobs of the same name (suite-st_*) may be another user's or test run's."""
    listed = subprocess.run(["squeue", "--noheader", "--Format=JobArrayID:|,StdOut:"], capture_output=True,
                            text=True, check=True).stdout.splitlines()
    inside = tuple(f"{path}{os.sep}" for path in {str(folder), str(folder.resolve())})
    # whole arrays by their job id: squeue shows a pending array as 1366_[0-1%2], which scancel refuses
    ids = {job.split("_")[0] for job, _, log in (line.partition("|") for line in listed) if log.startswith(inside)}
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True)


def test_the_teardown_cancels_the_tests_own_jobs_and_not_others_of_the_same_name(tmp_path):
    """The teardown cancelled every job named suite-st_*: on a shared cluster, another user's or
    another test run's too. A held job whose output lies elsewhere (here a sibling folder whose name
    the test's begins with) survives it; the test's own held array does not."""
    def held(folder: Path, *array: str) -> str:
        folder.mkdir()
        return subprocess.run(["sbatch", "--parsable", "--hold", f"--job-name=suite-{PREFIX}teardown", *array,
                               f"--output={folder}/%A_%a.out", "--wrap", "true"], capture_output=True, text=True,
                              check=True).stdout.strip()

    mine, theirs = held(tmp_path / "test", "--array=0-1"), held(tmp_path / "test-other")
    try:
        cancel_jobs_writing_under(tmp_path / "test")
        pending = subprocess.run(["squeue", "--noheader", "--states=PENDING", "--format=%i"], capture_output=True,
                                 text=True, check=True).stdout.split()
        assert theirs in pending and not [job for job in pending if job.split("_")[0] == mine]
    finally:
        subprocess.run(["scancel", mine, theirs], capture_output=True)


def write_spec(tmp_path: Path, name: str, grid: dict, cluster: dict | None = None, **base) -> Path:
    path = tmp_path / f"{PREFIX}{name}.yaml"
    path.write_text(yaml.safe_dump({"name": path.stem, "base": {**BASE, **base}, "grid": grid,
                                    **({"cluster": cluster} if cluster else {})}))
    return path


def run_ids(path: Path) -> list[str]:
    return [r.run_id for r in ablations.expand(ablations.load(path))]


def suite(capsys, *argv: str) -> str:
    """`suite ARGV` in-process; returns its stdout (asserting exit status 0)."""
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    return captured.out


def status(out: Path, rid: str) -> dict:
    return store.read_json(store.run_dir(out, rid) / "status.json")


def wait(out: Path, ids: list[str], until=FINAL, timeout: float = 150) -> dict[str, str]:
    """Poll (reconciling with sacct, as `suite status` does) until every run is in `until`."""
    deadline = time.monotonic() + timeout
    while True:
        slurm.refresh(out, ids)
        states = {rid: store.state_of(store.run_dir(out, rid)).state for rid in ids}
        if all(s in until for s in states.values()):
            return states
        if time.monotonic() > deadline:
            pytest.fail(f"runs not {until} after {timeout} s: {states}\n{cluster_report(out)}")
        time.sleep(0.5)


def wait_for(predicate, what: str, out: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{cluster_report(out)}")
        time.sleep(0.2)


def cluster_report(out: Path) -> str:
    """What a failed wait shows: the queue, sacct's view of the store's jobs, each run's status and
    the tail of each job log, so a failure on CI can be told apart from a slow cluster."""
    def run(*cmd: str) -> str:
        done = subprocess.run(cmd, capture_output=True, text=True)
        return f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}"

    parts = [run("squeue"), run("sacct", "-X", "-o", "JobID,State,Start,End,Elapsed,ExitCode", "-S", "now-1hour")]
    for path in sorted(out.glob("runs/*/status.json")):
        parts.append(f"{path}:\n{path.read_text()}")
    for path in sorted(out.glob("submitit/*_log.*")):
        parts.append(f"{path} (tail):\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:]))
    return "\n".join(parts)


# ------------------------------------------------------------------------------------ arrays
def test_grid_is_one_array_collected_and_resubmission_adds_only_missing_runs(tmp_path, capsys):
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "grid", {"lr": [0.01, 0.02, 0.03]})
    ids = run_ids(spec)
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out))
    assert "submitted 3 runs as 1 job array" in printed
    jobs = [status(out, rid)["slurm_job_id"] for rid in ids]
    array = jobs[0].split("_")[0]
    assert jobs == [f"{array}_{i}" for i in range(3)]  # one sbatch, tasks in grid order
    assert wait(out, ids) == dict.fromkeys(ids, "done")
    frame = store.collect(out, ids)
    assert list(frame["status"]) == ["done"] * 3 and frame["train_loss"].notna().all()
    assert (frame["iterations"] == 4).all() and [status(out, rid)["slurm_job_id"] for rid in ids] == jobs
    # the submitter, kept through the jobs' own writes: a teammate reading the store where PrivateData hides
    # jobs is told whose they are, and judges none lost
    assert {status(out, rid).get("slurm_user") for rid in ids} == {pwd.getpwuid(os.getuid()).pw_name}
    # and its cluster: read from a login node of another cluster sharing the file system, its ids mean nothing
    assert {status(out, rid).get("slurm_cluster") for rid in ids} == {cluster_name()}
    assert "3 done" in suite(capsys, "status", str(spec), "--out", str(out))

    # The grid grows by one point: only that run is submitted; the others are not touched.
    spec.write_text(spec.read_text().replace("- 0.03", "- 0.03\n  - 0.04"))
    more = run_ids(spec)
    assert more[:3] == ids
    before = {rid: status(out, rid) for rid in ids}
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out))
    assert "4 runs: 3 done, 1 missing" in printed and "submitted 1 run as 1 job array:" in printed
    assert {rid: status(out, rid) for rid in ids} == before
    assert wait(out, more) == dict.fromkeys(more, "done")
    assert "nothing to run" in suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out))


def test_a_jobs_fresh_interpreter_builds_a_plugin_model(tmp_path, capsys, monkeypatch):
    """A model plugin installed where the jobs run (here: on the PYTHONPATH the jobs inherit) is
    found by each array task, which imports the suite from the code snapshot."""
    site = tmp_path / "site"
    write_plugin(site, "tinyplug", {"tinyplug": tiny_se()}, {"se": "tinyplug"})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    out = tmp_path / "store"
    with fresh_registry(site):
        spec = write_spec(tmp_path, "plugin", {"model.gate": ["sigmoid", "hard"]},
                          model={"name": "tiny_se_net", "width": 4})
        ids = run_ids(spec)
        assert "submitted 2 runs as 1 job array" in suite(capsys, "run", str(spec), "--executor", "slurm",
                                                          "--out", str(out))
        assert wait(out, ids) == dict.fromkeys(ids, "done"), cluster_report(out)
        frame = store.collect(out, ids)
        assert list(frame["model.gate"]) == ["sigmoid", "hard"] and frame["train_loss"].notna().all()


def test_grid_larger_than_max_array_size_is_split(tmp_path, capsys, slurm_cluster):
    assert slurm.max_array_size(slurm.read_cluster()) == slurm_cluster.max_array_size  # the default: scontrol's
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "split", {"lr": [0.01, 0.02, 0.03, 0.04, 0.05]}, cluster={"max_array_size": 2})
    ids = run_ids(spec)
    # Held (`--sbatch hold`): nothing runs, so this checks the submission alone.
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--sbatch", "hold")
    assert "submitted 5 runs as 3 job arrays" in printed
    jobs = [status(out, rid)["slurm_job_id"] for rid in ids]
    a, b, c = (jobs[0].split("_")[0], jobs[2].split("_")[0], jobs[4])
    assert jobs == [f"{a}_0", f"{a}_1", f"{b}_0", f"{b}_1", c] and len({a, b, c}) == 3  # a chunk of one is a plain job
    queued = subprocess.run(["squeue", "-h", "-r", "-j", f"{a},{b},{c}", "-o", "%i %r"], capture_output=True,
                            text=True).stdout.split("\n")
    assert sorted(line.split()[0] for line in queued if line) == sorted(jobs)
    assert all("JobHeldUser" in line for line in queued if line)
    printed = suite(capsys, "cancel", str(spec), "--out", str(out))
    assert "cancelled 5 runs" in printed
    assert f"`suite run {spec} --out {out} --executor slurm --retry-failed` submits" in printed  # not held again
    assert {store.state_of(store.run_dir(out, rid)).state for rid in ids} == {"cancelled"}



def test_a_refused_chunk_withdraws_the_arrays_sbatch_took_before_it(tmp_path):
    """A grid split into arrays whose second sbatch is refused: the first array, taken (held), must
    not stay queued for a submission that failed. No option makes one chunk's sbatch fail alone, so
    the refusal is raised in place of the second call; the first is a real sbatch."""
    from submitit.core.utils import FailedJobError

    from suite.dispatch import snapshot
    from suite.dispatch.cluster import ClusterOptions
    from suite.errors import SuiteError

    out = tmp_path / "store"
    executor = slurm.make_executor(out, ClusterOptions(), snapshot.take(out), name=f"{PREFIX}chunks")
    taken, sbatch = [], executor.submit_array

    def submit_array(tasks):
        if taken:
            raise FailedJobError("sbatch: error: refused here")
        taken.extend(sbatch(tasks))
        return taken

    executor.submit_array = submit_array
    with pytest.raises(SuiteError, match="sbatch refused the job: sbatch: error: refused here"):
        slurm.submit_arrays(executor, [print] * 3, 2)
    assert len(taken) == 2 and set(slurm.slurm_states([j.job_id for j in taken]).values()) == {"CANCELLED"}

# ----------------------------------------------------------------------------- GPUs, failures
def test_gpu_job_gets_cuda_visible_devices(tmp_path, capsys, slurm_cluster):
    if slurm_cluster.gpus < 1:
        pytest.skip("cluster started with LOCAL_SLURM_GPUS=0")
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "gpu", {"lr": [0.01]}, cluster={"partition": slurm_cluster.gpu_partition,
                                                                "gpus_per_node": 1})
    [rid] = run_ids(spec)
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out))
    assert wait(out, [rid]) == {rid: "done"}
    assert status(out, rid)["cuda_visible_devices"] in [str(i) for i in range(slurm_cluster.gpus)]
    if not torch.cuda.is_available():  # the local cluster's GPUs are the variable only: device auto trained on the CPU
        said = "this run was given GPUs (CUDA_VISIBLE_DEVICES is set) but torch"
        assert any(said in w for w in status(out, rid)["warnings"])
        assert f"warned 1 done run ({rid}): {said}" in suite(capsys, "status", str(spec), "--out", str(out))


def test_status_says_why_a_request_the_cluster_cannot_meet_waits(tmp_path, capsys, slurm_cluster, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "toomany", {"lr": [0.01]})
    # more tasks a socket than the one task a node: a binding the checks before submitting leave to slurmctld
    too_many = "ntasks-per-socket=2"
    suite(capsys, "run", spec.name, "--executor", "slurm", "--out", "store", "--sbatch", too_many)
    # The scheduler sets the reason when it first looks at the job (SchedulerParameters, ~1 s here).
    wait_for(lambda: "pending because: BadConstraints (1)" in suite(capsys, "status", str(spec), "--out", str(out)),
             "squeue to give the pending reason", out, timeout=60)
    printed = suite(capsys, "status", str(spec), "--out", str(out))
    assert "1 pending" in printed and "BadConstraints: no node can meet the request" in printed
    monkeypatch.chdir("/")  # the resubmit command was recorded with absolute paths: it works from anywhere
    assert f"`suite run {spec} --out {out} --executor slurm --sbatch {too_many} --retry-failed` submits" in \
        suite(capsys, "cancel", str(spec), "--out", str(out))


def test_status_says_a_request_above_the_partition_limits_waits_forever(tmp_path, capsys):
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "toowide", {"lr": [0.01]})
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--nodes", "3")  # a one-node cluster
    wait_for(lambda: "pending because: PartitionNodeLimit (1)" in suite(capsys, "status", str(spec), "--out", str(out)),
             "squeue to give the pending reason", out, timeout=60)
    assert "PartitionNodeLimit: more nodes than the partition allows (or the nodes it needs are down or drained): these wait until the cluster changes" in \
        suite(capsys, "status", str(spec), "--out", str(out))
    suite(capsys, "cancel", str(spec), "--out", str(out))


def test_status_says_a_requeued_job_waits_to_start_again(tmp_path, capsys):
    """A requeued job pends for its new begin time: `BeginTime` would read as a `--begin` the user
    asked for, which a job submitted so still shows."""
    out, later = tmp_path / "store", tmp_path / "later"
    spec = write_spec(tmp_path, "requeued", {"lr": [0.01]}, iterations=100_000)
    [rid] = run_ids(spec)
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out))
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(later), "--sbatch", "begin=now+600")
    job = status(out, rid)["slurm_job_id"]
    wait_for(lambda: slurm.slurm_states([job])[job] == "RUNNING", "the job to start", out)
    subprocess.run(["scontrol", "requeue", job], check=True)  # as a time limit's or a pre-emption's requeue does
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now+600"], check=True)  # a long requeue delay
    requeued = "pending because: requeued, waiting to start again (1)"
    wait_for(lambda: requeued in suite(capsys, "status", str(spec), "--out", str(out)),
             "squeue to give the pending reason", out, timeout=60)
    wait_for(lambda: "pending because: BeginTime (1)" in suite(capsys, "status", str(spec), "--out", str(later)),
             "squeue to give the pending reason", later, timeout=60)
    for store_dir in (out, later):
        suite(capsys, "cancel", str(spec), "--out", str(store_dir))


def test_status_shows_the_queued_jobs_measuring_done_runs_again(tmp_path, capsys):
    """It said `suite run` would measure them, with no word of the jobs already doing so."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "again", {"lr": [0.01, 0.02]})
    ids = run_ids(spec)
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out))
    assert wait(out, ids) == dict.fromkeys(ids, "done")
    jobs = [status(out, rid)["slurm_job_id"] for rid in ids]  # a job that wrote its result may still be ending:
    wait_for(lambda: not set(slurm.slurm_states(jobs).values()) & slurm.ALIVE, "the jobs to end", out)  # not planned
    other = "measure.complexity=true"
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--sbatch", "hold", other)
    assert "submitted 2 runs as 1 job array" in printed
    printed = suite(capsys, "status", str(spec), "--out", str(out), other)
    assert "2 runs: 2 done" in printed and "slurm: 2 PENDING" in printed and "held as asked" in printed
    assert "2 done runs measured with other settings, measure.complexity (False, not True): their jobs measuring " \
        "them again are queued or running" in printed
    assert "measures them again" not in printed  # no advice to submit what is queued


def test_a_partition_the_cluster_lacks_is_named_where_it_was_given_before_anything_is_submitted(tmp_path, capsys,
                                                                                               slurm_cluster):
    """sbatch's refusal said only 'invalid partition specified', with no partition the cluster has,
    and the dry run passed it; a refused submission also left a code snapshot in a new store, and then
    (refused at the start of the submission) the new store itself, made for its lock file."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "nopart", {"lr": [0.01]}, cluster={"partition": slurm_cluster.partition + "x"})
    line = spec.read_text().splitlines().index(f"  partition: {slurm_cluster.partition}x") + 1
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--dry-run")
    said = f"cluster.partition: this cluster has no partition '{slurm_cluster.partition}x'; did you mean " \
           f"'{slurm_cluster.partition}'? (`sinfo` lists them) (valid: "
    assert f"note: a real submission would be refused: {spec}:{line}: {said}" in printed
    assert main(["run", str(spec), "--executor", "slurm", "--out", str(out)]) == 2
    assert f"error: {spec}:{line}: {said}" in capsys.readouterr().err
    assert not out.exists()  # refused before the store was made (its submission lock made it)
    assert main(["run", str(spec), "--executor", "slurm", "--out", str(out), "--partition", "a,nosuch"]) == 2
    assert "error: <command line>: --partition: this cluster has no partition 'a'" in capsys.readouterr().err


def test_an_sbatch_parameter_sbatch_refuses_is_named_where_it_was_given_before_anything_is_submitted(
        tmp_path, capsys, monkeypatch):
    """A misspelt key passed --dry-run and was refused only at submission, after the store was
    made; a bare key that takes a value was not refused at all: in the job script `--comment` took
    the next line, `--error=...`, as the comment, and the job's errors went to its output log."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "nokey", {"lr": [0.01]}, cluster={"sbatch": {"partiton": "debug"}})
    line = spec.read_text().splitlines().index("    partiton: debug") + 1  # its own line, not sbatch:'s
    said = ("cluster.sbatch.partiton: sbatch has no option --partiton; did you mean 'partition'? (not set here: use "
            "the 'partition' option)")
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--dry-run")
    assert f"note: a real submission would be refused: {spec}:{line}: {said}" in printed
    assert main(["run", str(spec), "--executor", "slurm", "--out", str(out), "--sbatch", "comment",
                 "--sbatch", "hold=true", "--sbatch", "mail=END", "--sbatch", "mail-type=BAD"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {spec}:{line}: {said}",
        "  and <command line>: --sbatch.comment: sbatch option --comment takes a value, which a bare key (a flag) "
        "does not give: in the job script it would take the next option as its value",
        "  and <command line>: --sbatch.hold: sbatch option --hold takes no value: give the key bare (`--sbatch "
        "hold`, or `hold: true`)",
        "  and <command line>: --sbatch.mail: sbatch refuses it: option '--mail=END' is ambiguous; possibilities: "
        "'--mail-type' '--mail-user'",
        "  and <command line>: --sbatch.mail-type: sbatch refuses it: Invalid --mail-type specification"]
    assert not out.exists()  # the store is as it was: not even made
    # options `sbatch --help` leaves out are taken, by the check and by sbatch
    spec = write_spec(tmp_path, "hidden", {"lr": [0.01]})
    hidden = ["--sbatch", "hint=nomultithread", "--sbatch", "open-mode=append", "--sbatch", "wait-all-nodes=1"]
    assert "submitted 1 run" in suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), *hidden,
                                      "--sbatch", "hold")
    suite(capsys, "cancel", str(spec), "--out", str(out))
    with monkeypatch.context() as patch:  # off the cluster: no sbatch, and not a word about it
        patch.setenv("PATH", str(tmp_path / "nothing"))
        printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(tmp_path / "s"), "--dry-run",
                        "--sbatch", "partiton=debug")
    assert "1 of 1 run would start" in printed and "note:" not in printed


def test_an_sbatch_value_refused_in_words_that_name_no_option_is_named_where_it_was_given(tmp_path, capsys):
    """Some of sbatch's complaints about a value name no option ("Priority must be >= 0"), or name it
    only on their second line (`--begin=xyz`): such a value passed the check and --dry-run, and was
    refused only at submission, by a message that did not say which parameter or where it was set."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "novalue", {"lr": [0.01]}, cluster={"sbatch": {"priority": -1}})
    line = spec.read_text().splitlines().index("    priority: -1") + 1
    argv = ["run", str(spec), "--executor", "slurm", "--out", str(out), "--sbatch", "begin=xyz",
            "--sbatch", "extra-node-info=many"]
    printed = suite(capsys, *argv, "--dry-run")
    assert (f"note: a real submission would be refused: {spec}:{line}: cluster.sbatch.priority: sbatch refuses it: "
            "Priority must be >= 0") in printed
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {spec}:{line}: cluster.sbatch.priority: sbatch refuses it: Priority must be >= 0",
        "  and <command line>: --sbatch.begin: sbatch refuses it: Invalid time specification (pos=0): xyz; "
        "Invalid --begin specification",
        "  and <command line>: --sbatch.extra-node-info: sbatch refuses it: Invalid numeric value \"many\" for first "
        "arg of -B."]
    assert not out.exists()


def test_force_archives_results_only_once_sbatch_took_the_runs(tmp_path, capsys):
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "force", {"lr": [0.01, 0.02]})
    run, fresh = ablations.expand(ablations.load(spec))
    d = store.plan(out, run)
    store.write_result(d, {"run_id": run.run_id, "metrics": {"top1_err": 12.5}})
    assert main(["run", str(spec), "--executor", "slurm", "--out", str(out), "--force", "--constraint", "nosuch"]) == 2
    assert "sbatch refused the job" in (err := capsys.readouterr().err) and "constraint='nosuch' (--constraint)" in err
    assert store.state_of(d).state == "done" and not (d / "archive").exists()  # nothing hidden
    assert not store.run_dir(out, fresh.run_id).exists()
    assert not (out / "code").exists() and not (out / "submitit").exists()  # nor the snapshot, nor the pickles
    # sbatch takes a job no node can run while it is held; releasing it is refused: undone alike (more
    # CPUs than a node has, which `suite run` refuses before submitting, stands for a node changed since)
    status_before = (d / "status.json").read_text()
    with pytest.raises(SuiteError, match=r"SLURM took the jobs but will not run them: .*cpus_per_task=4096"):
        slurm.submit([run, fresh], out, ClusterOptions(cpus_per_task=4096), cluster=slurm.read_cluster(),
                     name=spec.stem, afresh=True)
    assert store.state_of(d).state == "done" and not (d / "archive").exists()  # the result is back in place
    assert (d / "status.json").read_text() == status_before
    assert not store.run_dir(out, fresh.run_id).exists()  # nothing of a run first planned by it stays in the store
    assert not (out / "code").exists() and not (out / "submitit").exists()
    assert store.collect(out)["run_id"].tolist() == [run.run_id]
    assert not subprocess.run(["squeue", "-h", "--name", "suite-force"], capture_output=True, text=True).stdout.strip()
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--force", "--sbatch", "hold")
    assert store.state_of(d).state == "pending"
    wait_for(lambda: "`scontrol release " in suite(capsys, "status", str(spec), "--out", str(out)),
             "status to say the job is held and how to release it", out, timeout=60)
    assert store.read_json(next((d / "archive").glob("*/result.json")))["metrics"]["top1_err"] == 12.5
    suite(capsys, "cancel", str(spec), "--out", str(out))


def test_a_refused_submission_removes_only_the_snapshot_and_submitit_files_it_made(tmp_path, capsys):
    """A refused sbatch left the new code snapshot and submitit's task pickles and sbatch script in
    the store. They go; a snapshot that was there before, or that another run's record names (its
    jobs import it, though someone removed it), stays, and so do the other files in submitit/."""
    from suite.dispatch import snapshot

    out = tmp_path / "store"
    spec = write_spec(tmp_path, "leftovers", {"lr": [0.01, 0.02]})
    refused = ["run", str(spec), "--executor", "slurm", "--out", str(out), "--constraint", "nosuch"]
    code = snapshot.take(out)  # there before: another submission's
    others = out / "submitit"
    others.mkdir()
    for name in ("12_0_submitted.pkl", "12_submission.sh", "12_0_0_log.err", f"{'a' * 32}.pkl"):
        (others / name).write_text("another submission's")
    assert main(refused) == 2 and "sbatch refused the job" in capsys.readouterr().err
    assert (code.path / "suite" / "execute.py").is_file() and list((out / "code").iterdir()) == [code.path]
    assert sorted(p.name for p in others.iterdir()) == ["12_0_0_log.err", "12_0_submitted.pkl", "12_submission.sh",
                                                        f"{'a' * 32}.pkl"]
    shutil.rmtree(out / "code")
    other = store.run_dir(out, "other_run")
    other.mkdir(parents=True)
    store.write_json(other / "status.json", {"state": "pending", "code": code.record()})
    assert main(refused) == 2
    assert (code.path / "suite" / "execute.py").is_file()
    (other / "status.json").unlink()
    shutil.rmtree(out / "code")
    assert main(refused) == 2
    assert not (out / "code").exists() and len(list(others.iterdir())) == 4


def test_a_refused_submission_to_a_new_store_leaves_no_runs_folder(tmp_path, capsys):
    """The planned runs were taken back, but the `runs/` folder planning them made stayed, empty,
    though the README says a refused submission leaves the store as it was."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "new_store", {"lr": [0.01]})
    assert main(["run", str(spec), "--executor", "slurm", "--out", str(out), "--constraint", "nosuch"]) == 2
    assert "sbatch refused the job" in capsys.readouterr().err
    assert not (out / "runs").exists() and not (out / "code").exists() and not (out / "submitit").exists()


# A local `suite run`'s child as the store sees it: it holds the run's lock, records the run as
# running (no SLURM job), and records it interrupted when stopped, keeping the status's other fields
# (as `suite.execute` did, job id included). Argument: the run directory.
LOCAL_RUN = """
import os, signal, socket, sys, time
from pathlib import Path
from suite import store
d = Path(sys.argv[1])
with store.run_lock(d):
    store.set_status(d, "running", host=socket.gethostname(), pid=os.getpid(), slurm_job_id=None, slurm_state=None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        time.sleep(600)
    finally:
        store.set_status(d, "interrupted", error="interrupted: Interrupted")
"""


def start_local_run(d: Path) -> subprocess.Popen:
    """A process executing the run in `d` as a local `suite run` does, once it has recorded so."""
    env = {**os.environ, "PYTHONPATH": str(Path(store.__file__).parents[1])}
    child = subprocess.Popen([sys.executable, "-c", LOCAL_RUN, str(d)], env=env)
    wait_for(lambda: (d / "status.json").exists() and status(d.parents[1], d.name).get("pid") == child.pid,
             "the local run to record itself running", d.parents[1], timeout=60)
    return child


def stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    child.wait(timeout=60)


def test_a_run_started_locally_during_a_submission_stays_the_local_runs(tmp_path, capsys, monkeypatch):
    """A local `suite run` that started a run while sbatch took it had its `running` overwritten by
    `pending` with the job's id; the job's task found the run busy and left, and once the local run
    was interrupted, `suite status` recorded it as failed (the job ended without a result). Now the
    run keeps the local run's status, its task is cancelled before it is released, and the output
    says which run was left; the other run of the grid is submitted and done as ever."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "taken_locally", {"lr": [0.01, 0.02]})
    taken, submitted = run_ids(spec)
    d = store.run_dir(out, taken)
    local: list[subprocess.Popen] = []
    submit_arrays = slurm.submit_arrays

    def local_run_starts_meanwhile(*args, **kwargs):  # after planning, before the pending statuses
        jobs = submit_arrays(*args, **kwargs)
        local.append(start_local_run(d))
        return jobs

    monkeypatch.setattr(slurm, "submit_arrays", local_run_starts_meanwhile)
    try:
        printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out))
        assert f"left 1 run to the other process that started or ended it meanwhile (not submitted): {taken}" \
            in printed and "submitted 1 run as 1 job array" in printed
        assert status(out, taken)["state"] == "running" and status(out, taken)["slurm_job_id"] is None
        job = status(out, submitted)["slurm_job_id"]
        assert wait(out, [submitted]) == {submitted: "done"} and store.state_of(d).state == "running"
        stop(local[0])
        printed = suite(capsys, "status", str(spec), "--out", str(out))
        assert store.state_of(d).state == "interrupted" and "failed" not in printed and "1 interrupted" in printed
        cancelled = f"{slurm.array_of(job)}_0"  # while held: it never started (SLURM may have forgotten it)
        queued = subprocess.run(["squeue", "--noheader", "--array", "--states=PENDING,RUNNING", "--format=%i",
                                 "--jobs", slurm.array_of(job)], capture_output=True, text=True, timeout=60)
        assert queued.returncode == 0 and cancelled not in queued.stdout.split(), queued  # slurmctld: not queued
        # the accounting may list the array's record from before the split (`N_[0-1%2] PENDING`) for a
        # few seconds more (seen once in CI): it catches up
        wait_for(lambda: slurm.slurm_states([cancelled])[cancelled] in ("CANCELLED", "UNKNOWN"),
                 f"the accounting to know {cancelled} cancelled", out, timeout=60)
        assert not (out / "submitit" / f"{cancelled}_log.err").exists()
    finally:
        for child in local:
            stop(child)


def test_a_withdrawn_submission_leaves_the_status_a_local_run_wrote_since(tmp_path, capsys, monkeypatch):
    """A local run that starts a run once it is pending, before the release is refused: the
    withdrawal put back the status from before the submission over the local run's `running`."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "withdrawn_local", {"lr": [0.01]})
    [rid] = run_ids(spec)
    d = store.run_dir(out, rid)
    local: list[subprocess.Popen] = []
    ask = slurm._slurm

    def local_run_starts_before_the_release(*command: str) -> str:
        if command[:2] == ("scontrol", "release"):
            local.append(start_local_run(d))
        return ask(*command)

    monkeypatch.setattr(slurm, "_slurm", local_run_starts_before_the_release)
    try:
        # more CPUs than a node has (which `suite run` refuses before submitting): the release is refused
        with pytest.raises(SuiteError, match="SLURM took the jobs but will not run them"):
            slurm.submit(ablations.expand(ablations.load(spec)), out, ClusterOptions(cpus_per_task=4096),
                         cluster=slurm.read_cluster(), name=spec.stem)
        assert status(out, rid)["state"] == "running" and status(out, rid)["pid"] == local[0].pid
        stop(local[0])
        assert store.state_of(d).state == "interrupted" and (d / "config.json").exists()
    finally:
        for child in local:
            stop(child)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_a_submission_stopped_by_a_signal_is_withdrawn_as_after_ctrl_c(tmp_path, capsys, signum, hangup_default):
    """`kill` (SIGTERM) or a lost ssh session (SIGHUP) while the held arrays are being released
    ended `suite run` on the spot: its jobs stayed held and its runs pending (`suite run` then had
    nothing to run). Now, as after Ctrl-C, the jobs are cancelled and the store is as it was."""
    scontrol, releasing = shutil.which("scontrol"), tmp_path / "releasing"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(  # a slow release: 60 s in short sleeps, none left behind long
        f'#!/bin/sh\nif [ "$1" = release ]; then touch {releasing}; i=0; while [ $i -lt 600 ]; do sleep 0.1; '
        f'i=$((i + 1)); done; fi\nexec {scontrol} "$@"\n')
    (bin_dir / "scontrol").chmod(0o755)
    out = tmp_path / "store"
    spec = write_spec(tmp_path, f"stopped_{signal.Signals(signum).name.lower()}", {"lr": [0.01, 0.02]})
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SUITE_CLUSTER": "",
           "PYTHONPATH": str(Path(store.__file__).parents[1])}  # the suite under test
    submitter = subprocess.Popen([sys.executable, "-m", "suite", "run", str(spec), "--executor", "slurm", "--out",
                                  str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: releasing.exists() or submitter.poll() is not None, "the release", out)
        submitter.send_signal(signum)
        said, err = submitter.communicate(timeout=120)
    finally:
        if submitter.poll() is None:
            submitter.kill()
            submitter.wait()
    assert submitter.returncode == 128 + signum and err.strip().endswith("interrupted"), said + err
    assert not subprocess.run(["squeue", "-h", "--name", f"suite-{spec.stem}"], capture_output=True,
                              text=True).stdout.strip()
    assert not (out / "runs").exists()  # the runs it planned are taken back, and the folder they made
    assert "2 of 2 runs would start" in suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out),
                                              "--dry-run")


def test_failing_run_is_reported_with_its_error_and_the_rest_finish(tmp_path, capsys):
    out = tmp_path / "store"
    # one 4-px image per batch fails at the first step: a BatchNorm then sees a 1x1 map of one image
    spec = write_spec(tmp_path, "fail", {"batch_size": [16, 1]}, data={**BASE["data"], "input_size": 4})
    good, bad = run_ids(spec)
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out))
    assert wait(out, [good, bad]) == {good: "done", bad: "failed"}
    # a user's mistake (a SuiteError): its message is the record, with no traceback file
    assert status(out, bad)["error"].startswith("batch_size: a batch of 1 cannot train this model: one of its BatchNorms")
    assert not (store.run_dir(out, bad) / "error.txt").exists()
    printed = suite(capsys, "status", str(spec), "--out", str(out))
    assert "1 done, 1 failed" in printed and "a batch of 1 cannot train this model" in printed
    assert "nothing to run" in suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out))
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--retry-failed")
    assert "submitted 1 run " in printed
    assert wait(out, [good, bad]) == {good: "done", bad: "failed"}
    assert status(out, bad)["attempts"] == 2 and status(out, good)["attempts"] == 1


def test_states_come_from_slurmctld_at_once_and_from_sacct_once_it_forgets(tmp_path, monkeypatch):
    """Right after sbatch every task of an array is PENDING or RUNNING, and after scancel
    CANCELLED: sacct alone lags (a task the store already had running showed as UNKNOWN). Tasks
    cancelled before they ever started live on in the array's own record, which SLURM lists
    under the bare array id: they are CANCELLED too, not UNKNOWN (they stayed `pending` in the
    store). A job slurmctld no longer holds is answered by sacct; one nobody knows is UNKNOWN."""
    def sbatch(*args: str) -> str:
        return subprocess.run(["sbatch", "--parsable", f"--job-name=suite-{PREFIX}states", f"--output={tmp_path}/%A_%a.out",
                               *args, "--wrap", "sleep 60"], capture_output=True, text=True, check=True).stdout.split(";")[0].strip()

    running, held = sbatch("--array=0-2"), sbatch("--array=0-1", "--hold")
    tasks = [f"{running}_{i}" for i in range(3)] + [f"{held}_{i}" for i in range(2)]
    states = slurm.slurm_states([*tasks, "9999999"])
    assert all(states[t] in ("PENDING", "RUNNING") for t in tasks) and states["9999999"] == "UNKNOWN", states
    subprocess.run(["scancel", *tasks], check=True)
    wait_for(lambda: set(slurm.slurm_states(tasks).values()) == {"CANCELLED"}, "squeue to say CANCELLED", tmp_path,
             timeout=30)
    monkeypatch.setattr(slurm, "_squeue", lambda ids, states, field: ({}, True))  # as after MinJobAge (300 s)
    wait_for(lambda: set(slurm.slurm_states(tasks).values()) == {"CANCELLED"}, "sacct to say CANCELLED", tmp_path,
             timeout=60)


def test_a_run_whose_job_slurm_never_heard_of_fails_once_the_grace_is_over(tmp_path, capsys):
    """A cluster reset forgets jobs: once slurmctld and the accounting both answer that they do not
    know a job submitted over LOST_AFTER_S ago, its run fails and `--retry-failed` submits it again.
    A task of an array SLURM knows (not split off yet) is never taken for lost; nor is another user's
    job where PrivateData hides jobs, which the test cluster does not (its `scontrol show config` read)."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "lost", {"lr": [0.01, 0.02]})
    old, recent = ablations.expand(ablations.load(spec))
    long_ago = (datetime.now(timezone.utc) - timedelta(seconds=slurm.LOST_AFTER_S + 60)).isoformat()
    store.set_status(store.plan(out, old), "pending", slurm_job_id="9999999_0", submitted_at=long_ago,
                     executor="slurm", slurm_user="a-teammate")
    store.set_status(store.plan(out, recent), "pending", slurm_job_id="9999998_0", submitted_at=store.now(),
                     executor="slurm")
    assert slurm.refresh(out, [old.run_id, recent.run_id]) == {old.run_id: "UNKNOWN", recent.run_id: "UNKNOWN"}
    assert store.state_of(store.run_dir(out, old.run_id)).state == "failed"
    assert "SLURM has no record of job 9999999_0" in store.state_of(store.run_dir(out, old.run_id)).note
    assert store.state_of(store.run_dir(out, recent.run_id)).state == "pending"  # the accounting may not have it yet
    held = subprocess.run(["sbatch", "--parsable", f"--job-name=suite-{PREFIX}lost", f"--output={tmp_path}/%A_%a.out",
                           "--array=0-3", "--hold", "--wrap", "sleep 60"],
                          capture_output=True, text=True, check=True).stdout.split(";")[0].strip()
    assert slurm._lost([f"{held}_3", "9999999_0"]) == {"9999999_0"}
    subprocess.run(["scancel", f"{held}_1"], check=True)
    # A task cancelled while held usually leaves no record at all: lost. Sometimes slurmctld splits it
    # off first and lists it as cancelled until MinJobAge: then it is known, and as cancelled.
    wait_for(lambda: slurm._lost([f"{held}_1", f"{held}_3"]) == {f"{held}_1"}
             or slurm.slurm_states([f"{held}_1"]).get(f"{held}_1") == "CANCELLED",
             "the held task to be unknown, or known as cancelled", tmp_path, timeout=30)
    subprocess.run(["scancel", held], check=True)
    assert "SLURM has no record of 1 job" in suite(capsys, "status", str(spec), "--out", str(out))


def test_a_task_cancelled_while_it_waits_its_turn_is_cancelled_at_once_and_no_task_between_states_is(tmp_path):
    """`scancel 7_2` of a task waiting in its array (held, or throttled by `%N`) leaves no record of
    it in slurmctld or the accounting: it was UNKNOWN, its run pending for LOST_AFTER_S, then failed.
    It is CANCELLED as soon as the accounting has heard of the array; the other tasks, polled as
    they start (split off the array's record), run and end, never are."""
    array = subprocess.run(["sbatch", "--parsable", f"--job-name=suite-{PREFIX}dropped",
                            f"--output={tmp_path}/%A_%a.out", "--array=0-4%1", "--hold", "--wrap", "sleep 1"],
                           capture_output=True, text=True, check=True).stdout.split(";")[0].strip()
    tasks = [f"{array}_{i}" for i in range(5)]
    subprocess.run(["scancel", tasks[2]], check=True)  # held
    wait_for(lambda: slurm.slurm_states([tasks[2]])[tasks[2]] == "CANCELLED", "the held task to be cancelled",
             tmp_path, timeout=10)
    subprocess.run(["scontrol", "release", array], check=True)
    wait_for(lambda: slurm.pending_reasons([tasks[4]]).get(tasks[4]) == "JobArrayTaskLimit", "the throttle", tmp_path)
    subprocess.run(["scancel", tasks[4]], check=True)  # throttled
    ran = [tasks[0], tasks[1], tasks[3]]
    seen: dict[str, set[str]] = {t: set() for t in tasks}
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline:
        states = slurm.slurm_states(tasks)
        for task, state in states.items():
            seen[task].add(state)
        if all(states[task] == "COMPLETED" for task in ran):
            break
        time.sleep(0.1)
    assert seen[tasks[2]] == {"CANCELLED"}, seen
    assert "CANCELLED" in seen[tasks[4]] and seen[tasks[4]] <= {"PENDING", "CANCELLED"}, seen
    for task in ran:
        assert "COMPLETED" in seen[task] and "CANCELLED" not in seen[task], seen


def test_status_and_a_dry_run_say_at_once_that_a_waiting_task_was_cancelled_and_retry_failed_submits_it(
        tmp_path, capsys):
    """A user (or an admin) `scancel`s one waiting task of a submission: `suite status` showed its run
    pending for LOST_AFTER_S, then failed, and `suite run --dry-run` said only `0 of 3 runs would
    start`. Both say at once that it was cancelled, and with what it is submitted again."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "dropped", {"lr": [0.01, 0.02, 0.03]})
    ids = run_ids(spec)
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--sbatch", "hold")
    job = status(out, ids[1])["slurm_job_id"]
    subprocess.run(["scancel", job], check=True)
    again = f"suite run {spec} --out {out} --executor slurm --retry-failed"
    # at once, once the accounting has heard of the array (within a second of its submission here)
    wait_for(lambda: "2 pending, 1 cancelled" in suite(capsys, "status", str(spec), "--out", str(out)),
             "status to say it was cancelled", out, timeout=10)
    printed = suite(capsys, "status", str(spec), "--out", str(out))
    assert f"cancelled {ids[1]}: SLURM job {job} was cancelled before it started" in printed
    assert f"rerun the 1 failed or cancelled: {again}" in printed
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--dry-run")
    assert f"0 of 3 runs would start (out: {out}); rerun the 1 failed or cancelled: {again}" in printed, printed
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--sbatch", "hold",
                    "--retry-failed")
    assert "submitted 1 run as 1 job array" in printed, printed
    assert status(out, ids[1])["state"] == "pending" and status(out, ids[1])["slurm_job_id"] != job
    assert "3 pending" in suite(capsys, "status", str(spec), "--out", str(out))


def test_a_notebooks_report_shows_a_run_whose_job_was_cancelled_as_suite_report_does(tmp_path):
    """`tables.load` (`suite report` from Python) read the store alone: a run whose SLURM job was
    cancelled (or ended without a result) stayed `pending` in `report.runs` and the table, where
    `suite report` and `suite status` ask SLURM and say `cancelled`. It asks SLURM as they do."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "loadended", {"lr": [0.01]})
    [run] = ablations.expand(ablations.load(spec))
    (tmp_path / "log").mkdir()
    job = subprocess.run(["sbatch", "--parsable", "--hold", f"--job-name=suite-{PREFIX}loadended",
                          f"--output={tmp_path}/log/%j.out", "--wrap", "true"], capture_output=True, text=True,
                         check=True).stdout.strip()
    store.set_status(store.plan(out, run), "pending", slurm_job_id=job, submitted_at=store.now(), executor="slurm")
    subprocess.run(["scancel", job], check=True)
    report = tables.load(spec, out=out)
    assert list(report.runs["status"]) == ["cancelled"]
    assert list(report.runs["note"]) == [f"SLURM job {job} was cancelled before it started"]
    assert dict(zip(report.table.header, report.table.body[0]))["runs"] == "0/1 done, 1 cancelled"


def pending_long_ago(tmp_path: Path, out: Path, name: str, job_id: str) -> tuple[Path, Path]:
    """A spec of one run, recorded pending as job `job_id` (which SLURM never heard of) submitted
    over LOST_AFTER_S ago: the next status records it failed. Returns the spec's path and the run's folder."""
    spec = write_spec(tmp_path, name, {"lr": [0.01]})
    [run] = ablations.expand(ablations.load(spec))
    long_ago = (datetime.now(timezone.utc) - timedelta(seconds=slurm.LOST_AFTER_S + 60)).isoformat()
    d = store.plan(out, run)
    store.set_status(d, "pending", slurm_job_id=job_id, submitted_at=long_ago, executor="slurm")
    return spec, d


def test_status_of_a_store_it_may_only_read_shows_an_ended_job_as_recorded_not_a_traceback(tmp_path, capsys,
                                                                                          monkeypatch):
    """`suite status` of a read-only store (a collaborator's, a read-only mount) stopped with an
    OSError traceback when SLURM's answer ended a job: it records that end, and could not. It says
    so, naming the file, and shows the run as recorded."""
    out = tmp_path / "store"
    spec, d = pending_long_ago(tmp_path, out, "lostro", "9999997_0")
    before = (d / "status.json").read_bytes()
    real = os.open

    def read_only(path, flags, *args, **kwargs):  # a read-only mount refuses even root
        if Path(path).is_relative_to(out) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(30, "Read-only file system", str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    assert main(["status", str(spec), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert f"{d / 'status.json'}: cannot record that SLURM job 9999997_0 ended LOST (Read-only file system)" \
        in printed.err, printed.err
    assert "1 pending" in printed.out and (d / "status.json").read_bytes() == before


def test_status_of_the_whole_store_goes_on_past_a_run_whose_lock_it_cannot_open(tmp_path, capsys, monkeypatch):
    """`suite status` of a whole store stopped with an error at a run whose `.lock` this user cannot
    open (another user's, in a folder this user can write), once SLURM's answer ended that run's job:
    recording the end needs the lock. It says so in a warning naming the lock, shows that run as
    recorded, and lists the others."""
    out = tmp_path / "store"
    _, d = pending_long_ago(tmp_path, out, "lostlock", "9999996_0")
    before = (d / "status.json").read_bytes()
    [run] = ablations.expand(ablations.load(write_spec(tmp_path, "lostother", {"lr": [0.02]})))
    other = store.plan(out, run)
    store.set_status(other, "pending", slurm_job_id="9999995_0", submitted_at=store.now(), executor="slurm")
    store.set_status(other, "failed", error="boom")
    lock = d / ".lock"
    lock.touch()
    deny_open(monkeypatch, lock)  # another user's, mode 600
    assert main(["status", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert f"{lock}: cannot record that SLURM job 9999996_0 ended LOST (cannot open the run's lock (Permission " \
        "denied)" in printed.err, printed.err
    assert f"{PREFIX}lostlock: 1 run in the store: 0 done, 1 pending" in printed.out, printed.out
    assert f"failed {other.name}: boom" in printed.out  # and the other runs are listed
    assert (d / "status.json").read_bytes() == before


def test_status_of_a_run_deleted_as_its_job_end_is_recorded_makes_no_folder(tmp_path, capsys, monkeypatch):
    """A run deleted (`rm -rf`) as `suite status` records its job's end: the write made the folder
    again, holding a status alone (a folder that looks like a run and is none). Nothing is made,
    and status answers: the run is missing."""
    out = tmp_path / "store"
    spec, d = pending_long_ago(tmp_path, out, "lostgone", "9999996_0")
    record = slurm._record_end

    def deleted_first(d_, *args):
        shutil.rmtree(d_)
        record(d_, *args)

    monkeypatch.setattr(slurm, "_record_end", deleted_first)
    assert main(["status", str(spec), "--out", str(out)]) == 0
    assert "1 missing" in capsys.readouterr().out and not d.exists()


PAUSES = ("before SLURM's states", "after SLURM's states", "before the pending reasons")


@pytest.mark.parametrize("withdraw", ["suite cancel", "scancel"])
def test_a_submission_withdrawn_while_status_runs_is_shown_withdrawn_and_keeps_the_finished_result(
        tmp_path, capsys, monkeypatch, withdraw):
    """A submission withdrawn (`suite cancel`, or its held jobs scancelled) while a `suite status` of
    the same store runs, paused at each point where it has read something the withdrawal changes
    (the store's queued runs, SLURM's states, the store's table): status ends without error, shows
    none of them running or lost, and the run that finished stays done; the next status shows them
    cancelled."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "withdrawn", {"lr": [0.01, 0.02, 0.03]})
    finished, *queued = run_ids(spec)
    submit = ["run", str(spec), "--executor", "slurm", "--out", str(out), "--sbatch", "hold"]
    suite(capsys, *submit)
    subprocess.run(["scontrol", "release", status(out, finished)["slurm_job_id"]], check=True)
    assert wait(out, [finished]) == {finished: "done"}
    result = (store.run_dir(out, finished) / "result.json").read_bytes()
    real = {"slurm_states": slurm.slurm_states, "pending_reasons": slurm.pending_reasons}

    def withdrawing() -> None:
        if withdraw == "suite cancel":
            said = io.StringIO()
            with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
                assert main(["cancel", str(spec), "--out", str(out)]) == 0, said.getvalue()
        else:
            subprocess.run(["scancel", *(status(out, rid)["slurm_job_id"] for rid in queued)], check=True)

    for n, pause in enumerate(PAUSES):
        if n:  # the withdrawn runs submitted again, held
            assert "submitted 2 runs" in suite(capsys, *submit, "--retry-failed")
        fired = []

        def paused(name: str, at: str):
            def call(*args, **kwargs):  # once (`suite cancel` reads SLURM's states too)
                if at == "before" and not fired:
                    fired.append(at)
                    withdrawing()
                got = real[name](*args, **kwargs)
                if at == "after" and not fired:
                    fired.append(at)
                    withdrawing()
                return got
            return call

        where = {"before SLURM's states": ("slurm_states", "before"), "after SLURM's states": ("slurm_states", "after"),
                 "before the pending reasons": ("pending_reasons", "before")}[pause]
        monkeypatch.setattr(slurm, where[0], paused(*where))
        printed = suite(capsys, "status", str(spec), "--out", str(out))
        monkeypatch.undo()
        monkeypatch.setenv("SUITE_CLUSTER", "")
        assert fired, pause
        assert "RUNNING" not in printed and "running" not in printed and "no record" not in printed, (pause, printed)
        assert (store.run_dir(out, finished) / "result.json").read_bytes() == result
        wait_for(lambda: "st_withdrawn: 3 runs: 1 done, 2 cancelled, 0 missing\n" in suite(
            capsys, "status", str(spec), "--out", str(out)), f"the withdrawn runs to show cancelled ({pause})", out,
            timeout=30)


def test_cancelled_runs_show_cancelled_and_are_not_resubmitted(tmp_path, capsys):
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "cancel", {"lr": [0.01, 0.02]}, iterations=100_000)
    first, second = run_ids(spec)
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--timeout-min", "30")
    wait(out, [first, second], until=("running",))
    assert "slurm: 2 " in suite(capsys, "status", str(spec), "--out", str(out))  # squeue: PENDING or RUNNING
    # Cancelled behind the suite's back: the store learns it from sacct (no result was written).
    subprocess.run(["scancel", status(out, first)["slurm_job_id"]], check=True)
    assert wait(out, [first], timeout=60) == {first: "cancelled"}
    assert "ended CANCELLED without a result" in status(out, first)["error"]
    printed = suite(capsys, "cancel", str(spec), "--out", str(out))
    assert "cancelled 1 run " in printed  # and the command to submit it again, with the flags it had
    assert "1 was running: SLURM stops it within its KillWait; a run that finishes first keeps its result" in printed
    assert f"`suite run {spec} --out {out} --executor slurm --timeout-min 30 --retry-failed` submits" in printed
    job = status(out, second)["slurm_job_id"]
    wait_for(lambda: slurm.slurm_states([job])[job] == "CANCELLED", "sacct to say CANCELLED", out, timeout=60)
    printed = suite(capsys, "status", str(spec), "--out", str(out))
    assert "2 cancelled" in printed and f"rerun the 2 failed or cancelled: suite run {spec} --out {out} " \
        "--executor slurm --timeout-min 30 --retry-failed" in printed  # status says how, too
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--timeout-min", "30")
    assert f"nothing to run: 2 cancelled (out: {out}); rerun the 2 failed or cancelled: suite run {spec} --out {out} " \
           "--executor slurm --timeout-min 30 --retry-failed" in printed
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--timeout-min", "30",
                    "--dry-run")
    assert f"0 of 2 runs would start (out: {out}); rerun the 2 failed or cancelled: suite run {spec} --out {out} " \
           "--executor slurm --timeout-min 30 --retry-failed" in printed  # the plan says it as the run does
    # Retried and cancelled behind the suite's back again: the new job's end is recorded as well
    # (the first job's recorded state once made it look seen already, and the run stayed running).
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--retry-failed", "--array-parallelism", "1")
    retried = status(out, first)["slurm_job_id"]
    assert retried != job and status(out, first)["slurm_state"] is None
    throttled = status(out, second)["slurm_job_id"]  # waits while the first task runs: the submission's own cap
    wait_for(lambda: slurm.pending_reasons([throttled]).get(throttled) == "JobArrayTaskLimit", "the throttle", out)
    assert "JobArrayTaskLimit: waiting their turn, as array_parallelism (`--array-parallelism N`" \
        in suite(capsys, "status", str(spec), "--out", str(out))
    subprocess.run(["scancel", retried, status(out, second)["slurm_job_id"]], check=True)
    assert wait(out, [first, second], timeout=60) == {first: "cancelled", second: "cancelled"}
    assert f"SLURM job {retried} ended CANCELLED" in status(out, first)["error"]


def test_jobs_of_runs_an_edit_took_out_of_the_spec_are_named_with_their_ids(tmp_path, capsys):
    """A spec file edited while its jobs wait (an axis value changed) no longer expands to them, so
    no `suite cancel` of it reaches them: status and cancel name their jobs, and that scancel works."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "edited", {"lr": [0.01, 0.02]}, iterations=100_000)
    kept, dropped = run_ids(spec)
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--sbatch", "hold")
    job = status(out, dropped)["slurm_job_id"]
    assert json.loads((out / "specs.json").read_text()) == {"st_edited": str(spec.resolve())}  # the name's file
    write_spec(tmp_path, "edited", {"lr": [0.01, 0.03]}, iterations=100_000)
    hint = f"`scancel {job}` stops its job whatever the spec file says now"
    assert hint in suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--dry-run")
    printed = suite(capsys, "status", str(spec), "--out", str(out))
    # beside the spec's own queued run: the jobs to stop, not the done runs of other overrides
    assert f"1 run of st_edited in {out} (queued or running) is of another" in printed and hint in printed
    printed = suite(capsys, "cancel", str(spec), "--out", str(out))
    assert "cancelled 1 run " in printed and hint in printed
    assert status(out, kept)["state"] == "cancelled" and status(out, dropped)["state"] == "pending"
    subprocess.run(["scancel", job], check=True)
    assert wait(out, [dropped], timeout=60) == {dropped: "cancelled"}
    assert "scancel" not in suite(capsys, "status", str(spec), "--out", str(out))  # nothing left to stop


def test_a_running_run_whose_status_is_unreadable_is_still_cancelled(tmp_path, capsys):
    """The store's record of the job is gone (a damaged status.json): `suite cancel` finds the job
    from its submission in submitit's folder, cancels it, and keeps the damaged record for a look."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "unreadable", {"lr": [0.01]}, iterations=100_000)
    [rid] = run_ids(spec)
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out))
    wait(out, [rid], until=("running",))
    job = status(out, rid)["slurm_job_id"]
    d = store.run_dir(out, rid)
    (d / "status.json").write_text('{"state": "runn')
    assert "cancelled 1 run " in suite(capsys, "cancel", str(spec), "--out", str(out))
    wait_for(lambda: slurm.slurm_states([job])[job] == "CANCELLED", "the job to be cancelled", out, timeout=60)
    record = status(out, rid)
    assert record["state"] == "cancelled" and record["slurm_job_id"] == job
    [kept] = d.glob("status.corrupt-*.json")
    assert f"status.json was unreadable, kept as {kept.name}; job {job} was found" in record["error"]
    assert kept.read_text() == '{"state": "runn'


def test_cancel_records_the_run_cancelled_under_its_lock(tmp_path):
    """`suite cancel` wrote `cancelled` into a run's status.json without the run's lock, the one
    write from outside the run's job that did, so it landed amid another command's write under the
    lock (a status recording the job's end, a refile). It now waits for such a brief holder and
    writes once the lock is let go. A real held job, so scancel takes it."""
    spec_path = write_spec(tmp_path, "locked", {"lr": [0.1]})
    [run] = ablations.expand(ablations.load(spec_path))
    out = tmp_path / "store"
    (tmp_path / "logs").mkdir()
    job = subprocess.run(["sbatch", "--parsable", "--hold", f"--job-name=suite-{PREFIX}locked",
                          f"--output={tmp_path}/logs/%j.out", "--wrap", "true"], capture_output=True, text=True,
                         check=True).stdout.strip()  # the teardown cancels it if the test fails first
    d = store.plan(out, run)
    store.set_status(d, "pending", slurm_job_id=job, submitted_at=store.now(), executor="slurm")
    before = (d / "status.json").read_bytes()
    lock, held, seen = store.run_lock(d), threading.Event(), []

    def brief_holder() -> None:  # another command writing under the lock: what it read stays till it lets go
        lock.acquire()
        held.set()
        time.sleep(0.5)
        seen.append((d / "status.json").read_bytes())
        lock.release()

    holder = threading.Thread(target=brief_holder)
    holder.start()
    held.wait()
    taken, refused, _ = slurm.cancel(out, [run.run_id])
    holder.join()
    assert taken == {run.run_id: job} and not refused
    assert seen == [before]  # nothing written while another held the lock
    assert status(out, run.run_id)["state"] == "cancelled"


# --------------------------------------------------------------------------- pre-emption, DDP
def test_signalled_run_checkpoints_requeues_and_resumes_to_the_same_result(tmp_path, capsys):
    """USR2 (what sbatch --signal sends before the time limit) mid-training: the run saves its
    exact state, requeues itself and resumes from the checkpoint to the uninterrupted result."""
    grid = {"lr": [0.05]}
    spec = write_spec(tmp_path, "requeue", grid, batch_size=32, iterations=128)  # 16 steps per epoch
    [rid] = run_ids(spec)
    interrupted, reference = tmp_path / "interrupted", tmp_path / "reference"
    for out in (interrupted, reference):
        suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out))
    d = store.run_dir(interrupted, rid)
    wait_for(lambda: (d / "metrics.jsonl").exists() and (d / "metrics.jsonl").read_text().count("\n") >= 1,
             "the first epoch", interrupted)
    subprocess.run(["scancel", "--signal=USR2", status(interrupted, rid)["slurm_job_id"]], check=True)
    wait_for(lambda: status(interrupted, rid).get("requeues") == 1, "the requeue", interrupted)
    # Until SLURM starts the task again (>= 6 s: cred_expire), mark the checkpoint's history so
    # that the final metrics.jsonl shows whether the second attempt resumed from it.
    saved = checkpoint.load(d / checkpoint.FILENAME)
    stopped = status(interrupted, rid)["requeued_at_iteration"]
    assert saved["iteration"] == stopped and 16 <= stopped < 128
    saved["history"][0]["epoch_time_s"] = 12345.0
    checkpoint.save(d / checkpoint.FILENAME, saved)
    assert wait(interrupted, [rid]) == {rid: "done"} and wait(reference, [rid]) == {rid: "done"}
    assert status(interrupted, rid)["attempts"] == 2 and status(reference, rid)["attempts"] == 1
    history = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    assert history[0]["epoch_time_s"] == 12345.0 and len(history) == 8
    a, b = ({k: v for k, v in store.read_json(store.run_dir(o, rid) / "result.json")["metrics"].items()
             if not k.endswith(("_s", "_per_sec"))} for o in (interrupted, reference))  # timings differ
    assert a == b and a["iterations"] == 128 and a["train_loss"] > 0


@pytest.mark.slow
def test_real_time_limit_stops_requeues_and_resumes_the_run(tmp_path, capsys):
    """A 2-minute limit warned 50 s ahead: SLURM may signal up to 60 s early (slurmctld looks
    every ~30 s), so USR2 comes 10-70 s into the job, when the run trains; with a shorter limit it
    could come while Python starts, and kill it. The endless run is stopped at a sync point,
    requeued, and its next attempt continues the history of the first (a fresh start would
    rewrite it)."""
    spec = write_spec(tmp_path, "limit", {"lr": [0.05]}, cluster={"timeout_min": 2, "signal_delay_s": 50,
                                                                 "max_requeues": 10}, batch_size=64, iterations=100_000)
    [rid] = run_ids(spec)  # 8 steps per epoch: a stop at a sync point (every 16 steps) follows >= 1 epoch
    out = tmp_path / "store"
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out))
    d = store.run_dir(out, rid)
    wait_for(lambda: status(out, rid).get("requeues", 0) >= 1, "SLURM's warning signal and the requeue", out,
             timeout=150)
    before = (d / "metrics.jsonl").read_text().splitlines()
    assert len(before) >= 1 and status(out, rid)["requeued_at_iteration"] >= 16
    wait_for(lambda: len((d / "metrics.jsonl").read_text().splitlines()) > len(before), "an epoch of the next attempt",
             out)
    assert (d / "metrics.jsonl").read_text().splitlines()[:len(before)] == before
    assert status(out, rid)["attempts"] >= 2
    assert "cancelled 1 run " in suite(capsys, "cancel", str(spec), "--out", str(out))


def test_requeues_beyond_the_cap_fail_the_run_and_keep_its_checkpoint(tmp_path, capsys):
    spec = write_spec(tmp_path, "cap", {"lr": [0.05]}, cluster={"max_requeues": 0}, batch_size=32, iterations=100_000)
    [rid] = run_ids(spec)
    out = tmp_path / "store"
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out))
    d = store.run_dir(out, rid)
    wait_for(lambda: (d / "metrics.jsonl").exists() and (d / "metrics.jsonl").read_text().count("\n") >= 1,
             "the first epoch", out)
    subprocess.run(["scancel", "--signal=USR2", status(out, rid)["slurm_job_id"]], check=True)
    assert wait(out, [rid]) == {rid: "failed"}
    assert "after 0 requeues (max_requeues=0)" in status(out, rid)["error"]
    assert f"`suite run {spec} --out {out} --executor slurm --retry-failed` resumes it" in status(out, rid)["error"]
    assert checkpoint.load(d / checkpoint.FILENAME)["iteration"] >= 16


def test_two_task_ddp_run_on_cpu(tmp_path, capsys):
    """Two SLURM tasks become two gloo ranks: both train (rank 1 leaves the store alone) and agree;
    a single process given the same config (and seed) ends elsewhere, as its BN sees the whole batch."""
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    spec = write_spec(tmp_path, "ddp", {"lr": [0.05]}, batch_size=32, device="cpu")
    [rid] = run_ids(spec)
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(ddp), "--tasks-per-node", "2")
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(single))
    assert wait(ddp, [rid]) == {rid: "done"} and wait(single, [rid]) == {rid: "done"}
    job = status(ddp, rid)["slurm_job_id"]
    pickles = [ddp / "submitit" / f"{job}_{task}_result.pkl" for task in (0, 1)]
    # rank 0 writes result.json inside the run; submitit pickles each rank's return value after it
    wait_for(lambda: all(p.exists() for p in pickles), "submitit to write both ranks' results", ddp, timeout=60)
    ranks = [pickle_load(p) for p in pickles]
    assert [outcome for outcome, _ in ranks] == ["success", "success"]
    (_, m0), (_, m1) = ranks
    assert m0["iterations"] == m1["iterations"] == 4 and m0["train_loss"] == m1["train_loss"]  # all-reduced
    assert status(ddp, rid)["attempts"] == 1  # only rank 0 wrote the status
    alone = store.read_json(store.run_dir(single, rid) / "result.json")["metrics"]
    assert alone["iterations"] == 4 and alone["train_loss"] != m0["train_loss"]
    # what tells the two apart in the store (--tasks-per-node is not part of a run's config)
    assert store.read_json(store.run_dir(ddp, rid) / "result.json")["env"]["processes"] == 2
    assert store.read_json(store.run_dir(single, rid) / "result.json")["env"]["processes"] == 1


def test_a_ddp_rank_that_fails_before_training_ends_the_job(tmp_path, capsys):
    """Rank 0 fails before the process group forms (here on an unreadable CIFAR file): the job
    must end then, not hold its allocation while rank 1 waits to join for torch's 30 minutes."""
    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_text("not a pickle\n")
    spec = write_spec(tmp_path, "ddp_fail", {"lr": [0.05]}, batch_size=32, device="cpu",
                      data={"name": "cifar10", "input_size": 8, "root": str(tmp_path / "cifar")})
    [rid] = run_ids(spec)
    out = tmp_path / "store"
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--tasks-per-node", "2")
    assert wait(out, [rid]) == {rid: "failed"}
    assert "not a CIFAR python batch file" in status(out, rid)["error"]  # rank 0's own reason
    job = status(out, rid)["slurm_job_id"]
    wait_for(lambda: slurm.slurm_states([job])[job] not in slurm.ALIVE, "the job to end", out, timeout=60)
    assert "not a CIFAR python batch file" in status(out, rid)["error"]  # not overwritten by the job's end


def test_a_ddp_job_whose_run_another_process_executes_ends_on_every_rank(tmp_path, capsys):
    """Rank 0 finds the run's lock held (another `suite run`, a lingering attempt): every rank
    skips the run and the job ends, rather than rank 0 leaving while rank 1 waits to train with it."""
    spec = write_spec(tmp_path, "ddp_busy", {"lr": [0.05]}, batch_size=32, device="cpu")
    [rid] = run_ids(spec)
    out = tmp_path / "store"
    suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--tasks-per-node", "2",
          "--sbatch", "hold")
    job = status(out, rid)["slurm_job_id"]
    lock = store.run_lock(store.run_dir(out, rid))
    lock.acquire()  # this process executes the run, as far as the job can tell
    try:
        subprocess.run(["scontrol", "release", slurm.array_of(job)], check=True)
        wait_for(lambda: slurm.slurm_states([job])[job] not in slurm.ALIVE, "the job to end", out, timeout=120)
        pickles = [out / "submitit" / f"{job}_{task}_result.pkl" for task in (0, 1)]
        wait_for(lambda: all(p.exists() for p in pickles), "submitit to write both ranks' results", out, timeout=60)
        assert [pickle_load(p) for p in pickles] == [("success", None), ("success", None)]
        logs = [out / "submitit" / f"{job}_{task}_log.err" for task in (0, 1)]
        assert all(f"skipped: {store.run_dir(out, rid)}: run {rid} is already being executed" in p.read_text()
                   for p in logs)
        assert status(out, rid)["state"] == "pending" and not (store.run_dir(out, rid) / "checkpoint.pt").exists()
    finally:
        lock.release()


# ------------------------------------------------------------------------------ code snapshot
def test_a_queued_job_runs_the_code_of_submission_time(tmp_path):
    """Submit from a copy of the package, break the copy while the job is held, release it."""
    src = tmp_path / "src"
    shutil.copytree(Path(store.__file__).parent, src / "suite", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "snapshot", {"lr": [0.01]})
    [rid] = run_ids(spec)
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONSAFEPATH": "1", "SUITE_CLUSTER": ""}
    done = subprocess.run([sys.executable, "-m", "suite", "run", str(spec), "--executor", "slurm", "--out", str(out),
                           "--sbatch", "hold"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (src / "suite" / "execute.py").write_text("raise RuntimeError('edited after submission')\n")
    recorded = status(out, rid)
    snapshot_dir = Path(recorded["code"]["path"])
    assert snapshot_dir.parent == out.resolve() / "code" and (snapshot_dir / "suite" / "execute.py").read_text() != \
        (src / "suite" / "execute.py").read_text()
    subprocess.run(["scontrol", "release", recorded["slurm_job_id"].split("_")[0]], check=True)
    assert wait(out, [rid]) == {rid: "done"}


def test_a_run_whose_job_is_queued_under_an_older_versions_id_is_not_trained_again_and_filed_once_it_ended(
        tmp_path, capsys):
    """A run an older version stored under another id, whose SLURM job is queued there: refile
    refused to move it, yet `suite run` trained today's id anew (only the spec's own ids counted as
    busy), after which the old run could never be filed. It now waits for that job, and the next
    `suite run` after the job ended (learning it from SLURM) files the run. `suite cancel` cancels
    that job (it said it was of other overrides or an earlier spec file, and left it queued)."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "twin", {"lr": [0.01]})
    [run] = ablations.expand(ablations.load(spec))
    planned = store.read_json(store.plan(out, run) / "config.json")
    old = store.run_dir(out, "0123456789ab")  # as an older version filed it: no id_scheme, another id
    store.run_dir(out, run.run_id).rename(old)
    store.write_json(old / "config.json", {k: v for k, v in planned.items() if k != "id_scheme"}
                     | {"run_id": old.name})
    job = subprocess.run(["sbatch", "--parsable", f"--job-name=suite-{PREFIX}twin", f"--output={tmp_path}/%j.out",
                          "--hold", "--wrap", "sleep 60"], capture_output=True, text=True, check=True).stdout.strip()
    store.set_status(old, "pending", slurm_job_id=job, submitted_at=store.now(), executor="slurm")
    said = suite(capsys, "status", str(spec), "--out", str(out))
    assert f"files it under today's id ({old.name}: once its job under the old id ended; not started again until " \
        "then)" in said, said
    said = suite(capsys, "run", str(spec), "--out", str(out), "--no-progress")
    assert f"run {run.run_id} is waiting for its job under the id an older version gave it ({old.name})" in said
    assert "1 pending" in said and "nothing to run" in said and "of another preset" not in said, said
    assert not store.run_dir(out, run.run_id).exists() and old.is_dir()
    said = suite(capsys, "cancel", str(spec), "--out", str(out))  # one of the spec's runs: its job is cancelled
    assert f"cancelled 1 run (jobs {job})" in said and "of another preset" not in said, said
    wait_for(lambda: slurm.slurm_states([job])[job] not in slurm.ALIVE, "the held job to end", out, timeout=30)
    said = suite(capsys, "run", str(spec), "--out", str(out), "--no-progress")
    assert f"refiled run {old.name} as {run.run_id}" in said and "1 cancelled" in said, said
    assert not old.exists() and store.state_of(store.run_dir(out, run.run_id)).state == "cancelled"


def test_a_gpu_type_no_node_has_is_refused_before_anything_is_held(slurm_cluster):
    """The test cluster's GPUs have no type (sinfo: gpu:N): sbatch took `gres=gpu:a100:1` and
    `gpus=a100:1`, and the jobs, released, waited for ever as BadConstraints. Read from the real sinfo."""
    if slurm_cluster.gpus < 1:
        pytest.skip("the local cluster was started without GPUs")
    for key, value in (("gres", "gpu:a100:1"), ("gpus", "a100:1")):
        with pytest.raises(SuiteError) as err:
            slurm.check_options(ClusterOptions(sbatch={key: value}))
        assert str(err.value).startswith(
            f"sbatch.{key}: {key}={value} asks GPUs of type 'a100', but no node of partition "
            f"'{slurm_cluster.partition}' (the default) has that type (their GPUs have no type: gpu:COUNT)")
    slurm.check_options(ClusterOptions(sbatch={"gres": "gpu:1"}))  # untyped: taken


def test_a_node_layout_no_node_has_is_refused_before_anything_is_held(slurm_cluster):
    """sbatch took `cores-per-socket` or `threads-per-core` beyond the nodes' (sinfo's %z), and the
    jobs, released, waited for ever as BadConstraints. Read from the real sinfo."""
    layout = subprocess.run(["sinfo", "--noheader", f"--partition={slurm_cluster.partition}", "--format=%z"],
                            capture_output=True, text=True, check=True).stdout.split()[0]
    most = dict(zip(("sockets-per-node", "cores-per-socket", "threads-per-core"), map(int, layout.split(":"))))
    for key, n in most.items():
        with pytest.raises(SuiteError, match=rf"^sbatch\.{key}: {key}={n + 1} asks .*\(BadConstraints\)"):
            slurm.check_options(ClusterOptions(sbatch={key: str(n + 1)}))
    slurm.check_options(ClusterOptions(sbatch={key: str(n) for key, n in most.items()}))  # as the nodes have: taken


def cluster_name() -> str:
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True).stdout
    return next(line.split("=", 1)[1].strip() for line in config.splitlines() if line.startswith("ClusterName"))


def test_a_store_read_on_another_cluster_neither_judges_nor_cancels_its_jobs(tmp_path, capsys):
    """A store on a file system two clusters share, read from the other's login node: there a job id
    is unknown, and a waiting job's run was failed as lost 10 minutes after submission, or is another
    job's, whose end was recorded as the run's (cancelled) and which `suite cancel` scancelled.
    Each submission now records its cluster, and a job of another is left to that cluster."""
    spec = write_spec(tmp_path, "away", {"lr": [0.01, 0.02]})
    runs = ablations.expand(ablations.load(spec))
    out = tmp_path / "store"
    ours = subprocess.run(["sbatch", "--parsable", "--hold", f"--job-name=suite-{PREFIX}away",
                           f"--output={tmp_path}/%j.out", "--wrap", "true"],
                          capture_output=True, text=True, check=True).stdout.strip()
    try:
        long_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
        for run, job in zip(runs, ["999999_0", ours]):  # unknown here; here another job (held: scancel would end it)
            store.set_status(store.plan(out, run), "pending", slurm_job_id=job, submitted_at=long_ago,
                             executor="slurm", slurm_user=pwd.getpwuid(os.getuid()).pw_name, slurm_cluster="elsewhere")
        said = suite(capsys, "status", str(spec), "--out", str(out))
        assert "2 pending" in said and "on another cluster: 2 jobs submitted on elsewhere, not this one" in said, said
        capsys.readouterr()
        assert main(["cancel", str(spec), "--out", str(out)]) == 1
        assert f"job {ours} of run {runs[1].run_id} was submitted on cluster 'elsewhere', not this one: cancel it " \
            "there" in capsys.readouterr().err
        assert slurm.slurm_states([ours])[ours] == "PENDING"  # not scancelled
        assert [store.state_of(store.run_dir(out, r.run_id)).state for r in runs] == ["pending", "pending"]
    finally:
        subprocess.run(["scancel", ours], capture_output=True)


def test_following_and_cancelling_read_each_runs_status_once(tmp_path, monkeypatch):
    """`suite status` and `suite cancel` read each followed run's status.json to find its job, then
    read it again for each check after (its cluster, its submitter and age where SLURM does not
    know the job, an end already recorded): ~50 µs a read, 1.5 s for 10,000 queued runs. Each run
    is now read once per command, whatever its job: of another cluster, waiting here, unknown here."""
    spec = write_spec(tmp_path, "reads", {"lr": [0.01, 0.02, 0.03]})
    runs = ablations.expand(ablations.load(spec))
    out = tmp_path / "store"
    held = subprocess.run(["sbatch", "--parsable", "--hold", f"--job-name=suite-{PREFIX}reads",
                           f"--output={tmp_path}/%j.out", "--wrap", "true"],
                          capture_output=True, text=True, check=True).stdout.strip()
    me = pwd.getpwuid(os.getuid()).pw_name
    for run, job, on in zip(runs, ["999999_0", held, "999998_0"], ["elsewhere", cluster_name(), cluster_name()]):
        store.set_status(store.plan(out, run), "pending", slurm_job_id=job, submitted_at=store.now(),
                         executor="slurm", slurm_user=me, slurm_cluster=on)
    reads: list[str] = []
    state_of = store.state_of
    monkeypatch.setattr(store, "state_of", lambda d: reads.append(Path(d).name) or state_of(d))
    ids = [r.run_id for r in runs]
    assert slurm.refresh(out, ids) == dict(zip(ids, [slurm.ELSEWHERE, "PENDING", "UNKNOWN"]))
    assert sorted(reads) == sorted(ids)
    reads.clear()
    taken, kept, _ = slurm.cancel(out, ids)
    assert (taken, kept) == ({ids[1]: held, ids[2]: "999998_0"}, {ids[0]: "999999_0"})
    assert sorted(reads) == sorted(ids)


def test_an_sbatch_key_that_only_begins_an_options_name_is_refused_with_the_full_name(tmp_path):
    """sbatch reads `--mem-per-g=600000` as --mem-per-gpu (getopt_long takes any beginning that fits
    one option alone), so the key passed the sbatch check and, not being the name the node check
    reads, went round it too: the jobs waited for ever. Such a key is now refused with the full name,
    as the real sbatch names its options; a full name that begins longer ones (`gres`, `gpus`,
    `cluster`) is taken."""
    refused = sbatch_check.refusals({"mem-per-g": "600000", "gres": "gpu:1", "gpus-per-t": "1", "gpus": "1",
                                     "cluster": "ci", "licen": "x", "hol": True, "exclude": "nosuchnode"})
    assert refused == {key: f"sbatch would read it as --{full}, whose name it begins: write {full!r} (the checks "
                            "here read full names, and a newer sbatch may add an option that begins the same way)"
                       for key, full in (("mem-per-g", "mem-per-gpu"), ("gpus-per-t", "gpus-per-task"),
                                         ("licen", "licenses"), ("hol", "hold"))}
    path = tmp_path / "cluster.yaml"
    path.write_text("sbatch:\n  mem_per_g: 600000\n")
    with pytest.raises(SuiteError) as err:
        slurm.check_options(resolve_options(user=path))
    assert (err.value.file, err.value.line, err.value.key) == (str(path), 2, "sbatch.mem-per-g")  # its own line
    assert "sbatch would read it as --mem-per-gpu" in err.value.message


def test_sbatch_refuses_cpus_per_task_beside_cpus_per_gpu_only_when_it_submits(tmp_path):
    """Why the options refuse the pair themselves (`cluster.resolve_options`): sbatch parses it
    (`--usage`, the sbatch check's question, passes) and refuses it only at submission."""
    pair = ["--cpus-per-task=2", "--cpus-per-gpu=1"]
    assert sbatch_check.refusals({"cpus-per-task": 2, "cpus-per-gpu": 1}) == {}
    done = subprocess.run(["sbatch", "--hold", *pair, f"--output={tmp_path}/%j.out", "--wrap", "true"],
                          capture_output=True, text=True)
    assert done.returncode != 0 and not done.stdout, done.stdout  # nothing submitted, nothing to cancel
    assert "--cpus-per-gpu is mutually exclusive with --cpus-per-task" in done.stderr


def test_the_sbatch_check_asks_sbatch_bare_and_reads_its_documentation_once_however_many_keys(monkeypatch):
    """The check called a bare `sbatch --usage` for every key refused in words that name no option,
    and `sbatch --help` and `man -w sbatch` (reading the page) for every unknown key's did-you-mean:
    these five keys made 8 such calls where 3 do. Each is now asked at most once a check."""
    calls: list[list[str]] = []
    run = sbatch_check.subprocess.run

    def spy(argv, *args, **kwargs):
        calls.append(list(argv))
        return run(argv, *args, **kwargs)

    monkeypatch.setattr(sbatch_check.subprocess, "run", spy)
    refused = sbatch_check.refusals({"partiton": "debug", "acount": "lab", "qoss": "high", "priority": -1,
                                     "extra-node-info": "many"})
    assert list(refused) == ["partiton", "acount", "qoss", "priority", "extra-node-info"]
    assert "did you mean 'partition'" in refused["partiton"] and "did you mean 'account'" in refused["acount"]
    assert refused["priority"] == "sbatch refuses it: Priority must be >= 0"
    assert calls.count(["sbatch", "--usage"]) == 1
    assert calls.count(["sbatch", "--help"]) == 1
    assert sum(argv[0] == "man" for argv in calls) <= 1  # none where no man command is installed
    calls.clear()
    sbatch_check.refusals({"partiton": "debug"})  # a check of its own: sbatch is asked again, not remembered
    assert calls.count(["sbatch", "--help"]) == 1


def test_a_submission_past_max_job_count_is_refused_before_anything_is_held(tmp_path, capsys, monkeypatch):
    """slurmctld holds at most MaxJobCount jobs (each array task one): a grid that many runs, or
    fewer with jobs already queued, was submitted array by array until one was refused, the arrays
    before it withdrawn. The limit is read from the real `scontrol show config`, the queue from squeue."""
    monkeypatch.setattr(slurm, "submit_arrays", lambda *a, **k: pytest.fail("submitted"))
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True).stdout
    limit = int(next(line.split("=")[1] for line in config.splitlines() if line.startswith("MaxJobCount")))
    run = ablations.expand(ablations.load(write_spec(tmp_path, "room", {"lr": [0.01]})))[0]
    out = tmp_path / "store"
    with pytest.raises(SuiteError, match=rf"^cluster: {limit} runs do not fit in the cluster's queue: slurmctld "
                                         rf"holds at most MaxJobCount={limit} jobs"):
        slurm.submit([run] * limit, out, ClusterOptions(), cluster=slurm.read_cluster())
    assert not out.exists() or not any(out.iterdir())  # nothing planned, no snapshot
    assert slurm.room_mistake(1, slurm.read_cluster()) is None
    held = subprocess.run(["sbatch", "--parsable", "--hold", f"--job-name=suite-{PREFIX}room",
                           f"--output={tmp_path}/%j.out", "--wrap", "true"],
                          capture_output=True, text=True, check=True).stdout.strip()
    try:  # one job queued: one run fewer fits, whatever else the cluster holds
        assert slurm.room_mistake(limit - 1, slurm.read_cluster()) is not None
    finally:
        subprocess.run(["scancel", held], capture_output=True)
    _print_arrays(limit, ClusterOptions())  # what --dry-run says
    assert capsys.readouterr().out.startswith(f"note: a real submission would be refused: cluster: {limit} runs do "
                                              "not fit in the cluster's queue")


def test_more_gpus_or_memory_than_a_node_has_is_named_where_it_was_given_before_anything_is_submitted(
        tmp_path, capsys, slurm_cluster):
    """sbatch takes a held job asking more GPUs or memory a node than any node of its partition has,
    and `scontrol release` too: it waited for ever as BadConstraints, and the dry run said nothing."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "nodes", {"lr": [0.01]}, cluster={"gpus_per_node": slurm_cluster.gpus + 1})
    line = spec.read_text().splitlines().index(f"  gpus_per_node: {slurm_cluster.gpus + 1}") + 1
    said = (f"cluster.gpus_per_node: {slurm_cluster.gpus + 1} GPUs a node, but each node of partition "
            f"'{slurm_cluster.partition}' (the default) has at most {slurm_cluster.gpus} GPUs: the jobs would wait "
            "for ever (BadConstraints)")
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--dry-run")
    assert f"note: a real submission would be refused: {spec}:{line}: {said}" in printed
    assert main(["run", str(spec), "--executor", "slurm", "--out", str(out), "--mem-gb", "100000"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"error: {spec}:{line}: {said}")
    assert err[1].startswith("  and <command line>: --mem-gb: 100000 GB (102400000 MB) a node, but each node of "
                             f"partition '{slurm_cluster.partition}' (the default) has at most "
                             f"{slurm_cluster.mem_mb} MB")
    assert not out.exists()
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--dry-run",
                    "--gpus-per-node", str(slurm_cluster.gpus), "--partition", slurm_cluster.gpu_partition,
                    "--cpus-per-task", str(slurm_cluster.cpus))
    assert "note:" not in printed  # as many as a node has


def test_more_cpus_than_a_node_has_is_named_where_it_was_given_before_anything_is_submitted(
        tmp_path, capsys, slurm_cluster):
    """sbatch took, held, a job asking more CPUs a node than a node has, and `scontrol release` refused
    it (PartitionConfig): the submission was withdrawn, and the dry run said nothing."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "cpus", {"lr": [0.01]})
    cpus = slurm_cluster.cpus
    said = (f"<command line>: --cpus-per-task: {cpus + 1} CPUs a task but each node of partition "
            f"'{slurm_cluster.partition}' (the default) has at most {cpus} CPUs: SLURM would refuse to release the "
            "jobs (PartitionConfig)")
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--dry-run",
                    "--cpus-per-task", str(cpus + 1))
    assert f"note: a real submission would be refused: {said}" in printed
    assert main(["run", str(spec), "--executor", "slurm", "--out", str(out), "--cpus-per-task", str(cpus + 1)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {said}")
    assert not out.exists()  # nothing submitted, no store made


def test_gpus_asked_in_sbatch_parameters_above_a_nodes_are_named_before_anything_is_submitted(
        tmp_path, capsys, slurm_cluster):
    """GPUs asked through an sbatch parameter (`gres=gpu:3`, `gpus=3`) went round the GPU check and
    the held jobs waited for ever (BadConstraints), as did a count that is no number (`gpus=abc`)."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "sbatch_gpus", {"lr": [0.01]})
    gpus = slurm_cluster.gpus
    has = f"but each node of partition '{slurm_cluster.partition}' (the default) has at most {gpus} GPU"
    asked = {"--sbatch.gres": f"gres=gpu:{gpus + 1} asks {gpus + 1} GPUs of a node, {has}",
             "--sbatch.gpus": f"gpus={gpus + 1} asks {gpus + 1} GPUs of a node, {has}"}
    flags = ["--sbatch", f"gres=gpu:{gpus + 1}", "--sbatch", f"gpus={gpus + 1}"]
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--dry-run", *flags)
    assert all(said in printed for said in asked.values())
    assert main(["run", str(spec), "--executor", "slurm", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err.splitlines()
    named = {line.split("<command line>: ")[1].split(":")[0]: line for line in err if "<command line>: " in line}
    assert named.keys() == asked.keys() and all(said in named[flag] for flag, said in asked.items())
    assert main(["run", str(spec), "--executor", "slurm", "--out", str(out), "--sbatch", "gpus=abc"]) == 2
    assert capsys.readouterr().err.startswith("error: <command line>: --sbatch.gpus: 'abc' in gpus=abc is no GPU count")
    assert not out.exists()  # nothing submitted, no store made
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--dry-run",
                    "--sbatch", f"gres=gpu:{gpus}", "--partition", slurm_cluster.gpu_partition)
    assert "note:" not in printed  # as many as a node has


def test_cpus_memory_or_tmp_disk_asked_in_sbatch_parameters_above_a_nodes_are_named_before_anything_is_submitted(
        tmp_path, capsys, slurm_cluster):
    """sbatch took, and slurmctld kept waiting for ever (BadConstraints), jobs asking more of a node
    than its nodes have through mincpus, cpus-per-gpu, mem-per-cpu or tmp (sinfo's %c, %m, %d)."""
    out = tmp_path / "store"
    spec = write_spec(tmp_path, "sbatch_node", {"lr": [0.01]})
    cpus, mem = slurm_cluster.cpus, slurm_cluster.mem_mb
    tmp = int(subprocess.run(["sinfo", "--noheader", f"--partition={slurm_cluster.partition}", "--format=%d"],
                             capture_output=True, text=True, check=True).stdout.split()[0])
    where = f"but each node of partition '{slurm_cluster.partition}' (the default) has at most"
    asked = {"mincpus": f"{cpus + 1} asks {cpus + 1} CPUs of a node, {where} {cpus} CPUs",
             "cpus-per-gpu": f"{cpus + 1} times 1 GPU a node asks {cpus + 1} CPUs of a node, {where} {cpus} CPUs",
             "mem-per-cpu": f"{mem + 1} times 1 CPU a node asks {mem + 1} MB of a node, {where} {mem} MB",
             "tmp": f"{tmp + 1} asks {tmp + 1} MB of tmp disk of a node, {where} {tmp} MB of tmp disk"}
    for key, said in asked.items():  # each alone: sbatch refuses some of them together
        flag, said = f"--sbatch.{key}", f"{key}={said}"
        flags = ["--sbatch", said.split(" ")[0], *(["--gpus-per-node", "1"] if key == "cpus-per-gpu" else [])]
        printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--dry-run", *flags)
        assert f"note: a real submission would be refused: <command line>: {flag}: {said}: the jobs would wait" in printed
        assert main(["run", str(spec), "--executor", "slurm", "--out", str(out), *flags]) == 2
        assert capsys.readouterr().err.startswith(f"error: <command line>: {flag}: {said}")
        assert not out.exists()  # nothing submitted, no store made
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--dry-run", "--sbatch",
                    f"mincpus={cpus}", "--sbatch", f"mem-per-cpu={mem // cpus}", "--sbatch", f"tmp={tmp}")
    assert "note:" not in printed  # as much as a node has (mem-per-cpu times mincpus: mem=21694M of 8 CPUs waited)


def test_mem_per_cpu_beside_cpus_per_gpu_is_judged_as_slurmctld_judges_it(tmp_path, slurm_cluster):
    """slurmctld sizes a job's memory as mem-per-cpu times cpus-per-gpu times its GPUs; the node check
    multiplied mem-per-cpu by the tasks' CPUs (here 1), so a job asking more than a node's memory was
    submitted and waited for ever (BadConstraints). Held then released, as a submission is, at the
    boundary: the check refuses what slurmctld never runs and passes what it does."""
    gpus, per_gpu = slurm_cluster.gpus, 2
    cpus = gpus * per_gpu
    nodes = subprocess.run(slurm.SINFO, capture_output=True, text=True, check=True).stdout
    for mem_per_cpu in (slurm_cluster.mem_mb // cpus, slurm_cluster.mem_mb // cpus + 1):
        job = subprocess.run(["sbatch", "--parsable", "--hold", f"--partition={slurm_cluster.gpu_partition}",
                              f"--gpus-per-node={gpus}", f"--cpus-per-gpu={per_gpu}", f"--mem-per-cpu={mem_per_cpu}",
                              f"--output={tmp_path}/%j.out", "--wrap", "true"],
                             capture_output=True, text=True, check=True).stdout.strip()
        subprocess.run(["scontrol", "release", job], check=True)
        seen: list[str] = []

        def judged() -> bool:  # started, or kept waiting for a reason of slurmctld's
            seen[:] = subprocess.run(["squeue", "--noheader", "--jobs", job, "--format=%T %r"], capture_output=True,
                                     text=True).stdout.split() or ["GONE", "None"]
            return seen[0] != "PENDING" or seen[1] not in ("None", "JobHeldUser")

        wait_for(judged, f"slurmctld to judge job {job}", tmp_path, timeout=30)
        subprocess.run(["scancel", job], capture_output=True)
        options = ClusterOptions(partition=slurm_cluster.gpu_partition, gpus_per_node=gpus,
                                 sbatch={"cpus-per-gpu": per_gpu, "mem-per-cpu": mem_per_cpu})
        mistakes = slurm._node_mistakes(options, slurm._kinds(nodes))
        never = seen[1] == "BadConstraints"
        assert never == (mem_per_cpu * cpus > slurm_cluster.mem_mb), (mem_per_cpu, seen)
        assert [m.key for m in mistakes] == (["sbatch.mem-per-cpu"] if never else []), (mem_per_cpu, seen, mistakes)


def test_a_submission_and_a_dry_run_each_read_the_clusters_config_and_nodes_once(tmp_path, capsys, monkeypatch,
                                                                                 slurm_cluster):
    """`scontrol show config` (MaxJobCount, then MaxArraySize) and `sinfo` (the partitions, then the
    nodes) were each run twice by a submission, and by a dry run, whose checks were a copy of the
    submission's. One reading now serves all the checks, which both make alike (`slurm.layout`).
    The real commands run, each behind a wrapper that logs its call."""
    from test_slurm_options import fake_commands

    log = tmp_path / "calls.log"
    fake_commands(tmp_path, monkeypatch, {name: f'echo "{name} $*" >> {log}\nexec {shutil.which(name)} "$@"'
                                          for name in ("scontrol", "sinfo")})

    def reads() -> list[str]:
        calls = log.read_text().splitlines()
        log.unlink()
        return [call for call in calls if call == "scontrol show config" or call.startswith("sinfo")]

    out = tmp_path / "store"
    spec = write_spec(tmp_path, "reads", {"lr": [0.01, 0.02]})
    flags = ["--partition", slurm_cluster.partition, "--sbatch", "hold"]  # held: nothing runs
    printed = suite(capsys, "run", str(spec), "--executor", "slurm", "--out", str(out), "--dry-run", *flags)
    assert "would be submitted as 1 job array" in printed
    assert reads() == ["scontrol show config", "sinfo --all --noheader --format=%P|%m|%G|%c|%d|%z"]
    assert "submitted 2 runs as 1 job array" in suite(capsys, "run", str(spec), "--executor", "slurm", "--out",
                                                      str(out), *flags)
    assert reads() == ["scontrol show config", "sinfo --all --noheader --format=%P|%m|%G|%c|%d|%z"]
    suite(capsys, "cancel", str(spec), "--out", str(out))


def test_the_checks_before_a_submission_read_sinfos_lines_once(monkeypatch, slurm_cluster):
    """The partition check and the node check each parsed sinfo's lines (`slurm._kinds`) of the one
    reading; they now share one parse. The real sinfo runs; only the parse is counted."""
    parses = []
    real = slurm._kinds
    monkeypatch.setattr(slurm, "_kinds", lambda nodes: parses.append(nodes) or real(nodes))
    slurm.check_options(ClusterOptions(partition=slurm_cluster.partition, gpus_per_node=1))
    assert len(parses) == 1 and parses[0].strip()


def test_a_max_array_size_above_the_clusters_is_named_where_it_was_given_before_anything_is_submitted(
        tmp_path, capsys, slurm_cluster):
    """--max-array-size above the cluster's MaxArraySize, for a grid that large, passed the dry run
    ('would be submitted as 1 job array') and was refused by sbatch at submission as an 'Invalid job
    array specification', which names no option."""
    from suite.dispatch.cluster import parse_cli, resolve_options

    limit = slurm_cluster.max_array_size
    options = resolve_options(cli=parse_cli({"max_array_size": limit + 1}))
    cluster = slurm.read_cluster()
    with pytest.raises(SuiteError) as err:
        slurm.array_size(options, limit + 1, cluster)
    assert str(err.value) == (f"<command line>: --max-array-size: {limit + 1} is above this cluster's MaxArraySize "
                              f"({limit}, from `scontrol show config`), and these {limit + 1} runs would use array "
                              f"indices up to {limit}, which sbatch refuses: set max_array_size {limit} or less, or "
                              "leave it unset")
    _print_arrays(limit + 1, options)
    assert capsys.readouterr().out.startswith(f"note: a real submission would be refused: {err.value}")
    assert slurm.array_size(options, limit, cluster) == limit + 1  # a smaller grid's one array fits
    assert slurm.array_size(ClusterOptions(), 1, cluster) == limit


def test_status_of_a_store_names_held_jobs_of_a_spec_no_command_can_name(tmp_path, capsys):
    """`suite status` of a whole store told held jobs to be cancelled by `suite cancel SPEC` where
    the runs' config.json was gone, and by `suite cancel NAME --out DIR` where their spec file, run
    by its path, was moved or deleted since (refused: unknown spec). It names the jobs for scancel
    and says why no `suite cancel` names the runs. A real held job: squeue says JobHeldUser."""
    from suite.ablations import names

    spec_path = write_spec(tmp_path, "gone", {"lr": [0.1]})
    run = ablations.expand(ablations.load(spec_path))[0]
    out = tmp_path / "store"
    (tmp_path / "logs").mkdir()
    job = subprocess.run(["sbatch", "--parsable", "--hold", f"--job-name=suite-{PREFIX}gone",
                          f"--output={tmp_path}/logs/%j.out", "--wrap", "true"], capture_output=True, text=True,
                         check=True).stdout.strip()  # the teardown cancels it: its output lies under tmp_path
    d = store.plan(out, run)
    store.set_status(d, "pending", slurm_job_id=job, sbatch_hold=False, submitted_at=store.now(), executor="slurm")
    names.claim(out, ablations.load(spec_path))  # as `suite run` records the file a name stands for
    spec_path.unlink()
    assert main(["status", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"`scontrol release {job}` lets them start; or `scancel {job}` cancels them (no `suite cancel` names " \
           f"these runs: no spec {PREFIX}gone is found from this folder, and {out}/specs.json names no file of it " \
           "that still exists (moved, renamed or deleted?))" in printed, printed
    (d / "config.json").unlink()
    assert main(["status", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"`scancel {job}` cancels them (no `suite cancel` names these runs: their config.json, which names " \
           "their spec, is missing or unreadable)" in printed and "SPEC`" not in printed.split("\n(each run")[0]
