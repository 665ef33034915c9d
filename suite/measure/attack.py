"""Robustness to adversarial attack (SAN, Sec. 5: self-attention networks resist adversarial attack
better than convolutional ones): the success rate of a targeted attack on a run's trained network.

The paper's attack settings are not in this project's reference material; the protocol here is
the standard white-box one, and every choice is a `measure.*` setting or written below:

- Targeted projected gradient descent in L-infinity (Madry et al. 2018): each step moves the image
  by `alpha` against the sign of the gradient of the cross-entropy towards the target class, then
  projects it back into the eps-ball around the clean image and into the valid pixel range [0, 1].
  The bounds are in pixel units, converted per channel through the data's normalisation
  (`Data.mean`, `Data.std`), so eps means the same on every data set.
- eps = `measure.attack_eps` / 255 (8 by default), alpha = 1 / 255 per step, no random start. Without
  a random start the first t steps of the attack are the t-step attack, so one attack of
  max(ATTACK_STEPS) steps gives the success rate after each count in ATTACK_STEPS.
- Targets: for every image a class drawn uniformly from the classes other than its label, from a
  seed derived from the run's seed and the image's index: the runs of a spec that share a seed
  (ResNet and SAN of one table) are attacked towards the same targets.
- Success: the network's top-1 class is the target. The rate is over `measure.attack_images` test
  images spread evenly over the split (every (split size // attack_images)-th in the test loader's
  order: ImageNet's validation folder is in class order), whatever the network made of the clean
  image (a clean image already classified as its target counts from step 0 on).

Why no attack library: torchattacks (the usual choice) pins `requests~=2.25.1`, which would
downgrade what the rest of the environment needs; PGD itself is the dozen lines of `attack`.
The network runs in eval mode with gradients on (SAN then takes its plain-module path, the one
autograd needs); only the image's gradient is computed.

An attack of 1,000 ImageNet images takes a while, so it keeps its progress in the run directory
(`PROGRESS_FILE`, after every batch attacked): a SLURM job stopped by its time limit requeues from
there (the same request that makes training checkpoint), and a run stopped any other way picks up
there when it runs again, as long as the attack settings and the checkpoint are the same.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from suite import store
from suite.data.seeds import derive_seed
from suite.errors import SuiteError, SuiteWarning
from suite.metrics import ATTACK_STEPS
from suite.train import checkpoint

if TYPE_CHECKING:
    from suite.config import RunConfig

ALPHA = 1 / 255  # step size, in pixel units
# float16's largest value over the summed loss's largest gradient to a logit (1): no overflow there
FP16_LOSS_SCALE = 2.0**15
PROGRESS_FILE = "attack_progress.json"


def targets_for(labels: torch.Tensor, indices: Iterable[int], num_classes: int, seed: int) -> torch.Tensor:
    """A target class other than the label for each image, fixed by (seed, the image's index in the split)."""
    offsets = [1 + torch.randint(num_classes - 1, (), generator=torch.Generator().manual_seed(
        derive_seed(seed, "attack-target", int(i)))).item() for i in indices]
    return (labels + torch.tensor(offsets, device=labels.device)) % num_classes


def attack(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, mean: Sequence[float], std: Sequence[float],
           eps: float, steps: Iterable[int] = ATTACK_STEPS, autocast: Callable[[], Any] = contextlib.nullcontext,
           memory_format: torch.memory_format = torch.contiguous_format) -> dict[int, torch.Tensor]:
    """Targeted PGD on a normalised batch x: step count -> whether the top-1 class is the target
    (a bool per image), for each count in `steps` (0 allowed: the clean images)."""
    counts = sorted(set(steps))
    shape = (1, -1, 1, 1)
    scale = torch.tensor(std, device=x.device, dtype=torch.float32).view(shape)
    shift = torch.tensor(mean, device=x.device, dtype=torch.float32).view(shape)
    clean = x.detach().float() * scale + shift  # pixel units, where the bounds are simple
    low, high = (clean - eps).clamp_min(0), (clean + eps).clamp_max(1)
    image = clean.clone()
    out = {}
    loss_scale = None
    for t in range(counts[-1] + 1):
        image.requires_grad_(True)
        with autocast():
            logits = model(((image - shift) / scale).to(x.dtype).contiguous(memory_format=memory_format))
        if t in counts:
            out[t] = logits.argmax(1) == target
        if t == counts[-1]:
            break
        loss = F.cross_entropy(logits.float(), target, reduction="sum")
        loss_scale = loss_scale or (FP16_LOSS_SCALE if logits.dtype == torch.float16 else 1.0)
        grad, loss_scale = _input_gradient(loss, image, loss_scale)
        with torch.no_grad():
            image = torch.minimum(torch.maximum(image - ALPHA * grad.sign(), low), high)
    return out


def _input_gradient(loss: torch.Tensor, image: torch.Tensor, scale: float) -> tuple[torch.Tensor, float]:
    """The gradient of `loss` to `image`, and the scale to use next. In a float16 graph gradients
    below 6e-8 flush to zero, and a zero has no sign to step by: the loss is scaled up for the
    backward (the sign survives any scale), and the scale halved while it overflows, as
    torch.amp.GradScaler does in training."""
    while True:
        (grad,) = torch.autograd.grad(loss * scale, image, retain_graph=scale > 1)
        if scale <= 1 or bool(torch.isfinite(grad).all()):
            return grad, scale
        scale /= 2


def success_rates(model: nn.Module, loader: Iterable[tuple[torch.Tensor, torch.Tensor]], *, images: int, size: int,
                  batch_size: int, num_classes: int, mean: Sequence[float], std: Sequence[float], eps: float,
                  seed: int, autocast: Callable[[], Any] = contextlib.nullcontext,
                  memory_format: torch.memory_format = torch.contiguous_format,
                  resume: Mapping[str, Any] | None = None,
                  on_part: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The attack's success rate (%) after each of ATTACK_STEPS over `images` images of `loader`
    spread evenly over its `size` images (every (size // images)-th: an ImageNet validation folder
    is in class order, so its first 1,000 images are 20 classes), attacked `batch_size` at a time,
    and how many were attacked (fewer when the split is smaller).

    `on_part(progress)` is called after each batch attacked; given that progress back as `resume`,
    an attack with the same arguments skips the images counted in it and ends as if uninterrupted."""
    if num_classes < 2:
        raise SuiteError("a targeted attack needs at least two classes", key="model.num_classes")
    model.eval()
    every = max(1, size // images)
    hits = {t: int(resume["hits"][str(t)]) if resume else 0 for t in ATTACK_STEPS}
    done = int(resume["seen"]) if resume else 0  # images chosen and attacked by an earlier attempt
    seen = start = 0
    for batch, labels in loader:
        index = torch.arange(start, start + len(labels))
        start += len(labels)
        chosen = (index % every == 0).nonzero().flatten()[: images - seen]
        for part in chosen.split(batch_size) if len(chosen) else ():  # an empty tensor splits into one empty part
            todo = part[max(0, done - seen):]
            seen += len(part)
            if not len(todo):
                continue
            x, y = batch[todo.to(batch.device)], labels[todo.to(labels.device)]
            reached = attack(model, x, targets_for(y, index[todo].tolist(), num_classes, seed), mean=mean, std=std,
                             eps=eps, autocast=autocast, memory_format=memory_format)
            for t in ATTACK_STEPS:
                hits[t] += int(reached[t].sum())
            if on_part is not None:
                on_part({"seen": seen, "hits": {str(t): n for t, n in hits.items()}})
        if seen >= images:
            break
    if seen == 0:
        raise SuiteError("the test split has no images to attack", key="measure.attack_images")
    return {**{f"attack_success_{t}": 100 * hits[t] / seen for t in ATTACK_STEPS}, "attack_images": seen}


def measure_attack(config: RunConfig, run_dir: Path) -> dict[str, Any]:
    """The `attack` section of a run's result: its trained network (the final checkpoint in
    `run_dir`) attacked on its test split with the run's `measure.attack_*` settings."""
    from suite.train.loop import trained

    trainer = trained(config, run_dir)
    m = config.measure
    progress = Path(run_dir) / PROGRESS_FILE
    weights = (Path(run_dir) / checkpoint.FILENAME).stat()
    made_with = {"attack_images": m.attack_images, "attack_eps": m.attack_eps, "batch_size": m.batch_size,
                 "seed": config.seed, "steps": list(ATTACK_STEPS),
                 "checkpoint": {"bytes": weights.st_size, "mtime_ns": weights.st_mtime_ns}}

    def on_part(state: dict[str, Any]) -> None:
        store.write_json(progress, {"made_with": made_with, **state})
        if checkpoint.checkpoint_requested():  # SLURM's warning before the time limit: requeue from here
            checkpoint.clear_request()
            raise checkpoint.Preempted(progress, trainer.total)

    with torch.autograd.set_grad_enabled(True):
        rates = success_rates(trainer.model, trainer.data.test, images=m.attack_images, size=trainer.data.test_size,
                              batch_size=m.batch_size,
                              num_classes=trainer.data.num_classes, mean=trainer.data.mean, std=trainer.data.std,
                              eps=m.attack_eps / 255, seed=config.seed, autocast=trainer.autocast,
                              memory_format=trainer.memory_format, resume=_progress(progress, made_with),
                              on_part=on_part)
    progress.unlink(missing_ok=True)  # the result holds it now
    return rates


def _progress(path: Path, made_with: Mapping[str, Any]) -> dict[str, Any] | None:
    """The progress an earlier attempt left in `path`, if it was made the same way; otherwise the
    attack starts over (a damaged file is said so, and replaced as the attack goes on)."""
    if not path.exists():
        return None
    try:
        state = store.read_json(path)
        if not isinstance(state, dict) or state.get("made_with") != made_with:
            return None
        seen, hits = state["seen"], state["hits"]
        if not isinstance(seen, int) or not all(isinstance(hits[str(t)], int) for t in ATTACK_STEPS):
            raise TypeError
    except SuiteError as err:
        warnings.warn(f"{err}; the attack starts over", SuiteWarning)
        return None
    except (KeyError, TypeError):
        warnings.warn(f"{path}: not an attack's progress (keys seen, hits); the attack starts over", SuiteWarning)
        return None
    return {"seen": seen, "hits": hits}

