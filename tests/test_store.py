"""The run store: atomic records, states, concurrent writers, corrupt files, collect()."""

import errno
import fcntl
import json
import multiprocessing as mp
import os
import socket
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from denied import deny_open
from suite import files, store
from suite.ablations import RunSpec
from suite.config import resolve
from suite.errors import SuiteError, SuiteWarning


def make_run(seed: int = 0, lr: float = 0.1) -> RunSpec:
    config = resolve({"model.name": "resnet26", "data.name": "synthetic", "seed": seed, "lr": lr})
    return RunSpec(spec="toy", point={"lr": lr}, seed=seed, config=config)


def finish(out: Path, run: RunSpec, top1: float) -> Path:
    d = store.plan(out, run)
    store.write_result(d, {"run_id": run.run_id, "config": run.config.flat(), "metrics": {"top1_err": top1},
                           "complexity": {"params": 1, "gmacs": 0.5}, "throughput": None, "env": {"torch": "x"}})
    return d


def test_states_follow_the_records(tmp_path):
    run = make_run()
    d = store.run_dir(tmp_path, run.run_id)
    assert store.state_of(d).state == "missing"
    store.plan(tmp_path, run)
    assert store.state_of(d).state == "missing"
    store.set_status(d, "running", host=socket.gethostname(), pid=os.getpid(), attempts=1)
    with store.run_lock(d):  # the executing process holds the lock
        assert store.state_of(d).state == "running"
    store.set_status(d, "running", pid=1)  # a live pid (another process reused it) and a free lock
    state = store.state_of(d)
    assert state.state == "interrupted" and "is gone" in state.note
    store.set_status(d, "running", pid=2**22 + 12345)  # a pid that does not exist: the run was killed
    assert store.state_of(d).state == "interrupted"
    store.set_status(d, "running", slurm_job_id="7_0")  # SLURM's view decides (a requeued task is pending)
    assert store.state_of(d).state == "running"
    store.set_status(d, "failed", error="ValueError: boom")
    state = store.state_of(d)
    assert state.state == "failed" and state.note == "ValueError: boom" and state.status["attempts"] == 1
    finish(tmp_path, run, 3.0)
    assert store.state_of(d).state == "done"


def test_collect_rows_columns_and_missing_runs(tmp_path):
    runs = [make_run(seed) for seed in range(3)]
    finish(tmp_path, runs[0], 3.0)
    finish(tmp_path, runs[1], 5.0)
    frame = store.collect(tmp_path, [r.run_id for r in runs])
    assert list(frame["status"]) == ["done", "done", "missing"]
    assert list(frame["top1_err"][:2]) == [3.0, 5.0]
    assert frame.loc[0, "model.name"] == "resnet26" and frame.loc[0, "seed"] == 0
    assert frame.loc[0, "gmacs"] == 0.5 and frame.loc[0, "env.torch"] == "x"
    assert len(store.collect(tmp_path)) == 2
    assert store.count_states(frame["status"])["done"] == 2


@pytest.mark.parametrize("damage", ["{truncated", "[]", '{"config": 3}'])
def test_planning_writes_an_unreadable_plan_again_and_keeps_it(tmp_path, damage):
    run = make_run(0)
    d = store.plan(tmp_path, run)
    planned = (d / "config.json").read_text()
    (d / "config.json").write_text(damage)
    with pytest.warns(UserWarning, match=r"moved to config\.corrupt-.*\.json and written again"):
        assert store.plan(tmp_path, run) == d
    assert (d / "config.json").read_text() == planned
    [kept] = d.glob("config.corrupt-*.json")
    assert kept.read_text() == damage


def test_two_plans_of_a_run_with_an_unreadable_plan_both_write_it_again(tmp_path, monkeypatch):
    """Two `suite run`s plan the run at once: both find the plan unreadable, the other moves it
    aside first, and this one's move finds nothing to move; not an error (it was a traceback)."""
    run = make_run(0)
    d = store.plan(tmp_path, run)
    planned = (d / "config.json").read_text()
    (d / "config.json").write_text("{truncated")
    read = store.read_json

    def read_as_the_other_process_moves_it(path):
        try:
            return read(path)
        finally:
            path.rename(path.with_name("config.corrupt-other.json"))  # the other process, between read and move

    monkeypatch.setattr(store, "read_json", read_as_the_other_process_moves_it)
    with pytest.warns(UserWarning, match="moved aside by another process and written again"):
        assert store.plan(tmp_path, run) == d
    assert (d / "config.json").read_text() == planned
    assert (d / "config.corrupt-other.json").read_text() == "{truncated"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "no_metrics", "metrics_not_a_mapping", "a_list",
                                    "throughput_a_list", "config_a_list", "config_config_a_number", "another_runs"])
def test_a_corrupt_record_is_reported_and_skipped(tmp_path, damage):
    """Broken JSON and JSON of the wrong shape alike: a warning naming the file, the other runs listed."""
    good, bad = make_run(0), make_run(1)
    finish(tmp_path, good, 3.0)
    path = finish(tmp_path, bad, 4.0) / "result.json"
    text = path.read_text()
    if damage.startswith("config"):
        path = path.with_name("config.json")
        path.write_text("[]" if damage == "config_a_list" else json.dumps({"config": 3}))
    else:
        path.write_text({"truncate": text[: len(text) // 2], "garbage": "\x00\x01",
                         "no_metrics": json.dumps({"run_id": bad.run_id}), "a_list": json.dumps([{"metrics": {}}]),
                         "metrics_not_a_mapping": json.dumps({"metrics": 5}),
                         "throughput_a_list": json.dumps({"metrics": {}, "throughput": [1]}),
                         "another_runs": (store.run_dir(tmp_path, good.run_id) / "result.json").read_text()}[damage])
    with pytest.warns(UserWarning, match=str(path)):
        frame = store.collect(tmp_path)
    by_id = frame.set_index("run_id")
    assert by_id.loc[good.run_id, "status"] == "done"
    assert str(path) in by_id.loc[bad.run_id, "note"]
    if damage.startswith("config"):  # the result itself is intact: the run stays done
        assert by_id.loc[bad.run_id, "status"] == "done"
        return
    assert by_id.loc[bad.run_id, "status"] == "missing" and frame.attrs["problems"]
    says = {"no_metrics": "(no metrics)", "metrics_not_a_mapping": "(metrics: a number, not an object)",
            "a_list": "(an array, not an object)",
            "throughput_a_list": "(throughput: an array, not an object)"}.get(damage)
    assert says is None or says in by_id.loc[bad.run_id, "note"]  # the key that makes it unreadable


@pytest.mark.parametrize("section,key", [("metrics", "status"), ("metrics", "run_id"), ("complexity", "note"),
                                         ("throughput", "model.name"), ("metrics", "seed")])
def test_a_measurement_named_as_the_runs_own_column_is_a_corrupt_record(tmp_path, section, key):
    """It would overwrite the row's state, id or config: a done run listed as failed under another id."""
    run = make_run()
    d = finish(tmp_path, run, 3.0)
    result = store.read_json(d / "result.json")
    result[section] = {**(result.get(section) or {}), key: "failed"}
    store.write_json(d / "result.json", result)  # by hand: write_result refuses it
    state = store.state_of(d)
    assert state.state == "missing" and state.corrupt and f"{section}: {key!r} names a column" in state.note
    with pytest.warns(UserWarning, match="result.json"):
        row = store.collect(tmp_path).iloc[0]
    assert (row["run_id"], row["status"], row["model.name"]) == (run.run_id, "missing", "resnet26")


def test_a_measurement_named_as_a_config_key_keeps_the_configs_column_and_its_own(tmp_path):
    """A result's `weight_decay: 8.0` overwrote the run's configured weight decay in collect's rows,
    so reports read the run as trained with 8.0 (its paper comparison too). The config's value now
    holds the key's column, the measurement is kept as `metrics.weight_decay`, a warning names the
    file and key, and the run stays done; the run's own `epochs`, what it trained, still wins."""
    run = make_run()
    d = finish(tmp_path, run, 3.0)
    result = store.read_json(d / "result.json")
    result["metrics"] |= {"weight_decay": 8.0, "epochs": 0.25}
    store.write_json(d / "result.json", result)
    with pytest.warns(UserWarning, match=rf"{d / 'result.json'}: metrics: 'weight_decay' is named as a config key"):
        row = store.collect(tmp_path).iloc[0]
    assert row["status"] == "done" and row["weight_decay"] == run.config.weight_decay != 8.0
    assert row["metrics.weight_decay"] == 8.0 and row["epochs"] == 0.25 != run.config.epochs
    assert "metrics.epochs" not in row


def test_a_key_measured_in_two_sections_keeps_both(tmp_path):
    """A result with `gmacs` among its metrics as well as its complexity: the later section's value
    silently replaced the earlier's in collect's rows, so one measurement was lost unsaid. The
    first section (metrics, complexity, throughput, attack) holds the key's column, the later one is
    kept as `<section>.<key>`, a warning names the file, both sections and the key, and the run stays done."""
    run = make_run()
    d = finish(tmp_path, run, 3.0)
    result = store.read_json(d / "result.json")
    result["metrics"]["gmacs"] = 9.0
    result["throughput"] = {"gmacs": 7.0, "weight_decay": 8.0}
    store.write_json(d / "result.json", result)
    with pytest.warns(UserWarning) as caught:
        row = store.collect(tmp_path).iloc[0]
    said = " ".join(str(w.message) for w in caught)
    assert f"{d / 'result.json'}: " in said
    assert "complexity: 'gmacs' is measured in metrics too" in said and "column 'complexity.gmacs'" in said
    assert "throughput: 'gmacs' is measured in metrics too" in said and "column 'throughput.gmacs'" in said
    assert row["status"] == "done" and row["gmacs"] == 9.0
    assert (row["complexity.gmacs"], row["throughput.gmacs"]) == (0.5, 7.0)
    assert row["weight_decay"] == run.config.weight_decay and row["throughput.weight_decay"] == 8.0


def test_a_result_without_run_id_is_of_no_run(tmp_path):
    """A record copied over another run's without its id would be tabulated as that run."""
    ours, other = make_run(0), make_run(1, lr=0.2)
    d = finish(tmp_path, ours, 3.0)
    copied = store.read_json(finish(tmp_path, other, 9.0) / "result.json")
    del copied["run_id"]
    (d / "result.json").write_text(json.dumps(copied))
    state = store.state_of(d)
    assert state.state == "missing" and state.corrupt and "a record without run_id" in state.note


def test_archiving_a_run_deleted_meanwhile_makes_no_folder(tmp_path):
    """A run deleted (`rm -rf`) before its earlier files are archived (--force, a measurement
    redone): the archive's folder made the run's again, holding an empty archive."""
    import shutil

    from suite import files

    d = finish(tmp_path, make_run(), 3.0)
    shutil.rmtree(d)
    with pytest.raises(files.Gone) as gone:
        store.archive(d)
    assert gone.value.file == str(d) and not d.exists()


def test_a_deleted_result_makes_the_run_missing_again(tmp_path):
    """status.json says done, but only a complete result.json makes a run done."""
    run = make_run()
    d = finish(tmp_path, run, 3.0)
    assert store.state_of(d).state == "done"
    (d / "result.json").unlink()
    state = store.state_of(d)
    assert state.state == "missing" and state.corrupt and "result.json" in state.note


@pytest.mark.parametrize("text", ["{", "[]", '"running"', '{"state": "bogus"}', '{"state": 3}'])
def test_a_corrupt_status_file_is_not_fatal(tmp_path, text):
    """Unreadable, not an object, or a state the suite never writes: flagged, counted missing, and
    the next status written replaces it."""
    run = make_run()
    d = store.plan(tmp_path, run)
    (d / "status.json").write_text(text)
    state = store.state_of(d)
    assert state.state == "missing" and state.corrupt and str(d / "status.json") in state.note
    with pytest.warns(UserWarning, match="status.json"):
        frame = store.collect(tmp_path)
    assert frame.loc[0, "status"] == "missing" and store.count_states(frame["status"])["missing"] == 1
    store.set_status(d, "running", host="h", pid=1)
    assert store.state_of(d).state == "running"


@pytest.mark.parametrize("pid", [2**64, 10**20, -2**64, 0, -1, True, 1.5, "1"])
@pytest.mark.parametrize("done", [False, True])
def test_a_recorded_pid_that_names_no_process_is_not_fatal(tmp_path, capsys, pid, done):
    """A hand-edited status.json of this host saying `running` with a pid no process can have (past
    the kernel's range, zero or negative: process groups, not a process): the run's process is gone."""
    from suite.cli import main

    run = make_run()
    d = finish(tmp_path, run, 3.0) if done else store.plan(tmp_path, run)
    (d / "status.json").write_text(json.dumps({"state": "running", "host": socket.gethostname(), "pid": pid}))
    state = store.state_of(d)
    assert state.state == ("done" if done else "interrupted")
    assert main(["status", "--out", str(tmp_path)]) == 0
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("spec", [{"a": 1}, [1], 5])
def test_a_plan_naming_its_spec_by_anything_but_text_is_corrupt_not_fatal(tmp_path, capsys, spec):
    """`suite status` groups the store's runs by the spec that planned them: a config.json whose
    `spec` is a mapping or a list (edited by hand) would stop it; the run counts under no spec."""
    from suite.cli import main

    good, bad = make_run(0), make_run(1)
    finish(tmp_path, good, 3.0)
    d = finish(tmp_path, bad, 4.0)
    plan = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**plan, "spec": spec}))
    with pytest.warns(UserWarning, match=str(d / "config.json")):
        by_id = store.collect(tmp_path).set_index("run_id")
    assert list(by_id["status"]) == ["done", "done"] and pd.isna(by_id.loc[bad.run_id, "spec"])
    assert main(["status", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "(spec unknown: config.json missing or unreadable): 1 run in the store: 1 done" in out
    assert "Traceback" not in err and str(d / "config.json") in err


DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON, nested past the decoder's recursion limit


@pytest.mark.parametrize("name", ["result.json", "status.json", "config.json"])
def test_a_record_nested_too_deeply_is_corrupt_not_fatal(tmp_path, capsys, name):
    """json.loads meets such a record (hand-made, or another program's) with a RecursionError."""
    from suite.cli import main

    good, bad = make_run(0), make_run(1)
    finish(tmp_path, good, 3.0)
    d = finish(tmp_path, bad, 4.0)
    (d / name).write_text(DEEP)
    with pytest.raises(SuiteError, match="corrupt record \\(nested too deeply\\)") as err:
        store.read_json(d / name)
    assert err.value.file == str(d / name)
    assert store.state_of(d).state == ("missing" if name == "result.json" else "done")
    assert main(["status", "--out", str(tmp_path)]) == 0
    out, printed = capsys.readouterr()
    assert "Traceback" not in printed and (name == "status.json" or str(d / name) in printed)


def _writer(out: str, seed: int, rounds: int) -> None:
    run = make_run(seed)
    d = store.plan(Path(out), run)
    for i in range(rounds):
        store.set_status(d, "running", host="h", pid=1, attempts=i)
    finish(Path(out), run, float(seed))


def test_concurrent_writers_lose_nothing(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), seed, 30)) for seed in range(16)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    frame = store.collect(tmp_path)
    assert len(frame) == 16 and set(frame["status"]) == {"done"}
    assert sorted(frame["top1_err"]) == [float(s) for s in range(16)]
    assert not list(tmp_path.rglob("*.tmp"))  # no temporary files left behind


def test_concurrent_readers_never_see_half_a_record(tmp_path):
    run = make_run()
    d = finish(tmp_path, run, 1.0)
    ctx = mp.get_context("fork")
    writer = ctx.Process(target=_rewrite_many, args=(str(d),))
    writer.start()
    seen = set()
    while writer.is_alive():
        seen.add(store.state_of(d).state)
    writer.join()
    assert seen == {"done"}


def _rewrite_many(d: str) -> None:
    for i in range(300):
        store.write_json(Path(d) / "result.json", {"run_id": Path(d).name, "metrics": {"top1_err": float(i % 100)},
                                                   "pad": "x" * 20000})


def test_archive_keeps_the_old_result(tmp_path):
    run = make_run()
    d = finish(tmp_path, run, 2.0)
    target = store.archive(d)
    assert (target / "result.json").exists() and (d / "config.json").exists()
    assert store.state_of(d).state == "missing"


def test_a_record_that_is_not_utf8_is_corrupt_not_fatal(tmp_path):
    run = make_run()
    d = store.plan(tmp_path, run)
    (d / "result.json").write_bytes(b'{"metrics": {"top1_err": "\xff"}}')
    state = store.state_of(d)
    assert state.state == "missing" and state.corrupt and "not UTF-8 text (byte 0xff" in state.note


@pytest.mark.parametrize("name", ["result.json", "status.json", "config.json"])
def test_a_record_that_cannot_be_read_is_corrupt_not_fatal(tmp_path, capsys, name):
    """A record that is a folder (or one without read permission): status and report go on and name it."""
    from suite.cli import main

    good, bad = make_run(0), make_run(1)
    finish(tmp_path, good, 3.0)
    d = finish(tmp_path, bad, 4.0)
    (d / name).unlink()
    (d / name).mkdir()
    if name == "status.json":  # beside a complete result it is not needed: the run is done
        by_id = store.collect(tmp_path).set_index("run_id")
    else:
        with pytest.warns(UserWarning, match=str(d / name)):
            by_id = store.collect(tmp_path).set_index("run_id")
    assert by_id.loc[good.run_id, "status"] == "done"
    assert by_id.loc[bad.run_id, "status"] == ("missing" if name == "result.json" else "done")
    if name != "result.json":  # and without a result: flagged, counted missing
        (d / "result.json").unlink()
        state = store.state_of(d)
        assert state.state == "missing" and (name == "config.json" or str(d / name) in state.note)
    assert main(["status", "--out", str(tmp_path)]) == 0
    assert "Traceback" not in capsys.readouterr().err


def _no_entry_in(monkeypatch, d: Path) -> None:
    """Simulate `chmod 000 d` (a teammate's run directory, mode 700), which binds root only once its
    capabilities are dropped: every look at a file in `d` fails with EACCES, as `stat` does then."""
    stat = os.stat

    def looked_at(path, *args, **kwargs):
        if Path(path).parent == d:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", looked_at)


def test_a_run_directory_that_cannot_be_looked_into_is_reported_not_fatal(tmp_path, capsys, monkeypatch):
    """Path.exists re-raises EACCES: one unreadable run directory crashed every command with a
    traceback (a symlink loop under runs/ too); it is a run counted as missing, and named."""
    from suite.cli import main

    good, bad = make_run(0), make_run(1)
    finish(tmp_path, good, 3.0)
    d = finish(tmp_path, bad, 4.0)
    (tmp_path / "runs" / "loop").symlink_to("loop")  # ELOOP from os.scandir's is_dir: no run
    _no_entry_in(monkeypatch, d)
    state = store.state_of(d)
    assert state.state == "missing" and state.corrupt and state.note == f"{d}: unreadable run directory " \
        "(Permission denied)"
    with pytest.warns(UserWarning, match=f"{d}: unreadable run directory"):
        by_id = store.collect(tmp_path).set_index("run_id")
    assert sorted(by_id.index) == sorted([good.run_id, bad.run_id])
    assert by_id.loc[good.run_id, "status"] == "done" and by_id.loc[bad.run_id, "status"] == "missing"
    assert main(["status", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert f"missing {bad.run_id}: {d}: unreadable run directory (Permission denied)" in out and "1 done" in out
    assert "Traceback" not in err


def test_a_runs_folder_that_cannot_be_listed_is_named(tmp_path, monkeypatch):
    finish(tmp_path, make_run(), 3.0)

    def no_listing(path="."):  # as `chmod 300 runs` does for anyone but root
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "listdir", no_listing)
    monkeypatch.setattr(os, "scandir", no_listing)
    with pytest.raises(SuiteError, match=f"{tmp_path / 'runs'}: cannot list the runs \\(Permission denied\\)"):
        store.collect(tmp_path)


def test_a_directory_with_no_run_records_is_no_run(tmp_path, capsys):
    from suite.cli import main

    run = make_run()
    finish(tmp_path, run, 3.0)
    (tmp_path / "runs" / "junk").mkdir()  # e.g. left by a copy or by hand
    (tmp_path / "runs" / "lost").mkdir()
    (tmp_path / "runs" / "lost" / "status.json").write_text('{"state": "failed"}')  # a run whose config went
    assert sorted(store.collect(tmp_path)["run_id"]) == sorted([run.run_id, "lost"])
    assert main(["status", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "(spec unknown: config.json missing or unreadable): 1 run in the store: 0 done, 1 failed" in printed
    assert "junk" not in printed and "0 missing" not in printed  # the store cannot know a spec's unplanned runs
    # with no run's config.json left, the spec column is all NaN, a float column: filling it with text
    # warned (pandas 3's Pandas4Warning), which pandas 4 raises
    (store.run_dir(tmp_path, run.run_id) / "config.json").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error", getattr(pd.errors, "Pandas4Warning", FutureWarning))
        assert main(["status", "--out", str(tmp_path)]) == 0
    assert "(spec unknown: config.json missing or unreadable): 2 runs in the store" in capsys.readouterr().out


def test_status_names_a_corrupt_record_once(tmp_path, capsys):
    from suite.cli import main

    run = make_run()
    d = finish(tmp_path, run, 3.0)
    (d / "result.json").write_text('{"metrics": {"top1_err": 3')  # cut off mid-write by hand
    assert main(["status", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert f"  missing {run.run_id}: {d / 'result.json'}: corrupt record" in out and "`suite run` runs it again" in out
    assert err.count("warning: skipped a corrupt record") == 1


def test_status_says_where_a_run_another_machine_executes_runs(tmp_path, capsys):
    # Only that machine can tell whether the process is gone: say which one, and what recovers the run there.
    from suite.cli import main

    run = make_run()
    d = store.plan(tmp_path, run)
    store.set_status(d, "running", host="login2", pid=4242, started_at="2026-12-01T10:00:00")
    assert main(["status", "--out", str(tmp_path)]) == 0
    assert f"  running {run.run_id}: on login2, pid 4242, since 2026-12-01T10:00:00; if that process is gone, " \
           f"`suite run toy --out {tmp_path}` in a folder where spec toy is found (no spec toy is found from this " \
           f"folder, and {tmp_path}/specs.json names no file of it that still exists (moved, renamed or deleted?)) " \
           "on login2 finds it so and resumes the run" in capsys.readouterr().out
    store.set_status(d, "running", host=socket.gethostname(), pid=os.getpid())
    with store.run_lock(d):  # this machine's own running run: nothing to add
        assert main(["status", "--out", str(tmp_path)]) == 0
    assert "  running " not in capsys.readouterr().out
    (d / "status.json").write_text('{"state": "failed"}')  # written by hand, or by an older version
    assert main(["status", "--out", str(tmp_path)]) == 0
    assert f"  failed {run.run_id}: (no reason recorded)" in capsys.readouterr().out


def test_status_reads_each_record_of_the_runs_outside_the_spec_once(tmp_path, monkeypatch, capsys):
    """`suite status SPEC` read the runs outside the spec in two passes (those an older version
    filed under another id; the spec's runs no expansion covers), each record two or three times:
    0.4 s a status at 3,000 runs. One pass reads each record once, and of another spec's run only its plan."""
    from collections import Counter

    from suite.cli import main

    spec = tmp_path / "toy.yaml"
    spec.write_text("name: toy\nbase:\n  model: {name: resnet26}\n  data: {name: synthetic}\ngrid:\n  lr: [0.1]\n")
    out = tmp_path / "out"
    edited = finish(out, make_run(seed=0, lr=0.3), 4.0)  # the spec's, before an edit of its file
    store.set_status(store.plan(out, make_run(seed=1, lr=0.3)), "failed", error="boom")
    other = make_run(seed=2, lr=0.3)
    other = store.plan(out, RunSpec(spec="other", point={}, seed=2, config=other.config))
    reads, real = Counter(), store.read_json
    monkeypatch.setattr(store, "read_json", lambda path: reads.update([Path(path)]) or real(path))
    assert main(["status", str(spec), "--out", str(out)]) == 0
    assert "1 run of toy in" in capsys.readouterr().out  # the done one, still told (its own run is not planned)
    outside = dict(reads)
    assert outside[edited / "config.json"] == 1 and outside[edited / "result.json"] == 1
    assert max(outside.values()) == 1, outside
    assert [p.name for p in outside if p.parent == other] == ["config.json"]


def test_status_of_a_store_that_is_not_there_says_so(tmp_path, capsys):
    from suite.cli import main

    assert main(["status", "--out", str(tmp_path / "typo")]) == 0  # nothing to report is no error
    assert "no runs in" in (out := capsys.readouterr().out) and "(no such folder: is --out right?)" in out
    assert main(["status", "--out", str(tmp_path)]) == 0
    assert "no such folder" not in capsys.readouterr().out
    assert main(["status", "quick", "--out", str(tmp_path / "typo")]) == 0  # a spec's runs: all missing, and why
    out, err = capsys.readouterr()
    assert "quick: 8 runs: 0 done, 8 missing" in out and "(no such folder: is --out right?)" in err
    assert not (tmp_path / "typo").exists()


def test_a_run_whose_lock_is_held_is_not_started_again_whatever_its_status_says(tmp_path):
    """A corrupt status.json made a run a SLURM job was still executing look missing, and `suite run`
    submitted it a second time: the lock of the process executing it says otherwise."""
    from suite.dispatch.plan import make_plan

    running, idle = make_run(0), make_run(1)
    for run in (running, idle):
        (store.plan(tmp_path, run) / "status.json").write_text('{"state": "runn')
    lock = store.run_lock(store.run_dir(tmp_path, running.run_id))
    with lock:
        assert store.executing(store.run_dir(tmp_path, running.run_id))
        plan = make_plan([running, idle], tmp_path)
        assert plan.counts()["missing"] == 2 and [r.run_id for r in plan.to_run] == [idle.run_id]
        assert plan.executing == {running.run_id}
    assert not store.executing(store.run_dir(tmp_path, running.run_id))
    assert [r.run_id for r in make_plan([running, idle], tmp_path).to_run] == [running.run_id, idle.run_id]
    assert not store.executing(tmp_path / "runs" / "never-planned") and not (tmp_path / "runs" / "never-planned").exists()


def test_a_plan_spelled_by_an_older_version_is_written_again_with_its_origin_kept(tmp_path):
    """A model option that was a boolean (position_encoding: false) cannot be read back by this
    version: planning the same run again (the same id) rewrites its config, and the child runs it."""
    config = resolve({"model.name": "san10_patchwise", "data.name": "synthetic", "model.padding": "zeros",
                      "data.input_size": 32})
    run = RunSpec(spec="toy", point={}, seed=0, config=config)
    d = store.plan(tmp_path, run)
    planned = store.read_json(d / "config.json")
    planned["config"]["model"]["position_encoding"] = False
    planned["spec"] = "first"
    store.write_json(d / "config.json", planned)
    assert store.plan(tmp_path, run) == d
    again = store.read_json(d / "config.json")
    assert again["config"]["model"]["position_encoding"] == "none" and again["spec"] == "first"
    assert resolve(again["config"]).run_id == run.run_id == d.name


def test_records_are_read_in_todays_spelling_and_measured_as_their_result_says(tmp_path):
    """A result written when position_encoding was a boolean reads as 'relative' (so a report still
    compares it with the paper); its measure.* columns are its own, not those of a later plan that
    asks for more (so `suite status` still says it is to be measured again)."""
    from suite.ablations import expand, load
    from suite.config import parse_overrides

    run = expand(load("san_main"), overrides=parse_overrides(["measure.attack=true"]))[1]
    assert run.config.model.name == "san10_pairwise"
    d = store.plan(tmp_path, run)
    old = {k: v for k, v in run.config.flat().items() if not k.startswith("measure.attack")}
    old["model.position_encoding"] = True
    store.write_result(d, {"run_id": run.run_id, "config": old, "metrics": {"top1_err": 25.0},
                           "complexity": {"params": 1, "gmacs": 0.5}, "throughput": None, "env": {}})
    frame = store.collect(tmp_path, [run.run_id])
    assert frame.loc[0, "model.position_encoding"] == "relative"
    assert "measure.attack" not in frame or pd.isna(frame.loc[0, "measure.attack"])
    assert store.measured_otherwise_in([run], frame) == {run.run_id: ["measure.attack (False, not True)"]}


def test_a_done_runs_columns_are_its_results_config_not_the_latest_plans(tmp_path):
    """The plan is written again by each `suite run` (same run id, other measure.* settings): a
    done run's row shows how its result was measured, and so what to measure again."""
    run = make_run()
    d = store.plan(tmp_path, run)
    made = {**run.config.flat(), "measure.batch_size": 4}
    store.write_result(d, {"run_id": run.run_id, "config": made, "metrics": {"top1_err": 3.0},
                           "complexity": {"params": 1, "gmacs": 0.5}, "throughput": None, "env": {}})
    frame = store.collect(tmp_path, [run.run_id])
    assert run.config.measure.batch_size == 8 and frame.loc[0, "measure.batch_size"] == 4
    assert store.measured_otherwise_in([run], frame) == {run.run_id: ["measure.batch_size (4, not 8)"]}


@pytest.mark.parametrize(("text", "said"), [('{"run_id": "a\x01"}', "Invalid control character at line 1, column 14)"),
                                            ('{\n "run_id": "ab', "Unterminated string starting at line 2, column 12)")])
def test_a_corrupt_record_says_where_json_stopped_reading(tmp_path, text, said):
    path = tmp_path / "result.json"
    path.write_text(text)
    with pytest.raises(SuiteError) as err:
        store.read_json(path)
    assert str(err.value).endswith(f"corrupt record ({said}") and err.value.file == str(path)


@pytest.mark.parametrize(("metric", "value", "corrupt"), [("top1_err", -5, True), ("top5_err", 140.0, True),
                                                          ("attack_success_16", 101, True), ("top1_err", 100, False),
                                                          ("train_loss", 140.0, False)])
def test_a_percentage_outside_0_to_100_is_a_corrupt_record(tmp_path, metric, value, corrupt):
    run = make_run()
    d = finish(tmp_path, run, 3.0)
    result = store.read_json(d / "result.json")
    store.write_json(d / "result.json", {**result, "metrics": {**result["metrics"], metric: value}})
    state = store.state_of(d)
    assert state.corrupt == corrupt and (state.state == "missing") == corrupt
    if corrupt:
        assert f"metrics: {metric} is {value}, not a percentage in [0, 100]" in state.note


@pytest.mark.parametrize(("section", "key", "value", "said"), [
    ("metrics", "top1_err", "abc", '"abc", not a finite number'),
    ("metrics", "top1_err", float("nan"), "NaN, not a finite number"),
    ("metrics", "best_epoch", True, "true, not a finite number"),
    ("metrics", "wall_time_s", -3.0, "-3.0, below zero"),
    ("complexity", "params", -5, "-5, below zero"),
    ("complexity", "gmacs", "2.1", '"2.1", not a finite number'),
    ("throughput", "infer_samples_per_sec", float("inf"), "Infinity, not a finite number"),
    ("complexity", "unsupported_ops", "aten::foo=2", None),  # text where the suite writes text
    ("metrics", "best_epoch", None, None),  # null: not measured
])  # fmt: skip
def test_a_measurement_the_suite_writes_as_a_number_must_be_one(tmp_path, section, key, value, said):
    """A record whose error is text or NaN used to count as done for good (`suite run` never made it
    again), its cell an empty dash; -5 parameters went into the report's cost range."""
    run = make_run()
    d = finish(tmp_path, run, 3.0)
    result = store.read_json(d / "result.json")
    store.write_json(d / "result.json", {**result, section: {**(result.get(section) or {}), key: value}})
    state = store.state_of(d)
    assert state.corrupt == (said is not None) and (state.state == "missing") == (said is not None)
    if said:
        assert f"{d / 'result.json'}: incomplete record ({section}: {key} is {said})" == state.note
        # the suite never writes one itself: the run would be run again and again, to write the same
        with pytest.raises(SuiteError, match=f"not written: the store would not read it back .{section}: {key} is "):
            store.write_result(d, {**result, section: {**(result.get(section) or {}), key: value}})


def test_a_writer_that_waits_for_the_lock_takes_it_from_a_probe_holding_it_for_an_instant(tmp_path):
    """`idle` gave up at once when `suite status` or a planner probed the lock at that instant: a
    submitter writing `pending` under it would take a probe for a run being executed."""
    import threading

    d = store.plan(tmp_path, make_run(0))
    probe, probing = store.run_lock(d), threading.Event()

    def hold_for_an_instant() -> None:
        with probe:
            probing.set()
            time.sleep(0.2)

    prober = threading.Thread(target=hold_for_an_instant)
    prober.start()
    probing.wait()
    with store.idle(d) as free:
        assert not free
    with store.idle(d, wait_s=store.LOCK_WAIT_S) as free:
        assert free and not prober.is_alive()
    prober.join()


def test_status_prints_a_message_many_runs_share_once(tmp_path, capsys, monkeypatch):
    """A grid whose runs all fail alike (or all cancelled) gets one entry for the message, its first
    run's error and the others counted, in place of a line (and an error tail) per run; a message a
    few runs share is still printed for each, in the runs' order."""
    from suite.cli import main

    specs = tmp_path / "specs"  # a spec folder that finds toy: the CSV hint names it by its name
    specs.mkdir()
    (specs / "toy.yaml").write_text("name: toy\nbase: {model: {name: resnet26}, data: {name: synthetic}}\n")
    monkeypatch.setenv("SUITE_ABLATIONS", str(specs))
    runs = [make_run(seed=s) for s in range(40)]
    for i, run in enumerate(runs):
        d = store.plan(tmp_path, run)
        if i < 3:  # a few alike: each printed
            store.set_status(d, "failed", error="ValueError: few")
            continue
        store.set_status(d, "failed", error="RuntimeError: CUDA unavailable")
        (d / "error.txt").write_text(f"Traceback\n  in run {i}\nRuntimeError: CUDA unavailable\n")
    reads = []
    read_text = Path.read_text
    with pytest.MonkeyPatch.context() as mp_:
        mp_.setattr(Path, "read_text", lambda self, *a, **k: reads.append(self.name) or read_text(self, *a, **k))
        assert main(["status", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert [line for line in lines if ": ValueError: few" in line] == \
        [f"  failed {rid}: ValueError: few" for rid in sorted(r.run_id for r in runs[:3])]  # the store's order
    assert sum(": RuntimeError: CUDA unavailable" in line for line in lines) == 1
    first, *others = sorted(r.run_id for r in runs[3:])
    assert f"  failed {first}: RuntimeError: CUDA unavailable" in lines
    assert f"        in run {[r.run_id for r in runs].index(first)}" in lines
    assert f"      and 36 more failed with the same message: {' '.join(others[:8])} ... (`suite report toy --out " \
           f"{tmp_path} --to - --format csv` lists every run)" in lines
    assert reads.count("error.txt") == 1  # not one error tail read per run
    assert len(lines) < 15
    monkeypatch.delenv("SUITE_ABLATIONS")  # toy found nowhere: `suite report toy` would be refused, so it is not hinted
    assert main(["status", "--out", str(tmp_path)]) == 0
    assert f"      and 36 more failed with the same message: {' '.join(others[:8])} ... (no `suite report` " \
           f"lists every run: no spec toy is found from this folder, and {tmp_path}/specs.json names no file of it that still " \
           "exists (moved, renamed or deleted?))" in capsys.readouterr().out.splitlines()


def test_a_spec_run_this_version_cannot_read_is_still_among_its_runs_outside(tmp_path):
    """A run of the spec whose config this version cannot read (a model since removed), when every
    run asked about is stored (nothing it could be filed as): its state is still read, so a job
    queued for it is named for `scancel` with the spec's other runs outside the expansion."""
    out = tmp_path / "out"
    asked = store.plan(out, make_run(seed=0, lr=0.1))
    gone = store.plan(out, make_run(seed=1, lr=0.3))
    plan = store.read_json(gone / "config.json")
    plan["config"]["model"]["name"] = "removed_model"
    plan.pop("id_scheme", None)  # planned before plans recorded it: resolved, and refused
    store.write_json(gone / "config.json", plan)
    store.set_status(gone, "pending", slurm_job_id="7")
    found = store.scan(out, [asked.name], plan["spec"])
    assert found.unreadable == {} and found.of_spec[gone.name].state == "pending"


def test_the_runs_outside_every_table_are_the_done_ones_only(tmp_path):
    """`suite report --all` names the done runs no table covers; a queued, running, interrupted or
    failed run outside them is no result missing from a table."""
    from suite.report.files import runs_outside

    out = tmp_path / "out"
    states = ["done", "pending", "running", "interrupted", "failed", "cancelled"]
    dirs = {state: store.plan(out, make_run(seed=i, lr=0.1)) for i, state in enumerate(states)}
    store.write_result(dirs["done"], {"run_id": dirs["done"].name, "metrics": {"top1_err": 1.0}})
    for state in states[1:]:
        store.set_status(dirs[state], state, slurm_job_id="7" if state in ("pending", "running") else None)
    assert {state: store.state_of(d).state for state, d in dirs.items()} == {s: s for s in states}
    assert runs_outside(out, set()) == [dirs["done"].name]
    assert runs_outside(out, {dirs["done"].name}) == []


TINY = """\
name: tiny
base:
  model: {name: resnet26, num_classes: 10}
  data: {name: synthetic, input_size: 8}
  recipe: smoke
  iterations: 1
  batch_size: 4
  measure: {throughput: false, complexity: false}
seeds: 1
"""


def test_a_status_counting_its_attempts_in_anything_but_a_count_does_not_stop_the_retry(tmp_path, capsys):
    """A failed run whose status.json recorded its attempts as no count (a hand edit, another
    program) failed every retry before it started, with a ValueError in log.txt only and the old
    error left in its status. The retry runs now, counting from 1, and says which file and key."""
    from suite.ablations import expand, load
    from suite.execute import execute

    attempts = "x"

    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    [run] = expand(load(spec))
    out = tmp_path / "out"
    d = store.plan(out, run)
    store.write_json(d / "status.json", {"state": "failed", "attempts": attempts, "error": "boom"})
    with pytest.warns(SuiteWarning, match="attempts"):
        execute(run, out)  # what the retry's process runs
    state = store.state_of(d)
    assert state.state == "done" and state.status["attempts"] == 1, (d / "log.txt").read_text()
    said = f"{d / 'status.json'}: attempts: {json.dumps(attempts)} is not a count of attempts; counted afresh"
    assert said in state.status["warnings"], state.status


@pytest.mark.parametrize("attempts, made", [(None, 0), (0, 0), (3, 3), ([1], 0), (-1, 0), (True, 0), (2.5, 0)])
def test_attempts_recorded_as_no_count_are_counted_afresh_and_said(tmp_path, attempts, made):
    from suite.execute import _attempts_made

    said = []
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert _attempts_made({"attempts": attempts}, tmp_path, said) == made
    assert said == ([] if made or attempts in (None, 0) and not isinstance(attempts, bool) else
                    [f"{tmp_path / 'status.json'}: attempts: {json.dumps(attempts)} is not a count of attempts; "
                     "counted afresh"])


@pytest.mark.parametrize("field, value", [("again", ["suite", "run"]), ("again", "suite run 'x --retry-failed"),
                                          ("again", 5), ("threads", [2])])
def test_a_retry_command_recorded_as_no_command_gives_the_plain_hint_not_a_traceback(tmp_path, capsys, field,
                                                                                     value):
    """A failed run whose status.json recorded its resubmit command (or its threads) as a list, or
    as text shlex cannot split (a hand edit, another program), made `suite status` and `suite run`
    end in a TypeError or ValueError traceback while building the hint to retry it."""
    from suite.cli import main

    spec = tmp_path / "toy.yaml"
    spec.write_text("name: toy\nbase:\n  model: {name: resnet26}\n  data: {name: synthetic}\n  lr: 0.1\nseeds: 1\n")
    run = make_run()
    slurm = {"slurm_job_id": "7_0", "executor": "slurm"} if field == "again" else {}
    store.set_status(store.plan(tmp_path, run), "failed", error="boom", **slurm, **{field: value})
    assert main(["status", str(spec), "--out", str(tmp_path)]) == 0
    said = capsys.readouterr().out
    executor = " --executor slurm" if field == "again" else ""
    assert f"rerun the 1 failed or cancelled: suite run {spec} --out {tmp_path}{executor} --retry-failed" in said, said
    argv = ["run", str(spec), "--out", str(tmp_path), "--dry-run", *(["--executor", "slurm"] if executor else [])]
    assert main(argv) == 0
    assert "--retry-failed" in capsys.readouterr().out


# A writer killed (SIGKILL, the out-of-memory killer) in the middle of writing each file of argv[2:] in the folder argv[1].
KILLED_WRITING = """
import contextlib, os, signal, sys
from pathlib import Path
from suite import files

with contextlib.ExitStack() as writing:
    for name in sys.argv[2:]:
        writing.enter_context(files.replace(Path(sys.argv[1]) / name)).write("half a record")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_sweep_removes_every_killed_writers_temporary_and_no_live_ones(tmp_path):
    """status.json, error.txt and config.json are written from outside the run's process too (a
    runner, `suite status`, a planner), without the run's lock: the temporary files of their
    writers killed mid-write stayed for ever. A writer holds a lock on its temporary file while it
    writes: those whose lock can be taken are a killed writer's, and are removed; a live writer's
    write, as the sweep runs, is whole."""
    import subprocess
    import sys

    from suite import files

    d = finish(tmp_path, make_run(), 3.0)
    written = {name: (d / name).read_bytes() for name in ("config.json", "status.json", "result.json")}
    names = ["status.json", "error.txt", "config.json", "result.json"]
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITING, str(d), *names], timeout=120)
    left = sorted(p.name for p in d.glob(".*.tmp"))
    assert killed.returncode == -9 and [name.split(".")[1] for name in left] == ["config", "error", "result", "status"]
    older = d / f".status.json.{'0' * 12}.tmp"  # an older version's, unlocked: its writer may be writing it now
    older.write_text("{")
    with files.replace(d / "status.json") as live:
        live.write(written["status.json"].decode())
        store.sweep(d)
    assert sorted(p.name for p in d.glob(".*.tmp")) == [older.name]
    assert {name: (d / name).read_bytes() for name in written} == written and store.state_of(d).state == "done"


def test_a_temporary_swept_in_the_instant_before_its_writer_locked_it_is_made_again(tmp_path, monkeypatch):
    """A writer makes its temporary file, then locks it: a sweep in the instant between takes it
    for a killed writer's and removes it. The writer, finding it gone once it holds the lock,
    writes another: its write is whole, not lost as a folder deleted meanwhile."""
    import fcntl

    from suite import files

    d = store.plan(tmp_path, make_run())
    real, swept = fcntl.flock, []

    def swept_first(fd, operation):
        if operation == fcntl.LOCK_EX and not swept:  # the writer's: the sweep comes first
            swept.extend(files.sweep(d))
        return real(fd, operation)

    monkeypatch.setattr(fcntl, "flock", swept_first)
    store.set_status(d, "failed", error="boom")
    monkeypatch.undo()
    assert len(swept) == 1 and swept[0].startswith(".status.json.") and store.state_of(d).note == "boom"
    assert not list(d.glob(".*.tmp"))


def test_a_temporary_written_whole_is_locked_until_it_is_renamed(tmp_path, monkeypatch):
    """The instant between the end of the writing (its file closed) and the rename: a sweep then
    must find the lock held, or the rename fails on a file removed."""
    from suite import files

    d = store.plan(tmp_path, make_run())
    real, swept = os.replace, []

    def swept_first(src, dst):
        swept.extend(files.sweep(d))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", swept_first)
    store.set_status(d, "failed", error="boom")
    monkeypatch.undo()
    assert swept == [] and store.state_of(d).note == "boom" and not list(d.glob(".*.tmp"))


def test_sweep_lists_the_run_folder_once(tmp_path, monkeypatch):
    """It listed the folder once for each file whose temporaries it removed (4 times)."""
    d = finish(tmp_path, make_run(), 3.0)
    listed = []
    for name in ("scandir", "listdir"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda path=".", real=real, name=name: listed.append(name) or real(path))
    store.sweep(d)
    monkeypatch.undo()
    assert len(listed) == 1


def test_idle_of_a_run_folder_not_there_runs_no_block_that_would_write_without_the_lock(tmp_path):
    """`idle` of a run folder not there (deleted that instant) answered free without taking the
    lock, and ran its block: a planner making the folder again in that instant, and a run process
    taking its lock there, the block's write (a runner recording an end) went in beside the run
    without the lock. It now raises files.Gone naming the folder, running no block; the probes
    say such a run is neither executing nor in use."""
    import shutil

    from suite import files

    run = make_run()
    d = store.plan(tmp_path, run)
    shutil.rmtree(d)
    written = []
    with pytest.raises(files.Gone) as gone, store.idle(d) as free:
        store.plan(tmp_path, run)  # made again in that instant
        with store.run_lock(d):  # a run process starts there
            store.set_status(d, "failed", error="recorded without the lock")
            written.append(free)
    assert gone.value.file == str(d) and written == []
    assert not store.executing(d) and store.in_use(d) is None and not d.exists()


def test_idle_refuses_a_lock_it_cannot_open_where_its_block_could_write_without_it(tmp_path, monkeypatch):
    """`idle` answered free without the lock when the run's `.lock` could not be opened: for a lock
    another user's run made (mode 644) in a folder this user can write (a group's shared store), its
    block (a runner, `suite status` recording an end) wrote beside that run, which may hold the
    lock. It is refused, naming the lock, running no block; in a folder this user may only read
    (a teammate's store, for status and report), it is free as before: nothing can be written."""
    d = store.plan(tmp_path, make_run())
    lock = d / ".lock"
    lock.touch()
    deny_open(monkeypatch, lock, writes_only=True)  # another user's, mode 644
    os_open = os.open
    written = []
    with pytest.raises(SuiteError, match=f"^{lock}: cannot open the run's lock \\(Permission denied\\): nothing is "
                                         "written into the run without it"), store.idle(d) as free:
        store.set_status(d, "failed", error="recorded without the lock")
        written.append(free)
    assert written == [] and store.state_of(d).state == "missing"

    def read_only(path, flags, *args, **kwargs):  # and as `chmod 555 d` does: no new file there
        if Path(path).parent == d and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with store.idle(d) as free:
        assert free
    assert not store.executing(d) and store.in_use(d) is None


def test_a_run_on_a_file_system_without_flock_is_refused_saying_so(tmp_path, monkeypatch):
    """On a file system without flock (Lustre without its flock mount option), taking a run's lock
    failed with ENOLCK, which `idle` said as a lock it could not open, 'left by another user, or by
    `sudo suite run`?': a user looked for a culprit. It says the file system does not lock files;
    nothing is written into the run (no run can be told apart from one executing), and a listing goes on."""
    d = store.plan(tmp_path, make_run())
    store.set_status(d, "failed", error="boom")
    before = (d / "status.json").read_bytes()

    def flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", flock)
    says = f"{d / '.lock'}: cannot lock the run's lock (No locks available): nothing is written into the run " \
           "without it (this file system does not lock files (on Lustre, mount it with -o flock))"
    with pytest.raises(store.LockUnopenable) as refused, store.idle(d):
        store.set_status(d, "interrupted")
    assert str(refused.value) == says and (d / "status.json").read_bytes() == before
    assert store.in_use(d) == says and store.state_of(d).state == "failed"


@pytest.mark.parametrize("no_flock", [errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL])
def test_suite_run_refuses_a_store_without_flock_once_before_any_run_starts(tmp_path, monkeypatch, capsys, no_flock):
    """On a file system without flock `suite run` started, and each new run's process then failed,
    'cannot take the run's lock (No locks available)' (a submission, in flock's OSError). It is
    refused once, before anything is planned or submitted, naming the store and the cause; a dry run
    still shows the plan and says a real run would stop, and status still reads the store."""
    from suite.ablations import expand, load
    from suite.cli import main

    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY.replace("seeds: 1", "seeds: 2"))
    out = tmp_path / "store"
    finish(out, expand(load(spec))[0], 3.0)  # a finished result, left as it is
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def flock(fd, operation):
        raise OSError(no_flock, os.strerror(no_flock))

    monkeypatch.setattr(fcntl, "flock", flock)
    monkeypatch.setattr(files, "_said_no_flock", True)  # its warning about kept temporaries is another test's
    says = f"{out}: --out: this file system does not lock files (flock: {os.strerror(no_flock)}), so no run's lock"
    for executor in ("local", "slurm"):  # refused before the cluster is asked anything
        assert main(["run", str(spec), "--out", str(out), "--executor", executor]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {says}") and err.count("\n") == 1, err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main(["run", str(spec), "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"note: a real run would stop before starting any: {says}" in printed
    assert "1 of 2 runs would start" in printed
    assert main(["status", str(spec), "--out", str(out)]) == 0
    assert "tiny: 2 runs: 1 done" in capsys.readouterr().out


def test_the_store_check_suite_run_starts_with_makes_one_probe_for_writing_and_locking(tmp_path, monkeypatch):
    """`suite run`'s store check made a probe file to see that the store can be written, then
    another to see that it locks files (flock): one probe now answers both."""
    made, real = [], os.open

    def counting(path, flags, *args, **kwargs):
        if os.path.basename(path).startswith(".suite-probe-"):
            made.append(path)
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting)
    store.check_writable(tmp_path / "store", key="--out")
    monkeypatch.undo()
    assert len(made) == 1, made
    assert os.listdir(tmp_path) == []  # nothing left, nothing made


def test_the_ids_cache_a_command_was_killed_writing_goes_with_the_next_scan(tmp_path):
    """A command killed (SIGKILL) as it wrote the ids cache (`runs/.ids.json`) left its temporary file
    in `runs/` for ever: only run folders were swept. The next scan of the store removes it, never
    the temporary of a write in progress."""
    from processes import killed_writing
    from suite import files, idcache

    finish(tmp_path, make_run(), 3.0)
    runs = tmp_path / "runs"
    left = killed_writing(runs / idcache.NAME)
    with files.replace(runs / "notes.txt") as live:
        live.write("whole")
        store.scan(tmp_path)
        [in_progress] = runs.glob(".notes.txt.*.locked.tmp")
    assert not left.exists() and not in_progress.exists() and (runs / "notes.txt").read_text() == "whole"
    assert {p.name for p in runs.iterdir()} == {"notes.txt", make_run().run_id}
