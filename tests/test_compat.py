"""Stores written by older versions of the suite: read, or named clearly; never orphaned silently.

The fixtures are the records an older version wrote, as observed in a store made at 85a69bd
(before `measure.*` left a run's identity, 141b91c): the same config.json / result.json /
checkpoint.pt layout, filed under the id that version hashed the config to.
"""

import contextlib
import json
import subprocess
from pathlib import Path

import pytest
import torch

from suite import store
from suite.ablations import RunSpec
from suite.cli import main
from suite.config import ID_SCHEME, current_spelling, flatten, resolve
from suite.errors import SuiteError

OLD_ID = "c8022f86077f"  # what 85a69bd called this run: its identity hashed measure.batch_size=16
SPEC = """\
name: compat
base:
  model: {name: resnet26, num_classes: 10}
  data: {name: synthetic}
  measure: {batch_size: 16}
seeds: 1
"""


def old_store(out: Path) -> RunSpec:
    """A done run stored as an older version stored it, under its old id; the run today."""
    config = resolve({"model.name": "resnet26", "model.num_classes": 10, "data.name": "synthetic",
                      "measure.batch_size": 16})
    run = RunSpec(spec="compat", point={}, seed=0, config=config)
    d = out / "runs" / OLD_ID
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({
        "schema": 1, "run_id": OLD_ID, "config": config.to_dict(),
        "identity": {**config.identity(), "measure.batch_size": 16},
        "spec": "compat", "point": {}, "seed": 0, "preset": None}))
    (d / "result.json").write_text(json.dumps({
        "schema": 1, "run_id": OLD_ID, "finished_at": "2026-11-22T04:00:00+00:00", "config": config.flat(),
        "metrics": {"top1_err": 12.5}, "complexity": {"params": 10, "gmacs": 0.5}, "throughput": None,
        "env": {"torch_version": "2.14.1"}}))
    (d / "status.json").write_text(json.dumps({"state": "done", "attempts": 1}))
    torch.save({"format": 1, "run_id": OLD_ID, "iteration": 4, "model": {}}, d / "checkpoint.pt")
    return run


def test_a_run_an_older_version_filed_under_another_id_is_found_and_refiled(tmp_path):
    run = old_store(tmp_path)
    assert run.run_id != OLD_ID
    assert store.scan(tmp_path, [run.run_id]).moves == {OLD_ID: run.run_id}
    assert store.refile(tmp_path, OLD_ID, run.config) is None
    d = store.run_dir(tmp_path, run.run_id)
    assert not store.run_dir(tmp_path, OLD_ID).exists()
    state = store.state_of(d)
    assert state.state == "done" and state.result["metrics"]["top1_err"] == 12.5
    assert json.loads((d / "config.json").read_text())["identity"] == run.config.identity()
    assert torch.load(d / "checkpoint.pt", weights_only=False)["run_id"] == run.run_id  # resumable, attackable
    assert store.scan(tmp_path).moves == {}


def test_refiling_leaves_a_run_stored_again_under_its_new_id_or_queued(tmp_path):
    run = old_store(tmp_path)
    store.plan(tmp_path, run)
    problem = store.refile(tmp_path, OLD_ID, run.config)
    assert problem and run.run_id in problem and store.run_dir(tmp_path, OLD_ID).is_dir()
    old = store.run_dir(tmp_path, OLD_ID)
    (old / "result.json").unlink()
    store.set_status(old, "pending", slurm_job_id="7_0")  # a queued job runs the older code under the old id
    (store.run_dir(tmp_path, run.run_id) / "config.json").unlink()
    store.run_dir(tmp_path, run.run_id).rmdir()
    assert "pending" in store.refile(tmp_path, OLD_ID, run.config) and old.is_dir()


def test_status_names_and_run_refiles_an_older_versions_run_instead_of_training_it(tmp_path, capsys):
    run = old_store(tmp_path / "out")
    spec = tmp_path / "compat.yaml"
    spec.write_text(SPEC)
    out = str(tmp_path / "out")
    assert main(["status", str(spec), "--out", out]) == 0
    said = capsys.readouterr().out
    assert f"{OLD_ID} for {run.run_id}" in said and "older version" in said
    assert "earlier version of the spec file" not in said  # not blamed on overrides or an edit
    assert main(["report", str(spec), "--out", out, "--to", str(tmp_path / "table.md")]) == 0
    assert f"{OLD_ID} for {run.run_id}" in capsys.readouterr().out
    assert main(["run", str(spec), "--out", out, "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert f"files it as {run.run_id}" in said
    assert f"  file {run.run_id} done " in said and f"(stored as {OLD_ID} by an older version" in said, said
    assert "0 of 1 run would start" in said, said  # done under its old id: filing it starts nothing
    assert store.run_dir(tmp_path / "out", OLD_ID).is_dir()  # a dry run moves nothing
    assert main(["run", str(spec), "--out", out, "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert f"refiled run {OLD_ID} as {run.run_id}" in said and "nothing to run" in said
    assert store.state_of(store.run_dir(tmp_path / "out", run.run_id)).state == "done"


def test_dry_run_lists_a_run_to_be_filed_in_the_state_it_will_have(tmp_path, capsys):
    """A run an older version stored under another id was listed in the new id's state (missing):
    one that failed there was listed to run and counted as starting, yet `suite run` files it and
    leaves it failed (no --retry-failed). The dry run now lists and counts it as filed, failed."""
    out = tmp_path / "out"
    run = old_store(out)
    old = store.run_dir(out, OLD_ID)
    (old / "result.json").unlink()
    store.set_status(old, "failed", error="ValueError: boom")
    spec = tmp_path / "compat.yaml"
    spec.write_text(SPEC)
    assert main(["run", str(spec), "--out", str(out), "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert f"  file {run.run_id} failed " in said and f"(stored as {OLD_ID} by an older version" in said, said
    assert "0 of 1 run would start" in said and "--retry-failed" in said, said
    assert main(["run", str(spec), "--out", str(out), "--dry-run", "--retry-failed"]) == 0
    said = capsys.readouterr().out
    assert f"  run  {run.run_id} failed " in said and "1 of 1 run would start" in said, said
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert f"refiled run {OLD_ID} as {run.run_id}" in said and "nothing to run: 1 failed" in said, said


def newer_store(out: Path) -> tuple[RunSpec, Path]:
    """A done run whose records a newer version of the suite wrote (schema 2)."""
    config = resolve({"model.name": "resnet26", "model.num_classes": 10, "data.name": "synthetic"})
    run = RunSpec(spec="compat", point={}, seed=0, config=config)
    d = store.plan(out, run)
    store.write_result(d, {"run_id": run.run_id, "config": config.flat(), "metrics": {"top1_err": 12.5}})
    for name in ("config.json", "result.json"):
        record = json.loads((d / name).read_text())
        (d / name).write_text(json.dumps({**record, "schema": store.SCHEMA + 1}))
    return run, d


def test_a_result_a_newer_version_wrote_is_named_with_its_key_and_the_upgrade(tmp_path):
    _, d = newer_store(tmp_path)
    state = store.state_of(d)
    assert state.state == "missing" and state.corrupt
    assert state.note == (f"{d / 'result.json'}: schema: 2, written by a newer version of the suite (this one "
                          "reads schema 1): upgrade the suite to read it")
    assert store.scan(tmp_path).moves == {}  # not this version's to move


def test_run_starts_nothing_over_a_newer_versions_records(tmp_path, capsys):
    spec = tmp_path / "compat.yaml"
    spec.write_text(SPEC.replace("  measure: {batch_size: 16}\n", ""))
    _, d = newer_store(tmp_path / "out")
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    said = capsys.readouterr().err
    assert f"{d / 'config.json'}: schema: 2, written by a newer version" in said and "no run was started" in said
    assert json.loads((d / "result.json").read_text())["schema"] == 2  # kept as it was, not set aside
    assert not list(d.glob("result.corrupt-*"))


NEWER_STATUS = {"schema": store.SCHEMA + 1, "phase": "running", "worker": "gpu7:4242"}  # `state` renamed, say


@pytest.mark.parametrize("done", [False, True])
def test_a_status_a_newer_version_wrote_is_named_with_its_key_not_read_as_this_versions(tmp_path, done):
    """status.json had no schema: one a newer version wrote (its state under another key) read as a
    run never started, so `suite run` would start it over the newer version's run, and rewrote it."""
    config = resolve({"model.name": "resnet26", "model.num_classes": 10, "data.name": "synthetic"})
    d = store.plan(tmp_path, RunSpec(spec="compat", point={}, seed=0, config=config))
    if done:
        store.write_result(d, {"run_id": d.name, "config": config.flat(), "metrics": {"top1_err": 12.5}})
    (d / "status.json").write_text(json.dumps(NEWER_STATUS))
    state = store.state_of(d)
    assert state.state == "missing" and state.corrupt
    assert state.note == (f"{d / 'status.json'}: schema: 2, written by a newer version of the suite (this one "
                          "reads schema 1): upgrade the suite to read it")
    with pytest.raises(SuiteError) as err:
        store.set_status(d, "failed", error="boom")
    assert err.value.file == str(d / "status.json") and err.value.key == "schema"
    assert json.loads((d / "status.json").read_text()) == NEWER_STATUS  # left as the newer version wrote it


def test_run_starts_nothing_over_a_status_a_newer_version_wrote(tmp_path, capsys):
    spec = tmp_path / "compat.yaml"
    spec.write_text(SPEC.replace("  measure: {batch_size: 16}\n", ""))
    out = tmp_path / "out"
    config = resolve({"model.name": "resnet26", "model.num_classes": 10, "data.name": "synthetic"})
    d = store.plan(out, RunSpec(spec="compat", point={}, seed=0, config=config))
    (d / "status.json").write_text(json.dumps(NEWER_STATUS))
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 2
    said = capsys.readouterr().err
    assert f"{d / 'status.json'}: schema: 2, written by a newer version" in said and "no run was started" in said
    assert json.loads((d / "status.json").read_text()) == NEWER_STATUS


def test_a_status_written_before_it_had_a_schema_is_read_and_kept(tmp_path):
    """Every status.json written so far has no schema: it is this version's (schema 1)."""
    old_store(tmp_path)
    d = store.run_dir(tmp_path, OLD_ID)
    (d / "result.json").unlink()
    (d / "status.json").write_text(json.dumps({"state": "failed", "attempts": 2, "error": "boom"}))
    state = store.state_of(d)
    assert (state.state, state.note, state.corrupt) == ("failed", "boom", False)
    store.set_status(d, "pending", slurm_job_id="7_0")
    status = json.loads((d / "status.json").read_text())
    assert status["schema"] == store.SCHEMA and status["attempts"] == 2 and store.state_of(d).state == "pending"


def test_a_checkpoint_a_newer_version_wrote_is_named_not_called_damaged(tmp_path):
    import pytest

    from suite.errors import SuiteError
    from suite.train.loop import Trainer

    config = resolve({"model.name": "resnet26", "model.num_classes": 10, "data.name": "synthetic"})
    trainer = Trainer.__new__(Trainer)
    trainer.config = config
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(SuiteError) as err:
        trainer._check_own({"format": 2, "run_id": config.run_id}, path)
    assert str(err.value) == (f"{path}: format: 2, written by a newer version of the suite (this one reads "
                              "format 1): upgrade the suite to resume or evaluate it")
    trainer._check_own({"format": 1, "run_id": config.run_id}, path)  # today's, and older ones, are read


def test_a_san_run_stored_when_its_position_encoding_default_was_null_reads_as_the_models_default(tmp_path):
    """Before 36829aa a SAN run with the default encoding stored `position_encoding: null` (on for
    pairwise, off for patchwise): its row spells today's default, so the report still compares it
    with the paper, and this version can tell its id."""
    for name, meaning in (("san10_pairwise", "relative"), ("san10_patchwise", "none")):
        config = resolve({"model.name": name, "data.name": "synthetic", "model.padding": "zeros",
                          "data.input_size": 32})
        run = RunSpec(spec="toy", point={}, seed=0, config=config)
        d = store.plan(tmp_path, run)
        old = {**config.flat(), "model.position_encoding": None}
        store.write_result(d, {"run_id": run.run_id, "config": old, "metrics": {"top1_err": 25.0}})
        planned = store.read_json(d / "config.json")
        planned["config"]["model"]["position_encoding"] = None
        store.write_json(d / "config.json", planned)
        frame = store.collect(tmp_path, [run.run_id])
        assert frame.loc[0, "model.position_encoding"] == meaning, name
        assert store.filed_as(d) == run.run_id


def test_suite_run_resolves_the_stored_config_of_a_run_it_refiles_once(tmp_path, monkeypatch, capsys):
    """Finding the run misfiled resolved its stored config; refiling it resolved it again."""
    from suite import config

    run = old_store(tmp_path / "out")
    spec = tmp_path / "compat.yaml"
    spec.write_text(SPEC)
    stored = store.read_json(store.run_dir(tmp_path / "out", OLD_ID) / "config.json")["config"]
    resolved = counting_resolves(monkeypatch)
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert f"refiled run {OLD_ID} as {run.run_id}" in capsys.readouterr().out
    assert sum(config.unflatten(values) == stored for values in resolved) == 1


def today(out: Path, seed: int) -> RunSpec:
    """A done run of the compat config with `seed`, planned and finished by this version."""
    config = resolve({"model.name": "resnet26", "model.num_classes": 10, "data.name": "synthetic", "seed": seed})
    run = RunSpec(spec="compat", point={}, seed=seed, config=config)
    store.write_result(store.plan(out, run), {"run_id": run.run_id, "config": config.flat(), "metrics": {}})
    return run


def counting_resolves(monkeypatch) -> list[str]:
    """The values of every config resolved from now on."""
    from suite import config

    resolved, real = [], config.resolve
    monkeypatch.setattr(config, "resolve", lambda values, **kw: resolved.append(values) or real(values, **kw))
    return resolved


def test_a_store_with_runs_recorded_both_ways_resolves_only_those_without_the_id_scheme(tmp_path, monkeypatch,
                                                                                         capsys):
    """Finding the runs an older version filed under another id resolved every stored run's config
    (about a millisecond each): a run this version planned records the id scheme that filed it and
    is not resolved; one recorded before (every store made so far) is, and refiled when misfiled."""
    out = tmp_path / "out"
    old = old_store(out)  # misfiled by an older version
    before = today(out, seed=1)  # filed right by an older version: its plan says no scheme
    planned = store.read_json(store.run_dir(out, before.run_id) / "config.json")
    del planned["id_scheme"]
    store.write_json(store.run_dir(out, before.run_id) / "config.json", planned)
    runs = [today(out, seed) for seed in range(2, 6)]
    assert all(store.read_json(store.run_dir(out, r.run_id) / "config.json")["id_scheme"] == ID_SCHEME for r in runs)
    resolved = counting_resolves(monkeypatch)
    assert store.scan(out).moves == {OLD_ID: old.run_id}
    assert len(resolved) == 2  # the two recorded before, not the four planned today
    spec = tmp_path / "compat.yaml"
    spec.write_text(SPEC)
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 0
    assert f"refiled run {OLD_ID} as {old.run_id}" in capsys.readouterr().out
    assert store.read_json(store.run_dir(out, old.run_id) / "config.json")["id_scheme"] == ID_SCHEME
    store.plan(out, before)  # planned again by this version: its plan now says the scheme
    assert store.read_json(store.run_dir(out, before.run_id) / "config.json")["id_scheme"] == ID_SCHEME
    resolved.clear()
    assert store.scan(out).moves == {} and resolved == []
    copy = store.run_dir(out, "0123456789ab")  # a plan under another directory than its id's is resolved
    store.run_dir(out, runs[0].run_id).rename(copy)
    assert store.scan(out).moves == {copy.name: runs[0].run_id} and len(resolved) == 1


def test_a_run_filed_by_a_newer_id_scheme_is_not_this_versions_to_move(tmp_path):
    old_store(tmp_path)
    planned = store.read_json(store.run_dir(tmp_path, OLD_ID) / "config.json")
    store.write_json(store.run_dir(tmp_path, OLD_ID) / "config.json", {**planned, "id_scheme": ID_SCHEME + 1})
    found = store.scan(tmp_path)
    assert found.moves == {} and str(found.unreadable[OLD_ID]) == (
        f"{store.run_dir(tmp_path, OLD_ID) / 'config.json'}: id_scheme: {ID_SCHEME + 1}, filed by a newer version of "
        f"the suite (this one computes run ids by scheme {ID_SCHEME}): upgrade the suite to tell which run it is")


def test_stored_configs_keep_the_ids_this_id_scheme_gave_them():
    """A run recorded with this version's id scheme is not resolved again to find whether it is
    filed under its id (store.filed_as): a change that gives a stored config another id (what an
    identity keeps, a default it leaves out, a respelling, a removed option) must bump
    suite.config.ID_SCHEME, so that such runs are checked, and refiled."""
    pinned = json.loads((Path(__file__).parent / f"ids_scheme_{ID_SCHEME}.json").read_text())
    assert len(pinned) == 7
    for record in pinned:
        got = resolve(current_spelling(flatten(record["config"]))).run_id
        assert got == record["run_id"], (
            f"a {record['spec']} run's stored config now resolves to {got}, not {record['run_id']}: bump "
            "suite.config.ID_SCHEME and pin the new ids in tests/ids_scheme_<ID_SCHEME>.json")


def unreadable_store(out: Path) -> dict[str, str]:
    """Beside `old_store`'s run, runs an older version planned with a model, a model option and a
    key this version no longer has: run id -> the key named."""
    old_store(out)
    planned = store.read_json(store.run_dir(out, OLD_ID) / "config.json")
    changes = {"aaaaaaaaaaaa": ("model.name", lambda c: c["model"].update(name="resnet26_old")),
               "bbbbbbbbbbbb": ("model.name", lambda c: c["model"].update(name="resnet26_old")),
               "cccccccccccc": ("model.squeeze", lambda c: c["model"].update(squeeze=4)),
               "dddddddddddd": ("mixup", lambda c: c.update(mixup=0.2))}
    for rid, (_, change) in changes.items():
        config = json.loads(json.dumps(planned["config"]))
        change(config)
        d = store.run_dir(out, rid)
        d.mkdir()
        store.write_json(d / "config.json", {**planned, "run_id": rid, "config": config})
        store.write_json(d / "result.json", {"schema": 1, "run_id": rid, "config": flatten(config), "metrics": {}})
    return {rid: key for rid, (key, _) in changes.items()}


def test_status_and_dry_run_say_once_which_stored_runs_this_version_cannot_read(tmp_path, capsys):
    """A run an older version planned with a model or option since removed cannot be resolved, so
    whether it is a run asked about under another id cannot be told: it was passed over in silence,
    and the run it may be showed as missing with nothing said."""
    out = tmp_path / "out"
    keys = unreadable_store(out)
    spec = tmp_path / "compat.yaml"
    spec.write_text(SPEC)
    for argv in (["status", str(spec)], ["run", str(spec), "--dry-run"]):
        assert main([*argv, "--out", str(out)]) == 0
        said = capsys.readouterr().out
        assert said.count("note: this version of the suite cannot read 4 stored runs") == 1, said
        for rid in ("aaaaaaaaaaaa", "cccccccccccc", "dddddddddddd"):
            assert f"  {rid}: {store.run_dir(out, rid) / 'config.json'}: {keys[rid]}: " in said, said
        assert "unknown model 'resnet26_old'" in said and "and 1 more alike: bbbbbbbbbbbb" in said
        assert f"{OLD_ID} for " in said or f"run {OLD_ID} is stored under" in said  # the readable one is still filed
        assert "earlier version of the spec file" not in said  # said once: not counted again as the spec's others
    for rid in keys:  # nothing lost: each run as it was
        assert store.state_of(store.run_dir(out, rid)).state == "done"
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 0
    assert "cannot read 4 stored runs" in capsys.readouterr().out  # refiling the readable one, said again
    assert main(["status", str(spec), "--out", str(out)]) == 0
    assert "cannot read" not in capsys.readouterr().out  # each run of the spec stored: none of these can be one
    unreadable = store.scan(out).unreadable
    assert sorted(unreadable) == sorted(keys) and {e.key for e in unreadable.values()} == set(keys.values())


def test_a_stored_run_whose_records_all_fail_is_unreadable_and_the_first_reason_is_given(tmp_path):
    d = store.run_dir(tmp_path, "eeeeeeeeeeee")
    d.mkdir(parents=True)
    (d / "config.json").write_text("{")
    (d / "result.json").write_text(json.dumps({"schema": 1, "run_id": d.name, "config": {"lr": -1}, "metrics": {}}))
    (store.run_dir(tmp_path, "ffffffffffff")).mkdir()
    (store.run_dir(tmp_path, "ffffffffffff") / "status.json").write_text(json.dumps({"state": "failed"}))
    unreadable = store.scan(tmp_path).unreadable
    assert list(unreadable) == [d.name]  # a run with no config to read has no id to tell, nor to miss
    assert str(unreadable[d.name]).startswith(f"{d / 'config.json'}: corrupt record")
    (d / "config.json").unlink()  # the result's config, then: its key named
    assert store.scan(tmp_path).unreadable[d.name].key == "model.name"


def test_a_second_scan_of_an_old_store_resolves_nothing_until_a_record_changes(tmp_path, monkeypatch):
    """A run planned before plans recorded their id scheme was resolved by every scan (about a
    millisecond a run: a second a `suite status` in an old store of thousands); its id is kept
    (runs/.ids.json) under its records' stat, and resolved again only when a record changes."""
    old = old_store(tmp_path)  # misfiled, planned before id_scheme
    before = today(tmp_path, seed=1)  # filed right, planned before id_scheme
    d = store.run_dir(tmp_path, before.run_id)
    planned = store.read_json(d / "config.json")
    del planned["id_scheme"]
    store.write_json(d / "config.json", planned)
    resolved = counting_resolves(monkeypatch)
    assert store.scan(tmp_path).moves == {OLD_ID: old.run_id} and len(resolved) == 2
    resolved.clear()
    kept = (tmp_path / "runs" / ".ids.json").stat()
    assert store.scan(tmp_path).moves == {OLD_ID: old.run_id} and resolved == []
    assert store.scan(tmp_path, [old.run_id]).moves == {OLD_ID: old.run_id} and resolved == []
    assert (tmp_path / "runs" / ".ids.json").stat().st_mtime_ns == kept.st_mtime_ns  # nothing new: not rewritten
    config = store.read_json(store.run_dir(tmp_path, OLD_ID) / "config.json")
    config["config"]["lr"] = 0.5  # edited in place by hand: another run now
    (store.run_dir(tmp_path, OLD_ID) / "config.json").write_text(json.dumps(config))
    moved = store.scan(tmp_path).moves
    assert len(resolved) == 1 and moved[OLD_ID] != old.run_id
    (tmp_path / "runs" / ".ids.json").write_text("{")  # damaged: resolved again, and written anew
    resolved.clear()
    assert store.scan(tmp_path).moves == moved and len(resolved) == 2
    resolved.clear()
    assert store.scan(tmp_path).moves == moved and resolved == []


@pytest.mark.parametrize("damage", ["half", "[]", "runs_a_list", "entry_a_number", "entry_of_no_id"])
def test_an_id_cache_half_written_or_of_the_wrong_shape_is_resolved_again_and_written_anew(tmp_path, damage):
    """.ids.json is only a cache: cut off halfway (a full disk), or valid JSON this version does
    not write, it costs the runs' resolving again, never a wrong id nor a traceback."""
    run = old_store(tmp_path)
    path = tmp_path / "runs" / ".ids.json"
    assert store.scan(tmp_path).moves == {OLD_ID: run.run_id}
    text = path.read_text()
    entry = json.loads(text)["runs"][OLD_ID]
    path.write_text({"half": text[:len(text) // 2], "[]": "[]",
                     "runs_a_list": json.dumps({"id_scheme": ID_SCHEME, "runs": [OLD_ID]}),
                     "entry_a_number": json.dumps({"id_scheme": ID_SCHEME, "runs": {OLD_ID: 5}}),
                     "entry_of_no_id": json.dumps({"id_scheme": ID_SCHEME, "runs": {OLD_ID: [entry[0], 5]}})}[damage])
    assert store.scan(tmp_path).moves == {OLD_ID: run.run_id}
    assert json.loads(path.read_text())["runs"] == {OLD_ID: entry}


def _edit_in_place(path: Path, lr: float, keep_times: bool) -> None:
    """Set the plan's lr, writing into the same inode at the same size (JSON's trailing blanks);
    with `keep_times`, its access and modification times are put back: only its ctime tells."""
    was = path.stat()
    record = store.read_json(path)
    record["config"]["lr"] = lr
    text = json.dumps(record)
    assert len(text) <= was.st_size
    with open(path, "r+") as f:
        f.write(text.ljust(was.st_size))
    if keep_times:
        import os

        os.utime(path, ns=(was.st_atime_ns, was.st_mtime_ns))


def test_a_record_edited_in_place_at_its_size_and_mtime_is_resolved_again(tmp_path):
    """The cache's key holds the records' ctime: an edit by hand that keeps the size and puts the
    modification time back (an editor's `touch -r`, `cp -p` over it) still makes another run."""
    old = old_store(tmp_path)
    plan = store.run_dir(tmp_path, OLD_ID) / "config.json"
    plan.write_text(plan.read_text() + " " * 8)  # room for a longer lr
    assert store.scan(tmp_path).moves == {OLD_ID: old.run_id}
    _edit_in_place(plan, 0.5, keep_times=True)
    assert store.scan(tmp_path).moves[OLD_ID] != old.run_id


def test_the_id_cache_of_another_id_scheme_or_of_recorded_runs_is_not_used(tmp_path):
    """Ids cached under another id scheme hashed configs otherwise: they are resolved again. A run
    whose plan records today's scheme and id needs no resolving, so it is not cached."""
    old = old_store(tmp_path)
    recorded = today(tmp_path, seed=1)
    ids = tmp_path / "runs" / ".ids.json"
    assert store.scan(tmp_path).moves == {OLD_ID: old.run_id}
    kept = json.loads(ids.read_text())
    assert list(kept["runs"]) == [OLD_ID]  # not recorded's
    kept["id_scheme"] = ID_SCHEME + 1
    kept["runs"][OLD_ID][1] = "0" * 12
    ids.write_text(json.dumps(kept))
    assert store.scan(tmp_path).moves == {OLD_ID: old.run_id}
    assert recorded.run_id not in json.loads(ids.read_text())["runs"]


def test_a_plan_replaced_while_it_is_read_is_not_cached_under_its_new_stat(tmp_path, monkeypatch):
    """The stat is taken before the plan is read: one replaced right after the read (a `plan` or
    `refile` at the same time) changes the stat the answer would be kept under, so the next scan
    resolves the new plan rather than take the old one's id for it."""
    old = old_store(tmp_path)
    plan = store.run_dir(tmp_path, OLD_ID) / "config.json"
    real = store._read_record

    def read_then_replace(path):
        record = real(path)
        if path == plan:
            monkeypatch.setattr(store, "_read_record", real)
            config = store.read_json(plan)
            config["config"]["lr"] = 0.5
            store.write_json(plan, config)  # replaced whole: a new inode
        return record

    monkeypatch.setattr(store, "_read_record", read_then_replace)
    assert store.scan(tmp_path).moves == {OLD_ID: old.run_id}  # the plan as read
    assert store.scan(tmp_path).moves[OLD_ID] != old.run_id  # the plan as it is now


def _cached(out: Path) -> set[str]:
    return set(json.loads((out / "runs" / ".ids.json").read_text())["runs"])


def test_the_id_cache_drops_runs_deleted_or_recording_their_scheme_when_it_is_rewritten(tmp_path):
    """Entries whose records changed can never be used again (a run refiled or deleted, or planned
    again and so recording its scheme): they were kept for ever, and went only with their run."""
    old = old_store(tmp_path)
    before = today(tmp_path, seed=1)  # filed right, planned before id_scheme
    d = store.run_dir(tmp_path, before.run_id)
    planned = store.read_json(d / "config.json")
    del planned["id_scheme"]
    store.write_json(d / "config.json", planned)
    assert store.scan(tmp_path).moves == {OLD_ID: old.run_id} and _cached(tmp_path) == {OLD_ID, before.run_id}
    store.plan(tmp_path, before)  # planned again by this version: records its scheme, resolved no more
    assert store.scan(tmp_path).moves == {OLD_ID: old.run_id} and _cached(tmp_path) == {OLD_ID}
    assert store.refile(tmp_path, OLD_ID, old.config) is None
    assert store.scan(tmp_path).moves == {} and _cached(tmp_path) == set()


def test_a_rewrite_of_the_id_cache_drops_the_stale_entries_of_runs_the_scan_did_not_look_into(tmp_path):
    """The runs asked about are not looked into by the scan; their entries are checked when the
    cache is rewritten anyway (here for a run resolved for the first time)."""
    old_store(tmp_path)
    before = today(tmp_path, seed=1)
    d = store.run_dir(tmp_path, before.run_id)
    planned = store.read_json(d / "config.json")
    del planned["id_scheme"]
    store.write_json(d / "config.json", planned)
    store.scan(tmp_path)
    store.plan(tmp_path, before)  # records its scheme
    later = today(tmp_path, seed=2)  # a run planned before id_scheme, seen for the first time
    planned = store.read_json(store.run_dir(tmp_path, later.run_id) / "config.json")
    del planned["id_scheme"]
    store.write_json(store.run_dir(tmp_path, later.run_id) / "config.json", planned)
    store.scan(tmp_path, [before.run_id])
    assert _cached(tmp_path) == {OLD_ID, later.run_id}


def _save_many(out: str, rid: str, times: int) -> None:
    from suite import idcache

    d = Path(out) / "runs" / rid
    for _ in range(times):
        cache = idcache.IdCache(Path(out), [OLD_ID, rid])
        cache.put(rid, idcache.key(d), rid, idcache.key(d))
        cache.save()


def test_two_processes_rewriting_the_id_cache_never_leave_it_unreadable(tmp_path):
    """Each writer replaces the cache whole: a reader (a third scan) reads one writer's, never a mix;
    what the other wrote is lost, and only costs resolving again."""
    import multiprocessing as mp

    old_store(tmp_path)
    rids = [today(tmp_path, seed=s).run_id for s in (1, 2)]
    ctx = mp.get_context("fork")
    writers = [ctx.Process(target=_save_many, args=(str(tmp_path), rid, 150)) for rid in rids]
    for w in writers:
        w.start()
    seen = 0
    while any(w.is_alive() for w in writers):
        try:
            text = (tmp_path / "runs" / ".ids.json").read_text()
        except FileNotFoundError:
            continue
        assert set(json.loads(text)["runs"]) <= set(rids)
        seen += 1
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert seen and len(_cached(tmp_path)) == 1 and not list((tmp_path / "runs").glob(".*.tmp"))


def test_suite_cancel_resolves_no_stored_config_and_finds_the_same_runs_of_the_spec(tmp_path, monkeypatch, capsys):
    """`suite cancel` moves no run, so which id an older version's run is filed under cannot change
    what it says: its first call in an old store resolved every run outside the spec (1 s at 3,000)."""
    out = tmp_path / "out"
    old = old_store(out)  # the spec's, outside its expansion (filed under an older id)
    edited = RunSpec(spec="compat", point={}, seed=0, config=resolve({**old.config.flat(), "lr": 0.3}))
    store.set_status(store.plan(out, edited), "failed", error="boom")  # the spec's, before an edit
    spec = tmp_path / "compat.yaml"
    spec.write_text(SPEC)
    resolved = counting_resolves(monkeypatch)
    assert main(["cancel", str(spec), "--out", str(out)]) == 0
    assert "nothing queued or running on SLURM" in capsys.readouterr().out
    assert resolved == [] and not (out / "runs" / ".ids.json").exists()
    found = store.runs_of_spec(out, [old.run_id], "compat")
    assert set(found) == {OLD_ID, edited.run_id} and found[edited.run_id].state == "failed"
    assert found == store.scan(out, [old.run_id], "compat").of_spec


def test_status_and_dry_run_do_not_promise_to_file_a_run_whose_new_id_is_stored_again(tmp_path, capsys):
    """An older version's run whose today's id has a run stored again (planned, or trained anew) is
    left where it is by `suite run`; status said `suite run` files it, and the dry run marked it
    `file` ('done: nothing to run', 0 runs would start) while the real run trained it anew."""
    out = tmp_path / "out"
    run = old_store(out)
    store.plan(out, run)  # planned again under today's id: refile leaves the old run
    spec = tmp_path / "compat.yaml"
    spec.write_text(SPEC)
    assert main(["status", str(spec), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "0 done, 1 missing" in said and "files it under today's id" not in said and OLD_ID not in said
    assert main(["run", str(spec), "--out", str(out), "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert f"note: run {OLD_ID}, stored under an older version's id for {run.run_id}, is not refiled: " \
        f"{store.run_dir(out, run.run_id)} exists (the run was stored again under its new id)" in said
    assert f"  run  {run.run_id} missing" in said and "1 of 1 run would start" in said
    assert store.refile(out, OLD_ID, run.config) == store.stored_again(out, OLD_ID, run.run_id)  # as the real run


def test_status_with_every_run_of_the_spec_stored_resolves_only_the_specs_own_runs_outside(tmp_path, monkeypatch,
                                                                                           capsys):
    """With every run asked about stored, no run can be filed as one of them and no unreadable run
    is named: status and report resolved every stored run planned before id_scheme anyway (a
    second at 3,000), where only the spec's own runs outside tell which of them are said."""
    out = tmp_path / "out"
    run = old_store(out)  # the spec's, under an older id
    store.plan(out, run)  # and stored again under today's: every run of the spec stored
    edited = RunSpec(spec="compat", point={}, seed=0, config=resolve({**run.config.flat(), "lr": 0.3}))
    d = store.plan(out, edited)  # the spec's, before an edit
    store.write_result(d, {"run_id": d.name, "config": edited.config.flat(), "metrics": {}})
    for seed in (1, 2):  # another spec's runs, planned before id_scheme
        d = store.run_dir(out, today(out, seed).run_id)
        planned = store.read_json(d / "config.json")
        store.write_json(d / "config.json", {**{k: v for k, v in planned.items() if k != "id_scheme"}, "spec": "other"})
    spec = tmp_path / "compat.yaml"
    spec.write_text(SPEC)
    full = store.scan(out, [run.run_id], "compat")
    assert full.moves == {OLD_ID: run.run_id} and full.unreadable == {} and set(full.of_spec) == {OLD_ID, edited.run_id}
    (out / "runs" / ".ids.json").unlink()  # as the first command after an upgrade finds the store
    resolved = counting_resolves(monkeypatch)
    found = store.told(out, [run.run_id], "compat")
    assert found.moves == {} and found.unreadable == {} and list(found.of_spec) == [edited.run_id]
    assert len(resolved) == 1  # the spec's own run under an older id: not the other spec's two
    resolved.clear()
    assert main(["status", str(spec), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert len(resolved) == 1 and "note: 1 run of compat in" in said and "earlier version of the spec file" in said \
        and OLD_ID not in said


def test_status_shows_a_run_to_be_filed_in_its_stored_state_as_the_dry_run_does(tmp_path, capsys):
    """`suite status` counted a run an older version stored under another id as missing (and said
    so), while `suite run --dry-run` listed it in its stored state and `suite run` files it so: a
    failed one was 'missing' (to be run) in one and 'failed' (left) in the other."""
    out = tmp_path / "out"
    run = old_store(out)
    old = store.run_dir(out, OLD_ID)
    (old / "result.json").unlink()
    store.set_status(old, "failed", error="ValueError: boom")
    (old / "error.txt").write_text("Traceback\nValueError: boom\n")
    spec = tmp_path / "compat.yaml"
    spec.write_text(SPEC)
    assert main(["status", str(spec), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "compat: 1 run: 0 done, 1 failed, 0 missing" in said, said
    assert f"  failed {run.run_id}: ValueError: boom\n      Traceback\n      ValueError: boom\n" in said, said
    assert f"({OLD_ID} for {run.run_id}), shown in its stored state here: the next `suite run" in said, said
    assert "counted missing" not in said and "--retry-failed" in said
    assert main(["run", str(spec), "--out", str(out), "--dry-run"]) == 0
    assert f"  file {run.run_id} failed " in capsys.readouterr().out
    assert old.is_dir()  # status moves nothing


def test_the_dry_runs_slurm_retry_hint_for_a_failed_run_to_be_filed_is_its_recorded_command(tmp_path, capsys):
    """A failed SLURM run stored under an older id was read where it is for the plan, but the hint
    to submit it again read today's id (no record there), so it was the plain command, not the
    one the run recorded with its cluster flags; as for a filed run, it is the recorded one now."""
    out = tmp_path / "out"
    run = old_store(out)
    old = store.run_dir(out, OLD_ID)
    (old / "result.json").unlink()
    again = "suite run compat --out /elsewhere --executor slurm --partition debug --mem 3G --retry-failed"
    store.set_status(old, "failed", error="SLURM job 7_0 ended FAILED", slurm_job_id="7_0", slurm_state="FAILED",
                     again=again, submitted_at=store.now(), executor="slurm")
    spec = tmp_path / "compat.yaml"
    spec.write_text(SPEC)
    hint = again.replace("/elsewhere", str(out.resolve()))
    assert main(["run", str(spec), "--out", str(out), "--dry-run", "--executor", "slurm"]) == 0
    said = capsys.readouterr().out
    assert f"  file {run.run_id} failed " in said and f"rerun the 1 failed or cancelled: {hint}\n" in said, said
    assert main(["status", str(spec), "--out", str(out)]) == 0
    assert f"  rerun the 1 failed or cancelled: {hint}\n" in capsys.readouterr().out
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 0  # filed: the same hint
    capsys.readouterr()
    assert main(["run", str(spec), "--out", str(out), "--dry-run", "--executor", "slurm"]) == 0
    assert f"rerun the 1 failed or cancelled: {hint}\n" in capsys.readouterr().out


def test_suite_run_resolves_only_the_stored_runs_of_its_models_and_still_says_which_is_stored_again(
        tmp_path, monkeypatch, capsys):
    """`suite run`'s first scan of an old store resolved every run outside the spec (1.6 s CPU at
    3,000 runs) to say which older-id run is not refiled because its new id is stored again. A run's
    id hashes its model's name as stored, so a run of another registered model is no longer resolved;
    the note stays, and so does the unreadable run of a model this version does not know."""
    out = tmp_path / "out"
    run = old_store(out)
    store.plan(out, run)  # stored again under today's id: the older one is not refiled, and said so
    other = RunSpec(spec="other", point={}, seed=0, config=resolve({"model.name": "ran56_cifar",
                                                                   "data.name": "synthetic"}))
    d = store.plan(out, other)
    planned = store.read_json(d / "config.json")
    store.write_json(d / "config.json", {k: v for k, v in planned.items() if k != "id_scheme"})  # before id_scheme
    unknown = store.run_dir(out, "aaaaaaaaaaaa")
    unknown.mkdir()
    old_plan = store.read_json(store.run_dir(out, OLD_ID) / "config.json")
    old_plan["config"]["model"]["name"] = "resnet26_old"
    store.write_json(unknown / "config.json", {**old_plan, "run_id": unknown.name})
    spec = tmp_path / "compat.yaml"
    spec.write_text(SPEC)
    resolved = counting_resolves(monkeypatch)
    assert main(["run", str(spec), "--out", str(out), "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert f"note: run {OLD_ID}, stored under an older version's id for {run.run_id}, is not refiled: " \
        f"{store.run_dir(out, run.run_id)} exists" in said, said
    names = [current_spelling(values).get("model.name") or values.get("model", {}).get("name") for values in resolved]
    assert "ran56_cifar" not in names and "resnet26" in names and "resnet26_old" in names, names
    assert store.scan(out).moves == {OLD_ID: run.run_id}  # the whole store: every run resolved
    assert "ran56_cifar" in [current_spelling(values).get("model.name") or values.get("model", {}).get("name")
                             for values in resolved]


def test_a_run_another_suite_run_files_at_the_same_time_is_filed_not_a_traceback(tmp_path, monkeypatch):
    """Two `suite run`s of an old store at once both refile its runs: the one that found the new id
    free, then the old directory gone (the other had just renamed it), raised FileNotFoundError."""
    run = old_store(tmp_path)
    src, dst = store.run_dir(tmp_path, OLD_ID), store.run_dir(tmp_path, run.run_id)
    real = store._in_use

    def the_other_files_it_first(d, free):
        if src.exists():  # the other process's refile, done between this one's checks and its rename
            for name in ("config.json", "result.json"):
                store.write_json(src / name, {**store.read_json(src / name), "run_id": run.run_id})
            src.rename(dst)
        return real(d, free)

    monkeypatch.setattr(store, "_in_use", the_other_files_it_first)
    assert store.refile(tmp_path, OLD_ID, run.config) is None
    assert not src.exists() and store.state_of(dst).state == "done"


def test_a_run_another_suite_run_files_while_this_one_takes_its_lock_is_filed_not_directory_not_empty(
        tmp_path, monkeypatch):
    """The other `suite run` renamed the old folder to today's id between this one's look at it and
    its lock, whose taking made the old folder again (holding the lock file, before the suite's own
    lock, which makes no folder): the rename raised OSError 'Directory not empty' and left that
    folder behind. The run is filed, so it is taken as filed."""
    run = old_store(tmp_path)
    src, dst = store.run_dir(tmp_path, OLD_ID), store.run_dir(tmp_path, run.run_id)
    real = store.run_lock

    def the_other_files_it_first(d):
        if d == src and src.exists():
            for name in ("config.json", "result.json"):
                store.write_json(src / name, {**store.read_json(src / name), "run_id": run.run_id})
            src.rename(dst)
        return real(d)

    monkeypatch.setattr(store, "run_lock", the_other_files_it_first)
    assert store.refile(tmp_path, OLD_ID, run.config) is None
    assert not src.exists() and store.state_of(dst).state == "done" and store.scan(tmp_path).moves == {}


def test_a_folder_planned_under_the_old_id_after_another_suite_run_filed_it_is_left_as_it_is(tmp_path, monkeypatch):
    """The other `suite run` filed the run between this one's lock and its rename, and a folder was
    planned at the old id meanwhile: no husk of refile's (its lock and writes make no folder) but
    another process's plan, which was cleared as one, its config.json deleted."""
    run = old_store(tmp_path)
    src, dst = store.run_dir(tmp_path, OLD_ID), store.run_dir(tmp_path, run.run_id)
    real = store.idle

    @contextlib.contextmanager
    def then_filed_and_planned_again(d):
        with real(d) as free:
            yield free
        src.rename(dst)
        src.mkdir()
        store.write_json(src / "config.json", {"run_id": OLD_ID, "planned": "by another process"})

    monkeypatch.setattr(store, "idle", then_filed_and_planned_again)
    assert store.refile(tmp_path, OLD_ID, run.config) is None
    assert store.read_json(src / "config.json") == {"run_id": OLD_ID, "planned": "by another process"}
    assert store.state_of(dst).state == "done"


def test_a_run_stored_under_its_new_id_while_it_is_refiled_is_left_not_directory_not_empty(tmp_path, monkeypatch):
    """A run planned under today's id between refile's check and its rename (the old folder still
    there): the rename raised OSError 'Directory not empty'; the old run is left, as when the
    new id was stored before, and refile says why."""
    run = old_store(tmp_path)
    src, dst = store.run_dir(tmp_path, OLD_ID), store.run_dir(tmp_path, run.run_id)
    real = store._in_use

    def planned_meanwhile(d, free):
        store.plan(tmp_path, run)
        return real(d, free)

    monkeypatch.setattr(store, "_in_use", planned_meanwhile)
    assert store.refile(tmp_path, OLD_ID, run.config) == store.stored_again(tmp_path, OLD_ID, run.run_id)
    assert store.state_of(src).state == "done" and store.state_of(dst).state == "missing"
    assert store.filed_as(src) == run.run_id  # its records as they were: still an older version's run


def test_report_tabulates_a_done_run_stored_under_an_older_id_with_its_curves_as_status_shows_it(tmp_path, capsys):
    """`suite status` showed a run an older version stored under another id in its stored state (a
    done run done), while `suite report` counted it missing ('so counted missing here'): a finished
    result left out of the table and its curves. The report reads it where it is stored, under
    today's id, unless today's id has a run stored again (which `suite run` leaves it for)."""
    out = tmp_path / "out"
    run = old_store(out)
    epochs = [{"epoch": e, "train_loss": 2.0 - e, "test_top1_err": 40.0 - 10 * e} for e in (1, 2)]
    (store.run_dir(out, OLD_ID) / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in epochs))
    spec = tmp_path / "compat.yaml"
    spec.write_text(SPEC)
    assert main(["report", str(spec), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "1 run: 1 done" in said and "counted missing" not in said, said
    assert f"({OLD_ID} for {run.run_id}), tabulated in its stored state here: the next `suite run" in said, said
    assert "| all | 12.50 (1) | 1/1 done |" in (out / "compat.md").read_text()
    assert (out / "figures" / "compat_curves.png").is_file()  # read from the old id's metrics.jsonl
    assert store.run_dir(out, OLD_ID).is_dir() and not store.run_dir(out, run.run_id).exists()  # nothing moved
    store.plan(out, run)  # stored again under today's id: `suite run` leaves the old run, so does the report
    assert main(["report", str(spec), "--out", str(out), "--to", str(tmp_path / "again.md")]) == 0
    said = capsys.readouterr().out
    assert "1 run: 0 done, 1 missing." in said and OLD_ID not in said, said
    assert "12.50" not in (tmp_path / "again.md").read_text()


@pytest.mark.slurm
def test_status_reads_the_hold_asked_of_a_run_to_be_filed_where_it_is_stored(tmp_path, capsys, monkeypatch,
                                                                             slurm_cluster):
    """`suite status` shows a run stored under an older id from its stored record, but asked today's
    id (no record there) whether its held job's hold was asked for: an `--sbatch hold` run was said
    to be held though no hold was asked, as a stopped submission leaves it."""
    monkeypatch.setenv("SUITE_CLUSTER", "")
    out = tmp_path / "out"
    old_store(out)
    old = store.run_dir(out, OLD_ID)
    (old / "result.json").unlink()
    job = subprocess.run(["sbatch", "--parsable", "--job-name=suite-compat-held", f"--output={tmp_path}/%j.out",
                          "--hold", "--wrap", "true"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        store.set_status(old, "pending", slurm_job_id=job, sbatch_hold=True, submitted_at=store.now(),
                         executor="slurm")
        spec = tmp_path / "compat.yaml"
        spec.write_text(SPEC)
        assert main(["status", str(spec), "--out", str(out)]) == 0
        said = capsys.readouterr().out
    finally:
        subprocess.run(["scancel", job], capture_output=True)
    assert f"held as asked (sbatch hold): `scontrol release {job}` lets them start" in said, said
    assert "no hold was asked" not in said, said


def test_cancel_resolves_a_queued_run_to_its_id_today_only_when_it_is_one_asked_for(tmp_path):
    """`suite cancel` cancels the job of a spec's run stored under an older id (store.stored_under_older_ids):
    one of the runs asked for, not another's, and not one whose config cannot be read."""
    run = old_store(tmp_path)
    assert store.stored_under_older_ids(tmp_path, [OLD_ID], [run.run_id]) == {OLD_ID: run.run_id}
    assert store.stored_under_older_ids(tmp_path, [OLD_ID], ["0123456789ab"]) == {}
    (store.run_dir(tmp_path, OLD_ID) / "config.json").write_text("{")
    (store.run_dir(tmp_path, OLD_ID) / "result.json").write_text("{")
    assert store.stored_under_older_ids(tmp_path, [OLD_ID], [run.run_id]) == {}
