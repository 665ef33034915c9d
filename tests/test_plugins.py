"""Model plugins: a distribution's `attention_suite.models` entry points register models that every
process sees, in-process and in the child processes the CLI starts; a broken plugin is named.

The plugins are real distributions on disk (tests/plugins.py), found by importlib.metadata through
sys.path or PYTHONPATH, as `pip install` would leave them; nothing of the discovery is faked.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from plugins import fresh_registry, tiny_se, write_plugin
from suite import ablations
from suite.cli import main
from suite.errors import SuiteError, SuiteWarning
from suite.models import create_model, get_model_info, list_models
from suite.report.labels import described

ROOT = Path(__file__).resolve().parents[1]
BROKEN = """\
from torch import nn

from suite.models import register_model


@register_model
def half_net(*, num_classes: int = 10) -> nn.Module:
    return nn.Identity()


import no_such_module  # the plugin's bug: after it registered a model
"""


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    """A folder on sys.path for installed plugins; the registry loads them at its next lookup."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))  # also invalidates importlib's caches
    with fresh_registry(root):
        yield root


def spec_file(tmp_path: Path, name: str, **parts) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, **parts}, sort_keys=False))
    return path


def _trained_in_store(out: Path, model: str, source: str) -> None:
    """A done run's result in store `out`, of `model` trained with the plugin `source`."""
    run = out / "runs" / "0123456789ab"
    run.mkdir(parents=True)
    (run / "result.json").write_text(json.dumps({"config": {"model.name": model}, "env": {"model_source": source}}))


@pytest.mark.parametrize("base", [True, False])
def test_a_spec_of_an_uninstalled_plugins_model_says_the_store_ran_it_with_that_plugin(site, tmp_path, capsys, base):
    """Uninstalled after its runs were done, a plugin's model was only an `unknown model` to
    `suite status SPEC` and `suite report SPEC`, as if misspelt; the error now names the plugin the
    store's runs were trained with, and that it is missing here or no longer registers the model."""
    out = tmp_path / "store"
    _trained_in_store(out, "tiny_se_net", "tinyplug 0.1")
    model = {"model": {"name": "tiny_se_net"}} if base else {}
    path = spec_file(tmp_path, "mine", base={**model, "data": {"name": "digits"}, "recipe": "smoke"},
                     **({} if base else {"grid": {"model.name": ["tiny_se_net", "ran56_cifar"]}}))
    for command in ("status", "report"):
        assert main([command, str(path), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "unknown model 'tiny_se_net'" in err and "were trained with it from tinyplug 0.1, a model plugin this " \
            "environment does not have: install it again" in err, err
    write_plugin(site, "tinyplug", {"tinyplug": tiny_se("renamed_net")}, {"se": "tinyplug"}, version="0.2")
    assert main(["status", str(path), "--out", str(out)]) == 2
    assert "from tinyplug 0.1, and tinyplug 0.2 here does not register it" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ in-process
def test_a_plugin_registers_its_models_at_the_first_lookup(site):
    write_plugin(site, "tinyplug", {"tinyplug": tiny_se()}, {"se": "tinyplug"})
    assert list_models("tiny*") == ["tiny_se_net"]
    info = get_model_info("tiny_se_net")
    assert (info.source, info.plugin.name, info.plugin.value) == ("tinyplug 0.1", "se", "tinyplug")
    assert (info.label, info.input_size, info.family) == ("Tiny-SE", 32, "tinyplug")
    assert get_model_info("resnet26").source == "suite" and "ran56_cifar" in list_models()  # the shipped ones stay
    assert described("model.name", "tiny_se_net") == "Tiny-SE"  # what reports show for it
    model = create_model("tiny_se_net", gate="hard", num_classes=3)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 3)


def test_a_plugin_models_options_are_checked_like_a_shipped_ones(site):
    write_plugin(site, "tinyplug", {"tinyplug": tiny_se()}, {"se": "tinyplug"})
    with pytest.raises(SuiteError, match="model 'tiny_se_net'") as err:
        create_model("tiny_se_net", gate="soft")
    assert err.value.key == "gate" and err.value.choices == ["sigmoid", "hard"]
    with pytest.raises(SuiteError, match="did you mean 'width'"):
        create_model("tiny_se_net", widht=4)
    with pytest.raises(SuiteError, match="must be at least 1, got 0"):  # the plugin's own check
        create_model("tiny_se_net", reduction=0)


def test_a_spec_naming_a_plugin_model_is_checked_for_every_grid_point(site, tmp_path):
    write_plugin(site, "tinyplug", {"tinyplug": tiny_se()}, {"se": "tinyplug"})
    base = {"model": {"name": "tiny_se_net"}, "data": {"name": "digits"}, "recipe": "smoke"}
    good = spec_file(tmp_path, "mine", base=base, grid={"model.gate": ["sigmoid", "hard"], "model.width": [4, 8]})
    runs = ablations.expand(ablations.load(good))
    assert len(runs) == 4 and {r.config.model.kwargs["gate"] for r in runs} == {"sigmoid", "hard"}
    bad = spec_file(tmp_path, "bad", base=base, grid={"model.gate": ["sigmoid", "soft"], "model.reduction": [2, 0]})
    with pytest.raises(SuiteError) as err:
        ablations.expand(ablations.load(bad))
    text = str(err.value)
    assert "grid.model.gate: invalid value soft for model 'tiny_se_net'" in text, text
    assert "grid.model.reduction: must be at least 1, got 0" in text, text


def test_what_a_plugin_prints_as_it_loads_goes_to_stderr_not_into_a_table_on_stdout(site, tmp_path, capsys):
    """`suite report SPEC --to - > table.md` began the table with the plugin's `print` at import."""
    write_plugin(site, "tinyplug", {"tinyplug": "print('loading my models')\n" + tiny_se()}, {"se": "tinyplug"})
    path = spec_file(tmp_path, "mine", base={"model": {"name": "tiny_se_net"}, "data": {"name": "digits"}})
    assert main(["report", str(path), "--out", str(tmp_path / "store"), "--to", "-"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("<!-- generated by") and "loading my models" not in out, out
    assert "loading my models" in err


def test_a_plugin_check_that_crashes_is_named_as_the_plugins_bug_where_the_spec_uses_it(site, tmp_path):
    """A check with a typo (`options["reductoin"]`) crashed `suite run --dry-run` and `suite train`
    with a bare KeyError traceback: no plugin, no spec line, as if the suite had failed."""
    typo = tiny_se().replace('options["reduction"] < 1', 'options["reductoin"] < 1')
    write_plugin(site, "tinyplug", {"tinyplug": typo}, {"se": "tinyplug"})
    path = spec_file(tmp_path, "mine", base={"model": {"name": "tiny_se_net"}, "data": {"name": "digits"}})
    with pytest.raises(SuiteError) as err:
        ablations.expand(ablations.load(path))
    text = str(err.value)
    assert text.startswith(f"{path}:") and "the check of model 'tiny_se_net'" in text, text
    assert "model plugin 'se' (tinyplug, from distribution tinyplug 0.1)" in text and "KeyError: 'reductoin'" in text
    assert re.search(r"at .*tinyplug/__init__\.py:\d+", text), text


def test_a_slurm_job_without_the_plugin_says_where_suite_run_had_the_model_from(site, tmp_path):
    """A cluster whose setup lines activate an environment without the plugin failed each job with
    `unknown model 'tiny_se_net'` and the shipped names, as if the spec were misspelt."""
    from suite import store
    from suite.dispatch import slurm, snapshot
    from suite.models import registry

    write_plugin(site, "tinyplug", {"tinyplug": tiny_se()}, {"se": "tinyplug"})
    path = spec_file(tmp_path, "mine", base={"model": {"name": "tiny_se_net"}, "data": {"name": "digits"}})
    [run] = ablations.expand(ablations.load(path))
    d = store.plan(tmp_path / "store", run)
    source = get_model_info("tiny_se_net").source
    del registry._REGISTRY["tiny_se_net"]  # the job's Python: the plugin is not there
    task = slurm.SlurmRun(run, str(tmp_path / "store"), str(snapshot.loaded_from()), 1, source)
    handler = signal.getsignal(signal.SIGUSR2)  # the task installs its own, as in a job
    try:
        with pytest.raises(RuntimeError, match="suite run had it from tinyplug 0.1, which this job's Python"):
            task()
    finally:
        signal.signal(signal.SIGUSR2, handler)
    assert store.state_of(d).state == "failed" and "unknown in this job" in store.state_of(d).note


@pytest.mark.parametrize("value", ["tinyplug.hooks:register", "tinyplug:tiny_se_net"])
def test_an_entry_point_may_name_a_function_that_registers_or_the_builder_itself(site, value):
    hooks = "def register():\n    import tinyplug.models  # noqa: F401\n"
    modules = ({"tinyplug": "", "tinyplug.models": tiny_se(), "tinyplug.hooks": hooks} if "hooks" in value
               else {"tinyplug": tiny_se()})
    write_plugin(site, "tinyplug", modules, {"se": value})
    with _no_warnings():
        assert list_models("tiny*") == ["tiny_se_net"]


def test_the_complexity_page_stays_the_suites_own_models(site, tmp_path):
    """results/complexity.md is the suite's fidelity to the papers, committed with it: what is
    installed where `suite report --all` runs does not change it."""
    from suite.report import complexity

    write_plugin(site, "tinyplug", {"tinyplug": tiny_se()}, {"se": "tinyplug"})
    asked: list[str] = []

    def measure(names):  # the rows `suite profile` would give, without profiling every model
        asked.extend(names)
        return [{"model": n, "params": 1.0, "gmacs": 1.0, "img_size": get_model_info(n).input_size} for n in names]

    page = complexity.write(tmp_path, measure=measure).read_text()
    assert "tiny_se_net" in list_models() and "tiny_se_net" not in asked and "tiny_se_net" not in page
    assert "resnet26" in asked and "| resnet26 |" in page


# ------------------------------------------------------------------------------------- broken
def test_a_plugin_that_fails_to_import_is_named_and_left_out_whole(site):
    write_plugin(site, "brokenplug", {"brokenplug": BROKEN}, {"broken": "brokenplug"}, version="2.0")
    write_plugin(site, "tinyplug", {"tinyplug": tiny_se()}, {"se": "tinyplug"})
    with pytest.warns(SuiteWarning, match="its models are left out"):
        names = list_models()
    assert "tiny_se_net" in names and "resnet26" in names  # the other plugin and the shipped models stay
    assert "half_net" not in names  # what it registered before failing is gone: every process sees the same
    with pytest.raises(SuiteError) as err:
        get_model_info("half_net")  # an unknown model: the broken plugin may be why
    text = str(err.value)
    assert text.startswith("model.name: unknown model 'half_net'")
    where = site / "brokenplug" / "__init__.py"
    assert (f"\n  and model plugin 'broken' (brokenplug, from distribution brokenplug 2.0) failed to load: "
            f"ModuleNotFoundError: No module named 'no_such_module' (at {where}:11)") in text, text


def test_a_spec_needing_a_broken_plugins_model_names_the_plugin_once(site, tmp_path):
    write_plugin(site, "brokenplug", {"brokenplug": BROKEN}, {"broken": "brokenplug"})
    base = {"model": {"name": "half_net"}, "data": {"name": "digits"}, "recipe": "smoke"}
    path = spec_file(tmp_path, "mine", base=base, grid={"lr": [0.1, 0.2]})
    with pytest.warns(SuiteWarning), pytest.raises(SuiteError) as err:
        ablations.expand(ablations.load(path))
    text = str(err.value)
    assert "base.model.name: unknown model 'half_net'" in text and text.count("model plugin 'broken'") == 1, text
    quick = ablations.expand(ablations.load("quick"))  # a spec of the shipped models is not held up
    assert len(quick) == 8


@pytest.mark.parametrize("name, signature, fragment", [
    ("resnet26", "*, num_classes: int = 10", "model 'resnet26' is registered already, by the suite itself"),
    ("loose_net", "*, width=8", "option 'width' needs a type hint the registry can check values against"),
    ("loose_net", "*, act: nn.Module = None", "option 'act' needs a type hint"),
    ("loose_net", "*, sizes: list = ()", "option 'sizes' needs a type hint"),
    ("loose_net", "*, width: int = 2.5", "option 'width' defaults to 2.5, which its type hint refuses"),
    ("loose_net", "width: int = 8", "every option must be keyword-only with a default (width)"),
    ("loose_net", "*, act: 'Activation' = 'relu'", "its type hints cannot be read (NameError"),
])
def test_a_plugin_registering_what_the_registry_cannot_check_is_named(site, capsys, name, signature, fragment):
    source = (f"from torch import nn\nfrom suite.models import register_model\n\n\n@register_model\n"
              f"def {name}({signature}) -> nn.Module:\n    return nn.Identity()\n")
    write_plugin(site, "loose", {"loose": source}, {"net": "loose"})
    assert main(["models", "resnet2*"]) == 2  # `suite models` lists what loaded, then says the plugin failed
    out, err = capsys.readouterr()
    assert "resnet26" in out and "loose_net" not in out
    assert err.startswith("error: model plugin 'net' (loose, from distribution loose 0.1) failed to load: ")
    assert fragment in err and "warning:" not in err, err  # said once, as the error it is here
    assert f"(at {site / 'loose' / '__init__.py'}:" in err  # the plugin's line, not the registry's


def test_two_plugins_registering_one_name_blame_the_later_by_distribution(site):
    write_plugin(site, "b_plug", {"b_plug": tiny_se()}, {"se": "b_plug"})
    write_plugin(site, "a_plug", {"a_plug": tiny_se()}, {"se": "a_plug"})
    with pytest.warns(SuiteWarning, match=r"model plugin 'se' \(b_plug, from distribution b_plug 0.1\) failed to "
                                          r"load: model 'tiny_se_net' is registered already, by model plugin 'se' "
                                          r"\(a_plug, from distribution a_plug 0.1\)"):
        assert get_model_info("tiny_se_net").source == "a_plug 0.1"


@pytest.mark.parametrize("value, fragment", [
    ("constplug:MODELS", "TypeError: it names a list, not a module or a function that registers models"),
    ("const-plug", "ValueError: 'const-plug' is not a module's dotted name, nor `module:function`"),
])
def test_an_entry_point_naming_neither_a_module_nor_a_function_is_named(site, value, fragment):
    write_plugin(site, "constplug", {"constplug": "MODELS = ['x']\n"}, {"models": value})
    with pytest.warns(SuiteWarning, match=f"model plugin 'models' \\({value}, from distribution constplug 0.1\\) "
                                          f"failed to load: {re.escape(fragment)}"):
        list_models()


def test_a_plugin_slow_to_import_is_warned_about_as_every_process_pays_it(site, monkeypatch):
    """A plugin importing something heavy at the top (3 s) slowed every run process, SLURM task and
    command that looks a model up, by that much, without a word of why."""
    from suite.models import plugins

    monkeypatch.setattr(plugins, "SLOW_IMPORT_S", 0.05)
    write_plugin(site, "slowplug", {"slowplug": "import time\ntime.sleep(0.1)\n" + tiny_se()}, {"se": "slowplug"})
    with pytest.warns(SuiteWarning, match=r"model plugin 'se' .* took 0\.\d s to load, which every suite process"):
        assert list_models("tiny*") == ["tiny_se_net"]


def test_a_plugin_that_registers_nothing_is_warned_about(site):
    write_plugin(site, "emptyplug", {"emptyplug": "", "emptyplug.models": tiny_se()}, {"se": "emptyplug"})
    with pytest.warns(SuiteWarning, match="registered no models"):
        assert not list_models("tiny*")


# ------------------------------------------------------------------------------ child processes
@pytest.mark.slow
def test_a_plugin_model_profiles_trains_runs_and_reports_in_child_processes(tmp_path):
    """The CLI, `suite profile`'s per-model process and `suite run`'s run processes are fresh
    interpreters: each finds the plugin on its PYTHONPATH, as an installed one in site-packages."""
    site = tmp_path / "site"
    write_plugin(site, "tinyplug", {"tinyplug": tiny_se()}, {"se": "tinyplug"})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)]), "SUITE_OUT": str(tmp_path / "store")}

    def suite(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "suite", *args], capture_output=True, text=True, timeout=300,
                              env=env, cwd=tmp_path, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "warning" not in done.stderr, done.stderr
        return done.stdout

    listed = suite("models", "tiny*", "--options")
    assert "Tiny-SE  (from tinyplug 0.1)" in listed and "gate = sigmoid  {sigmoid, hard}" in listed
    assert "tiny_se_net" in suite("profile", "tiny_se_net", "model.width=4")
    trained = json.loads(suite("train", "tiny_se_net", "iterations=2", "--threads", "1", "--no-progress",
                               "--run-dir", str(tmp_path / "train")).strip().splitlines()[-1])
    assert 0 <= trained["top1_err"] <= 100
    path = spec_file(tmp_path, "mine", base={"data": {"name": "digits"}, "recipe": "smoke", "iterations": 2,
                                             "measure": {"throughput": False}},
                     grid={"model.name": ["tiny_se_net"]})
    assert "1 done, 0 failed" in suite("run", str(path), "--threads", "1", "--no-progress")
    suite("report", str(path), "--to", str(tmp_path / "mine.md"))
    table = (tmp_path / "mine.md").read_text()
    assert "| Tiny-SE |" in table, table  # its label, as a shipped model's paper name
    [result] = (tmp_path / "store" / "runs").glob("*/result.json")  # the plugin's version: its code is not in the commit
    assert json.loads(result.read_text())["env"]["model_source"] == "tinyplug 0.1"


@contextlib.contextmanager
def _no_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", SuiteWarning)
        yield
