"""The `suite` command as a new user meets it: the same thing spelt and headed the same way in
every subcommand, and each option meaning one thing."""

from __future__ import annotations

import json
import shlex
import signal

import pytest

from suite.cli import main
from suite.measure import profile
from suite.metrics import COST_LABELS
from suite.models import create_model


def test_profile_heads_its_costs_as_the_reports_do():
    """`macts` and `infer MiB` headed the terminal table while the reports and the README say
    `activations (M)` and `infer peak memory (MiB)`; parameters are in millions there too."""
    row = {"model": "m", "img_size": 32, "params": 1_081_818, "gmacs": 0.1306, "macts": 1.49,
           "unsupported_ops": "", "error": None}
    for phase in ("infer", "train"):
        row |= {f"{phase}_samples_per_sec": 90.0, f"{phase}_step_time": 40.0, f"{phase}_step_time_iqr": 2.0,
                f"{phase}_batch_size": 4, f"{phase}_peak_memory_mb": 20.0, f"{phase}_throughput_vs_reference": 1.0}
    heading, cells = profile.format_table([row, {**row, "model": "n", "img_size": 64}]).splitlines()[-3:-1]
    for key, label in COST_LABELS.items():
        assert f"  {label}  " in f"{heading}  ", key
    assert "macts" not in heading and "MiB " not in heading.replace("(MiB)", "")
    assert cells.split()[:3] == ["m", "32", "1.08"]  # params (M), as the reports print them


def test_profile_takes_model_options_spelt_as_train_and_specs_spell_them(capsys):
    """`suite profile ran56_cifar base_width=4` against `suite train ran56_cifar model.base_width=4`:
    one spelling now, the other refused with it."""
    assert main(["profile", "ran56_cifar", "model.base_width=4", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    narrow = create_model("ran56_cifar", base_width=4)
    assert row["params"] == sum(p.numel() for p in narrow.parameters())
    assert row["model_kwargs"] == "model.base_width=4"  # as typed, so it can be pasted back
    assert main(["profile", "ran56_cifar", "base_width=4"]) == 2
    err = capsys.readouterr().err
    assert "error: <command line>: base_width: a model option is given as model.base_width=VALUE" in err
    assert main(["profile", "ran56_cifar", "data.name=digits"]) == 2  # not a model's: not silently dropped
    assert "data.name: `suite profile` takes model options only" in capsys.readouterr().err
    assert main(["profile", "ran56_cifar", "model.mask_nrom=mixed"]) == 2  # named as given
    assert "error: model.mask_nrom: model 'ran56_cifar' has no option 'mask_nrom'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # its shorthand was a second spelling of the same option
        main(["profile", "ran56_cifar", "--num-classes", "5"])
    assert exit_.value.code == 2
    assert "--num-classes: this command's --num-classes is now model.num_classes=N" in capsys.readouterr().err


@pytest.mark.parametrize("command, new", [(["profile", "resnet26"], "--to FILE"),
                                          (["train", "ran56_cifar", "iterations=1"], "--run-dir DIR")])
def test_out_is_the_run_store_only_elsewhere_out_is_refused_with_the_new_name(tmp_path, capsys, monkeypatch,
                                                                               command, new):
    """`--out` is the run store of run, status, cancel and report; profile's output file and train's
    run directory had it too, so `suite train M --out results` trained into the store's folder."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--out", "results"])
    assert exit_.value.code == 2
    assert f"argument --out: this command's --out is now {new} (--out names a run store" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    for name in ("profile", "train"):
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert "--out" not in capsys.readouterr().out


def test_profile_to_writes_the_rows_there(tmp_path, capsys):
    assert main(["profile", "ran56_cifar", "model.base_width=4", "--to", str(tmp_path / "rows.csv")]) == 0
    assert f"wrote 1 row to {tmp_path / 'rows.csv'}" in capsys.readouterr().out
    assert (tmp_path / "rows.csv").read_text().startswith("model,img_size,model_kwargs,params")


def test_profile_to_dash_is_refused_not_a_file_named_dash(tmp_path, capsys, monkeypatch):
    """`suite report --to -` prints to stdout; profile's rows are printed by --json or --csv."""
    monkeypatch.chdir(tmp_path)
    assert main(["profile", "ran56_cifar", "--to", "-"]) == 2
    assert "error: --to: --json or --csv print the rows on stdout" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_status_of_the_whole_store_names_each_runs_preset(tmp_path, capsys, monkeypatch):
    """`suite status` headed a preset's runs by their spec alone, and its hints (`suite report SPEC
    --to - ...`, `suite run SPEC`) named the spec's own runs, not these: a user typing them saw
    none of the runs counted."""
    from suite import store
    from suite.ablations.expand import RunSpec
    from suite.config import resolve

    (tmp_path / "specs").mkdir()  # a spec folder that finds toy: the hints name it by its name
    (tmp_path / "specs" / "toy.yaml").write_text(
        "name: toy\nbase: {model: {name: resnet26}, data: {name: synthetic}}\n")
    monkeypatch.setenv("SUITE_ABLATIONS", str(tmp_path / "specs"))

    def planned(seed: int, preset: str | None) -> RunSpec:
        run = RunSpec(spec="toy", point={}, seed=seed, preset=preset,
                      config=resolve({"model.name": "resnet26", "data.name": "synthetic", "seed": seed}))
        store.set_status(store.plan(tmp_path, run), "failed", error="boom")
        return run

    planned(0, None)
    for seed in range(1, 11):  # enough alike to be listed as one group, with a pointer to the CSV
        planned(seed, "smoke")
    assert main(["status", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "toy: 1 run in the store: 0 done, 1 failed\n" in out
    assert "toy --preset smoke: 10 runs in the store: 0 done, 10 failed\n" in out
    # in this store: without --out the command would list the default store's runs
    assert f"(`suite report toy --preset smoke --out {shlex.quote(str(tmp_path))} --to - --format csv` lists every " \
           "run)" in out


def test_status_of_the_whole_store_names_each_runs_overrides(tmp_path, capsys):
    """`suite run walk --preset tiny momentum=0.5` made runs `suite status` of the store listed as
    `walk --preset tiny`: that line, typed, counted them missing. The overrides are recorded when a
    run is planned, and the listing and its hints name them as given."""
    from suite import ablations, store

    spec = tmp_path / "walk.yaml"
    spec.write_text("name: walk\nbase: {model: {name: resnet26}, data: {name: synthetic}}\n"
                    "presets: {tiny: {epochs: 1}}\n")
    given = {"momentum": 0.5, "weight_decay": 0.001}
    made = [*ablations.expand(ablations.load(str(spec)), preset="tiny", overrides=given),
            *ablations.expand(ablations.load(str(spec)), preset="tiny")]
    for run in made:
        store.set_status(store.plan(tmp_path, run), "failed", error="boom")
    assert main(["status", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "walk --preset tiny momentum=0.5 weight_decay=0.001: 1 run in the store: 0 done, 1 failed\n" in out
    assert "walk --preset tiny: 1 run in the store: 0 done, 1 failed\n" in out
    typed = ["momentum=0.5", "weight_decay=0.001"]
    assert main(["status", str(spec), "--preset", "tiny", *typed, "--out", str(tmp_path)]) == 0
    assert "walk: 1 run: 0 done, 1 failed" in capsys.readouterr().out  # the line, typed, counts them


def test_status_of_the_whole_store_lists_runs_planned_before_overrides_were_recorded_apart(tmp_path, capsys):
    """A run planned before config.json recorded the command line's overrides (made with
    `momentum=0.5` or with none: its record cannot say) was listed under `walk --preset tiny` with
    the runs given none, so that line, typed, counted fewer runs than it said. It is listed apart,
    marked, with no hint naming a command that may not be its own; a record whose overrides are
    not a list of items is listed so too, and a warning names the file and the key."""
    from suite import ablations, store

    spec = tmp_path / "walk.yaml"
    spec.write_text("name: walk\nbase: {model: {name: resnet26}, data: {name: synthetic}}\n"
                    "presets: {tiny: {epochs: 1}}\n")
    walk = ablations.load(str(spec))
    old, typo = ablations.expand(walk, preset="tiny", overrides={"momentum": 0.5, "lr": 0.2})[:1] + \
        ablations.expand(walk, preset="tiny", overrides={"momentum": 0.7})[:1]
    new = ablations.expand(walk, preset="tiny")[0]
    for run, overrides in ((old, None), (typo, "momentum=0.7"), (new, [])):
        d = store.plan(tmp_path, run)
        store.set_status(d, "failed", error="boom")
        planned = json.loads((d / "config.json").read_text())
        planned.pop("overrides")
        if overrides is not None:
            planned["overrides"] = overrides
        (d / "config.json").write_text(json.dumps(planned))
    assert main(["status", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    path = store.run_dir(tmp_path, typo.run_id) / "config.json"
    assert f'warning: {path}: overrides: "momentum=0.7", not a list of key=value items: the run is listed as ' \
        "planned before overrides were recorded\n" in err
    assert "walk --preset tiny: 1 run in the store: 0 done, 1 failed\n" in out
    assert "walk --preset tiny [key=value overrides not recorded]: 2 runs in the store: 0 done, 2 failed\n" in out
    assert "([key=value overrides not recorded]: runs planned before the suite recorded them" in out
    assert "suite report walk --preset tiny" not in out  # would list neither
    assert main(["status", str(spec), "--preset", "tiny", "momentum=0.5", "lr=0.2", "--out", str(tmp_path)]) == 0
    assert "walk: 1 run: 0 done, 1 failed" in capsys.readouterr().out  # the overrides it was given find it


def test_status_of_the_whole_store_resumes_another_machines_run_with_its_overrides(tmp_path, capsys):
    """`suite status` of a store said `suite run walk --preset tiny momentum=0.5` on HOST resumes a
    run HOST records as running: without the store, it would start other runs in HOST's default
    one; with the marker of a run whose overrides were not recorded, it was no command at all. The
    command names the run's recorded overrides (quoted) and the store, or says they were not recorded."""
    from suite import ablations, store
    from suite.ablations import names

    spec = tmp_path / "walk.yaml"
    spec.write_text("name: walk\nbase: {model: {name: resnet26}, data: {name: synthetic}}\n"
                    "presets: {tiny: {epochs: 1}}\n")
    walk = ablations.load(str(spec))
    given, old = (ablations.expand(walk, preset="tiny", overrides=overrides)[0]
                  for overrides in ({"momentum": 0.5, "data.root": str(tmp_path / "my data")}, {"momentum": 0.7}))
    out = tmp_path / "a store"
    for run in (given, old):
        d = store.plan(out, run)
        store.set_status(d, "running", host="login2", pid=4242, started_at="2026-12-01T10:00:00")
    names.claim(out, walk)  # as `suite run` records the file a name stands for
    planned = json.loads((store.run_dir(out, old.run_id) / "config.json").read_text())
    planned.pop("overrides")  # as an older version planned it
    (store.run_dir(out, old.run_id) / "config.json").write_text(json.dumps(planned))
    assert main(["status", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    root = shlex.quote(f'data.root="{tmp_path / "my data"}"')
    again = f"suite run {spec} --preset tiny --out {shlex.quote(str(out))} momentum=0.5 {root}"
    assert f"  running {given.run_id}: on login2, pid 4242, since 2026-12-01T10:00:00; if that process is " \
           f"gone, `{again}` on login2 finds it so and resumes the run\n" in printed
    assert f"gone, `suite run {spec} --preset tiny --out {shlex.quote(str(out))}`, with the key=value overrides it " \
           "was given (its config.json does not record them), on login2 finds it so" in printed
    assert main(["status", str(spec), *shlex.split(again)[3:]]) == 0  # the command's words name that run
    assert "walk: 1 run: 0 done, 1 running" in capsys.readouterr().out


def test_train_names_the_command_line_in_a_bad_keys_error_as_run_does(tmp_path, capsys):
    """`suite run quick base_width=4` said `<command line>: base_width: ...`, `suite train` the key alone."""
    assert main(["train", "ran56_cifar", "base_width=4", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: <command line>: base_width: unknown key; did you mean 'model.base_width'?")
    assert main(["train", "ran56_cifar", "model.mask_nrom=mixed", "--run-dir", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.startswith("error: <command line>: model.mask_nrom: model 'ran56_cifar' has no")
    assert not (tmp_path / "run").exists()


def test_train_names_its_arguments_in_their_errors_as_profile_names_its_own(tmp_path, capsys):
    """`suite train nope` said `<command line>: model.name: unknown model 'nope'`, a spec's key for the
    MODEL typed, where `suite profile nope` says `model: ...`; its MODEL, --dataset and --recipe are
    named as typed now, while a `model.name=` override still names its key, as in a spec."""
    for argv, said in ((["train", "resnet62"], "model: unknown model 'resnet62'; did you mean 'resnet26'"),
                       (["profile", "resnet62"], "model: unknown model 'resnet62'; did you mean 'resnet26'"),
                       (["train", "resnet26", "--dataset", "cifar11"], "--dataset: invalid value cifar11 (valid: digits"),
                       (["train", "resnet26", "--recipe", "smok"], "--recipe: unknown recipe 'smok'"),
                       (["train", "resnet26", "model.nme=x"], "<command line>: model.nme: model 'resnet26' has no"),
                       (["status", "quick", "model.name=resnet62", "--out", str(tmp_path)],
                        "<command line>: model.name: unknown model 'resnet62'")):
        assert main([*argv, "--run-dir", str(tmp_path / "run")] if argv[0] == "train" else argv) == 2
        assert capsys.readouterr().err.startswith(f"error: {said}"), argv
    assert not (tmp_path / "run").exists()


def test_train_reads_a_relative_data_root_against_the_folder_it_runs_in(tmp_path, monkeypatch, capsys):
    """`suite train MODEL data.root=data/mine` kept the root as typed, so its run read it against
    whatever folder the process was in (`suite run` made it absolute); it goes through the same
    rooting now, and so does a relative $SUITE_DATA, which the job read against its own folder."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    command = ["train", "resnet164_cifar", "--dataset", "cifar10", "--run-dir", str(tmp_path / "run")]
    assert main([*command, "data.root=data/mine"]) == 2  # no CIFAR there: the error names the folder it read
    assert f"in {project / 'data' / 'mine' / 'cifar-10-batches-py'};" in capsys.readouterr().err
    monkeypatch.setenv("SUITE_DATA", "data/env")
    assert main(command) == 2
    assert f"in {project / 'data' / 'env' / 'cifar-10-batches-py'};" in capsys.readouterr().err


def test_only_an_unknown_models_error_reads_the_stores_results(tmp_path, monkeypatch, capsys):
    """Every error expanding a spec (a bad override: epochs=-1) read each run's result.json in the
    store, for the plugin an unknown model was trained with; only an unknown model's error reads them."""
    from suite import store

    read, real = [], store.model_sources
    monkeypatch.setattr(store, "model_sources", lambda out: read.append(out) or real(out))
    assert main(["status", "quick", "epochs=-1", "--out", str(tmp_path)]) == 2
    assert "epochs: must be positive" in capsys.readouterr().err and read == []
    assert main(["status", "quick", "model.name=nosuch", "--out", str(tmp_path)]) == 2
    assert "unknown model 'nosuch'" in capsys.readouterr().err and len(read) == 1


def test_every_command_reading_a_store_says_when_its_folder_is_not_there(tmp_path, capsys):
    """`suite cancel quick --out <a typo>` said `nothing queued or running on SLURM`, so the jobs
    queued in the real store seemed gone; it now notes the missing folder as status and report do."""
    missing = tmp_path / "typo"
    for command in (["status", "quick"], ["report", "quick", "--to", str(tmp_path / "t.md")], ["cancel", "quick"]):
        assert main([*command, "--out", str(missing)]) == 0
        assert f"note: no runs in {missing} (no such folder: is --out right?)" in capsys.readouterr().err
    assert not missing.exists()


def test_a_default_store_that_is_not_there_is_said_so_not_blamed_on_suite_out(tmp_path, monkeypatch, capsys):
    """`suite report quick` in a folder without results/, $SUITE_OUT unset, said `results: $SUITE_OUT:
    no runs to tabulate (no such folder: is --out or $SUITE_OUT right?)`: neither was given. It says
    that the default store is not there and how to name another; a store an option or $SUITE_OUT
    named is blamed on that one alone."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SUITE_OUT", raising=False)
    assert main(["report", "quick"]) == 2
    assert capsys.readouterr().err == ("error: results: no runs to tabulate (no store at the default results/ "
                                       "under this folder; give --out or $SUITE_OUT); nothing was written\n")
    assert main(["status", "quick"]) == 0
    assert "note: no runs in results (no store at the default results/ under this folder; give --out or " \
           "$SUITE_OUT)" in capsys.readouterr().err
    monkeypatch.setenv("SUITE_OUT", str(tmp_path / "typo"))
    assert main(["report", "quick"]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'typo'}: $SUITE_OUT: no runs to tabulate (no such folder: "
                                       "is $SUITE_OUT right?); nothing was written\n")
    assert main(["report", "quick", "--out", "typo"]) == 2
    assert capsys.readouterr().err == "error: typo: --out: no runs to tabulate (no such folder: is --out right?); " \
                                      "nothing was written\n"
    assert not (tmp_path / "results").exists() and not (tmp_path / "typo").exists()


def test_specs_cuts_a_long_description_at_a_word_with_an_ellipsis(tmp_path, monkeypatch, capsys):
    """The description column was cut at 60 characters mid-word ('... help the residual t'), which
    reads as a typo in the spec; it is now cut after a whole word, marked with an ellipsis, in the
    same column and width."""
    description = "Whether an attention module's soft masks help the residual trunks they gate"
    (tmp_path / "long.yaml").write_text(f"name: long\ndescription: {description!r}\n"
                                        "base: {model: {name: resnet26}, data: {name: digits}}\n")
    (tmp_path / "short.yaml").write_text("name: short\ndescription: Brief.\nbase: {model: {name: resnet26}}\n")
    monkeypatch.setenv("SUITE_ABLATIONS", str(tmp_path))
    assert main(["specs", "long", "short"]) == 0
    header, long, short = capsys.readouterr().out.splitlines()
    column = header.index("paper / description")
    assert long[column:] == "Whether an attention module's soft masks help the residual…"
    assert len(long[column:]) <= 60 and short[column:] == "Brief."


def test_a_failed_runs_log_path_is_quoted_as_the_command_beside_it(tmp_path, capsys):
    """A store with a space in its path: `suite status` printed `see /tmp/my runs/.../log.txt`, which
    pastes as two words, beside a rerun command quoted with shlex; every path printed to be pasted
    into a shell is quoted alike now (a local run's log, a SLURM job's log)."""
    from suite import ablations, store
    from suite.dispatch import slurm
    from suite.dispatch.local import Outcome, _settle

    spec = tmp_path / "toy.yaml"
    spec.write_text("name: toy\nbase: {model: {name: resnet26}, data: {name: digits}}\ngrid: {lr: [0.05, 0.1]}\n")
    out = tmp_path / "my runs"
    local, queued = ablations.expand(ablations.load(str(spec)))
    d = store.plan(out, local)
    assert _settle(-signal.SIGKILL, d, local, Outcome(), pid=222, threads=1) == "failed"
    e = store.plan(out, queued)
    log = out / "slurm logs" / "7_0_log.err"
    store.set_status(e, "pending", slurm_job_id="7_0", slurm_log=str(log))
    slurm._record_end(e, store.state_of(e), "7_0", "FAILED")
    assert main(["status", str(spec), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"see {shlex.quote(str(d / 'log.txt'))}\n" in printed and "'" in shlex.quote(str(d))
    assert f"log: {shlex.quote(str(log))}\n" in printed
    assert f"--out {shlex.quote(str(out))}" in printed  # the rerun command, quoted as it was


def test_an_error_a_caller_adds_to_reads_the_same_in_its_args(tmp_path):
    """A caller that adds what it knows to an error (a store that cannot hold runs: 'give --out a
    folder ...') appended to its message alone, and `err.args` (repr, a logged exception) still said
    the raiser's words; the one way to add (`said`) keeps both in step."""
    from suite import store
    from suite.errors import SuiteError

    (tmp_path / "runs").write_text("")  # a file where the store's runs folder goes
    with pytest.raises(SuiteError, match="give --out a folder this user can write") as err:
        store.check_writable(tmp_path, key="--out")
    assert err.value.args == (str(err.value),)


def test_the_paths_a_command_reports_are_quoted_as_the_commands_beside_them(tmp_path, capsys):
    """`(out: /tmp/my runs)`, `wrote /tmp/my runs/rows.csv`: the store and the files a command
    reports pasted as two words, while the commands printed beside them quote theirs (shell_path)."""
    spec = tmp_path / "toy.yaml"
    spec.write_text("name: toy\nbase: {model: {name: resnet26}, data: {name: digits}}\ngrid: {lr: [0.05, 0.1]}\n")
    out = tmp_path / "my runs"
    quoted = shlex.quote(str(out))
    assert main(["run", str(spec), "--out", str(out), "--dry-run"]) == 0
    assert f"2 of 2 runs would start (out: {quoted})" in capsys.readouterr().out
    assert main(["profile", "resnet26", "--input-size", "32", "--to", str(out / "rows.csv")]) == 0
    assert f"wrote 1 row to {shlex.quote(str(out / 'rows.csv'))}\n" in capsys.readouterr().out
    assert main(["report", str(spec), "--out", str(out), "--to", str(out / "toy.md")]) == 0
    assert f"wrote {shlex.quote(str(out / 'toy.md'))} (md)\n" in capsys.readouterr().out


def test_a_relative_data_root_names_the_same_folder_wherever_the_runs_are_named_again(tmp_path, monkeypatch, capsys):
    """`suite run quick data.root=data/mine` recorded the root as typed, and the commands printed to
    run the runs again (a rerun, a SLURM resubmission, `suite status` of the store) said it so: pasted
    in another folder, or read by a job started elsewhere, it named another data folder. It is made
    absolute against the folder the command ran in, before anything is recorded or printed."""
    import argparse

    from suite import store
    from suite.cli import _expand

    project, elsewhere, out = tmp_path / "project", tmp_path / "elsewhere", tmp_path / "store"
    project.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(project)
    args = argparse.Namespace(spec="quick", preset=None, out=out, overrides=["data.root=data/mine", "epochs=1"])
    _, runs = _expand(args)
    mine = f"data.root={project / 'data' / 'mine'}"
    assert runs[0].config.data.root == str(project / "data" / "mine") and runs[0].given() == [mine, "epochs=1"]
    store.set_status(store.plan(out, runs[0]), "failed", error="OSError: no data")  # as `suite run` records it
    monkeypatch.chdir(elsewhere)
    assert main(["status", "--out", str(out)]) == 0  # the store's groups, by their recorded overrides
    assert f"quick {mine} epochs=1: 1 run in the store" in capsys.readouterr().out
    monkeypatch.chdir(project)
    assert main(["status", "quick", "--out", str(out), "data.root=data/mine", "epochs=1"]) == 0
    said = capsys.readouterr().out
    assert f"rerun the 1 failed or cancelled: suite run quick --out {out} {mine} epochs=1 --retry-failed" in said
    assert main(["status", "quick", "--out", str(out), "data={root: data/mine, workers: 0}", "epochs=1"]) == 0
    assert f"suite run quick --out {out} {mine} data.workers=0 epochs=1 --retry-failed" in capsys.readouterr().out


@pytest.mark.parametrize("stray", [False, True], ids=["in-cwd-ablations", "beside-a-stray-file"])
def test_a_resubmit_command_names_the_spec_so_it_pastes_from_any_folder(tmp_path, monkeypatch, capsys, stray):
    """The SLURM resubmit command (absolute paths: `suite status`, `suite cancel` print it, pasted in
    any folder) kept a name found in ./ablations, unknown elsewhere, and made a bare `quick` beside
    a stray file `quick` the path of that file, which is refused as no spec file."""
    from suite import ablations, store

    project = tmp_path / "project"
    (project / "ablations").mkdir(parents=True)
    monkeypatch.chdir(project)
    monkeypatch.setenv("SUITE_CLUSTER", "")
    if stray:
        name = "quick"
        (project / "quick").write_text("notes\n")  # a bare name is the spec even beside it
    else:
        name = "mine"
        (project / "ablations" / "mine.yaml").write_text(
            "name: mine\nbase: {model: {name: resnet26}, data: {name: synthetic}}\n")
    out = tmp_path / "my store"
    run = ablations.expand(ablations.load(name))[0]
    store.set_status(store.plan(out, run), "cancelled", slurm_job_id="7_0")
    assert main(["status", name, "--out", str(out)]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if "rerun the 1 failed or cancelled: " in x]
    command = shlex.split(line.split(": ", 1)[1])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert command[:2] == ["suite", "run"] and main([*command[1:], "--dry-run"]) == 0, capsys.readouterr().err
    assert f"run  {run.run_id} cancelled" in capsys.readouterr().out  # the run it was about, and it starts


def test_status_of_the_whole_store_reads_the_spec_record_once(tmp_path, capsys, monkeypatch):
    """`suite status` of a whole store read `specs.json` (which file each spec name stands for) once
    for each group of runs it listed, to name a spec run by its path in that group's hints: a read per
    spec, preset and overrides of the store. It is read once for the command."""
    from suite import ablations, store
    from suite.ablations import names

    spec = tmp_path / "walk.yaml"
    spec.write_text("name: walk\nbase: {model: {name: resnet26}, data: {name: synthetic}}\n"
                    "presets: {tiny: {epochs: 1}}\n")
    out = tmp_path / "store"
    names.claim(out, ablations.load(str(spec)))
    for preset, given in [(None, {}), ("tiny", {}), ("tiny", {"momentum": 0.5})]:
        for run in ablations.expand(ablations.load(str(spec)), preset=preset, overrides=given):
            store.set_status(store.plan(out, run), "running", host="elsewhere", pid=1)  # hinted: resume it there
    reads = []
    real = store.read_json

    def read_json(path):
        reads.append(path.name)
        return real(path)

    monkeypatch.setattr(store, "read_json", read_json)
    assert main(["status", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count(f"suite run {shlex.quote(str(spec))} ") == 3, printed  # each group named by its file
    assert reads.count(names.RECORD) == 1
