"""The targeted PGD attack (suite.measure.attack): exact steps on a model whose attack has a closed
form, bounds, targets, batching, a real trained network, and a done run attacked without training."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from suite import ablations, store
from suite.cli import main
from suite.config import DataConfig, parse_overrides, resolve
from suite.errors import SuiteError, SuiteWarning
from suite.data import build
from suite.measure.attack import ALPHA, FP16_LOSS_SCALE, _input_gradient, attack, success_rates, targets_for
from suite.metrics import ATTACK_METRICS, ATTACK_STEPS

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def _normalise(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - torch.tensor(MEAN).view(1, -1, 1, 1)) / torch.tensor(STD).view(1, -1, 1, 1)


def _pixels(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tensor(STD).view(1, -1, 1, 1) + torch.tensor(MEAN).view(1, -1, 1, 1)


class Linear(nn.Module):
    """Two classes; class 1's logit grows with every pixel (in pixel units): the targeted attack
    towards class 1 raises every pixel by ALPHA a step, as far as the eps-ball and 1 allow."""

    def __init__(self, bias: float) -> None:
        super().__init__()
        self.bias = bias
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        up = _pixels(x).flatten(1).sum(1) + self.bias
        return torch.stack([torch.zeros_like(up), up], 1)


def test_each_step_is_the_closed_form_of_targeted_pgd():
    torch.manual_seed(0)
    clean = torch.rand(64, 3, 4, 4)
    clean[:8] = 1.0  # saturated images: the pixel range, not eps, stops them
    eps = 6 / 255
    model = Linear(bias=-clean.flatten(1).sum(1).median().item() - 0.5)  # about half need > +0.5 in total
    reached = attack(model, _normalise(clean), torch.ones(64, dtype=torch.long), mean=MEAN, std=STD, eps=eps,
                     steps=range(0, 11))
    assert sorted(reached) == list(range(11)) and len(model.seen) == 11  # one forward per step count, no more
    for t in range(11):
        expected = torch.minimum(clean + min(t * ALPHA, eps), torch.ones(()))
        assert torch.allclose(_pixels(model.seen[t]), expected, atol=1e-5), t
        assert torch.equal(reached[t], expected.flatten(1).sum(1) + model.bias > 0), t
    assert not reached[0].all() and reached[10].sum() > reached[0].sum()  # the attack moved some images over


def test_perturbations_stay_in_the_eps_ball_and_the_pixel_range():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 5))
    seen = []
    net[0].register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].detach()))
    clean = torch.rand(16, 3, 6, 6)
    clean[:, :, 0] = 0.0  # pixels at the bounds of the range
    clean[:, :, 1] = 1.0
    target = targets_for(torch.zeros(16, dtype=torch.long), range(16), 5, seed=3)
    attack(net.eval(), _normalise(clean), target, mean=MEAN, std=STD, eps=4 / 255)
    assert len(seen) == max(ATTACK_STEPS) + 1
    for x in seen:
        pixels = _pixels(x)
        assert (pixels - clean).abs().max() <= 4 / 255 + 1e-5
        assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    assert (_pixels(seen[-1]) - clean).abs().max() > 3 / 255  # it did move



def test_float16_gradients_too_small_for_float16_still_steer_the_attack():
    # Weights of 1e-5: the gradient to the input (~1e-8) flushes to zero in float16 unless the loss
    # is scaled up for the backward; then the first step is the float32 attack's.
    torch.manual_seed(2)
    net = nn.Sequential(nn.Flatten(), nn.Linear(48, 32, bias=False), nn.Linear(32, 10, bias=False))
    with torch.no_grad():
        for layer in net[1:]:
            layer.weight.mul_(1e-5 / layer.weight.abs().mean())
    clean, target = torch.rand(8, 3, 4, 4), torch.arange(8)
    first = {}
    for name, autocast in [("fp32", contextlib.nullcontext),
                           ("fp16", lambda: torch.autocast("cpu", dtype=torch.float16))]:
        seen = []
        hook = net[1].register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].detach()))
        attack(net, _normalise(clean), target, mean=MEAN, std=STD, eps=4 / 255, steps=[1], autocast=autocast)
        hook.remove()
        first[name] = (_pixels(seen[1].view(-1, 3, 4, 4)) - clean).sign()
    assert first["fp32"].ne(0).all()
    assert first["fp16"].eq(first["fp32"]).float().mean() > 0.95



def test_a_loss_scale_that_overflows_float16_backs_off():
    image = torch.rand(4, 3, requires_grad=True)
    loss = (image.half() * 1000).float().sum()  # 1000 x 2**15 overflows float16 on the way back
    grad, scale = _input_gradient(loss, image, FP16_LOSS_SCALE)
    assert 1 < scale < FP16_LOSS_SCALE and torch.isfinite(grad).all()
    assert torch.allclose(grad / scale, torch.full_like(grad, 1000))


def test_targets_are_other_classes_fixed_by_seed_and_image_index():
    labels = torch.arange(1000) % 10
    targets = targets_for(labels, range(1000), 10, seed=7)
    assert (targets != labels).all() and targets.min() >= 0 and targets.max() < 10
    assert len(set((targets - labels).remainder(10).tolist())) == 9  # every other class is drawn
    assert torch.equal(targets_for(labels[500:], range(500, 1000), 10, seed=7), targets[500:])  # by index, not by batch
    assert not torch.equal(targets_for(labels, range(1000), 10, seed=8), targets)
    assert (targets_for(torch.zeros(50, dtype=torch.long), range(50), 2, seed=0) == 1).all()
    one_class = [(torch.zeros(2, 3, 1, 1), torch.zeros(2, dtype=torch.long))]
    with pytest.raises(SuiteError, match="a targeted attack needs at least two classes") as err:
        success_rates(nn.Flatten(), one_class, images=2, size=2, batch_size=2, num_classes=1, mean=MEAN, std=STD,
                      eps=0.0, seed=0)
    assert err.value.key == "model.num_classes"


def _digits(batch_size: int = 64):
    return build(DataConfig(name="digits", input_size=8), batch_size=batch_size, seed=0, num_classes=10)


def test_success_rates_count_the_first_images_whatever_the_batching():
    data = _digits(batch_size=50)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 10)).eval()
    common = dict(num_classes=10, mean=data.mean, std=data.std, eps=16 / 255, seed=0, size=data.test_size)
    one = success_rates(net, data.test, images=70, batch_size=50, **common)
    other = success_rates(net, data.test, images=70, batch_size=3, **common)
    assert one["attack_images"] == other["attack_images"] == 70
    assert one == other and set(one) == {*ATTACK_METRICS, "attack_images"}
    whole = success_rates(net, data.test, images=10**6, batch_size=64, **common)
    assert whole["attack_images"] == 360 and whole == success_rates(net, data.test, images=360, batch_size=64, **common)
    # 360 // 7 = 51: 8 images are every 51st, the first 7 are attacked, in a loader batch or across them
    xs, ys = zip(*data.test)
    single = success_rates(net, [(torch.cat(xs), torch.cat(ys))], images=7, batch_size=64, **common)
    assert single["attack_images"] == 7 and single == success_rates(net, data.test, images=7, batch_size=64, **common)


def test_the_attacked_images_are_spread_over_the_split():
    """A class-ordered split (ImageNet's validation folder) is attacked across its classes, not
    on its first classes only: every (size // images)-th image, whatever the batching."""
    labels = torch.arange(10).repeat_interleave(30)  # 300 images, 10 classes in order
    images = torch.arange(300.0).view(300, 1, 1, 1).expand(300, 3, 1, 1)
    loader = [(images[i:i + 64], labels[i:i + 64]) for i in range(0, 300, 64)]
    seen = []

    def spy(x: torch.Tensor) -> torch.Tensor:
        seen.append(x[:, 0, 0, 0].detach())
        return torch.zeros(len(x), 10)

    class Spy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return spy(x) + 0 * x.sum()

    out = success_rates(Spy(), loader, images=20, size=300, batch_size=7, num_classes=10, mean=(0.0,) * 3,
                        std=(1.0,) * 3, eps=0.0, seed=0)
    clean = torch.cat([s for s in seen[::17]])  # the first forward of each attacked chunk: the clean images
    assert out["attack_images"] == 20 and clean.tolist() == [float(i) for i in range(0, 300, 15)]


def test_an_interrupted_attack_resumes_where_it_stopped_to_the_uninterrupted_rates():
    data = _digits(batch_size=50)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 10)).eval()
    common = dict(num_classes=10, mean=data.mean, std=data.std, eps=16 / 255, seed=0, size=data.test_size,
                  images=70, batch_size=8)
    whole = success_rates(net, data.test, **common)
    saved = []

    def stop_after_three(progress: dict) -> None:
        saved.append(progress)
        if len(saved) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        success_rates(net, data.test, **common, on_part=stop_after_three)
    assert [p["seen"] for p in saved] == [8, 10, 18]  # 10 images chosen in each loader batch of 50
    rows = []
    counting = nn.Sequential(net)
    counting.register_forward_hook(lambda module, args, out: rows.append(len(args[0])))
    resumed = success_rates(counting, data.test, **common, resume=saved[-1])
    assert resumed == whole
    assert sum(rows) == (70 - 18) * (max(ATTACK_STEPS) + 1)  # the 18 images done are not attacked again


def test_a_time_limit_during_the_attack_requeues_from_its_progress(tmp_path, monkeypatch):
    """SLURM's warning signal (the checkpoint request) during the attack stops it after the batch
    at hand with its progress kept; the next attempt attacks only the rest, to the same rates."""
    import suite.measure.attack as attacking
    from suite.execute import execute
    from suite.train import checkpoint, loop

    spec = tmp_path / "attacked.yaml"
    spec.write_text("name: attacked\nbase:\n  model: {name: ran56_cifar, base_width: 4}\n  data: {name: digits}\n"
                    "  recipe: smoke\ngrid:\n  lr: [0.05]\nseeds: 1\n")
    overrides = parse_overrides([*FAST, "measure.complexity=false", "measure.attack=true", "measure.attack_images=6"])
    [run] = ablations.expand(ablations.load(spec), overrides=overrides)
    out, d = tmp_path / "store", store.run_dir(tmp_path / "store", run.run_id)
    trained = loop.trained

    def trained_then_signalled(*args: object) -> object:  # the signal arrives once training is over
        network = trained(*args)
        checkpoint.request_checkpoint()
        return network

    monkeypatch.setattr(loop, "trained", trained_then_signalled)
    attacked: list[int] = []  # images per batch attacked
    steps: list[tuple[torch.Tensor, list[torch.Tensor]]] = []  # per batch: the clean images, what the network saw
    attack = attacking.attack

    def watched(model: nn.Module, x: torch.Tensor, *a: object, **k: object) -> object:
        seen: list[torch.Tensor] = []
        hook = model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
        try:
            return attack(model, x, *a, **k)
        finally:
            hook.remove()
            attacked.append(len(x))
            steps.append((x.detach().clone(), seen))

    monkeypatch.setattr(attacking, "attack", watched)
    with pytest.raises(checkpoint.Preempted, match=attacking.PROGRESS_FILE):
        execute(run, out)
    progress = store.read_json(d / attacking.PROGRESS_FILE)
    assert attacked == [progress["seen"]] and not (d / "result.json").exists()  # stopped after one batch
    assert store.state_of(d).state == "interrupted" and not checkpoint.checkpoint_requested()

    monkeypatch.setattr(loop, "trained", trained)
    attacked.clear()
    with pytest.warns(SuiteWarning, match="training finished in an earlier attempt"):  # the requeued job's
        result = execute(run, out)
    assert sum(attacked) == 6 - progress["seen"] and result["attack"]["attack_images"] == 6
    assert not (d / attacking.PROGRESS_FILE).exists()
    assert result["attack"] == attacking.measure_attack(run.config, d)  # the uninterrupted attack
    # measure.attack_eps is in pixel units (8 / 255 by default) and the pixels are the data's own
    data = loop.trained(run.config, d).data
    std, mean = torch.tensor(data.std).view(1, -1, 1, 1), torch.tensor(data.mean).view(1, -1, 1, 1)
    moved = 0.0
    for x, seen in steps:
        clean = x * std + mean
        assert float((seen[1] * std + mean - clean).abs().max()) <= 1 / 255 + 1e-5  # a step is 1 / 255
        for image in (s * std + mean for s in seen):
            assert image.min() >= -1e-5 and image.max() <= 1 + 1e-5
            moved = max(moved, float((image - clean).abs().max()))
    assert 7 / 255 < moved <= 8 / 255 + 1e-5
    # the 6 images are spread over the test split's 360 (every 60th), not its first batches
    split = torch.cat([x for x, _ in data.test])
    assert len(split) == 360 and torch.equal(torch.cat([x for x, _ in steps])[:6], split[::60])


def test_progress_made_otherwise_or_damaged_is_not_resumed(tmp_path):
    from suite.measure.attack import _progress

    path = tmp_path / "attack_progress.json"
    made_with = {"attack_images": 12, "attack_eps": 8.0}
    hits = {str(t): 1 for t in ATTACK_STEPS}
    store.write_json(path, {"made_with": made_with, "seen": 4, "hits": hits})
    assert _progress(path, made_with) == {"seen": 4, "hits": hits}
    assert _progress(path, {**made_with, "attack_eps": 2.0}) is None  # other settings: start over
    store.write_json(path, {"made_with": made_with, "seen": "4", "hits": hits})
    with pytest.warns(SuiteWarning, match="not an attack's progress"):
        assert _progress(path, made_with) is None
    path.write_text('{"made_with": ')
    with pytest.warns(SuiteWarning, match=f"{path}.*corrupt record.*starts over"):
        assert _progress(path, made_with) is None


def test_a_trained_network_falls_to_a_large_eps_and_not_to_a_tiny_one():
    """Real data, a really trained network: the attack works, and its strength is eps's."""
    data = _digits()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimiser = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for _ in range(15):
        for x, y in data.train:
            optimiser.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            optimiser.step()
    net.eval()
    with torch.no_grad():
        errors = sum(int((net(x).argmax(1) != y).sum()) for x, y in data.test)
    assert errors / 360 < 0.15  # it did learn
    common = dict(images=360, size=360, batch_size=64, num_classes=10, mean=data.mean, std=data.std, seed=0)
    strong = success_rates(net, data.test, eps=16 / 255, **common)
    weak = success_rates(net, data.test, eps=0.01 / 255, **common)
    assert strong["attack_success_16"] > 10 and strong["attack_success_16"] > 3 * strong["attack_success_1"]
    assert weak["attack_success_16"] < 2  # about the clean images already classified as their target


FAST = ["epochs=0.25", "measure.steps=1", "measure.warmup=1", "measure.batch_size=2", "measure.throughput=false"]


def test_a_done_run_asked_for_the_attack_is_attacked_from_its_checkpoint_not_retrained(tmp_path, capsys):
    spec = tmp_path / "attacked.yaml"
    spec.write_text("name: attacked\nbase:\n  model: {name: ran56_cifar, base_width: 4}\n  data: {name: digits}\n"
                    "  recipe: smoke\ngrid:\n  lr: [0.05]\nseeds: 1\n"
                    "report: {rows: [lr], metrics: [top1_err, attack_success_16]}\n")
    out = tmp_path / "store"
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *FAST]) == 0
    [run] = ablations.expand(ablations.load(spec), overrides=parse_overrides(FAST))
    d = store.run_dir(out, run.run_id)
    before = store.read_json(d / "result.json")
    assert before["attack"] is None and before["config"]["measure.attack"] is False
    trained = {name: (d / name).read_bytes() for name in ("checkpoint.pt", "metrics.jsonl")}
    capsys.readouterr()
    assert main(["report", str(spec), "--out", str(out), "--to", "-", "--format", "md", *FAST]) == 0
    assert "measure.attack=true on the command line" in capsys.readouterr().out  # why attack_success_16 is empty

    attacked = [*FAST, "measure.attack=true", "measure.attack_images=12"]
    assert main(["run", str(spec), "--out", str(out), "--no-progress", "--dry-run", *attacked]) == 0
    assert "(measure again: measure.attack (False, not True))" in capsys.readouterr().out
    assert main(["run", str(spec), "--out", str(out), "--no-progress", *attacked]) == 0
    assert "1 done, 0 failed" in capsys.readouterr().out
    after = store.read_json(d / "result.json")
    assert trained == {name: (d / name).read_bytes() for name in trained}  # not trained again
    assert after["metrics"] == before["metrics"] and after["complexity"] == before["complexity"]
    assert after["attack"]["attack_images"] == 12 and after["config"]["measure.attack_images"] == 12
    assert all(0 <= after["attack"][m] <= 100 for m in ATTACK_METRICS)
    frame = store.collect(out, [run.run_id])
    assert frame.loc[0, "attack_success_16"] == after["attack"]["attack_success_16"]

    # Asked again with the same settings: current. Without the attack: current too (more than asked).
    for overrides in (attacked, FAST):
        assert main(["run", str(spec), "--out", str(out), "--no-progress", *overrides]) == 0
        assert "nothing to run: 1 done" in capsys.readouterr().out
    # Another eps: attacked again.
    assert main(["run", str(spec), "--out", str(out), "--no-progress", "--dry-run", *attacked,
                 "measure.attack_eps=2"]) == 0
    assert "measure.attack_eps (8.0, not 2.0)" in capsys.readouterr().out


def test_a_result_written_before_the_attack_existed_is_attacked_when_asked():
    run = ablations.expand(ablations.load("quick"), overrides=parse_overrides(["measure.attack=true"]))[0]
    made = {k: v for k, v in run.config.flat().items() if not k.startswith("measure.attack")}
    assert store.stale_parts(run, {"config": made}) == {"attack": ["measure.attack (False, not True)"]}
    plain = ablations.expand(ablations.load("quick"))[0]
    assert store.stale_parts(plain, {"config": made}) == {}


def test_attack_settings_are_checked():
    base = {"model": {"name": "ran56_cifar", "base_width": 4}, "data": {"name": "digits"}, "recipe": "smoke"}
    with pytest.raises(SuiteError) as err:
        resolve({**base, "data": {"name": "synthetic"}, "model": {"name": "resnet26"}, "measure": {"attack": True}})
    assert err.value.key == "measure.attack" and "labels mean nothing" in err.value.message
    for key, value in (("attack_images", 0), ("attack_eps", -1.0)):
        with pytest.raises(SuiteError) as err:
            resolve({**base, "measure": {"attack": True, key: value}})
        assert err.value.key == f"measure.{key}" and "must be positive" in err.value.message
    assert resolve({**base, "measure": {"attack": True}}).measure.attack_images == 1000
