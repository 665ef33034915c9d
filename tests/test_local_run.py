"""The embedded default end to end: `suite run` on this machine, `suite status`, kills and resumes.

Real runs (digits, real training, child processes), shortened by command-line overrides.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

from denied import deny_open
from processes import killed_writing
from suite import ablations, store
from suite.cli import main
from suite.config import parse_overrides

# Short and cheap, but every stage runs: complexity, throughput, training, evaluation. Native 8x8
# digits in batches of 32 (45 steps an epoch): a step and an evaluation cost little beside the
# fixed costs of a run (a process, imports, measuring), which are what these tests are about.
SMALL = ["batch_size=32", "data.input_size=8"]
MEASURE = ["measure.steps=1", "measure.warmup=1", "measure.batch_size=2"]
FAST = ["epochs=0.25", *SMALL, *MEASURE]
# A stand-in for a run's process starts as `python -m suite.execute` does: the runner holds the stop
# signals off it until it is ready for them (`processes.die_with_parent`).
STARTED = "import signal; signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)); "


def _spec(tmp_path: Path, name: str, grid: str, seeds: int = 1) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""\
name: {name}
description: a small grid for the local runner tests
paper: {{paper: none, table: none}}
base:
  model: {{name: ran56_cifar, base_width: 4}}
  data: {{name: digits}}
  recipe: smoke
grid:
{grid}
seeds: {seeds}
""")
    return path


@pytest.mark.slow
def test_quick_grid_end_to_end(tmp_path, capsys):
    out = tmp_path / "store"
    attacked = [*FAST, "measure.attack=true", "measure.attack_images=4"]  # attacked after training
    assert main(["run", "quick", "--out", str(out), "--no-progress", "--max-parallel", "2", *attacked]) == 0
    assert "8 done, 0 failed" in capsys.readouterr().out

    assert main(["status", "quick", "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "8 done" in printed and "missing" not in printed.replace("0 missing", "")

    runs = ablations.expand(ablations.load("quick"), overrides=parse_overrides(FAST))
    frame = store.collect(out, [r.run_id for r in runs])
    assert len(frame) == 8 and set(frame["status"]) == {"done"}
    assert frame["top1_err"].between(0, 100).all() and frame["params"].gt(0).all()
    assert frame["attack_success_16"].between(0, 100).all() and frame["attack_images"].eq(4).all()
    assert frame["train_samples_per_sec"].gt(0).all()
    assert sorted(frame["model.mask_norm"].value_counts().tolist()) == [2, 2, 4]
    log = (store.run_dir(out, runs[0].run_id) / "log.txt").read_text()  # no bar there: a line per epoch
    assert re.search(r"epoch 1 of \d+ \(iteration \d+/\d+\): train loss \d+\.\d{4}, test top-1 err", log), log

    # Everything is done: a second run starts nothing and touches no result.
    before = {r.run_id: (store.run_dir(out, r.run_id) / "result.json").read_bytes() for r in runs}
    assert main(["run", "quick", "--out", str(out), "--no-progress", *FAST]) == 0
    assert "nothing to run" in capsys.readouterr().out
    assert before == {r.run_id: (store.run_dir(out, r.run_id) / "result.json").read_bytes() for r in runs}


@pytest.mark.slow
def test_a_failing_run_is_recorded_and_the_others_finish(tmp_path, capsys):
    # lr=1e12 makes the loss non-finite: the training loop raises Diverged.
    spec = _spec(tmp_path, "diverge", "  lr: [0.05, 1.0e12]")
    out = tmp_path / "store"
    assert main(["run", str(spec), "--out", str(out), "--no-progress", "--threads", "1", *FAST]) == 1
    assert "1 done, 1 failed" in capsys.readouterr().out
    assert json.loads((out / "specs.json").read_text()) == {"diverge": str(spec.resolve())}  # its name's file

    assert main(["status", str(spec), "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "1 done" in printed and "1 failed" in printed
    assert "lr: training loss is not finite" in printed  # a user's error: its message, no traceback
    # with the threads it ran with: a resumed run's sums depend on them
    assert f"rerun the 1 failed or cancelled: suite run {spec} --out {out} {' '.join(FAST)} --threads 1 " \
           "--retry-failed" in printed

    runs = {r.config.lr: r for r in ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))}
    failed = store.run_dir(out, runs[1.0e12].run_id)
    assert store.state_of(failed).state == "failed"
    assert not (failed / "error.txt").exists()
    assert store.state_of(store.run_dir(out, runs[0.05].run_id)).state == "done"

    # Failed runs are not retried unless asked to.
    assert main(["run", str(spec), "--out", str(out), "--no-progress", "--dry-run", *FAST]) == 0
    assert "0 of 2 runs would start" in capsys.readouterr().out
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *FAST]) == 0
    printed = capsys.readouterr().out
    assert "nothing to run: 1 done, 1 failed" in printed
    assert f"suite run {spec} --out {out} {' '.join(FAST)} --retry-failed" in printed  # a command to paste
    assert main(["run", str(spec), "--out", str(out), "--dry-run", "--retry-failed", *FAST]) == 0
    assert "1 of 2 runs would start" in capsys.readouterr().out


def test_force_archives_a_result_that_a_failing_rerun_cannot_destroy(tmp_path, capsys):
    spec = _spec(tmp_path, "forced", "  model.mask_norm: [mixed]")
    out = tmp_path / "store"
    # one 4-px image per batch: the re-run fails at its first step (a BatchNorm sees a 1x1 map of one image)
    overrides = ["batch_size=1", "data.input_size=4", "measure.complexity=false", "measure.throughput=false"]
    (run,) = ablations.expand(ablations.load(spec), overrides=parse_overrides(overrides))
    d = store.plan(out, run)
    store.write_result(d, {"run_id": run.run_id, "metrics": {"top1_err": 6.5}})
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *overrides]) == 0
    assert "nothing to run: 1 done" in capsys.readouterr().out
    assert main(["run", str(spec), "--out", str(out), "--no-progress", "--force", *overrides]) == 1
    assert "0 done, 1 failed" in capsys.readouterr().out
    (kept,) = (d / "archive").glob("*/result.json")
    assert json.loads(kept.read_text())["metrics"]["top1_err"] == 6.5
    assert main(["status", str(spec), "--out", str(out), *overrides]) == 0
    printed = capsys.readouterr().out
    assert "batch_size: a batch of 1 cannot train this model" in printed
    assert f"its result from before --force is kept in {kept.parent}" in printed


def test_an_interrupted_force_archives_only_the_runs_it_started(tmp_path, monkeypatch, capsys):
    # Ctrl-C while the first run executes: the second, never started, keeps its result (done).
    spec = _spec(tmp_path, "forced2", "  model.mask_norm: [mixed, channel]")
    out = tmp_path / "store"
    runs = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    for run in runs:
        store.write_result(store.plan(out, run), {"run_id": run.run_id, "metrics": {"top1_err": 6.5}})
    from suite.dispatch import local

    popen = subprocess.Popen

    def sleeper(command, **kwargs):  # stands in for the run's process
        return popen([sys.executable, "-c", STARTED + "import time; time.sleep(60)"], **kwargs)

    monkeypatch.setattr(local.subprocess, "Popen", sleeper)
    monkeypatch.setattr(local.time, "sleep", lambda s: (_ for _ in ()).throw(KeyboardInterrupt()))  # at the first poll
    assert main(["run", str(spec), "--out", str(out), "--no-progress", "--force", *FAST]) == 130
    first, second = (store.run_dir(out, r.run_id) for r in runs)
    assert list((first / "archive").glob("*/result.json")) and not (first / "result.json").exists()
    assert store.state_of(second).state == "done" and not (second / "archive").exists()


def test_an_interrupted_force_says_which_runs_the_plain_command_leaves(tmp_path, monkeypatch, capsys):
    """Ctrl-C while --force executes the first of two done runs: the runner said "2 runs not
    finished; the same command resumes them", but that command (without --force) resumes the first
    only, the second keeping its earlier result; it is now said apart, with the flag that reruns it."""
    from suite.dispatch import local

    spec = _spec(tmp_path, "forced3", "  model.mask_norm: [mixed, channel]")
    out = tmp_path / "store"
    runs = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    for run in runs:
        store.write_result(store.plan(out, run), {"run_id": run.run_id, "metrics": {"top1_err": 6.5}})
    popen, children, sleep = subprocess.Popen, [], time.sleep

    def sleeper(command, **kwargs):  # stands in for the run's process
        children.append(popen([sys.executable, "-c", STARTED + "import time; time.sleep(60)"], **kwargs))
        return children[-1]

    def ctrl_c_at_the_first_poll(seconds: float) -> None:  # then time passes as usual (Popen.wait polls)
        if not hasattr(children[0], "signalled"):
            children[0].signalled = True
            os.kill(children[0].pid, signal.SIGINT)  # the terminal's Ctrl-C reaches the whole process group
            raise KeyboardInterrupt
        sleep(seconds)

    monkeypatch.setattr(local.subprocess, "Popen", sleeper)
    monkeypatch.setattr(local.time, "sleep", ctrl_c_at_the_first_poll)
    assert main(["run", str(spec), "--out", str(out), "--no-progress", "--force", *FAST]) == 130
    printed = capsys.readouterr().out
    assert "interrupted: 2 runs not finished; the same command resumes 1 of them: suite run " in printed, printed
    assert "; 1 run not started keeps its earlier state (1 done): only --force runs it again" in printed, printed
    assert main(["run", str(spec), "--out", str(out), "--dry-run", *FAST]) == 0
    assert "1 of 2 runs would start" in capsys.readouterr().out


@pytest.mark.parametrize("exit_status", [0, 130])
def test_a_run_that_finishes_as_the_runner_is_interrupted_counts_as_done(tmp_path, monkeypatch, capsys, exit_status):
    """Ctrl-C as the first run's process writes its result and exits: that run is done, and only
    the second, never started, is left for the same command. So also when the Ctrl-C reached that
    process once its run was recorded done (exit 130): the runner counted it among the runs not
    finished, which the store says done."""
    from suite.dispatch import local

    spec = _spec(tmp_path, "finishing", "  lr: [0.05, 0.06]")
    out = tmp_path / "store"
    popen = subprocess.Popen

    def finishing(command, **kwargs):  # stands in for a run's process that completes at once
        d = Path(command[-1])
        store.write_result(d, {"run_id": d.name, "metrics": {"top1_err": 6.5}})
        child = popen([sys.executable, "-c", f"raise SystemExit({exit_status})"], **kwargs)
        child.wait()  # ended, before the runner learns it
        return child

    monkeypatch.setattr(local.subprocess, "Popen", finishing)
    sleep, polls = time.sleep, []

    def ctrl_c_at_the_first_poll(seconds: float) -> None:  # then time passes as usual (Popen.wait polls)
        polls.append(seconds)
        if len(polls) == 1:
            raise KeyboardInterrupt
        sleep(seconds)

    monkeypatch.setattr(local.time, "sleep", ctrl_c_at_the_first_poll)
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *FAST]) == 130
    printed = capsys.readouterr().out
    assert "1 done, 0 failed" in printed and "interrupted: 1 run not finished;" in printed


def test_status_tells_the_runs_a_local_runner_is_about_to_start_from_missing_ones(tmp_path, monkeypatch, capsys):
    """`suite status` in another terminal counted the runs waiting in a local `suite run`'s queue as
    missing, as if nothing would start them: it says they are queued there, and by which process."""
    import contextlib
    import io
    import socket

    from suite.dispatch import local

    spec = _spec(tmp_path, "waiting", "  lr: [0.05, 0.06]")
    out = tmp_path / "store"
    popen, said = subprocess.Popen, []

    def status_then_finish(command, **kwargs):  # a run's process, started once status has been asked
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            assert main(["status", str(spec), "--out", str(out), *FAST]) == 0
        said.append(printed.getvalue())
        d = Path(command[-1])
        store.write_result(d, {"run_id": d.name, "metrics": {"top1_err": 6.5}})
        return popen([sys.executable, "-c", "pass"], **kwargs)

    monkeypatch.setattr(local.subprocess, "Popen", status_then_finish)
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *FAST]) == 0
    runner = f"pid {os.getpid()} on {socket.gethostname()}"
    assert "0 done, 2 missing" in said[0] and \
        f"  1 of the missing is queued in a local `suite run` ({runner}), which starts it in turn" in said[0]
    assert "1 done, 1 missing" in said[1] and "queued" not in said[1]  # the one starting is no longer queued
    assert list((out / "runs" / ".queued").iterdir()) == []  # the announcement went with the runner
    ids = [r.run_id for r in ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))]
    (out / "runs" / ".queued" / "vm-1.json").write_text(json.dumps({"host": "vm", "pid": 1, "runs": ids}))
    (out / "runs" / ".queued" / "vm-1.lock").touch()  # a runner killed -9: nobody holds its lock
    store.archive(store.run_dir(out, ids[0]))  # missing again
    capsys.readouterr()
    assert main(["status", str(spec), "--out", str(out), *FAST]) == 0
    assert "1 done, 1 missing" in (printed := capsys.readouterr().out) and "queued" not in printed


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigterm", "ctrl_c", "sighup", "sigkill", "sigkill_runner_only", "sigterm_run_only"])
def test_a_killed_runner_loses_no_finished_run_and_resumes(tmp_path, capsys, how, hangup_default):
    # Signals and resumption are under test, not training or measuring: the run that finishes is
    # short (only its result's bytes are checked), nothing is measured, and each process has one
    # thread (two spun against the runner on a busy 2-core machine: a 3-epoch run took 158 s CPU
    # with 2 threads against 12.4 s with 1). Grid order: a quarter epoch that finishes, then three
    # epochs, caught mid-training after the first one's line in metrics.jsonl (written with its
    # checkpoint), so it resumes.
    overrides = [*SMALL, "measure.complexity=false", "measure.throughput=false"]
    spec = _spec(tmp_path, "killme", "  epochs: [0.25, 3]")
    out = tmp_path / "store"
    runs = ablations.expand(ablations.load(spec), overrides=parse_overrides(overrides))
    dirs = [store.run_dir(out, r.run_id) for r in runs]

    runner = subprocess.Popen(
        [sys.executable, "-m", "suite", "run", str(spec), "--out", str(out), "--no-progress", "--threads", "1",
         *overrides], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def one_done_one_training() -> bool:
            states = [store.state_of(d).state for d in dirs]
            return states.count("done") >= 1 and any(
                s == "running" and (d / "metrics.jsonl").is_file() and (d / "metrics.jsonl").stat().st_size
                for s, d in zip(states, dirs))

        _wait_for(one_done_one_training, 900, "one run done and another one mid-training")
        finished = {d: (d / "result.json").read_bytes() for d in dirs if (d / "result.json").exists()}
        if how == "sigterm":  # what Ctrl-C or `kill` does to the runner
            runner.send_signal(signal.SIGTERM)
            assert runner.wait(timeout=120) == 143  # 128 + SIGTERM, as `suite profile` and `suite bench` exit
            assert "not finished; the same command resumes them: suite run " in runner.stdout.read().decode()
        elif how in ("ctrl_c", "sighup"):  # to the whole process group, the runner and its run alike, as a
            # terminal sends them (SIGHUP: it was closed, or the ssh session was lost)
            os.killpg(runner.pid, signal.SIGINT if how == "ctrl_c" else signal.SIGHUP)
            assert runner.wait(timeout=120) == (130 if how == "ctrl_c" else 129)
            assert "not finished; the same command resumes them: suite run " in runner.stdout.read().decode()
        elif how == "sigkill":  # the runner and its child die at once: nothing gets to record anything
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait(timeout=60)
            _wait_for(lambda: all(store.state_of(d).state != "running" for d in dirs), 30, "the child to go")
        elif how == "sigterm_run_only":  # `kill` of the run's own process: the runner books it interrupted, not
            # failed (which only --retry-failed would start again), and goes on with the rest
            [pid] = [store.state_of(d).status["pid"] for d in dirs if store.state_of(d).state == "running"]
            os.kill(pid, signal.SIGTERM)
            assert runner.wait(timeout=600) == 1
            said = runner.stdout.read().decode()
            assert "1 done, 0 failed, 1 interrupted" in said, said
            assert "the same command resumes the interrupted runs: suite run " in said
        else:  # the runner alone: its child is told (SIGTERM) and records itself, instead of training on
            runner.kill()
            runner.wait(timeout=60)
            _wait_for(lambda: all(store.state_of(d).status is None or store.state_of(d).status.get("state")
                                  != "running" for d in dirs), 60, "the child to record its end")
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
        runner.stdout.close()

    states = [store.state_of(d).state for d in dirs]
    assert states.count("interrupted") == 1, states
    assert set(states) <= {"done", "interrupted", "missing"}, states
    interrupted = dirs[states.index("interrupted")]
    # the signal that stopped it, once, though the runner passes a signal to the whole group on
    if how in ("sigterm", "ctrl_c", "sighup", "sigterm_run_only"):
        signum = {"ctrl_c": "SIGINT", "sighup": "SIGHUP"}.get(how, "SIGTERM")
        assert store.state_of(interrupted).status["error"] == f"interrupted: {signum}"
    assert "Traceback" not in (interrupted / "log.txt").read_text()  # a second signal is no error of the run
    assert main(["status", str(spec), "--out", str(out), *overrides]) == 0
    assert "1 interrupted" in capsys.readouterr().out

    # The next run completes only what is missing; finished results stay byte for byte.
    assert main(["run", str(spec), "--out", str(out), "--no-progress", "--threads", "1", *overrides]) == 0
    assert f"{2 - len(finished)} done, 0 failed" in capsys.readouterr().out
    assert all(store.state_of(d).state == "done" for d in dirs)
    assert all(d.joinpath("result.json").read_bytes() == data for d, data in finished.items())
    status = json.loads((interrupted / "status.json").read_text())
    assert status["attempts"] == 2
    log = (interrupted / "log.txt").read_text()  # both attempts' lines, told apart
    assert log.index(f"attempt 1 of run {interrupted.name}: ") < log.index("epoch 1 of 3") \
        < log.index(f"attempt 2 of run {interrupted.name}: ") < log.index("resuming from ") < log.index("epoch 3 of 3")
    # Its wall time covers both attempts: at least every epoch, from either.
    epochs = [json.loads(line)["epoch_time_s"] for line in (interrupted / "metrics.jsonl").read_text().splitlines()]
    assert len(epochs) == 3
    assert json.loads((interrupted / "result.json").read_text())["metrics"]["wall_time_s"] >= sum(epochs)


@pytest.mark.parametrize("data", ["cifar10", "imagenet"])
def test_missing_data_stops_a_local_run_before_it_starts(tmp_path, capsys, monkeypatch, data):
    monkeypatch.setenv("SUITE_DATA", str(tmp_path / "nodata"))
    spec = _spec(tmp_path, "nodata", "  model.mask_norm: [mixed, spatial]")
    spec.write_text(spec.read_text().replace("{name: digits}", f"{{name: {data}, input_size: 32}}"))
    out = tmp_path / "store"
    assert main(["run", str(spec), "--out", str(out), "--dry-run"]) == 0  # the plan shows without the data
    assert "2 of 2 runs would start" in capsys.readouterr().out
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 2
    assert f"{tmp_path / 'nodata'}" in capsys.readouterr().err
    assert not (out / "runs").exists()  # nothing planned, nothing failed


@pytest.mark.parametrize("val, message", [
    (("n01", "n02"), "imagenet has 2 classes but the model predicts 1000"),
    (("n01", "n03"), r"train/ and val/ have different class folders \(e.g. \['n02', 'n03'\]\)"),
])
def test_imagenet_class_folders_stop_a_local_run_before_it_starts(tmp_path, capsys, val, message):
    """Listing the class folders is cheap; finding them wrong after a model's measurement is not."""
    root = tmp_path / "imagenet"
    for split, classes in (("train", ("n01", "n02")), ("val", val)):
        for name in classes:
            (root / split / name).mkdir(parents=True)
    spec = _spec(tmp_path, "folders", "  model.mask_norm: [mixed]")
    spec.write_text(spec.read_text().replace("{name: digits}", f"{{name: imagenet, root: {root}, input_size: 32}}"))
    out = tmp_path / "store"
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and ("model.num_classes" in err or "data.root" in err)
    assert not (out / "runs").exists()


def test_a_run_another_process_holds_is_left_to_it(tmp_path, capsys, monkeypatch):
    """Two `suite run`s of one spec: the second finds the run's lock taken, when it plans (it does
    not start the run) or when its child starts it (it leaves the status alone)."""
    from filelock import FileLock

    spec = _spec(tmp_path, "busy", "  model.mask_norm: [mixed]")
    out = tmp_path / "out"
    (run,) = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    d = store.plan(out, run)
    with FileLock(str(d / ".lock")):  # the other runner's child
        assert main(["run", str(spec), *FAST, "--out", str(out), "--no-progress"]) == 0
        assert "nothing to run: 1 missing (1 of them being executed by another process)" in capsys.readouterr().out
        monkeypatch.setattr(store, "executing", lambda d: False)  # the lock taken between planning and starting
        assert main(["run", str(spec), *FAST, "--out", str(out), "--no-progress"]) == 0
    assert "0 done, 0 failed, 1 left to the other process executing them" in capsys.readouterr().out
    assert store.state_of(d).state == "missing"  # not marked failed


def test_a_run_another_process_ended_since_planning_is_not_run_again(tmp_path, capsys):
    """Two overlapping `suite run`s: while this one trains its first run, the other fails the
    second and finishes the third, which this one planned as missing. A plain `suite run` leaves a
    failed run to --retry-failed, whichever runner reaches it first, and says whose result is done."""
    import threading

    spec = _spec(tmp_path, "overlap", "  lr: [0.05, 0.06, 0.07]")
    out = tmp_path / "store"
    first, second, third = (store.run_dir(out, r.run_id)
                            for r in ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST)))

    def other_runner() -> None:  # ends `second` and `third` once this runner's child trains `first`
        deadline = time.monotonic() + 120
        while store.state_of(first).state != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        store.set_status(second, "failed", error="failed in the other runner", attempts=1)
        store.set_status(third, "running", pid=os.getpid(), attempts=1)
        store.write_result(third, {"run_id": third.name, "metrics": {"top1_err": 6.5}})

    other = threading.Thread(target=other_runner)
    other.start()
    try:
        assert main(["run", str(spec), *FAST, "--out", str(out), "--no-progress"]) == 0
    finally:
        other.join()
    printed = capsys.readouterr().out
    assert f"run {second.name} skipped: failed meanwhile in another process (`--retry-failed` runs it again)" in printed
    assert f"run {first.name} done (1 of 3)" in printed and f"run {third.name} done by another process" in printed
    assert "2 done, 0 failed, 1 skipped (another process ended or queued them meanwhile)" in printed
    assert store.read_json(second / "status.json")["attempts"] == 1 and not (second / "log.txt").exists()


def test_a_warning_inside_a_run_reaches_the_console(tmp_path, capsys):
    """A resume with another thread count than the checkpoint's (results no longer bit-identical)
    is said where the user looks, not only in the run's log."""
    from suite.train import checkpoint

    spec = _spec(tmp_path, "threads", "  lr: [0.05]")
    out = tmp_path / "store"
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *FAST]) == 0
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    d = store.run_dir(out, run.run_id)
    assert store.read_json(d / "status.json")["warnings"] == []
    state = checkpoint.load(d / checkpoint.FILENAME)
    checkpoint.save(d / checkpoint.FILENAME, {**state, "threads": 7, "iteration": 0})  # as if stopped early
    (d / "result.json").unlink()
    store.set_status(d, "interrupted", error="as if killed")
    capsys.readouterr()
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *FAST]) == 0
    err = capsys.readouterr().err
    assert f"warning: run {run.run_id}: " in err and "CPU threads, the checkpoint's run used 7" in err
    assert "the checkpoint's run used 7" in store.read_json(d / "status.json")["warnings"][0]
    log = (d / "log.txt").read_text()  # a line as on the console, not Python's source location
    assert "\nwarning: " in log and "the checkpoint's run used 7" in log and "SuiteWarning" not in log


def test_threads_sets_each_local_runs_torch_threads(tmp_path, capsys):
    spec = _spec(tmp_path, "threads", "  lr: [0.05]")
    out = tmp_path / "store"
    assert main(["run", str(spec), "--out", str(out), "--no-progress", "--threads", "1", *FAST]) == 0
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    assert store.collect(out, [run.run_id])["env.threads"].tolist() == [1]  # the default is the cores (2 here and in CI)
    assert f"run {run.run_id} done (1 of 1)" in capsys.readouterr().out  # without a bar, a line per run
    assert main(["run", str(spec), "--out", str(out), "--executor", "slurm", "--threads", "1", *FAST]) == 2
    assert "--threads is for local runs; on SLURM a run takes --cpus-per-task threads" in capsys.readouterr().err


def test_a_run_imports_the_suite_that_started_it_not_one_in_the_working_folder(tmp_path, capsys, monkeypatch):
    """An installed suite used inside another checkout: `python -m suite.execute` would put that
    checkout first on sys.path and run its code, not the code of the `suite` command."""
    other = tmp_path / "other-checkout"
    (other / "suite").mkdir(parents=True)
    (other / "suite" / "__init__.py").write_text("raise SystemExit('imported the suite of the working folder')\n")
    spec = _spec(tmp_path, "cwd", "  lr: [0.05]")
    monkeypatch.chdir(other)
    assert main(["run", str(spec), "--out", str(tmp_path / "store"), "--no-progress", "--threads", "1", *FAST]) == 0
    assert "1 done, 0 failed" in capsys.readouterr().out


def test_a_corrupt_result_is_kept_aside_and_the_run_made_again(tmp_path, capsys):
    spec = _spec(tmp_path, "corrupt", "  lr: [0.05]")
    out = tmp_path / "store"
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *FAST]) == 0
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    d = store.run_dir(out, run.run_id)
    (d / "result.json").write_text('{"metrics": ')  # a disk that filled up mid-write, say
    capsys.readouterr()
    assert main(["run", str(spec), "--out", str(out), "--no-progress", "--dry-run", *FAST]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if run.run_id in line]
    assert line.startswith(f"  run  {run.run_id} missing") and f"({d / 'result.json'}: " in line  # says why
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *FAST]) == 0
    err = capsys.readouterr().err
    [kept] = d.glob("result.corrupt-*.json")
    assert kept.read_text() == '{"metrics": ' and f"moved to {kept.name}" in err
    assert store.state_of(d).state == "done"


def test_a_done_run_asked_for_with_other_measure_settings_is_measured_again_not_retrained(tmp_path, capsys):
    spec = _spec(tmp_path, "remeasure", "  lr: [0.05]")
    out = tmp_path / "store"
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *FAST]) == 0
    other = [*FAST[:-1], "measure.batch_size=3"]
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    [again] = ablations.expand(ablations.load(spec), overrides=parse_overrides(other))
    assert again.run_id == run.run_id  # measuring differently is the same run
    d = store.run_dir(out, run.run_id)
    trained = {name: (d / name).read_bytes() for name in ("checkpoint.pt", "metrics.jsonl")}
    before = store.read_json(d / "result.json")
    capsys.readouterr()
    assert main(["run", str(spec), "--out", str(out), "--no-progress", "--dry-run", *other]) == 0
    printed = capsys.readouterr().out
    assert "(measure again: measure.batch_size (2, not 3))" in printed and "1 of 1 run would start" in printed
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *other]) == 0
    printed = capsys.readouterr().out
    assert "1 done run measured with other settings, measure.batch_size (2, not 3): measured again" in printed
    assert "1 done, 0 failed" in printed
    after = store.read_json(d / "result.json")
    assert trained == {name: (d / name).read_bytes() for name in trained}  # not trained again
    assert after["metrics"] == before["metrics"] and after["finished_at"] == before["finished_at"]
    assert after["throughput"]["infer_batch_size"] == 3 and after["config"]["measure.batch_size"] == 3
    assert after["trained_env"] == before["env"] and "measured_at" in after
    assert store.read_json(d / "config.json")["config"]["measure"]["batch_size"] == 3  # what `suite.execute` runs
    assert not (d / "measure.json").exists()  # the cache of the first measurement described it no longer
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *other]) == 0
    assert "nothing to run: 1 done" in capsys.readouterr().out


def test_an_interrupted_run_says_which_unfinished_runs_were_done_and_only_to_be_measured_again(
        tmp_path, capsys, monkeypatch):
    from suite.dispatch import local
    from suite.dispatch.local import Outcome

    spec = _spec(tmp_path, "remeasure", "  lr: [0.05, 0.1]")
    out = tmp_path / "store"
    [run, other_run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    store.write_result(store.plan(out, run), {"run_id": run.run_id, "config": run.config.flat(),
                                              "metrics": {"top1_err": 6.5}, "complexity": {"params": 7}})
    # Ctrl-C before either run settles: one is new, the other done and only to be measured again
    monkeypatch.setattr(local, "run_local", lambda runs, out, **kwargs: Outcome(interrupted=2))
    other = [*FAST[:-1], "measure.batch_size=3"]
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *other]) == 130
    assert "interrupted: 2 runs not finished (1 of them done, to be measured again)" in capsys.readouterr().out


def test_a_second_ddp_rank_of_a_done_run_does_not_train(tmp_path):
    """Rank 0 only measures a done run again; a rank that went on to train would wait for it in
    the process group until the timeout. Two real gloo ranks, each executing the planned run."""
    spec = _spec(tmp_path, "remeasure", "  lr: [0.05]")
    out = tmp_path / "store"
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    result = {"run_id": run.run_id, "config": run.config.flat(), "metrics": {"top1_err": 6.5},
              "complexity": {"params": 7}}
    d = store.plan(out, run)
    store.write_result(d, result)
    child = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        import suite.train
        from suite import store
        from suite.ablations.expand import RunSpec
        from suite.config import resolve
        from suite.execute import execute

        def train(*args, **kwargs):
            raise AssertionError("trained a done run")

        suite.train.run = train
        d = Path(sys.argv[1])
        planned = store.read_json(d / "config.json")
        run = RunSpec(spec=planned["spec"], point=planned["point"], seed=planned["seed"],
                      config=resolve(planned["config"]), preset=planned.get("preset"))
        print(json.dumps(execute(run, d.parent.parent)["metrics"]))
    """)
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, "-c", child, str(d)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "RANK": str(rank), "WORLD_SIZE": "2",
                                              "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
                                              "MASTER_PORT": str(port)})
             for rank in range(2)]
    for proc in procs:
        printed, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert json.loads(printed.splitlines()[-1]) == result["metrics"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failed_measurement_of_a_done_run_keeps_its_result(tmp_path, capsys, monkeypatch):
    from suite import measure
    from suite.execute import execute

    spec = _spec(tmp_path, "remeasure", "  lr: [0.05]")
    out = tmp_path / "store"
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    other = [*FAST[:-1], "measure.batch_size=3"]
    [again] = ablations.expand(ablations.load(spec), overrides=parse_overrides(other))
    d = store.plan(out, run)
    store.write_result(d, {"run_id": run.run_id, "config": run.config.flat(), "metrics": {"top1_err": 6.5},
                           "complexity": {"params": 7, "gmacs": 0.1}, "throughput": {"infer_batch_size": 2},
                           "env": {"device": "elsewhere"}})
    result = (d / "result.json").read_bytes()
    # status and report say the done run's costs were measured otherwise, before anything runs
    assert main(["status", str(spec), "--out", str(out), *other]) == 0
    assert (f"1 done run measured with other settings, measure.batch_size (2, not 3): `suite run {spec} --out {out} "
            f"{' '.join(other)}` measures them again") in capsys.readouterr().out
    store.set_status(d, "done", slurm_job_id="999999_0")  # run by SLURM: pasted as it is, it would run here
    assert main(["status", str(spec), "--out", str(out), *other]) == 0
    assert "measures them again (add `--executor slurm` and your cluster flags" in capsys.readouterr().out
    (d / "status.json").unlink()
    from suite.report import tables

    report = tables.load(spec, out=out, overrides=parse_overrides(other))
    assert any(n.startswith(f"1 done run ({run.run_id}) was measured with other settings than these runs ask for "
                            "(measure.batch_size (2, not 3))") for n in report.notes), report.notes
    assert list(report.runs["note"]) == ["measured with other settings: measure.batch_size (2, not 3)"]  # the CSV's
    assert not any("measured with other" in n for n in tables.load(spec, out=out, overrides=parse_overrides(FAST)).notes)

    def broken(config):
        raise RuntimeError("no memory left")

    monkeypatch.setattr(measure, "measure_run", broken)
    with pytest.raises(RuntimeError, match="no memory left"):
        execute(again, out)
    assert (d / "result.json").read_bytes() == result and store.state_of(d).state == "done"
    assert store.state_of(d).status.get("measuring_again") is None  # its marker ends with it, done or not
    assert main(["status", str(spec), "--out", str(out), *other]) == 0
    assert (f"done {run.run_id}: measuring again (measure.batch_size (2, not 3)) failed (RuntimeError: no memory "
            "left); the earlier measurement stands") in capsys.readouterr().out

    # a re-measurement whose runner and process were killed at once: the status says so beside the result
    import socket

    gone = subprocess.Popen(["true"])
    gone.wait()
    store.set_status(d, "running", host=socket.gethostname(), pid=gone.pid, measuring_again="measure.batch_size (2, not 3)")
    assert store.state_of(d).state == "done"
    assert store.state_of(d).note == (f"measuring it again stopped (process {gone.pid} is gone); the earlier "
                                      "measurement stands")

    # a run process killed while measuring (it records nothing): the runner says so beside the result
    from suite.dispatch.local import Outcome, _settle

    store.set_status(d, "running", pid=12345, measuring_again="measure.batch_size (2, not 3)")
    outcome = Outcome()
    _settle(-signal.SIGKILL, d, again, outcome, pid=12345, threads=1)
    assert outcome.failed == [run.run_id] and store.state_of(d).state == "done"
    assert (d / "log.txt").read_text().endswith("suite run: the run process was killed by SIGKILL (out of memory?)\n")
    assert store.state_of(d).note.startswith("measuring it again stopped, the earlier measurement stands: run "
                                             "process killed by SIGKILL (out of memory?)")
    assert (d / "result.json").read_bytes() == result

    monkeypatch.setattr(measure, "measure_run", lambda config: {"complexity": None, "throughput": {"infer_batch_size": 3}})
    assert execute(again, out)["throughput"] == {"infer_batch_size": 3}
    assert store.state_of(d).status.get("measuring_again") is None
    assert store.state_of(d).note == "" and store.read_json(d / "result.json")["metrics"] == {"top1_err": 6.5}
    assert store.read_json(d / "result.json")["trained_env"] == {"device": "elsewhere"}
    [kept] = (d / "archive").glob("*/result.json")  # the earlier measurement is not lost
    assert kept.read_bytes() == result

    # Only what is asked for and stale is measured: a measurement the spec turns off is kept as it is,
    # and one it turns on is made alone, the current throughput and its env kept.
    calls = []
    monkeypatch.setattr(measure, "measure_run", lambda config: calls.append(config.measure) or
                        {"complexity": {"params": 5}})
    no_timing = [*other, "measure.throughput=false", "measure.complexity=false"]
    [quiet] = ablations.expand(ablations.load(spec), overrides=parse_overrides(no_timing))
    assert execute(quiet, out)["throughput"] == {"infer_batch_size": 3} and calls == []
    timed = store.read_json(d / "result.json")
    store.write_result(d, {**timed, "config": {**again.config.flat(), "measure.complexity": False}})
    redone = execute(again, out)
    assert [(c.complexity, c.throughput) for c in calls] == [(True, False)]
    assert redone["complexity"] == {"params": 5} and redone["throughput"] == {"infer_batch_size": 3}
    assert redone["config"]["measure.complexity"] is True and redone["env"] == timed["env"]  # where it was timed


@pytest.mark.parametrize("damage", ["garbage\n", "[1, 2]"])
def test_an_unreadable_measurement_cache_is_set_aside_and_measured_again(tmp_path, capsys, damage):
    """measure.json only caches what an earlier attempt measured: failing on it would fail every retry."""
    spec = _spec(tmp_path, "measure", "  lr: [0.05]")
    out = tmp_path / "store"
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    d = store.plan(out, run)
    (d / "measure.json").write_text(damage)
    capsys.readouterr()
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *FAST]) == 0
    [kept] = d.glob("measure.corrupt-*.json")
    assert kept.read_text() == damage and f"moved to {kept.name}, and the model is measured again" in capsys.readouterr().err
    assert store.state_of(d).state == "done" and isinstance(store.read_json(d / "measure.json"), dict)
    assert "measured again" in store.read_json(d / "status.json")["warnings"][0]


def test_a_corrupt_data_file_fails_the_run_before_its_model_is_measured(tmp_path, capsys):
    root = tmp_path / "data" / "cifar-10-batches-py"
    root.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (root / name).write_bytes(b"not a pickle")
    spec = _spec(tmp_path, "corrupt", "  lr: [0.05]")
    out = tmp_path / "store"
    overrides = [*FAST, "data.name=cifar10", f"data.root={tmp_path / 'data'}"]
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *overrides]) == 1
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(overrides))
    d = store.run_dir(out, run.run_id)
    status = store.read_json(d / "status.json")
    assert status["state"] == "failed" and str(root / "data_batch_1") in status["error"]
    assert not (d / "measure.json").exists()  # failed before measuring


@pytest.mark.parametrize("command", [["run"], ["run", "--dry-run"], ["status"], ["report"], ["cancel"]])
def test_a_store_that_is_a_file_is_refused_by_name(tmp_path, capsys, command):
    afile = tmp_path / "results"
    afile.write_text("not a store")
    assert main([command[0], "quick", "--out", str(afile), *command[1:]]) == 2
    assert f"{afile}: --out: is a file, not a run store directory" in capsys.readouterr().err
    assert afile.read_text() == "not a store"


@pytest.mark.parametrize("command, option", [(["run", "quick"], "--out"), (["status"], "--out"), (["report", "quick"], "--out"),
                                             (["profile", "resnet26"], "--to"), (["train", "resnet26"], "--run-dir"),
                                             (["report", "quick"], "--to"), (["report", "quick"], "--into")])
def test_an_empty_out_is_refused_not_taken_for_the_current_directory(tmp_path, capsys, monkeypatch, command, option):
    """Nor, for --to, for no --to at all: the store's own tables would be written instead."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([*command, option, ""])
    assert exit_.value.code == 2 and f"{option}: an empty path" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("value", ["", " ", "\t"])
def test_an_empty_suite_out_means_the_default_store(tmp_path, monkeypatch, value):
    """As `--out ''` and `--out ' '` are refused: a blank one made a store named ' ' in the current directory."""
    monkeypatch.setenv("SUITE_OUT", value)
    assert store.default_out() == Path("results")
    monkeypatch.setenv("SUITE_OUT", " results ")  # a path with spaces, odd but a path
    assert store.default_out() == Path(" results ")


def test_a_store_whose_runs_folder_is_a_file_is_refused_before_any_run(tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "runs").write_text("not a folder")
    assert main(["run", "quick", "--out", str(out), "--dry-run"]) == 0  # only looks, and says what a run would meet
    assert f"note: a real run would stop before starting any: {out / 'runs'}: --out: not a directory" \
        in capsys.readouterr().out
    assert main(["run", "quick", "--out", str(out), "--no-progress"]) == 2
    assert f"{out / 'runs'}: --out: not a directory; give --out a folder this user can write" in capsys.readouterr().err
    assert (out / "runs").read_text() == "not a folder"


def test_a_dry_run_says_what_would_stop_a_real_one(tmp_path, capsys):
    """A data set missing from this machine stops `suite run` before any run: the plan says so."""
    spec = _spec(tmp_path, "nodata", "  lr: [0.05]")
    empty = tmp_path / "no-data-here"
    argv = ["run", str(spec), "--out", str(tmp_path / "store"), "data.name=cifar10", f"data.root={empty}"]
    assert main([*argv, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "note: a real run would stop before starting any: data.root: cifar10: missing data_batch_1" in printed
    assert "1 of 1 run would start" in printed
    assert main(argv) == 2 and "cifar10: missing data_batch_1" in capsys.readouterr().err


@pytest.mark.parametrize("done", [50, 56])
def test_a_dry_run_of_a_large_grid_counts_the_done_runs_it_skips(tmp_path, capsys, done):
    """Past 50, the done runs a dry run skips are one line: a large grid's thousands of them hid the
    runs that would start. Every run to start, and every run skipped for another reason, is listed."""
    spec = _spec(tmp_path, "wide", f"  lr: {[round(0.01 * (i + 1), 2) for i in range(60)]}")
    out = tmp_path / "store"
    runs = ablations.expand(ablations.load(spec))
    for run in runs[:done]:
        store.write_result(store.plan(out, run), {"run_id": run.run_id, "config": run.config.flat(),
                                                  "metrics": {"top1_err": 1.0}})
    store.set_status(store.plan(out, runs[done]), "failed", error="ValueError: boom")
    store.set_status(store.plan(out, runs[done + 1]), "cancelled")
    assert main(["run", str(spec), "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    skipped_done = [line for line in lines if re.match(r"  skip [0-9a-f]{12} done ", line)]
    assert len(skipped_done) == (done if done <= 50 else 0)
    assert ("  skip 56 done runs (listed one by one only up to 50)" in lines) == (done > 50)
    assert sum(line.startswith(f"  skip {runs[done].run_id} failed") for line in lines) == 1
    assert sum(line.startswith("  run  ") for line in lines) == 60 - done - 2
    assert lines[-1] == (f"{60 - done - 2} of 60 runs would start (out: {out}); rerun the 2 failed or cancelled: "
                         f"suite run {spec} --out {out} --retry-failed")
    assert main(["run", str(spec), "--out", str(out), "--dry-run", "--retry-failed"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{60 - done} of 60 runs would start (out: {out})"  # no hint


def test_a_device_that_names_none_is_refused_before_any_run(tmp_path, capsys):
    spec = _spec(tmp_path, "device", "  lr: [0.05]")
    assert main(["run", str(spec), "--out", str(tmp_path / "store"), "--dry-run", "device=gpu"]) == 2
    assert "device: invalid device 'gpu'" in (err := capsys.readouterr().err) and "cuda:N" in err
    assert not (tmp_path / "store").exists()


def test_a_child_that_fails_before_recording_anything_is_booked_failed(tmp_path):
    """`python -m suite.execute` exits 2 on a config.json it cannot read, before any status.json:
    the runner records the failure (it used to stop on the missing file, leaving the other runs)."""
    from suite.dispatch.local import Outcome, _settle

    [run] = ablations.expand(ablations.load(_spec(tmp_path, "early", "  lr: [0.05]")), overrides=parse_overrides(FAST))
    d = store.plan(tmp_path / "store", run)
    outcome = Outcome()
    _settle(2, d, run, outcome, pid=12345, threads=1)
    state = store.state_of(d)
    assert outcome.failed == [d.name] and state.state == "failed"
    assert "exit status 2" in state.note and "log.txt" in state.note


@pytest.mark.parametrize("code", [1, 2, -signal.SIGKILL])
def test_only_the_child_that_said_so_is_booked_interrupted(tmp_path, code):
    """A run an earlier attempt left interrupted still says so while its next child starts: that
    child dying before it writes a word (an import error, the out-of-memory killer) is a failure."""
    from suite.dispatch.local import Outcome, _settle

    [run] = ablations.expand(ablations.load(_spec(tmp_path, "again", "  lr: [0.05]")), overrides=parse_overrides(FAST))
    d = store.plan(tmp_path / "store", run)
    store.set_status(d, "interrupted", pid=111, error="interrupted: SIGTERM")
    outcome = Outcome()
    assert _settle(code, d, run, outcome, pid=222, threads=1) == "failed"
    assert outcome.failed == [d.name] and not outcome.stopped and store.state_of(d).state == "failed"
    # the child that recorded it: interrupted, resumed by a plain `suite run`
    store.set_status(d, "interrupted", pid=222, error="interrupted: SIGTERM")
    outcome = Outcome()
    assert _settle(143, d, run, outcome, pid=222, threads=1) == "interrupted"
    assert outcome.stopped == [d.name] and store.state_of(d).state == "interrupted"


@pytest.mark.parametrize("code, signum", [(143, "SIGTERM"), (-signal.SIGTERM, "SIGTERM"), (130, "SIGINT"),
                                          (-signal.SIGINT, "SIGINT"), (129, "SIGHUP"), (-signal.SIGHUP, "SIGHUP")])
def test_a_child_stopped_by_a_signal_before_it_records_anything_is_booked_interrupted(tmp_path, code, signum):
    """`kill PID` of a run's process still starting: killed by the signal (its handlers not installed
    yet, importing torch) or stopped by it before its first record (exit 128 + the signal). Its
    exit status is its word: the run was booked failed (with an earlier attempt's record, or none),
    which only --retry-failed starts again; it is interrupted, by that signal."""
    from suite.dispatch.local import Outcome, _settle

    [run] = ablations.expand(ablations.load(_spec(tmp_path, "early", "  lr: [0.05]")), overrides=parse_overrides(FAST))
    d = store.plan(tmp_path / "store", run)
    store.set_status(d, "failed", pid=111, error="ValueError: an earlier attempt")
    outcome = Outcome()
    assert _settle(code, d, run, outcome, pid=222, threads=1) == "interrupted"
    assert outcome.stopped == [d.name] and not outcome.failed
    assert (store.state_of(d).state, store.state_of(d).note) == ("interrupted", f"interrupted: {signum}")


@pytest.mark.parametrize("earlier", [None, "failed"])
def test_ctrl_c_while_a_runs_process_starts_leaves_it_interrupted_for_the_same_command(
        tmp_path, monkeypatch, capsys, earlier):
    """Ctrl-C reaches the runner and the run's process alike while that process is still starting,
    before it has written a word (its signal handlers are installed once torch is imported): the run
    kept an earlier attempt's record, or none. A failed run being retried stayed failed, so the
    command the runner said would resume it (`suite run` without --retry-failed) started nothing.
    The signal reaches the run's process here at the runner's first poll, right after it started."""
    from suite.dispatch import local

    spec = _spec(tmp_path, "starting", "  lr: [0.05]")
    out = tmp_path / "store"
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    d = store.plan(out, run)
    if earlier:
        store.set_status(d, earlier, pid=111, error="ValueError: an earlier attempt")
    before = (d / "status.json").read_bytes() if earlier else None
    popen, children, sleep = subprocess.Popen, [], time.sleep

    def started(*args, **kwargs):  # the run's real process, kept to be signalled
        children.append(popen(*args, **kwargs))
        return children[-1]

    def ctrl_c_at_the_first_poll(seconds: float) -> None:  # then time passes as usual (Popen.wait polls)
        if len(children) == 1 and children[0].returncode is None and not hasattr(children[0], "signalled"):
            children[0].signalled = True
            assert ((d / "status.json").read_bytes() if earlier else (d / "status.json").exists()) == \
                (before if earlier else False)  # nothing written by the run's process yet
            os.kill(children[0].pid, signal.SIGINT)  # the terminal's Ctrl-C reaches the whole process group
            raise KeyboardInterrupt
        sleep(seconds)

    monkeypatch.setattr(local.subprocess, "Popen", started)
    monkeypatch.setattr(local.time, "sleep", ctrl_c_at_the_first_poll)
    retry = ["--retry-failed"] if earlier == "failed" else []
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *retry, *FAST]) == 130
    printed = capsys.readouterr().out
    assert f"interrupted: 1 run not finished; the same command resumes them: suite run {spec} " in printed
    assert (store.state_of(d).state, store.state_of(d).note) == ("interrupted", "interrupted: SIGINT")
    assert main(["run", str(spec), "--out", str(out), "--dry-run", *FAST]) == 0
    assert "1 of 1 run would start" in capsys.readouterr().out


def test_sigint_to_the_runner_alone_is_recorded_as_sigint(tmp_path, monkeypatch, capsys):
    """`kill -INT RUNNER` (not a terminal's Ctrl-C, which reaches the run's process too): the runner
    passed SIGTERM on, and the run said `interrupted: SIGTERM`, a signal nobody sent. It passes on
    the signal it got. The runner is interrupted once the run's process has recorded it running."""
    from suite.dispatch import local

    spec = _spec(tmp_path, "alone", "  lr: [0.05]")
    out = tmp_path / "store"
    overrides = [*SMALL, "measure.complexity=false", "measure.throughput=false", "epochs=3"]
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(overrides))
    status, sleep, fired = store.run_dir(out, run.run_id) / "status.json", time.sleep, []

    def interrupt_once_running(seconds: float) -> None:
        sleep(seconds)
        if not fired and status.exists() and json.loads(status.read_text())["state"] == "running":
            fired.append(True)
            raise KeyboardInterrupt  # what SIGINT does to the runner (Python's default handler)

    monkeypatch.setattr(local.time, "sleep", interrupt_once_running)
    assert main(["run", str(spec), "--out", str(out), "--no-progress", "--threads", "1", *overrides]) == 130
    recorded = store.read_json(status)
    assert (recorded["state"], recorded["error"]) == ("interrupted", "interrupted: SIGINT")


def test_a_child_killed_before_it_records_anything_keeps_its_threads_for_the_rerun_hint(tmp_path):
    """Killed while importing, the child wrote no status: the runner's booking carries the threads
    it gave, so `suite status`'s hint resumes with the same CPU sums."""
    from suite.cli import _recorded_threads
    from suite.dispatch.local import Outcome, _settle

    [run] = ablations.expand(ablations.load(_spec(tmp_path, "early", "  lr: [0.05]")), overrides=parse_overrides(FAST))
    out = tmp_path / "store"
    d = store.plan(out, run)
    assert _settle(-signal.SIGKILL, d, run, Outcome(), pid=222, threads=3) == "failed"
    assert store.state_of(d).state == "failed" and _recorded_threads([store.state_of(d).status]) == " --threads 3"


def test_a_run_process_whose_runner_died_before_it_asked_for_the_runners_death_signal_records_so(
        tmp_path, monkeypatch):
    """A runner killed between the fork and its child's PR_SET_PDEATHSIG call sends the child no
    signal. The child exited before it ran any code, leaving the run's earlier record (a failed run
    being retried stayed failed, which the plain command does not resume, and a new one missing).
    It now runs, finds its parent is not the runner whose pid it was given, and records the run
    interrupted, saying so. Its runner here is a process that has ended, as a killed runner has; the
    run process's `main` runs in this one (its signal handlers put back after)."""
    import warnings

    from suite import execute, processes
    from suite.dispatch import local

    [run] = ablations.expand(ablations.load(_spec(tmp_path, "orphan", "  lr: [0.05]")), overrides=parse_overrides(FAST))
    d = store.plan(tmp_path / "store", run)
    given = []
    with monkeypatch.context() as m:
        m.setattr(local.subprocess, "Popen", lambda command, **kwargs: given.append(kwargs["env"]) or
                  _POPEN([sys.executable, "-c", "pass"], **kwargs))
        local.run_local([run], tmp_path / "store", progress=False, poll_s=0.01)
    assert given[0][processes.RUNNER_PID] == str(os.getpid())  # the runner says who it is
    store.set_status(d, "failed", pid=111, error="ValueError: an earlier attempt")  # retried (--retry-failed)
    gone = _POPEN(["true"])  # the runner, ended
    gone.wait()
    monkeypatch.setenv(processes.RUNNER_PID, str(gone.pid))
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # `main` sets its own
    handlers = {signum: signal.getsignal(signum) for signum in processes.INTERRUPTS}
    try:
        assert execute.main([str(d)]) == 128 + signal.SIGTERM  # as the SIGTERM it would have got ends a run
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    state = store.state_of(d)
    assert (state.state, state.note) == ("interrupted", f"interrupted: its runner (pid {gone.pid}) was gone before "
                                                        "the run started")
    assert not (d / "checkpoint.pt").exists()  # nothing trained


def test_a_stop_that_comes_out_of_library_code_as_another_error_is_recorded_as_the_stop(tmp_path, monkeypatch):
    """A SIGINT that lands inside torch (an import cut in two, then a cleanup failing on what it
    left) can leave the run's process with another error: the run was recorded failed with that
    error's last line (CI, once: "R...backHandler'"), a failure the plain command does not resume,
    though the user had only pressed Ctrl-C. An error raised while the stop was being handled is
    the stop's: the run is interrupted, and the process exits as the signal. The run process's
    `main` runs in this one (its signal handlers put back after)."""
    import warnings

    from suite import execute, processes

    [run] = ablations.expand(ablations.load(_spec(tmp_path, "cut", "  lr: [0.05]")), overrides=parse_overrides(FAST))
    d = store.plan(tmp_path / "store", run)

    def stopped_in_an_import(*args, **kwargs):
        try:
            raise execute.Interrupted("SIGINT")
        except execute.Interrupted:
            raise ImportError("cannot import name 'CompilationCallbackHandler'") from None  # its context stays

    monkeypatch.setattr(execute, "_run", stopped_in_an_import)
    monkeypatch.delenv(processes.RUNNER_PID, raising=False)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # `main` sets its own
    handlers = {signum: signal.getsignal(signum) for signum in processes.INTERRUPTS}
    try:
        assert execute.main([str(d)]) == 128 + signal.SIGINT
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    state = store.state_of(d)
    assert (state.state, state.note) == ("interrupted", "interrupted: SIGINT")
    plain = ValueError("a bug of the run's own")
    assert execute._stop_in(plain) is None  # an error with no stop behind it stays the run's failure


def test_a_signal_pending_behind_the_first_leaves_no_traceback_in_the_log():
    """Ctrl-C reaches the run, and a SIGTERM follows (`kill` of the runner, which passes it on;
    before, the runner sent SIGTERM after every Ctrl-C): with both pending at once, the
    first one's handler set SIG_IGN for the second, which CPython then reported into log.txt as
    `OSError: Signal 15 ignored due to race condition`, with a traceback. The handlers of
    `python -m suite.execute`, with both signals made pending together (blocked, then let in)."""
    code = textwrap.dedent("""\
        import signal, threading
        from suite import execute, processes
        processes.handle(processes.INTERRUPTS, execute._interrupt)  # as execute.main installs them
        both = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, both)
        for signum in both:  # to this thread: torch's threads would take a signal sent to the process
            signal.pthread_kill(threading.get_ident(), signum)
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, both)  # both due now: SIGINT's handler runs first
        except execute.Interrupted as stop:
            print("stopped by", stop)
        for _ in range(100):  # SIGTERM's turn comes at the next check
            pass
        signal.raise_signal(signal.SIGHUP)  # a later stop signal interrupts nothing either
        print("still recording")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "stopped by SIGINT\nstill recording\n", "")


def test_a_signal_that_comes_while_the_first_ones_handler_runs_does_not_replace_it():
    """Ctrl-C reaches the run, and a SIGTERM (the runner's, passed on) comes while the run's handler for it is
    still running, before that handler has set the later signals aside: CPython ran the handler
    again, within the first call, and the run was recorded as stopped by SIGTERM (1 in 10 runs of
    the Ctrl-C test of the killed runner). Here the SIGTERM comes at each step of the handler in
    turn (sys.settrace's events), in a process of its own (its handlers are those of `python -m
    suite.execute`)."""
    code = textwrap.dedent("""\
        import signal, sys, threading
        from suite import execute, processes

        def stopped_by(step):  # SIGINT, and SIGTERM at its handler's `step`-th trace event (never if < 0)
            handler, events = [], []
            def trace(frame, event, arg):
                if not handler and frame.f_code is execute._interrupt.__code__:
                    handler.append(frame)
                if handler and handler[0] is not None:
                    events.append(event)
                    if len(events) == step + 1:
                        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
                    if event == "return" and frame is handler[0]:
                        handler[0] = None  # the handler is done: no later event is its
                return trace
            processes.handle(processes.INTERRUPTS, execute._interrupt)  # as execute.main installs them
            sys.settrace(trace)
            try:
                signal.pthread_kill(threading.get_ident(), signal.SIGINT)
                for _ in range(100):
                    pass
            except execute.Interrupted as stop:
                return str(stop), len(events)
            finally:
                sys.settrace(None)

        _, steps = stopped_by(-1)
        for step in range(steps):
            print(step, stopped_by(step)[0])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    stopped = dict(line.split() for line in done.stdout.splitlines())
    assert len(stopped) > 10  # the handler was followed, step by step
    assert [step for step, signum in stopped.items() if signum != "SIGINT"] == []


def _unwritable(monkeypatch, *dirs: Path) -> None:
    """Simulate `chmod 555` on run directories `dirs` (another user's, in a shared store), which binds
    root only once its capabilities are dropped: no new file can be made there (the files there can
    still be written to, as a log is appended to)."""
    import builtins

    real_open, real_os_open = builtins.open, os.open
    banned = {os.path.realpath(d) for d in dirs}

    def refused(path) -> bool:
        return os.path.dirname(os.path.realpath(path)) in banned and not os.path.exists(path)

    def os_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and refused(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_os_open(path, flags, *args, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, Path)) and set(mode) & set("wax") and refused(file):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)


def test_a_run_whose_directory_or_lock_cannot_be_written_is_refused_before_any_run(tmp_path, capsys, monkeypatch):
    """Its process could record nothing (the runner used to crash on booking it failed, the other
    runs never started): `suite run` names the directory, or the lock left by `sudo suite run`."""
    from suite.errors import SuiteError
    from suite.execute import execute

    spec = _spec(tmp_path, "shared", "  lr: [0.05, 0.1]")
    out = tmp_path / "store"
    theirs, ours = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    d = store.plan(out, theirs)
    store.set_status(d, "interrupted", pid=111, error="interrupted: SIGTERM")
    (d / "log.txt").write_text("attempt 1\n")
    argv = ["run", str(spec), "--out", str(out), "--no-progress", *FAST]
    with monkeypatch.context() as m:
        _unwritable(m, d)
        assert main([*argv, "--dry-run"]) == 0  # only looks
        assert "2 of 2 runs would start" in capsys.readouterr().out
        assert main(argv) == 2
    assert f"{d}: --out: cannot write into {d}: Permission denied" in capsys.readouterr().err
    assert store.state_of(d).state == "interrupted"
    assert not store.run_dir(out, ours.run_id).exists()  # nothing started, nor planned
    lock = d / ".lock"
    lock.touch()
    with monkeypatch.context() as m:
        m.setattr(os, "access", lambda path, mode: Path(path) != lock)  # as for a file of root's, mode 644
        assert main(argv) == 2
    assert f"{lock}: --out: cannot write the run's lock (left by another user, or by `sudo suite run`?)" in \
        capsys.readouterr().err
    assert not store.run_dir(out, ours.run_id).exists()
    real_os_open = os.open

    def os_open(path, *args, **kwargs):
        if Path(path) == lock:
            raise PermissionError(13, "Permission denied", str(path))
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    with pytest.raises(SuiteError, match=f"{lock}: cannot take the run's lock \\(Permission denied\\)"):
        execute(theirs, out)  # the run's process, had it started: its log names the lock, not a traceback


def test_the_runner_books_a_run_it_cannot_record_as_failed_and_goes_on(tmp_path, capsys, monkeypatch):
    """A run directory that became unwritable after the check (or run_local called alone): planning
    it, opening its log or booking its end fails; the runner says so, naming it, and runs the others."""
    from suite.dispatch.local import run_local

    spec = _spec(tmp_path, "race", "  lr: [0.01, 0.02, 0.05, 0.1]")
    out = tmp_path / "store"
    runs = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    unplanned, interrupted, no_log, fine = (store.run_dir(out, r.run_id) for r in runs)
    unplanned.mkdir(parents=True)
    for run in runs[1:3]:
        store.plan(out, run)
    store.set_status(interrupted, "interrupted", pid=111, error="interrupted: SIGTERM")
    (interrupted / "log.txt").write_text("attempt 1\n")
    monkeypatch.setattr(sys, "executable", shutil.which("false"))  # each run's process fails at once, recording nothing
    _unwritable(monkeypatch, unplanned, interrupted, no_log)
    outcome = run_local(runs, out, progress=False, poll_s=0.01)
    assert sorted(outcome.failed) == sorted(d.name for d in (unplanned, interrupted, no_log, fine))
    out_, err = capsys.readouterr()
    for d in (unplanned, interrupted, no_log):
        assert f"error: {d}: cannot write into the run directory (Permission denied); run {d.name} failed" in err
    assert "(4 of 4)" in out_ and "Traceback" not in err
    assert store.state_of(fine).state == "failed" and "exit status 1" in store.state_of(fine).note
    assert store.state_of(interrupted).state == "interrupted"  # as it was: nothing could be written


def test_an_attempt_outside_slurm_does_not_keep_the_gpus_of_an_earlier_slurm_attempt(tmp_path, monkeypatch):
    from suite.execute import _slurm_ids

    monkeypatch.setenv("SLURM_JOB_ID", "17")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    store.set_status(tmp_path, "running", **_slurm_ids())  # the first attempt, a SLURM job on GPU 3
    monkeypatch.delenv("SLURM_JOB_ID")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    store.set_status(tmp_path, "running", **_slurm_ids())  # run again on this machine
    status = store.read_json(tmp_path / "status.json")
    assert (status["slurm_job_id"], status["cuda_visible_devices"]) == (None, "0,1")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    store.set_status(tmp_path, "running", **_slurm_ids())
    assert store.read_json(tmp_path / "status.json")["cuda_visible_devices"] is None


def test_a_run_records_the_commit_it_started_from_not_one_made_while_it_trained(tmp_path, monkeypatch):
    """A commit or checkout in the tree while a local run trained (minutes to hours) was recorded as
    the code that trained it: the run's process had loaded the code of its start."""
    from suite.dispatch import snapshot
    from suite.execute import execute
    import suite.train

    monkeypatch.delenv("SUITE_GIT_COMMIT", raising=False)
    head = ["a" * 40]
    monkeypatch.setattr(snapshot, "git_state", lambda path: (head[0], False))
    train = suite.train.run

    def training(*args, **kwargs):
        head[0] = "b" * 40  # the checkout moves on while the run trains
        return train(*args, **kwargs)

    monkeypatch.setattr(suite.train, "run", training)
    spec = _spec(tmp_path, "commit", "  model.mask_norm: [mixed]")
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    assert execute(run, tmp_path / "out")["env"]["git_commit"] == "a" * 40


def test_a_done_run_measured_again_records_the_commit_it_started_measuring_with(tmp_path, monkeypatch):
    """A commit or checkout while a done run was measured again (its timings take minutes) was
    recorded as the code that timed it: the process had loaded the code of its start."""
    from suite import measure
    from suite.dispatch import snapshot
    from suite.execute import execute

    monkeypatch.delenv("SUITE_GIT_COMMIT", raising=False)
    head = ["a" * 40]
    monkeypatch.setattr(snapshot, "git_state", lambda path: (head[0], False))

    def measuring(config):
        head[0] = "b" * 40  # the checkout moves on while the run is timed
        return {"complexity": None, "throughput": {"infer_batch_size": 3}}

    monkeypatch.setattr(measure, "measure_run", measuring)
    spec = _spec(tmp_path, "commit", "  model.mask_norm: [mixed]")
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    [again] = ablations.expand(ablations.load(spec), overrides=parse_overrides([*FAST[:-1], "measure.batch_size=3"]))
    out = tmp_path / "out"
    store.write_result(store.plan(out, run), {"run_id": run.run_id, "config": run.config.flat(),
                                              "metrics": {"top1_err": 6.5}, "env": {"git_commit": "c" * 40}})
    result = execute(again, out)
    assert result["throughput"] == {"infer_batch_size": 3}  # measured again, not trained
    assert result["env"]["git_commit"] == "a" * 40 and result["trained_env"]["git_commit"] == "c" * 40


def _trained_at_once(tmp_path: Path, monkeypatch, name: str) -> tuple[ablations.RunSpec, Path]:
    """One run of a spec `name` whose training returns at once (top-1 6.5), and its store: for tests
    of what happens around a result being recorded."""
    from suite import execute

    spec = _spec(tmp_path, name, "  lr: [0.05]")
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    monkeypatch.setattr(execute, "_run", lambda run, d, progress: {"run_id": run.run_id, "metrics": {"top1_err": 6.5}})
    return run, tmp_path / "store"


@pytest.mark.parametrize("last", ["result", "checkpoint", "measurement"])
def test_a_run_folder_deleted_while_the_run_runs_is_not_made_again(tmp_path, monkeypatch, last):
    """`rm -rf` of a run (or of the store) while its process trains: its next write (a checkpoint,
    the measurement's cache, the result, then the failure's record) made the folder again, holding
    that file and a status, without config.json: a folder that looks like a run and is none. The
    write now fails naming the folder, and nothing is made. Here the folder goes as the training returns."""
    import shutil as sh

    from suite import execute, files
    from suite.train import checkpoint

    run, out = _trained_at_once(tmp_path, monkeypatch, "deleted")
    d = store.run_dir(out, run.run_id)

    def deleted_then(run_, d_, progress):
        sh.rmtree(d_)
        if last == "checkpoint":
            checkpoint.save(d_ / checkpoint.FILENAME, {"iteration": 1})
        elif last == "measurement":
            execute._measure(run_, d_)
        return {"run_id": run_.run_id, "metrics": {"top1_err": 6.5}}

    monkeypatch.setattr(execute, "_run", deleted_then)
    monkeypatch.setattr("suite.measure.measure_run", lambda config: {"complexity": None, "throughput": None})
    with pytest.raises(files.Gone) as gone:
        execute.execute(run, out)
    assert gone.value.file == str(d) and "deleted while being written into" in str(gone.value)
    assert not d.exists()


def test_a_run_folder_deleted_just_before_its_process_takes_its_lock_is_not_made_again(tmp_path, monkeypatch):
    """`rm -rf` of a planned run as its process starts, between the plan and the lock: taking the
    lock (filelock) made the folder again, holding the lock file, and the run then ran there,
    without config.json. The process now fails naming the folder, and nothing is made."""
    from suite import execute, files

    run, out = _trained_at_once(tmp_path, monkeypatch, "lockgone")
    d = store.run_dir(out, run.run_id)
    run_lock = store.run_lock

    def deleted_then(d_):
        shutil.rmtree(d_)
        return run_lock(d_)

    monkeypatch.setattr(store, "run_lock", deleted_then)
    with pytest.raises(files.Gone) as gone:
        execute.execute(run, out)
    assert gone.value.file == str(d) and not d.exists()


def test_the_temporary_file_of_a_writer_killed_mid_write_is_removed_by_the_runs_next_attempt(tmp_path, monkeypatch):
    """A run process killed while it wrote its checkpoint left the hidden temporary file
    (`.checkpoint.pt.<hex>.tmp`, as large as a checkpoint) in the run's folder for ever, one more
    per kill. The next attempt, holding the run's lock, removes it; an older version's unlocked
    temporary of status.json (a runner may be writing it this instant) stays."""
    from suite import execute

    run, out = _trained_at_once(tmp_path, monkeypatch, "leftover")
    d = store.plan(out, run)
    left = killed_writing(d / "checkpoint.pt")
    status = d / f".status.json.{'0' * 12}.tmp"
    status.write_text("{")
    execute.execute(run, out)
    assert not left.exists() and status.exists() and store.state_of(d).state == "done"


@pytest.mark.parametrize("when", ["ended", "stopped"])
def test_the_runner_says_a_run_whose_folder_was_deleted_failed_and_makes_no_folder(tmp_path, monkeypatch, capsys, when):
    """A run's process whose folder was deleted meanwhile (`rm -rf` of the run) fails naming it, in a
    log deleted with it. The runner then recorded the run's end (failed, or interrupted after Ctrl-C)
    into the folder, made again holding a status alone. It says on stderr that the folder was deleted
    and books the run failed; nothing is made, and the next `suite run` starts it afresh."""
    from suite.dispatch import local

    [run] = ablations.expand(ablations.load(_spec(tmp_path, "gone", "  lr: [0.05]")), overrides=parse_overrides(FAST))
    out = tmp_path / "store"
    d = store.plan(out, run)
    popen, children = subprocess.Popen, []

    def deleting(command, **kwargs):  # the folder deleted while the run's process runs, which then fails
        shutil.rmtree(d)
        children.append(popen([sys.executable, "-c", STARTED + "raise SystemExit(2)"], **kwargs))
        children[-1].wait()
        return children[-1]

    def ctrl_c(seconds: float) -> None:
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(local.subprocess, "Popen", deleting)
    if when == "stopped":
        monkeypatch.setattr(local, "time", types.SimpleNamespace(sleep=ctrl_c, monotonic=time.monotonic))
    outcome = local.run_local([run], out, progress=False, poll_s=0.01)
    assert outcome.failed == [d.name] and not d.exists()
    assert f"error: {d}: the run's folder was deleted while the run was running; run {d.name} failed" in \
        capsys.readouterr().err


# `suite run` in a process of its own that sends itself a stop signal as it scans the store (`scan`),
# or while it writes the plan of its first run, between its folder and its config.json (`plan`).
SIGNAL_AT = textwrap.dedent("""
    import os, signal, sys
    from suite import files, store
    from suite.cli import main

    where, signum = sys.argv[1], int(sys.argv[2])
    scan, write_json = store.scan, store.write_json

    def scanning(*args, **kwargs):
        os.kill(os.getpid(), signum)
        return scan(*args, **kwargs)

    def half_written(path, obj):
        if path.name != "config.json":
            return write_json(path, obj)
        with files.replace(path) as f:
            f.write("{")
            os.kill(os.getpid(), signum)
            f.write("}")

    store.scan, store.write_json = (scanning, write_json) if where == "scan" else (scan, half_written)
    sys.exit(main(sys.argv[3:]))
""")


@pytest.mark.parametrize("where, signum", [("scan", signal.SIGHUP), ("plan", signal.SIGTERM)])
def test_a_stop_signal_before_the_runner_starts_ends_the_command_cleanly(tmp_path, where, signum):
    """SIGTERM or SIGHUP as `suite run` scans the store or plans its runs, before the runner's handlers:
    the command was ended on the spot (killed by the signal, no word), leaving the plan's temporary
    file in a run's folder made without its config.json (a folder that looks like a run and is none).
    It now ends as a stop during the runs does (the shell's status for the signal), leaving neither."""
    spec = _spec(tmp_path, "early", "  lr: [0.01, 0.02]")
    out = tmp_path / "store"
    proc = subprocess.run([sys.executable, "-c", SIGNAL_AT, where, str(int(signum)), "run", str(spec), "--out",
                           str(out), "--no-progress", *FAST], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 128 + signum and proc.stderr.endswith("interrupted\n"), proc.stderr
    left = [p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".suite-probe-")]
    runs = [d for d in out.glob("runs/*") if d.is_dir() and d.name != ".queued"]
    assert left == [] and all((d / "config.json").is_file() for d in runs), (left, runs)
    assert list(out.glob("runs/.queued/*")) == []


@pytest.mark.parametrize("at", ["idle", "run_lock"])
def test_a_run_folder_deleted_as_the_runner_records_its_end_is_said_and_not_made_again(tmp_path, monkeypatch,
                                                                                     capsys, at):
    """The instant after the runner found the run's folder there, before it recorded the end of
    a run process that died without a word: the write stopped the runner with an error, leaving
    its other runs. It now books the run as one whose folder was deleted, and goes on.
    `run_lock`: deleted just before the run's lock is taken, whose taking (filelock) made the
    folder again, holding the lock file, and the failure's status was recorded there."""
    from suite.dispatch import local

    runs = ablations.expand(ablations.load(_spec(tmp_path, "endgone", "  lr: [0.01, 0.02]")),
                            overrides=parse_overrides(FAST))
    out = tmp_path / "store"
    popen, idle = subprocess.Popen, store.idle
    first, second = [store.run_dir(out, r.run_id) for r in runs]

    def dying(command, **kwargs):
        child = popen([sys.executable, "-c", STARTED + "raise SystemExit(2)"], **kwargs)
        child.wait()
        return child

    real = idle if at == "idle" else store.run_lock

    def deleted_first(d, *args):
        if d == first:
            shutil.rmtree(d, ignore_errors=True)
        return real(d, *args)

    monkeypatch.setattr(local.subprocess, "Popen", dying)
    monkeypatch.setattr(store, at, deleted_first)
    outcome = local.run_local(runs, out, progress=False, poll_s=0.01)
    assert outcome.failed == [first.name, second.name] and not first.exists()
    assert f"error: {first}: the run's folder was deleted while the run was running" in capsys.readouterr().err
    assert "exit status 2" in store.state_of(second).status["error"]


@pytest.mark.parametrize("force", [False, True])
def test_a_store_deleted_while_its_runs_run_is_said_once_and_not_made_again(tmp_path, monkeypatch, capsys, force):
    """`rm -rf <out>` while `suite run` runs: each run still queued failed with its own 'cannot write
    into the run directory', or (--force) stopped the runner with a traceback from archiving. The
    runner now says once that the store was deleted and its queued runs were not started, makes
    nothing again, and the command exits 1 with them counted."""
    from suite.dispatch import local

    spec = _spec(tmp_path, "storegone", "  lr: [0.01, 0.02, 0.03]")
    out = tmp_path / "store"
    popen = subprocess.Popen

    def deleting(command, **kwargs):  # the store deleted while the first run's process runs
        shutil.rmtree(out)
        child = popen([sys.executable, "-c", STARTED + "raise SystemExit(2)"], **kwargs)
        child.wait()
        return child

    monkeypatch.setattr(local.subprocess, "Popen", deleting)
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *FAST, *(["--force"] if force else [])]) == 1
    printed = capsys.readouterr()
    assert "0 done, 1 failed, 2 not started (deleted)" in printed.out
    err = printed.err
    assert err.count("error:") == 2 and err.count("the run's folder was deleted while the run was running") == 1
    assert f"error: {out}: the store was deleted while `suite run` ran; its 2 queued runs were not started" in err
    assert not out.exists()


def test_a_queued_run_whose_folder_was_deleted_is_not_started_nor_made_again(tmp_path, monkeypatch, capsys):
    """`rm -rf` of one run still queued: it failed with 'cannot write into the run directory'. It is
    now said deleted before it started, counted not started, and its folder is not made again."""
    from suite.dispatch import local

    runs = ablations.expand(ablations.load(_spec(tmp_path, "onegone", "  lr: [0.01, 0.02]")),
                            overrides=parse_overrides(FAST))
    out = tmp_path / "store"
    popen, started = subprocess.Popen, []

    def deleting_the_other(command, **kwargs):
        started.append(Path(command[-1]))
        for r in runs:
            if store.run_dir(out, r.run_id) != started[0]:
                shutil.rmtree(store.run_dir(out, r.run_id))
        child = popen([sys.executable, "-c", "pass"], **kwargs)
        child.wait()
        return child

    monkeypatch.setattr(local.subprocess, "Popen", deleting_the_other)
    outcome = local.run_local(runs, out, progress=False, poll_s=0.01)
    [other] = [store.run_dir(out, r.run_id) for r in runs if store.run_dir(out, r.run_id) != started[0]]
    assert len(started) == 1 and outcome.unstarted == [other.name] and not other.exists()
    assert f"error: {other}: the run's folder was deleted before the run started; run {other.name} was not " \
        "started" in capsys.readouterr().err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_once_the_result_is_written_leaves_the_run_done(tmp_path, monkeypatch, signum):
    """The runner killed (its run gets SIGTERM) or Ctrl-C in the instant after the run's result.json
    is written, before its status says done: the run recorded itself interrupted beside its complete
    result (`suite status` showed the done run with the note `interrupted: SIGTERM`) and exited as
    stopped, so the runner did not count it done. A real signal, under the run process's handlers,
    comes as result.json is in place."""
    from suite import execute as execution, processes

    run, out = _trained_at_once(tmp_path, monkeypatch, "written")
    write = store.write_json

    def write_json(path: Path, obj) -> None:
        write(path, obj)
        if path.name == "result.json":
            signal.raise_signal(signum)  # its handler runs at the next instruction

    monkeypatch.setattr(store, "write_json", write_json)
    previous = processes.handle(processes.INTERRUPTS, execution._interrupt)  # as `python -m suite.execute` does
    try:
        result = execution.execute(run, out)
    except execution.Interrupted as stop:  # a KeyboardInterrupt: pytest would stop the session
        result = {"stopped by": str(stop)}
    finally:
        for signum_, handler in previous.items():
            signal.signal(signum_, handler)
    state = store.state_of(store.run_dir(out, run.run_id))
    assert (state.state, state.note, state.status["state"]) == ("done", "", "done")
    assert state.result["metrics"] == {"top1_err": 6.5}
    assert result.get("metrics") == {"top1_err": 6.5}, result  # returned as done: `main` exits 0


def test_a_result_written_on_a_disk_then_full_leaves_the_run_done_not_measured_again(tmp_path, monkeypatch):
    """A disk that took result.json but not the status after it (measured on a 64 MB tmpfs with a
    page left: the runner said `failed`, and `suite status` the done run's note `measuring it again
    stopped`, though it had never been measured again). A done result is the run's record: it
    returns done, and a running status beside it says nothing unless it is a measuring again's."""
    import errno

    from suite import execute as execution

    run, out = _trained_at_once(tmp_path, monkeypatch, "full")
    write = store.write_json

    def write_json(path: Path, obj) -> None:
        if path.name == "status.json" and (path.parent / "result.json").exists():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write(path, obj)

    # an earlier measuring again's marker (its process killed -9): no word of this attempt
    store.set_status(store.plan(out, run), "interrupted", measuring_again="measure.batch_size (2, not 3)")
    monkeypatch.setattr(store, "write_json", write_json)
    assert execution.execute(run, out)["metrics"] == {"top1_err": 6.5}
    assert store.state_of(store.run_dir(out, run.run_id)).status.get("measuring_again") is None
    state = store.state_of(store.run_dir(out, run.run_id))
    assert (state.state, state.note, state.status["state"]) == ("done", "", "running")


def test_a_result_the_disk_has_no_room_for_names_result_json(tmp_path, monkeypatch):
    """A full disk refused the temporary file result.json is written to: the run failed with
    `OSError: [Errno 28] No space left on device: '.../.result.json.<hex>.tmp'`, a file the user
    never sees. The error names result.json, and the run is recorded failed with it."""
    import errno

    from suite import execute as execution
    from suite import files
    from suite.errors import SuiteError

    run, out = _trained_at_once(tmp_path, monkeypatch, "full")
    d = store.run_dir(out, run.run_id)
    opened = os.open

    def full(path, *args, **kwargs):
        if Path(path).name.startswith(".result.json."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return opened(path, *args, **kwargs)

    monkeypatch.setattr(files.os, "open", full)
    with pytest.raises(SuiteError) as err:
        execution.execute(run, out)
    assert str(err.value) == f"{d / 'result.json'}: cannot write the result: No space left on device (an earlier " \
        "result stays as it was; the checkpoint keeps the training)"
    state = store.state_of(d)
    assert (state.state, state.status["error"]) == ("failed", str(err.value))
    assert sorted(p.name for p in d.iterdir() if p.name.startswith(".result")) == []


def test_a_done_run_whose_process_a_signal_then_ends_stays_done_with_no_note(tmp_path):
    """A run's process that recorded its run done and was then killed by a stop signal (exit status
    143) leaves a complete result: the runner records no `interrupted: SIGTERM` beside it (which
    `suite status` would show as the done run's note), and counts it done, as the store has it (it
    counted it interrupted: '0 done, 1 interrupted', a run to start again for nothing); one killed
    before its status said done was not measuring it again (no `measuring_again` recorded), so no
    note says it stopped doing so. A done run stopped while measured again is still to measure."""
    import socket

    from suite.dispatch.local import Outcome, _settle

    spec = _spec(tmp_path, "late", "  lr: [0.05]")
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    d = store.plan(tmp_path / "store", run)
    store.write_result(d, {"run_id": d.name, "config": run.config.flat(), "metrics": {"top1_err": 6.5}})
    store.set_status(d, "done", pid=222, error=None)
    outcome = Outcome()
    assert _settle(143, d, run, outcome, pid=222, threads=1) == "done"
    assert (outcome.done, outcome.stopped, outcome.failed) == ([d.name], [], [])
    now = store.state_of(d)
    assert (now.state, now.note, now.status["state"]) == ("done", "", "done")
    # killed (-9) once its result was in place, before its status said done: it measured nothing again
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store.set_status(d, "running", host=socket.gethostname(), pid=gone.pid, error=None)
    assert "measuring it again" not in store.state_of(d).note  # what `suite status` reads meanwhile
    outcome = Outcome()
    assert _settle(-signal.SIGKILL, d, run, outcome, pid=gone.pid, threads=1) == "done"
    assert "measuring it again" not in store.state_of(d).note and outcome.done == [d.name]
    # measuring it again (batch 3, the result's 2) stopped by the signal: its process recorded so
    [again] = ablations.expand(ablations.load(spec), overrides=parse_overrides([*FAST[:-1], "measure.batch_size=3"]))
    store.set_status(d, "done", pid=333, error="measuring again (measure.batch_size (2, not 3)) was interrupted "
                                               "(SIGTERM); the earlier measurement stands")
    outcome = Outcome()
    assert _settle(143, d, again, outcome, pid=333, threads=1) == "interrupted"
    assert (outcome.done, outcome.stopped) == ([], [d.name]) and store.state_of(d).state == "done"


def test_status_says_queued_only_of_runs_not_started(capsys):
    """A run still in a local runner's list that another process started or finished meanwhile (the
    runner will leave it) is not said to be queued: only missing, interrupted, failed or cancelled
    ones wait for the runner."""
    import pandas

    from suite.cli import _print_queued

    frame = pandas.DataFrame({"run_id": ["a", "b", "c", "d"], "status": ["done", "running", "pending", "missing"]})
    _print_queued(frame, dict.fromkeys("abcd", ("pid 1 on vm",)))
    assert capsys.readouterr().out == \
        "  1 of the missing is queued in a local `suite run` (pid 1 on vm), which starts it in turn\n"


# Another process executing a run, as a second `suite run`'s child does: it takes the run's lock
# with the suite's own code and records the run running; told how it ends (a line on its stdin:
# failed, interrupted), it records the run so and lets the lock go.
HOLDER = """\
import os, sys
from pathlib import Path
from suite import store
d = Path(sys.argv[1])
lock = store.run_lock(d)
lock.acquire(timeout=0)
store.set_status(d, "running", pid=os.getpid(), error=None)
print("held", flush=True)
state = sys.stdin.readline().strip()
store.set_status(d, state, error=f"{state} in the other process")
lock.release()
"""


_POPEN = subprocess.Popen  # the real one, while a test stands in for the runner's


def _held_elsewhere(d: Path) -> subprocess.Popen:
    """A process of its own holding run `d`'s lock (HOLDER), once it says so."""
    holder = _POPEN([sys.executable, "-c", HOLDER, str(d)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def _let_go(holder: subprocess.Popen, state: str = "failed") -> None:
    """The HOLDER records its run `state` and ends."""
    holder.communicate(f"{state}\n", timeout=30)
    assert holder.returncode == 0


def test_the_runner_interrupted_leaves_the_record_of_a_run_its_child_found_busy(tmp_path, monkeypatch):
    """Two `suite run`s of one spec: this one's child finds the run's lock held by the other's and
    exits BUSY_EXIT; the other process then records its own end (failed) and lets the lock go; Ctrl-C
    reaches this runner before it books its child. That record is the other process's: this runner
    must not turn it into its own `interrupted: SIGINT` (a failed run a plain `suite run` would start)."""
    from suite.dispatch import local
    from suite.execute import BUSY_EXIT

    [run] = ablations.expand(ablations.load(_spec(tmp_path, "two", "  lr: [0.05]")), overrides=parse_overrides(FAST))
    out = tmp_path / "store"
    d = store.plan(out, run)
    holder = _held_elsewhere(d)
    popen = subprocess.Popen

    def busy(command, **kwargs):  # this runner's child, finding the run's lock held (`execute` waits 1 s for it)
        assert store.executing(d)
        child = popen([sys.executable, "-c", f"raise SystemExit({BUSY_EXIT})"], **kwargs)
        child.wait()
        _let_go(holder)  # the other process ends before this runner has booked its child
        return child

    monkeypatch.setattr(local.subprocess, "Popen", busy)
    monkeypatch.setattr(local.time, "sleep", lambda s: (_ for _ in ()).throw(KeyboardInterrupt()))  # at the first poll
    try:
        outcome = local.run_local([run], out, progress=False)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert outcome.interrupted == signal.SIGINT
    status = store.read_json(d / "status.json")
    assert (status["state"], status["error"], status["pid"]) == ("failed", "failed in the other process", holder.pid)


def test_recording_a_stop_leaves_a_run_another_process_holds_alone(tmp_path, monkeypatch):
    """The runner records a run its child left without a word as interrupted, but only under the
    run's lock: a process of a second `suite run` holding it executes the run, and the record is its."""
    from suite.execute import record_stop

    [run] = ablations.expand(ablations.load(_spec(tmp_path, "two", "  lr: [0.05]")), overrides=parse_overrides(FAST))
    d = store.plan(tmp_path / "store", run)
    store.set_status(d, "interrupted", pid=111, error="interrupted: SIGTERM")  # an earlier attempt's
    monkeypatch.setattr(store, "LOCK_WAIT_S", 0.2)  # how long the runner waits for the lock: not the test's point
    holder = _held_elsewhere(d)
    try:
        record_stop(d, pid=222, why="interrupted: SIGINT")  # this runner's child, which never got to record a word
        status = store.read_json(d / "status.json")
        assert (status["state"], status["pid"], status["error"]) == ("running", holder.pid, None)
    finally:
        holder.kill()
        holder.wait()


def test_a_signal_to_the_runner_as_it_starts_a_run_stops_that_run_too(tmp_path, monkeypatch):
    """`kill RUNNER` in the instant after it started a run's process and before it tracked it: the
    runner stopped the others and left that one untold (it trained on until the runner's exit sent
    it SIGTERM) and unrecorded (a failed run being retried, killed while starting, stayed failed,
    which the plain command the runner prints does not resume). The signal is raised here right
    after the run's real process has started."""
    from suite.dispatch import local

    [run] = ablations.expand(ablations.load(_spec(tmp_path, "starting", "  lr: [0.05]")), overrides=parse_overrides(FAST))
    out = tmp_path / "store"
    d = store.plan(out, run)
    store.set_status(d, "failed", pid=111, error="ValueError: an earlier attempt")  # retried (--retry-failed)
    popen, children = subprocess.Popen, []

    def started(command, **kwargs):  # the run's process, still starting (importing torch) when the signal comes
        children.append(popen([sys.executable, "-c", STARTED + "import time; time.sleep(60)"], **kwargs))
        signal.raise_signal(signal.SIGTERM)  # handled at once, as a signal from outside would be
        return children[-1]

    monkeypatch.setattr(local.subprocess, "Popen", started)
    try:
        outcome = local.run_local([run], out, progress=False)
        assert children[0].poll() == -signal.SIGTERM  # told, and waited for
    finally:
        children[0].kill()
        children[0].wait()
    assert outcome.interrupted == signal.SIGTERM
    assert (store.state_of(d).state, store.state_of(d).note) == ("interrupted", "interrupted: SIGTERM")


@pytest.mark.parametrize("code", [0, 143])
def test_ctrl_c_as_the_runner_books_an_ended_run_leaves_it_booked(tmp_path, monkeypatch, code):
    """Ctrl-C in the instant after the runner took an ended run's process off its list, before it
    booked it: a done run was counted among the runs not finished, and a run whose process a
    signal ended while still starting kept an earlier attempt's record (failed), which the plain
    command the runner prints does not resume. Ctrl-C comes here as the runner starts booking."""
    from suite.dispatch import local

    [run] = ablations.expand(ablations.load(_spec(tmp_path, "booking", "  lr: [0.05]")), overrides=parse_overrides(FAST))
    out = tmp_path / "store"
    d = store.plan(out, run)
    store.set_status(d, "failed", pid=111, error="ValueError: an earlier attempt")
    popen, settle = subprocess.Popen, local._settle

    def ended(command, **kwargs):  # done (its result written), or stopped by SIGTERM before a word
        if code == 0:
            store.write_result(d, {"run_id": d.name, "metrics": {"top1_err": 6.5}})
        child = popen([sys.executable, "-c", f"raise SystemExit({code})"], **kwargs)
        child.wait()
        return child

    def ctrl_c_then_settle(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        return settle(*args, **kwargs)

    monkeypatch.setattr(local.subprocess, "Popen", ended)
    monkeypatch.setattr(local, "_settle", ctrl_c_then_settle)
    outcome = local.run_local([run], out, progress=False, poll_s=0.01)
    assert outcome.interrupted == signal.SIGINT
    if code == 0:
        assert outcome.done == [d.name] and store.state_of(d).state == "done"
    else:
        assert outcome.stopped == [d.name]
        assert (store.state_of(d).state, store.state_of(d).note) == ("interrupted", "interrupted: SIGTERM")


def test_status_names_every_local_runner_a_run_is_queued_in(tmp_path, capsys):
    """Two `suite run`s of one spec (two terminals) queue the same runs: `suite status` named only
    the runner whose list it read last, as if stopping that one would keep the runs from starting.
    Here this process announces its queue as a runner does, and a second real process its own."""
    import socket

    import pandas

    from suite.cli import _print_queued
    from suite.dispatch import queued

    out = tmp_path / "store"
    (out / "runs").mkdir(parents=True)  # planned first: a runner makes .queued in runs/, never the store
    other = textwrap.dedent("""\
        import sys
        from pathlib import Path
        from suite.dispatch import queued
        with queued.announced(Path(sys.argv[1]), ["b", "c"]):
            print("announced", flush=True)
            sys.stdin.readline()
    """)
    runner = subprocess.Popen([sys.executable, "-c", other, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert runner.stdout.readline() == "announced\n"
        with queued.announced(out, ["a", "b"]):
            waiting = queued.queued(out)
    finally:
        runner.communicate("\n", timeout=30)
    me, them = f"pid {os.getpid()} on {socket.gethostname()}", f"pid {runner.pid} on {socket.gethostname()}"
    assert {rid: set(who) for rid, who in waiting.items()} == {"a": {me}, "b": {me, them}, "c": {them}}
    frame = pandas.DataFrame({"run_id": ["a", "b", "c"], "status": ["missing", "missing", "interrupted"]})
    _print_queued(frame, {"a": (me,), "b": (me, them), "c": (them,)})
    assert capsys.readouterr().out.splitlines() == [
        f"  1 of the missing is queued in a local `suite run` ({me}), which starts it in turn",
        f"  1 of the missing is queued in 2 local `suite run`s ({me}, {them}): whichever reaches it first starts it",
        f"  1 of the interrupted is queued in a local `suite run` ({them}), which starts it in turn"]


def _one_run_of_two_runners(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A one-run spec as two `suite run`s of it share it: (spec file, store, the run's directory)."""
    spec = _spec(tmp_path, "two", "  lr: [0.05]")
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    out = tmp_path / "store"
    return spec, out, store.run_dir(out, run.run_id)


def test_a_run_left_to_another_runner_that_stopped_it_since_is_counted_interrupted(tmp_path, monkeypatch, capsys):
    """One spec run in two terminals: this runner's child found a run held by the other runner's,
    and the console said it was left to the process executing it; that runner was then stopped
    (its terminal closed) and its run recorded interrupted. This runner's final count said the run
    was left to a process executing it, which no process did: it counts it interrupted, which the
    same command resumes."""
    from suite.dispatch import local
    from suite.execute import BUSY_EXIT

    spec, out, d = _one_run_of_two_runners(tmp_path)
    popen, holders = subprocess.Popen, []

    def busy(command, **kwargs):  # this runner's child, finding the run's lock held by the other's
        holders.append(_held_elsewhere(d))  # which took the run once this runner had planned it
        child = popen([sys.executable, "-c", f"raise SystemExit({BUSY_EXIT})"], **kwargs)
        child.wait()
        _let_go(holders[0], "interrupted")  # the other runner stopped, its run recorded so
        return child

    monkeypatch.setattr(local.subprocess, "Popen", busy)
    try:
        assert main(["run", str(spec), "--out", str(out), "--no-progress", *FAST]) == 1
    finally:
        for holder in holders:
            if holder.poll() is None:
                holder.kill()
    printed = capsys.readouterr().out
    assert f"run {d.name} left to the process running it (1 of 1)" in printed  # so it was, then
    assert "0 done, 0 failed, 1 interrupted (out:" in printed and "left to the other process" not in printed
    assert f"the same command resumes the interrupted runs: suite run {spec}" in printed


def test_a_run_found_busy_as_the_runner_is_interrupted_is_left_to_the_process_executing_it(
        tmp_path, monkeypatch, capsys):
    """Two `suite run`s of one spec: this one's child finds the run held by the other's and exits
    BUSY_EXIT, and Ctrl-C reaches this runner before it books the child. The console counted the run
    `not finished` and told the user to resume it with the same command, while the other process
    still executed it: it is left to that process, as it is when no signal comes."""
    from suite.dispatch import local
    from suite.execute import BUSY_EXIT

    spec, out, d = _one_run_of_two_runners(tmp_path)
    popen, holders = subprocess.Popen, []

    def busy(command, **kwargs):  # this runner's child, finding the run's lock held by the other's
        holders.append(_held_elsewhere(d))
        child = popen([sys.executable, "-c", f"raise SystemExit({BUSY_EXIT})"], **kwargs)
        child.wait()
        return child

    def ctrl_c(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(local.subprocess, "Popen", busy)
    # the runner's first poll; not the CLI's
    monkeypatch.setattr(local, "time", types.SimpleNamespace(sleep=ctrl_c, monotonic=time.monotonic))
    try:
        assert main(["run", str(spec), "--out", str(out), "--no-progress", *FAST]) == 130
        assert store.read_json(d / "status.json")["pid"] == holders[0].pid  # its record untouched
    finally:
        for holder in holders:
            _let_go(holder)
    printed = capsys.readouterr().out
    assert "0 done, 0 failed, 1 left to the other process executing them (out:" in printed, printed
    assert "interrupted: 0 runs not finished\n" in printed and "resumes" not in printed, printed


class _HungUp:
    """A terminal that closed (SIGHUP): every write to it fails with EIO."""

    def write(self, text: str) -> int:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    def flush(self) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))


@pytest.mark.parametrize("again", [signal.SIGINT, signal.SIGHUP])
def test_a_second_signal_while_the_runner_waits_for_its_runs_kills_them_and_still_records_them(
        tmp_path, monkeypatch, capsys, again):
    """Ctrl-C twice: the second came while the runner waited (up to 60 s) for its runs to stop and
    escaped it, so nothing more was recorded or counted (a retried run stopped while starting kept
    its earlier `failed`, which the plain command does not resume). Now the second stop signal kills
    the runs still running, and the runner books them interrupted as after one. So also when the
    terminal closes after the Ctrl-C (SIGHUP, and writing to it fails with EIO): the line saying the
    runner kills the runs still stopping raised OSError out of it, which neither killed nor recorded
    them; it is said if the terminal takes it. The run's stand-in is slow to stop, and the second
    signal comes as the first reaches it."""
    from suite.dispatch import local

    [run] = ablations.expand(ablations.load(_spec(tmp_path, "twice", "  lr: [0.05]")), overrides=parse_overrides(FAST))
    out = tmp_path / "store"
    d = store.plan(out, run)
    store.set_status(d, "failed", pid=111, error="ValueError: an earlier attempt")  # retried (--retry-failed)
    ready = tmp_path / "ready"
    slow = textwrap.dedent(f"""\
        import os, signal, time
        signal.signal(signal.SIGINT, lambda signum, frame: os.kill(os.getppid(), {int(again)}))  # the second
        open({str(ready)!r}, "w").close()
        time.sleep(60)
    """)
    popen, children = subprocess.Popen, []

    def slow_to_stop(command, **kwargs):
        children.append(popen([sys.executable, "-c", STARTED + slow], **kwargs))
        _wait_for(ready.exists, 30, "the run's stand-in to handle SIGINT")
        return children[-1]

    def ctrl_c(seconds: float) -> None:
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(local.subprocess, "Popen", slow_to_stop)
    # at the first poll
    monkeypatch.setattr(local, "time", types.SimpleNamespace(sleep=ctrl_c, monotonic=time.monotonic))
    if again == signal.SIGHUP:
        monkeypatch.setattr(sys, "stderr", _HungUp())
    hangup = signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as a terminal's session has it (not `nohup`)
    started = time.monotonic()
    try:
        outcome = local.run_local([run], out, progress=False)
    except KeyboardInterrupt:
        pytest.fail("the second signal escaped the runner")
    finally:
        signal.signal(signal.SIGHUP, hangup)
        if children[0].poll() is None:
            children[0].kill()
        children[0].wait()
    assert time.monotonic() - started < 30  # not the 60 s the runner gives a run to stop
    assert children[0].returncode == -signal.SIGKILL
    assert outcome.interrupted == signal.SIGINT
    assert (store.state_of(d).state, store.state_of(d).note) == ("interrupted", "interrupted: SIGINT")
    if again == signal.SIGINT:
        assert "SIGINT again: killing the runs still stopping\n" in capsys.readouterr().err


def test_a_further_stop_signal_at_any_instant_of_the_runners_stop_is_noted_never_raised(tmp_path, monkeypatch):
    """Ctrl-C, then `kill` (or a closed terminal) of the runner: the second signal escaped it as a
    traceback at two instants, leaving its run unrecorded (a retried run kept its earlier `failed`,
    which the plain command does not resume) and its process untold: as the first signal was being
    raised (before the runner told its runs to stop), and as the runs had stopped, before they were
    booked; and after booking, with no summary. Here the second signal is raised at each line the
    runner executes after the first, in turn (a trace function), until it has been tried at every one."""
    from suite.dispatch import local
    from suite.processes import Stops

    [run] = ablations.expand(ablations.load(_spec(tmp_path, "twice", "  lr: [0.05]")), overrides=parse_overrides(FAST))
    popen, children = subprocess.Popen, []

    def starting(command, **kwargs):  # a run's process still starting: it stops at once when told
        children.append(popen([sys.executable, "-c", STARTED + "import time; time.sleep(60)"], **kwargs))
        return children[-1]

    stopping = []

    def ctrl_c(seconds: float) -> None:  # at the first poll
        stopping.append(True)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(local.subprocess, "Popen", starting)
    monkeypatch.setattr(local, "time", types.SimpleNamespace(sleep=ctrl_c, monotonic=time.monotonic))
    watched = {local.__file__, local.record_stop.__code__.co_filename}
    escaped, at = [], 0
    while True:
        at += 1
        seen, fired = [], []

        def second_signal(frame, event, arg):
            if event == "line" and stopping and not fired and isinstance(signal.getsignal(signal.SIGTERM), Stops):
                seen.append(frame.f_lineno)
                if len(seen) == at:
                    fired.append(f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}")
                    signal.raise_signal(signal.SIGTERM)  # its handler runs here, before this line
            return second_signal

        def trace(frame, event, arg):
            return second_signal if frame.f_code.co_filename in watched else None

        d = store.plan(tmp_path / f"store-{at}", run)
        store.set_status(d, "failed", pid=111, error="ValueError: an earlier attempt")  # retried (--retry-failed)
        stopping.clear()
        sys.settrace(trace)
        try:
            outcome = local.run_local([run], tmp_path / f"store-{at}", progress=False)
        except KeyboardInterrupt:
            escaped.append(fired[0])
            continue
        finally:
            sys.settrace(None)
            if children[-1].poll() is None:
                children[-1].kill()
            children[-1].wait()
        if not fired:  # tried at every line
            break
        assert outcome.interrupted == signal.SIGINT, fired
        assert (store.state_of(d).state, store.state_of(d).note) == ("interrupted", "interrupted: SIGINT"), fired
    assert at > 10 and not escaped, f"the second signal escaped the runner at {escaped}"


def test_runs_slow_to_stop_share_one_deadline_after_ctrl_c(tmp_path, monkeypatch, capsys):
    """Ctrl-C with several runs that ignore the signal: each got its own time to stop, one after the
    other (the runner waited 60 s x runs). They share one deadline now, and are still booked: those
    killed at it interrupted, the one that finished while stopping done, and the summary printed.
    Real stand-ins for the runs' processes (three ignore SIGINT, one writes its result once told);
    the deadline is cut to 1.5 s."""
    from suite.dispatch import local

    monkeypatch.setattr(local, "STOP_WAIT_S", 1.5)
    spec = _spec(tmp_path, "stubborn", "  lr: [0.01, 0.02, 0.03, 0.04]")
    out = tmp_path / "store"
    finishing = textwrap.dedent("""\
        import signal, sys, time
        from pathlib import Path
        from suite import store
        d = Path(sys.argv[1])
        def finish(signum, frame):  # its stop takes a moment, and the run is done by then
            time.sleep(0.3)
            store.write_result(d, {"run_id": d.name, "metrics": {"top1_err": 6.5}})
            raise SystemExit(0)
        signal.signal(signal.SIGINT, finish)
        Path(sys.argv[2]).touch()
        time.sleep(60)
    """)
    ignoring = "import signal, sys, time; signal.signal(signal.SIGINT, signal.SIG_IGN); " \
        "open(sys.argv[2], 'w').close(); time.sleep(60)"
    popen, children = subprocess.Popen, []

    def stand_in(command, **kwargs):
        ready = tmp_path / f"ready-{len(children)}"
        code = finishing if not children else ignoring
        children.append(popen([sys.executable, "-c", STARTED + code, command[-1], str(ready)], **kwargs))
        _wait_for(ready.exists, 30, "a run's stand-in to handle SIGINT")
        return children[-1]

    stopped = []

    def ctrl_c(seconds: float) -> None:  # once all four run
        stopped.append(time.monotonic())
        raise KeyboardInterrupt

    monkeypatch.setattr(local.subprocess, "Popen", stand_in)
    monkeypatch.setattr(local, "time", types.SimpleNamespace(sleep=ctrl_c, monotonic=time.monotonic))
    try:
        assert main(["run", str(spec), "--out", str(out), "--no-progress", "--max-parallel", "4", *FAST]) == 130
        waited = time.monotonic() - stopped[0]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()
    assert waited < 2 * local.STOP_WAIT_S, waited  # one deadline (1.5 s), not 1.5 s for each of three
    assert [child.returncode for child in children] == [0, -signal.SIGKILL, -signal.SIGKILL, -signal.SIGKILL]
    runs = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    states = [(store.state_of(store.run_dir(out, r.run_id)).state, store.state_of(store.run_dir(out, r.run_id)).note)
              for r in runs]
    assert states == [("done", "")] + [("interrupted", "interrupted: SIGINT")] * 3
    printed = capsys.readouterr().out
    assert "1 done, 0 failed (out:" in printed and "interrupted: 3 runs not finished;" in printed


def test_a_run_another_process_finished_since_planning_gets_no_process(tmp_path, monkeypatch, capsys):
    """One spec in two terminals: the other runner finishes this one's next run while this one
    executes the first. A process was still started for it (about 3.5 s of imports) only to find
    it done: the runner looks at the store just before, and books it done by another process."""
    from suite.dispatch import local

    spec = _spec(tmp_path, "twice", "  lr: [0.05, 0.06]")
    out = tmp_path / "store"
    first, second = (store.run_dir(out, r.run_id)
                     for r in ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST)))
    popen, started = subprocess.Popen, []

    def finished_elsewhere(command, **kwargs):  # this run done here, the next one by the other runner meanwhile
        started.append(Path(command[-1]).name)
        for d in (first, second):
            store.write_result(d, {"run_id": d.name, "metrics": {"top1_err": 6.5}})
        return popen([sys.executable, "-c", "pass"], **kwargs)

    monkeypatch.setattr(local.subprocess, "Popen", finished_elsewhere)
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *FAST]) == 0
    assert started == [first.name]
    printed = capsys.readouterr().out
    assert f"run {second.name} done by another process (2 of 2)" in printed and "2 done, 0 failed (out:" in printed


def test_a_stop_the_disk_has_no_room_to_record_is_said_and_the_other_runs_are_still_booked(
        tmp_path, monkeypatch, capsys):
    """Ctrl-C with two runs whose processes stopped before a word, on a disk then full: recording the
    first one's stop raised OSError out of the runner (a traceback, no summary, and the second run
    neither waited for nor recorded). It is said, naming the run's directory, as for a run the
    runner cannot book otherwise, and the second is recorded interrupted."""
    import errno

    from suite.dispatch import local

    runs = ablations.expand(ablations.load(_spec(tmp_path, "full", "  lr: [0.05, 0.06]")),
                            overrides=parse_overrides(FAST))
    out = tmp_path / "store"
    first, second = (store.run_dir(out, r.run_id) for r in runs)
    popen, children = subprocess.Popen, []

    def starting(command, **kwargs):  # a run's process still starting: Ctrl-C ends it before it writes a word
        children.append(popen([sys.executable, "-c", STARTED + "import time; time.sleep(60)"], **kwargs))
        return children[-1]

    set_status = store.set_status

    def full(d: Path, state: str, **info) -> None:
        if d == first and state == "interrupted":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(d / "status.json"))
        set_status(d, state, **info)

    def ctrl_c(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(local.subprocess, "Popen", starting)
    monkeypatch.setattr(local, "time", types.SimpleNamespace(sleep=ctrl_c, monotonic=time.monotonic))
    monkeypatch.setattr(store, "set_status", full)
    try:
        outcome = local.run_local(runs, out, max_parallel=2, progress=False)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()
    assert outcome.interrupted == signal.SIGINT and outcome.failed == [first.name]
    assert f"error: {first}: cannot write into the run directory (No space left on device)" in capsys.readouterr().err
    assert (store.state_of(second).state, store.state_of(second).note) == ("interrupted", "interrupted: SIGINT")


@pytest.mark.parametrize("earlier", ["failed", "cancelled"])
def test_a_run_process_killed_from_outside_replaces_an_earlier_attempts_end(tmp_path, earlier):
    """The out-of-memory killer's SIGKILL on a retried run's process before it wrote a word: the run
    kept the earlier attempt's record (its error, or `cancelled` though the runner said failed),
    so `suite status` told why an earlier attempt ended, not this one."""
    from suite.dispatch.local import Outcome, _settle

    [run] = ablations.expand(ablations.load(_spec(tmp_path, "oom", "  lr: [0.05]")), overrides=parse_overrides(FAST))
    d = store.plan(tmp_path / "store", run)
    store.set_status(d, earlier, pid=111, error="ValueError: an earlier attempt")
    outcome = Outcome()
    assert _settle(-signal.SIGKILL, d, run, outcome, pid=222, threads=1) == "failed"
    state = store.state_of(d)
    assert (state.state, state.note) == \
        ("failed", f"run process killed by SIGKILL (out of memory?); see {d / 'log.txt'}")
    # one that recorded its own failure keeps it
    store.set_status(d, "failed", pid=333, error="ValueError: this attempt")
    assert _settle(1, d, run, Outcome(), pid=333, threads=1) == "failed"
    assert store.state_of(d).note == "ValueError: this attempt"


def test_a_run_another_process_took_once_this_ones_died_is_left_to_it(tmp_path, monkeypatch):
    """Two `suite run`s of one spec: this runner's run process is killed (out of memory), and the
    other runner's starts the run before this one books it. It was recorded failed over the other
    process's `running`: now the record is that process's, and the run is left to it."""
    from suite.dispatch.local import Outcome, _settle

    spec, out, d = _one_run_of_two_runners(tmp_path)
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    store.plan(out, run)
    monkeypatch.setattr(store, "LOCK_WAIT_S", 0.2)  # how long the runner waits for the lock: not the test's point
    holder = _held_elsewhere(d)
    try:
        outcome = Outcome()
        assert _settle(-signal.SIGKILL, d, run, outcome, pid=222, threads=1) == "left to the process running it"
        assert outcome.busy == [d.name] and not outcome.failed
        status = store.read_json(d / "status.json")
        assert (status["state"], status["pid"], status["error"]) == ("running", holder.pid, None)
    finally:
        holder.kill()
        holder.wait()


def test_a_run_process_stopped_while_starting_records_its_stop_though_its_runner_then_dies(tmp_path):
    """Ctrl-C while a run's process is still starting (importing torch, seconds): it recorded nothing
    and left the stop to its runner, which records its runs' stops only once all have stopped
    (seconds more, a checkpoint being written); a runner killed meanwhile (`kill -9` after the
    Ctrl-C, a CI job's SIGKILL after its SIGTERM) recorded nothing, and a retried run kept its
    earlier `failed`, which the plain command does not resume. The process records its stop itself
    now. Here this test is its live runner, which records nothing, as one killed just after."""
    from suite import processes

    [run] = ablations.expand(ablations.load(_spec(tmp_path, "starting", "  lr: [0.05]")), overrides=parse_overrides(FAST))
    d = store.plan(tmp_path / "store", run)
    store.set_status(d, "failed", pid=111, error="ValueError: an earlier attempt")  # retried (--retry-failed)
    child = subprocess.Popen([sys.executable, "-m", "suite.execute", str(d)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, preexec_fn=processes.die_with_parent,
                             env=processes.suite_env({**os.environ, processes.RUNNER_PID: str(os.getpid())}))
    child.send_signal(signal.SIGINT)  # still starting: held until its handlers are in place
    assert child.wait(timeout=120) == 128 + signal.SIGINT
    state = store.state_of(d)
    assert (state.state, state.note) == ("interrupted", "interrupted: SIGINT")


# A local runner reduced to its start of a run's process (the runner's death signal asked for,
# its pid given, as `dispatch.local` does), which prints that process's pid and waits to be killed.
STARTER = """\
import os, subprocess, sys
from suite import processes
log = open(sys.argv[2], "ab")
child = subprocess.Popen([sys.executable, "-m", "suite.execute", sys.argv[1]], stdout=log, stderr=log,
                         env={**processes.suite_env(), processes.RUNNER_PID: str(os.getpid())},
                         preexec_fn=processes.die_with_parent)
print(child.pid, flush=True)
sys.stdin.readline()
"""


def _gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie nobody reaps yet has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_runner_killed_while_its_run_process_imports_leaves_the_run_recorded_interrupted(tmp_path):
    """`kill -9` of the runner while a run's process is still importing torch (seconds of every run's
    start): the runner's death signal (SIGTERM) ended that process before its handlers were in
    place, and nobody recorded anything (the runner is gone): a failed run being retried stayed
    failed, which the plain command does not resume. The process now holds the stop signals until
    its handlers are in place, and records the stop itself, its runner being gone."""
    [run] = ablations.expand(ablations.load(_spec(tmp_path, "orphan", "  lr: [0.05]")), overrides=parse_overrides(FAST))
    d = store.plan(tmp_path / "store", run)
    store.set_status(d, "failed", pid=111, error="ValueError: an earlier attempt")  # retried (--retry-failed)
    runner = subprocess.Popen([sys.executable, "-c", STARTER, str(d), str(d / "log.txt")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    child = int(runner.stdout.readline())
    runner.kill()  # at once: the run's process is still starting
    runner.wait()
    _wait_for(lambda: _gone(child), 120, "the run's process to end")
    state = store.state_of(d)
    assert (state.state, state.note) == ("interrupted", "interrupted: SIGTERM"), (d / "log.txt").read_text()


def test_a_run_whose_lock_cannot_be_opened_is_listed_by_a_dry_run_and_refused_by_a_run(tmp_path, capsys, monkeypatch):
    """`suite run --dry-run` stopped with an error at a run to start whose `.lock` this user cannot
    open (another user's, in a folder this user can write). It lists that run as unknown, naming the
    lock, and the others as they stand; the real `suite run` refuses, naming the lock, and starts none."""
    spec = _spec(tmp_path, "foreignlock", "  lr: [0.01, 0.02]")
    out = tmp_path / "store"
    first, second = ablations.expand(ablations.load(spec))
    lock = store.plan(out, first) / ".lock"
    lock.touch()
    deny_open(monkeypatch, lock)  # another user's, mode 600
    assert main(["run", str(spec), "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"  skip {first.run_id} missing     lr=0.01 seed=0  (unknown: {lock}: cannot open the run's lock (Permission " \
           "denied)" in printed, printed
    assert f"  run  {second.run_id} missing     lr=0.02 seed=0\n" in printed and "1 of 2 runs would start" in printed
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 2
    assert f"error: {lock}: cannot open the run's lock (Permission denied)" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "runs").iterdir()) == [first.run_id]  # nothing planned, nothing started
    assert store.state_of(lock.parent).state == "missing"
