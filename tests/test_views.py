"""`measure.views`: the trained network's errors on rotated and flipped test images (suite.data.views)
are evaluated only when asked, and a done run asked for them later is evaluated from its checkpoint."""

from __future__ import annotations

import pytest

from suite import ablations, store
from suite.cli import main
from suite.config import parse_overrides, resolve
from suite.data.views import VIEW_METRICS
from suite.errors import SuiteError
from suite.execute import execute
from suite.train.loop import Trainer

# digits at their native 8x8, ran56_cifar at width 4: 11 steps an epoch in batches of 128
TINY = {"model.name": "ran56_cifar", "model.base_width": 4, "data.name": "digits", "data.input_size": 8,
        "batch_size": 128, "recipe": "smoke"}
# a run of a quarter epoch, measured cheaply: training and evaluation are what these tests are about
FAST = ["epochs=0.25", "batch_size=32", "data.input_size=8", "measure.steps=1", "measure.warmup=1",
        "measure.batch_size=2", "measure.throughput=false"]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_views_are_evaluated_only_when_asked():
    """The four turned copies of the test split were evaluated at the end of every run: a sixth of a
    one-epoch SAN run on digits, for a table (san_robustness) that only one spec makes."""
    plain = Trainer(resolve({**TINY, "iterations": 1}), None)
    plain.fit()
    assert not any(f"test_{m}" in plain.history[-1] for m in VIEW_METRICS)
    assert all(plain.final_metrics()[m] is None for m in VIEW_METRICS)
    turned = Trainer(resolve({**TINY, "iterations": 1, "measure.views": True}), None)
    turned.fit()
    assert all(0 <= turned.final_metrics()[m] <= 100 for m in VIEW_METRICS)
    assert resolve(TINY).run_id == resolve({**TINY, "measure.views": True}).run_id  # how it is measured only


def test_views_of_data_without_labels_are_refused():
    with pytest.raises(SuiteError) as err:
        resolve({"model.name": "resnet26", "data.name": "synthetic", "measure.views": True})
    assert err.value.key == "measure.views" and "labels mean nothing" in err.value.message


def test_a_result_says_whether_it_has_the_views_when_its_config_does_not():
    """A result written before measure.views existed has the views in its metrics if the code that
    wrote it evaluated them (every run did, since they existed): only one without them is evaluated."""
    run = ablations.expand(ablations.load("quick"), overrides=parse_overrides(["measure.views=true"]))[0]
    made = {k: v for k, v in run.config.flat().items() if k != "measure.views"}
    with_views = {"config": made, "metrics": {"top1_err": 3.0, **{m: 50.0 for m in VIEW_METRICS}}}
    before_views = {"config": made, "metrics": {"top1_err": 3.0}}
    assert store.stale_parts(run, with_views) == {}
    assert store.stale_parts(run, before_views) == {"views": ["measure.views (False, not True)"]}
    plain = ablations.expand(ablations.load("quick"))[0]
    assert store.stale_parts(plain, before_views) == {}  # not asked: current


def test_a_done_run_asked_for_the_views_is_evaluated_from_its_checkpoint_not_retrained(tmp_path, capsys):
    """As `suite run` asks `execute` (in this process, not a child: the run's process is not what is tested)."""
    spec = tmp_path / "turned.yaml"
    spec.write_text("name: turned\nbase:\n  model: {name: ran56_cifar, base_width: 4}\n  data: {name: digits}\n"
                    "  recipe: smoke\ngrid:\n  lr: [0.05]\nseeds: 1\n"
                    "report: {rows: [lr], metrics: [top1_err, top1_err_rot180]}\n")
    out = tmp_path / "store"
    turned = [*FAST, "measure.views=true"]
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    [asked] = ablations.expand(ablations.load(spec), overrides=parse_overrides(turned))
    d = store.run_dir(out, run.run_id)
    before = execute(run, out)
    assert before["config"]["measure.views"] is False and all(before["metrics"][m] is None for m in VIEW_METRICS)
    trained = {name: (d / name).read_bytes() for name in ("checkpoint.pt", "metrics.jsonl")}
    assert main(["report", str(spec), "--out", str(out), "--to", "-", "--format", "md", *FAST]) == 0
    assert "measure.views=true on the command line" in capsys.readouterr().out  # why the column is empty
    assert main(["run", str(spec), "--out", str(out), "--no-progress", "--dry-run", *turned]) == 0
    assert "(measure again: measure.views (False, not True))" in capsys.readouterr().out

    after = execute(asked, out)
    assert trained == {name: (d / name).read_bytes() for name in trained}  # not trained again
    assert after["config"]["measure.views"] is True and after["complexity"] == before["complexity"]
    assert all(0 <= after["metrics"][m] <= 100 for m in VIEW_METRICS)
    assert {k: v for k, v in after["metrics"].items() if k not in VIEW_METRICS} == \
        {k: v for k, v in before["metrics"].items() if k not in VIEW_METRICS}
    assert store.read_json(d / "result.json") == after
    for overrides in (turned, FAST):  # asked again: current; not asked: current too (more than asked)
        assert main(["run", str(spec), "--out", str(out), "--no-progress", "--dry-run", *overrides]) == 0
        assert "0 of 1 run would start" in capsys.readouterr().out
