"""suite.train: schedule, loss, checkpoints, determinism, resume after a kill, DDP, CLI, accuracy."""

from __future__ import annotations

import errno
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from suite.cli import main
from suite.config import resolve
from suite.data.views import VIEW_METRICS, VIEWS
from suite.errors import SuiteError, SuiteWarning
from suite.train import Diverged, Preempted, request_checkpoint, run
from suite.train import checkpoint
from suite.train.distributed import _world_size_from_env
from suite.train.loop import Trainer, smoothed_cross_entropy
from suite.train.schedule import learning_rate

# A model and data small enough for seconds per run on one CPU thread: digits at their native 8x8,
# ran56_cifar at width 4 (70 k parameters); 1,437 // 128 = 11 steps per epoch.
TINY = {"model.name": "ran56_cifar", "model.base_width": 4, "data.name": "digits", "data.input_size": 8,
        "batch_size": 128, "lr": 0.05, "recipe": "smoke"}
TIMING = ("epoch_time_s", "loop_samples_per_sec", "wall_time_s")


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**overrides):
    return resolve({**TINY, **overrides})


def untimed(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMING}


def lines(run_dir: Path) -> list[dict]:
    return [untimed(json.loads(line)) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_same_state(a: Path, b: Path) -> None:
    sa, sb = checkpoint.load(a / checkpoint.FILENAME), checkpoint.load(b / checkpoint.FILENAME)
    assert sa["model"].keys() == sb["model"].keys()
    for key in sa["model"]:
        assert torch.equal(sa["model"][key], sb["model"][key]), key
    for pa, pb in zip(sa["optimizer"]["state"].values(), sb["optimizer"]["state"].values()):
        assert torch.equal(pa["momentum_buffer"], pb["momentum_buffer"])
    assert sa["iteration"] == sb["iteration"]


# ------------------------------------------------------------------------------------ schedule
def test_step_schedule_uses_fractions_of_the_iterations():
    c = resolve({"model.name": "ran56_cifar", "recipe": "ran_cifar"})
    lr = [learning_rate(c, it, 781, 160_000) for it in (0, 63_999, 64_000, 95_999, 96_000, 159_999)]
    assert lr == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_cosine_steps_per_epoch_and_warmup():
    c = resolve({"model.name": "ran56_cifar", "schedule": "cosine", "lr": 0.2, "epochs": 4})
    assert [learning_rate(c, it, 10, 40) for it in (0, 9, 10, 20, 39)] == pytest.approx(
        [0.2, 0.2, 0.2 * 0.5 * (1 + 2**-0.5), 0.1, 0.2 * 0.5 * (1 - 2**-0.5)])
    w = resolve({"model.name": "ran56_cifar", "schedule": "constant", "lr": 0.2, "warmup_epochs": 0.5})
    assert [learning_rate(w, it, 10, 40) for it in (0, 4, 5, 30)] == pytest.approx([0.04, 0.2, 0.2, 0.2])


def test_cosine_over_a_partial_last_epoch_does_not_reach_zero_early():
    """A length in iterations may end mid-epoch: the cosine spans the fractional epoch count (2.5
    here, not 2), so the last, partial epoch trains at a lr above zero."""
    c = resolve({"model.name": "ran56_cifar", "schedule": "cosine", "lr": 0.2, "iterations": 25})
    assert [learning_rate(c, it, 10, 25) for it in (0, 10, 20, 24)] == pytest.approx(
        [0.2, 0.1 * (1 + math.cos(math.pi / 2.5)), 0.1 * (1 + math.cos(math.pi * 2 / 2.5)),
         0.1 * (1 + math.cos(math.pi * 2 / 2.5))])


def test_label_smoothing_as_san():
    logits, target = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    assert torch.allclose(smoothed_cross_entropy(logits, target, 0.0), F.cross_entropy(logits, target))
    soft = torch.full((6, 5), 0.1 / 4).scatter_(1, target[:, None], 0.9)
    expected = -(soft * logits.log_softmax(1)).sum(1).mean()
    assert torch.allclose(smoothed_cross_entropy(logits, target, 0.1), expected)


def test_training_minimises_the_san_smoothed_loss():
    """The loop trains on `smoothed_cross_entropy` (eps / (K - 1) on the other classes), not torch's
    label_smoothing (eps / K on every class, the target included): the loss of a one-step run is SAN's
    on the first batch. The two differ by eps / K * (mean other-class NLL - target NLL), small on an
    untrained net's near-uniform logits: a large eps and a tight tolerance tell them apart."""
    config = tiny(iterations=1, label_smoothing=0.9)
    trainer = Trainer(config, None)
    x, y = next(iter(trainer.data.train))
    with torch.no_grad():
        out = trainer.model.train()(x).float()
    ours = smoothed_cross_entropy(out, y, 0.9).item()
    assert abs(ours - F.cross_entropy(out, y, label_smoothing=0.9).item()) > 2e-5
    result = run(config, None, progress=False)
    assert result["train_loss"] == pytest.approx(ours, rel=0, abs=1e-6)
    wrong = (out.argmax(1) != y).double().mean().item()
    assert 0 < wrong < 1 and result["train_top1_err"] == pytest.approx(100 * wrong)  # errors, not hits


def test_each_step_takes_the_schedules_lr_for_the_steps_before_it():
    """Step k (0-based) trains at learning_rate(k): in warm-up the first step's lr is lr / warmup."""
    config = tiny(iterations=1, warmup_epochs=1)  # 11 steps per epoch: a warm-up of 11
    trainer = Trainer(config, None)
    trainer.fit()
    assert trainer.history[-1]["lr"] == pytest.approx(0.05 / 11) == learning_rate(config, 0, 11, 1)


def test_the_loop_throughput_leaves_the_evaluation_out(monkeypatch):
    """loop_samples_per_sec is the training steps' rate; epoch_time_s adds the evaluation."""
    monkeypatch.setattr(Trainer, "_evaluate", lambda self, view=None: time.sleep(0.1) or (50.0, 50.0))
    trainer = Trainer(tiny(iterations=2, **{"measure.views": True}), None)
    trainer.fit()
    line = trainer.history[-1]
    assert line["epoch_time_s"] - 256 / line["loop_samples_per_sec"] >= 0.5  # the test split and 4 views: 5 sleeps


def test_best_epoch_is_the_one_with_the_lowest_evaluated_error():
    trainer = Trainer(tiny(iterations=1), None)
    trainer.history = [{"epoch": 1, "test_top1_err": 7.0}, {"epoch": 2, "test_top1_err": 5.0},
                       {"epoch": 3, "test_top1_err": None}, {"epoch": 4, "test_top1_err": 6.0}]
    final = trainer.final_metrics()
    assert (final["best_top1_err"], final["best_epoch"], final["top1_err"]) == (5.0, 2, 6.0)


@pytest.mark.parametrize("recipe,sgd", [("ran_cifar", (0.9, True, 1e-4)), ("ran_imagenet", (0.9, False, 1e-4)),
                                        ("san_imagenet", (0.9, False, 1e-4))])
def test_optimizer_is_the_recipes_sgd_with_weight_decay_on_every_parameter(recipe, sgd):
    """Momentum, Nesterov and weight decay reach the optimizer, the decay on every parameter (SAN's
    official config decays all of them, BN's too)."""
    trainer = Trainer(resolve({**TINY, "recipe": recipe, "epochs": 1}), None)
    (group,) = trainer.optimizer.param_groups
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == sgd
    assert [id(p) for p in group["params"]] == [id(p) for p in trainer.model.parameters()]


# ---------------------------------------------------------------------------------- checkpoint
def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / checkpoint.FILENAME
    checkpoint.save(path, {"x": torch.arange(3)})

    def torn(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn)
    with pytest.raises(SuiteError, match="cannot write the checkpoint: disk full"):
        checkpoint.save(path, {"x": torch.arange(5)})
    assert torch.equal(checkpoint.load(path)["x"], torch.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint.FILENAME]


class FullDisk:
    """A file with `room` bytes left on its disk: the write that does not fit fails with ENOSPC."""

    def __init__(self, f, room: int) -> None:
        self.f, self.room = f, room

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        if size > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= size
        return self.f.write(data)


def test_a_full_disk_names_the_checkpoint_and_keeps_the_earlier_one(tmp_path, monkeypatch):
    """torch reports a failed write as `RuntimeError: [enforce fail at inline_container.cc:672] .
    unexpected pos ...` (the OSError only as its context): `suite status` showed that, no file."""
    path = tmp_path / checkpoint.FILENAME
    checkpoint.save(path, {"x": torch.arange(3)})
    save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f: save(obj, FullDisk(f, room=100)))
    with pytest.raises(SuiteError) as err:
        checkpoint.save(path, {"x": torch.zeros(10_000)})
    assert str(err.value) == f"{path}: cannot write the checkpoint: No space left on device (an earlier checkpoint " \
        "stays as it was)"
    assert torch.equal(checkpoint.load(path)["x"], torch.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint.FILENAME]  # no temporary file left


def test_a_state_torch_cannot_save_is_no_write_error(tmp_path, monkeypatch):
    """Only a failed write is a user's problem; any other RuntimeError keeps its traceback (a bug)."""
    def refuse(obj, f):
        raise RuntimeError("cannot pickle 'generator' object")

    monkeypatch.setattr(torch, "save", refuse)
    with pytest.raises(RuntimeError, match="cannot pickle"):
        checkpoint.save(tmp_path / checkpoint.FILENAME, {"x": torch.arange(3)})
    assert list(tmp_path.iterdir()) == []


def test_corrupt_checkpoint_is_a_suite_error(tmp_path):
    (tmp_path / checkpoint.FILENAME).write_bytes(b"garbage")
    with pytest.raises(SuiteError) as err:
        checkpoint.load(tmp_path / checkpoint.FILENAME)
    assert err.value.file == str(tmp_path / checkpoint.FILENAME)


# ------------------------------------------------------------------------------ determinism
def test_same_seed_same_metrics_and_file_layout(tmp_path):
    config = tiny(epochs=1, **{"measure.views": True})
    for name in "ab":
        (tmp_path / name).mkdir()
    a = run(config, tmp_path / "a", progress=False)
    b = run(config, tmp_path / "b", progress=False)
    assert untimed(a) == untimed(b)
    assert lines(tmp_path / "a") == lines(tmp_path / "b")
    assert_same_state(tmp_path / "a", tmp_path / "b")
    c = run(tiny(epochs=1, seed=1), None, progress=False)
    assert c["train_loss"] != a["train_loss"]
    (line,) = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    views = {f"test_{m}" for m in VIEW_METRICS}
    assert set(line) == {"epoch", "iteration", "lr", "train_loss", "train_top1_err", "test_top1_err",
                         "test_top5_err", "epoch_time_s", "loop_samples_per_sec", *views}
    assert all(0 <= line[k] <= 100 for k in views) and all(0 <= a[m] <= 100 for m in VIEW_METRICS)
    assert line["epoch"] == 1 and line["iteration"] == 11
    assert a["iterations"] == 11 and a["best_top1_err"] == a["top1_err"] and a["loop_samples_per_sec"] > 0


def test_evaluation_counts_on_the_device(monkeypatch):
    """No tensor made from host data per batch: on CUDA that is a blocking copy, a host sync each batch."""
    from suite.train.loop import evaluate

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 7)
    loader = [(torch.randn(5, 4), torch.randint(7, (5,))) for _ in range(3)]
    expected = evaluate(model, loader)

    def host_data(*args, **kwargs):
        raise AssertionError("torch.tensor in the evaluation loop")

    monkeypatch.setattr(torch, "tensor", host_data)
    assert evaluate(model, loader) == expected


def test_evaluation_runs_the_network_as_at_test_time():
    """Eval mode (BatchNorm on its running statistics, which the test images then leave alone) and
    no autograd: a network evaluated in training mode would be scored on each test batch's own
    statistics and carry the test set's into its next epoch."""
    from suite.train.loop import evaluate

    seen = []

    class Probe(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bn, self.fc = torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 7)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append((self.training, torch.is_grad_enabled()))
            return self.fc(self.bn(x))

    model = Probe().train()
    evaluate(model, [(torch.randn(5, 4) + 3, torch.randint(7, (5,))) for _ in range(2)])
    assert seen == [(False, False)] * 2
    assert torch.equal(model.bn.running_mean, torch.zeros(4))


def test_iterations_end_with_a_partial_epoch_and_its_evaluation(tmp_path, capsys):
    # eval_every=3: neither epoch 1 nor the partial epoch 2 is due, so only "the last epoch is always
    # evaluated" evaluates the end
    result = run(tiny(iterations=14, eval_every=3, **{"measure.views": True}), tmp_path, progress=False)
    log = capsys.readouterr().err  # the partial epoch is the log's second of two, not a second "epoch 1"
    assert "epoch 1 of 2 (iteration 11/14)" in log and "epoch 2 of 2 (iteration 14/14)" in log
    got = lines(tmp_path)
    assert [x["epoch"] for x in got] == [1, 1.2727]
    assert got[0]["test_top1_err"] is None and got[1]["test_top1_err"] is not None
    assert "test_top1_err_rot180" not in got[0] and got[1]["test_top1_err_rot180"] is not None  # views: at the end
    assert result["epochs"] == 1.2727 and result["iterations"] == 14


def test_best_top1_err_is_the_lowest_evaluated_epoch(tmp_path):
    result = run(tiny(epochs=3), tmp_path, progress=False)
    got = lines(tmp_path)
    assert len({x["test_top1_err"] for x in got}) == 3  # the epochs differ: the lowest and the highest are told apart
    best = min(got, key=lambda x: x["test_top1_err"])
    assert (result["best_top1_err"], result["best_epoch"]) == (best["test_top1_err"], best["epoch"])


def test_finished_run_is_not_trained_again(tmp_path):
    config = tiny(iterations=3)
    first = run(config, tmp_path, progress=False)
    with pytest.warns(SuiteWarning, match="training finished in an earlier attempt; its checkpoint's final metrics are used"):
        again = run(config, tmp_path, progress=False)
    assert again == first  # wall_time_s too: reading the metrics back adds no time
    with pytest.raises(SuiteError, match="different config"):
        run(tiny(iterations=4), tmp_path, progress=False)


def test_a_run_finished_without_the_views_is_evaluated_on_them_when_asked_not_retrained(tmp_path):
    """Resumed finished (its result.json lost) with measure.views on: the checkpoint's network is
    evaluated on the views, as when the run trained with it on (before the views existed, or off)."""
    first = run(tiny(iterations=3), tmp_path, progress=False)
    (tmp_path / "b").mkdir()
    with_views = run(tiny(iterations=3, **{"measure.views": True}), tmp_path / "b", progress=False)
    with pytest.warns(SuiteWarning, match="training finished in an earlier attempt"):
        again = run(tiny(iterations=3, **{"measure.views": True}), tmp_path, progress=False)
    assert untimed(again) == untimed(with_views)  # the same weights evaluated: the same errors, views included
    assert all(first[m] is None for m in VIEW_METRICS)
    assert checkpoint.load(tmp_path / checkpoint.FILENAME)["iteration"] == 3  # no step taken
    assert all(lines(tmp_path)[-1][f"test_{m}"] == again[m] for m in VIEW_METRICS)


@pytest.mark.parametrize("classes, top5", [(3, None), (5, None), (6, 0.0)])
def test_top5_error_needs_more_than_five_classes(classes, top5):
    from suite.train.loop import evaluate

    model = torch.nn.Linear(4, classes)
    loader = [(torch.randn(8, 4), torch.arange(8) % classes)]
    top1, five = evaluate(model, loader)
    assert 0 <= top1 <= 100 and (five is None if top5 is None else 0 <= five <= 100)


@pytest.mark.parametrize("name, moves", [
    ("flip_ud", {(0, 0): (2, 0), (0, 1): (2, 1), (1, 2): (1, 2)}),
    ("rot90_cw", {(0, 0): (0, 2), (0, 1): (1, 2), (1, 2): (2, 1)}),  # the top row becomes the right column
    ("rot90_ccw", {(0, 0): (2, 0), (0, 1): (1, 0), (1, 2): (0, 1)}),
    ("rot180", {(0, 0): (2, 2), (0, 1): (2, 1), (1, 2): (1, 0)}),
])
def test_views_turn_the_test_images_as_named(name, moves):
    """A 'model' that names the lit pixel of a 3x3 image: evaluated on the view, it is right exactly
    when the label is where the view moves the pixel on screen."""
    from suite.train.loop import evaluate

    images = torch.zeros(len(moves), 1, 3, 3)
    for i, (r, c) in enumerate(moves):
        images[i, 0, r, c] = 1
    moved = torch.tensor([3 * r + c for r, c in moves.values()])
    where = torch.nn.Flatten()
    assert evaluate(where, [(images, moved)], view=VIEWS[name])[0] == 0
    assert evaluate(where, [(images, moved)])[0] > 0  # the labels are the moved places, not the upright ones


def test_a_damaged_checkpoint_names_the_file(tmp_path):
    config = tiny(iterations=3)
    run(config, tmp_path, progress=False)
    path = tmp_path / checkpoint.FILENAME
    damages = [(lambda s: s.pop("loader"), "damaged checkpoint (no 'loader' entry)"),
               (lambda s: s["model"].pop(next(iter(s["model"]))), "damaged checkpoint (Error(s) in loading state_dict"),
               (lambda s: s.clear(), "not a checkpoint of this suite")]
    for damage, fragment in damages:
        state = checkpoint.load(path)
        damage(state)
        checkpoint.save(path, state)
        with pytest.raises(SuiteError) as err:
            run(config, tmp_path, progress=False)
        assert fragment in str(err.value) and err.value.file == str(path) and "delete it" in str(err.value)


def test_resuming_with_another_thread_count_warns(tmp_path):
    config = tiny(iterations=3)
    run(config, tmp_path, progress=False)  # one thread (the fixture)
    path = tmp_path / checkpoint.FILENAME
    state = checkpoint.load(path)
    checkpoint.save(path, {**state, "threads": 7})
    with pytest.warns(SuiteWarning) as caught:  # finished: nothing is trained, the count cannot matter
        run(config, tmp_path, progress=False)
    assert [str(w.message) for w in caught if "CPU threads" in str(w.message)] == []
    checkpoint.save(path, {**state, "threads": 7, "iteration": 0})  # as if stopped before its first step
    with pytest.warns(SuiteWarning, match="resuming with 1 CPU threads, the checkpoint's run used 7"):
        run(config, tmp_path, progress=False)


def test_resuming_with_another_number_of_processes_warns(tmp_path):
    """A DDP run's BatchNorm normalises each process's share of the global batch, so a run resumed
    with another world size (a --retry-failed with other --tasks-per-node) ends elsewhere."""
    config = tiny(iterations=3)
    run(config, tmp_path, progress=False)
    path = tmp_path / checkpoint.FILENAME
    state = checkpoint.load(path)
    assert state["world_size"] == 1
    checkpoint.save(path, {**state, "world_size": 2, "iteration": 0})  # as if a 2-process run stopped early
    with pytest.warns(SuiteWarning, match="resuming with 1 process, the checkpoint's run used 2"):
        run(config, tmp_path, progress=False)


def test_resuming_with_more_processes_than_the_checkpoints_run_warns(tmp_path):
    """The other way round: a one-process run retried with two tasks per node."""
    from suite.train.distributed import Dist

    config = tiny(iterations=3)
    run(config, tmp_path, progress=False)
    path = tmp_path / checkpoint.FILENAME
    checkpoint.save(path, {**checkpoint.load(path), "iteration": 0})  # as if stopped before its first step
    torch.distributed.init_process_group("gloo", init_method=(tmp_path / "rendezvous").as_uri(), rank=0, world_size=1)
    try:  # rank 0 of two as the trainer is told; its collectives go to a group of one
        trainer = Trainer(config, tmp_path, env=Dist(rank=0, world_size=2), device=torch.device("cpu"), progress=False)
        with pytest.warns(SuiteWarning, match="resuming with 2 processes, the checkpoint's run used 1"):
            trainer.fit()
    finally:
        torch.distributed.destroy_process_group()

def test_resuming_a_finished_run_with_another_number_of_processes_does_not_warn(tmp_path):
    """Nothing is left to train, so the number of processes cannot change the result."""
    config = tiny(iterations=3)
    run(config, tmp_path, progress=False)
    path = tmp_path / checkpoint.FILENAME
    checkpoint.save(path, {**checkpoint.load(path), "world_size": 2})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(config, tmp_path, progress=False)
    assert [str(w.message) for w in caught if "process" in str(w.message)] == []


def test_a_run_directory_that_cannot_be_made_fails_first(tmp_path, capsys):
    (tmp_path / "afile").touch()
    for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        assert main(["train", "ran56_cifar", "iterations=1", "--run-dir", str(out)]) == 2
        assert f"{out}: --run-dir: cannot make the run directory" in capsys.readouterr().err


def test_the_trainer_makes_no_run_folder(tmp_path):
    """A run's folder deleted while it runs (`rm -rf` of the run or of the store) came back with
    the trainer made for it (or for its attack after training), holding a checkpoint or metrics
    alone: a folder that looks like a run and is none. The folder is the caller's to make."""
    gone = tmp_path / "store" / "runs" / "r"
    with pytest.raises(SuiteError, match="no such folder: a run.s folder is made by what plans the run") as err:
        run(tiny(iterations=1), gone, progress=False)
    assert err.value.file == str(gone) and not (tmp_path / "store").exists()


# ------------------------------------------------------------------------------------- resume
CHILD = textwrap.dedent("""
    import json, os, signal, sys, torch
    torch.set_num_threads(1)
    from suite.config import resolve
    from suite.train import run

    def kill_after_epoch_2(line):
        if line["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    run(resolve(json.loads(sys.argv[1])), sys.argv[2], progress=False, on_epoch_end=kill_after_epoch_2)
""")


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    values = {**TINY, "epochs": 4}
    config = resolve(values)
    (tmp_path / "straight").mkdir()
    straight = run(config, tmp_path / "straight", progress=False)

    killed = tmp_path / "killed"
    killed.mkdir()
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(values), str(killed)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert checkpoint.load(killed / checkpoint.FILENAME)["iteration"] == 22
    assert len(lines(killed)) == 2

    resumed = run(config, killed, progress=False)
    assert untimed(resumed) == untimed(straight)
    assert lines(killed) == lines(tmp_path / "straight")
    assert_same_state(killed, tmp_path / "straight")


def test_checkpoint_request_mid_epoch_then_resume(tmp_path):
    config = tiny(epochs=2, **{"data.clean_ratio": 0.8})
    for name in ("straight", "stopped"):
        (tmp_path / name).mkdir()
    straight = run(config, tmp_path / "straight", progress=False)
    request_checkpoint()  # as a signal handler would; the loop acts at its next sync point
    with pytest.raises(Preempted) as stop:
        run(config, tmp_path / "stopped", progress=False)
    assert stop.value.iteration == 16  # mid-epoch 2 (11 steps per epoch)
    assert checkpoint.load(tmp_path / "stopped" / checkpoint.FILENAME)["iteration"] == 16
    assert not checkpoint.checkpoint_requested()
    resumed = run(config, tmp_path / "stopped", progress=False)
    assert untimed(resumed) == untimed(straight)
    assert_same_state(tmp_path / "stopped", tmp_path / "straight")


def _global_draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), torch.rand(()).item()


def test_resume_continues_the_global_random_generators(tmp_path):
    """A resumed run's Python, NumPy and torch generators continue from the checkpoint, not from the
    seed: something drawing from them in training (dropout, an augmentation) goes on as it would
    have. Nothing in these models draws, so draws after epoch 1's checkpoint stand in for it."""
    config = tiny(epochs=2)

    def draw_after_epoch_1(line):  # after epoch 1's checkpoint: epoch 2's checkpoint holds the advanced state
        if line["epoch"] == 1:
            _global_draws()

    Trainer(config, tmp_path).fit(on_epoch_end=draw_after_epoch_1)
    expected = _global_draws()
    with pytest.warns(SuiteWarning, match="training finished in an earlier attempt"):
        Trainer(config, tmp_path).fit()  # seeds the generators afresh, then restores the checkpoint's
    assert _global_draws() == expected


# -------------------------------------------------------------------------- failure modes
def test_diverging_loss_raises():
    """Caught at the end of the first epoch (iteration 11 of 11 a epoch): epoch 1, not 2; no advice
    to use fp32 to a run in fp32."""
    with pytest.raises(Diverged, match="not finite") as err:
        run(tiny(iterations=40, lr=1e12, weight_decay=0.0), None, progress=False)
    assert "by iteration 11 (epoch 1); lower lr or add warm-up" in err.value.message
    assert "amp=fp32" not in err.value.message


def test_synthetic_never_reports_accuracy(tmp_path):
    result = run(tiny(iterations=3, **{"data.name": "synthetic", "data.input_size": 8}), tmp_path, progress=False)
    assert result["top1_err"] is result["top5_err"] is result["best_top1_err"] is result["train_top1_err"] is None
    assert result["train_loss"] > 0
    assert all(x["test_top1_err"] is None and x["train_top1_err"] is None for x in lines(tmp_path))


def test_bf16_autocast_on_cpu():
    result = run(tiny(iterations=2, amp="bf16", channels_last=True), None, progress=False)
    assert result["iterations"] == 2 and result["train_loss"] > 0


def test_config_errors():
    with pytest.raises(SuiteError) as err:
        run(tiny(iterations=2, device="tpu"), None, progress=False)
    assert err.value.key == "device"
    with pytest.raises(SuiteError, match=r"batch_size 1438 is larger than the training set \(digits: 1,437 images\)") as err:
        tiny(iterations=2, batch_size=1438)  # said when the config resolves, before any run starts
    assert err.value.key == "batch_size"
    assert run(tiny(iterations=1, batch_size=1437), None, progress=False)["iterations"] == 1  # one step an epoch
    with pytest.raises(SuiteError, match=r"one value per channel \(input of size \[1, \d+, 1, 1\]\)") as err:
        run(tiny(iterations=2, batch_size=1, **{"data.input_size": 4}), None, progress=False)  # a 1x1 last map
    assert err.value.key == "batch_size"
    # 2x2: BN can train it (on random images: no test split to score one image at a time)
    assert run(tiny(iterations=1, batch_size=1, **{"data.name": "synthetic"}), None, progress=False)["iterations"] == 1


# ------------------------------------------------------------------------------- distributed
DDP_CHILD = textwrap.dedent("""
    import json, sys, torch
    torch.set_num_threads(1)
    from suite.config import resolve
    from suite.train.distributed import distributed
    from suite.train.loop import Trainer

    config, run_dir, out = resolve(json.loads(sys.argv[1])), sys.argv[2], sys.argv[3]
    with distributed(config.device) as (env, device):
        trainer = Trainer(config, __import__("pathlib").Path(run_dir), env=env, device=device)
        metrics = trainer.fit()
        torch.save({"model": trainer.model.state_dict(), "metrics": metrics, "world": env.world_size},
                   f"{out}/rank{env.rank}.pt")
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_slurm_tasks_become_torchrun_variables(monkeypatch):
    from submitit.helpers import TorchDistributedEnvironment

    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SUBMITIT_EXECUTOR"):
        monkeypatch.setenv(key, "")  # records the original state, so teardown restores it
        monkeypatch.delenv(key)
    slurm = {"SLURM_JOB_ID": "123", "SLURM_NTASKS": "4", "SLURM_PROCID": "3", "SLURM_LOCALID": "1",
             "SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_JOB_NUM_NODES": "2", "SLURM_NODEID": "1",
             "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "4"}  # what srun sets in each task
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")  # only to ask submitit which port a job of its would use
    submitits = TorchDistributedEnvironment().master_port
    monkeypatch.delenv("SUBMITIT_EXECUTOR")
    assert _world_size_from_env() == 4
    assert (os.environ["RANK"], os.environ["LOCAL_RANK"], os.environ["MASTER_ADDR"]) == ("3", "1", "gpu07")
    assert os.environ["MASTER_PORT"] == str(submitits) and 20_000 <= submitits <= 60_000  # ranks meet either way
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("MASTER_PORT", "29501")  # the user's own choice (a port free on the first node)
    assert _world_size_from_env() == 4 and os.environ["MASTER_PORT"] == "29501"


def test_a_batch_script_of_several_tasks_is_one_process(monkeypatch):
    """`sbatch -n 2` (or salloc) running `suite train` or `suite run` without srun: the batch script
    has SLURM_NTASKS=2 and SLURM_PROCID=0, but it is one process, not a step of two tasks; taken for
    rank 0 of two, it waited 30 minutes for a rank 1 that never comes."""
    from suite.execute import rank

    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_STEP_ID",
                "SLURM_STEP_NUM_TASKS"):
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    batch = {"SLURM_JOB_ID": "123", "SLURM_NTASKS": "2", "SLURM_NPROCS": "2", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0", "SLURM_JOB_NODELIST": "vm", "SLURM_JOB_NUM_NODES": "1", "SLURM_NODEID": "0"}
    for key, value in batch.items():
        monkeypatch.setenv(key, value)
    assert _world_size_from_env() == 1 and rank() == 0
    assert "WORLD_SIZE" not in os.environ
    monkeypatch.setenv("WORLD_SIZE", "2")  # without RANK, not torchrun's: joining a group would fail
    assert _world_size_from_env() == 1


def test_a_process_group_the_caller_made_says_how_many_processes_train(tmp_path, monkeypatch):
    """Rule 1 of suite.train.distributed: a group the caller initialised is the one that trains (and
    what a result's env.processes records), whatever a SLURM step around it says."""
    from suite.train.distributed import distributed, world_size

    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.setenv(key, "")  # records the original state, so teardown restores it
        monkeypatch.delenv(key)
    step = {"SLURM_JOB_ID": "123", "SLURM_NTASKS": "4", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
            "SLURM_JOB_NODELIST": "vm", "SLURM_JOB_NUM_NODES": "1", "SLURM_NODEID": "0", "SLURM_STEP_ID": "0",
            "SLURM_STEP_NUM_TASKS": "4"}
    for key, value in step.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LOCAL_RANK", "1")  # the caller's: which of the node's GPUs this process takes
    torch.distributed.init_process_group("gloo", init_method=(tmp_path / "rendezvous").as_uri(), rank=0, world_size=1)
    try:
        assert world_size() == 1
        with distributed("cpu") as (env, device):
            assert (env.rank, env.world_size, env.local_rank, device) == (0, 1, 1, torch.device("cpu"))
        assert torch.distributed.is_initialized()  # the caller's group outlives the run: left alone on exit
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


BROADCAST_CHILD = textwrap.dedent("""
    import sys, torch
    from suite.train.distributed import Dist
    rank, rendezvous, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    torch.distributed.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=2)
    module = torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        for t in (*module.parameters(), *module.buffers()):
            t.fill_(rank + 1)
    Dist(rank, 2).broadcast_buffers(module)
    torch.save(module.state_dict(), out)
    torch.distributed.destroy_process_group()
""")


def test_broadcast_buffers_gives_every_rank_rank_0s(tmp_path):
    """Two real gloo ranks, no training (the slow test below covers that): rank 1 ends with rank 0's
    BN statistics and keeps its own weights, which only DDP's gradient averaging keeps equal."""
    rendezvous = (tmp_path / "rendezvous").as_uri()
    procs = [subprocess.Popen([sys.executable, "-c", BROADCAST_CHILD, str(rank), rendezvous, str(tmp_path / f"{rank}.pt")],
                              stderr=subprocess.PIPE, text=True) for rank in range(2)]
    try:
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
    finally:  # a rank left waiting for the other (a broadcast from the wrong root) is not left behind
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for rank in range(2):
        state = torch.load(tmp_path / f"{rank}.pt")
        for key in ("running_mean", "running_var", "num_batches_tracked"):
            assert torch.all(state[key] == 1), (rank, key)  # rank 0's
        assert torch.all(state["weight"] == rank + 1) and torch.all(state["bias"] == rank + 1)


@pytest.mark.slow
def test_two_gloo_ranks_end_with_identical_weights(tmp_path):
    values = {**TINY, "epochs": 1, "device": "cpu"}
    port = _free_port()
    (tmp_path / "run").mkdir()  # the run's folder is its planner's to make, never the trainer's
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, "-c", DDP_CHILD, json.dumps(values), str(tmp_path / "run"),
                                       str(tmp_path)], env=env, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2))
    assert r0["world"] == r1["world"] == 2
    for key in r0["model"]:
        assert torch.equal(r0["model"][key], r1["model"][key]), key
    assert untimed(r0["metrics"]) == untimed(r1["metrics"])  # all-reduced
    assert r0["metrics"]["iterations"] == 11  # the global batch of 128 is split 64 + 64
    assert len(lines(tmp_path / "run")) == 1  # only rank 0 writes


# ---------------------------------------------------------------------------------------- CLI
def test_cli_prints_final_metrics_as_last_json_line(tmp_path, capsys):
    code = main(["train", "ran56_cifar", "--dataset", "digits", "--run-dir", str(tmp_path), "--no-progress", "--threads", "1",
                 "model.base_width=4", "data.input_size=8", "iterations=2", "batch_size=32"])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    metrics = json.loads(last)
    assert metrics["iterations"] == 2 and 0 <= metrics["top1_err"] <= 100 and metrics["top5_err"] <= metrics["top1_err"]
    assert (tmp_path / "checkpoint.pt").exists()


def test_cli_config_error_exits_2(capsys, tmp_path, monkeypatch):
    assert main(["train", "ran56_cifar", "--recipe", "nope", "--no-progress"]) == 2
    assert "recipe" in capsys.readouterr().err
    monkeypatch.setenv("SUITE_DATA", str(tmp_path / "data"))  # an empty data root: CIFAR-10 is missing
    assert main(["train", "ran56_cifar", "--dataset", "cifar10", "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "cifar10: missing data_batch_1" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # said before anything is made


@pytest.mark.parametrize("argv,key,says", [
    (["model.name=ran92_cifar"], "model.name", "given twice: as MODEL and as an override"),
    (["--dataset", "synthetic", "data={name: digits}"], "data.name", "given twice: as --dataset"),
    (["--recipe", "ran_cifar", "recipe=smoke"], "recipe", "given twice: as --recipe"),
    (["measure.attack=true"], "measure.attack", "`suite train` trains and evaluates only"),
    (["lr_milestones=[0.5]"], "lr_milestones", "only schedule step uses it"),  # smoke's cosine: unused
])
def test_cli_refuses_an_override_it_would_drop_or_that_would_win_silently(tmp_path, capsys, argv, key, says):
    assert main(["train", "ran56_cifar", "--run-dir", str(tmp_path / "run"), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert f"<command line>: {key}: {says}" in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_cli_sigterm_or_sighup_stops_training_as_ctrl_c_does(tmp_path, capsys, monkeypatch, signum,
                                                               hangup_default):
    import suite.train

    def killed(*args, **kwargs):
        os.kill(os.getpid(), signum)  # a real signal, as a cluster's or a CI's timeout sends it
        raise AssertionError(f"{signal.Signals(signum).name} did not stop the run")

    monkeypatch.setattr(suite.train, "run", killed)
    assert main(["train", "ran56_cifar", "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 128 + signum
    assert f"interrupted; the same command resumes from {tmp_path / 'run'}" in capsys.readouterr().err
    assert signal.getsignal(signum) is signal.SIG_DFL  # the handler is this command's only


def test_cli_leaves_sighup_ignored_under_nohup(tmp_path, capsys, monkeypatch):
    import suite.train

    def hung_up(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGHUP)
        return {"top1_err": 1.0}

    monkeypatch.setattr(suite.train, "run", hung_up)
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as `nohup suite train ...` starts it
    try:
        assert main(["train", "ran56_cifar", "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"top1_err": 1.0}


# ---------------------------------------------------------------------------------- accuracy
@pytest.mark.slow
def test_smoke_recipe_learns_digits():
    """The smoke recipe (4 epochs, batch 8, cosine from 0.05) on real held-out digits."""
    config = resolve({"model.name": "ran56_cifar", "model.base_width": 4, "data.name": "digits", "recipe": "smoke",
                      "measure.views": True})
    result = run(config, None, progress=False)
    assert result["top1_err"] <= 10.0, result
    # Digits turned over are other shapes (a 6 upside down reads as a 9): far more errors than upright.
    assert all(result[f"top1_err_{view}"] >= 30 + result["top1_err"] for view in VIEWS), result
