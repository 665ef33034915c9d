"""The training loop: `run(config, run_dir)` trains and evaluates one RunConfig and returns its
final metrics.

Length and evaluation. Training runs for `iterations` optimizer steps, or `epochs` x steps per
epoch (fractional epochs allowed; an epoch is len(train loader) steps, the last partial batch is
dropped). The test split is evaluated at each epoch boundary (every `eval_every` epochs) and
always at the end; RAN's iteration counts therefore end with a partial epoch and its evaluation.

Optimisation follows the official codes: SGD on all parameters (weight decay on BN and biases
too, as SAN's `model.parameters()`), learning rate from suite.train.schedule set before every
step, label smoothing as SAN's `smooth_loss` (target 1 - eps, every other class eps / (K - 1)).
`amp`: bf16 / fp16 autocast on the run's device (fp16 with a GradScaler).

Run directory (written by rank 0 only): `checkpoint.pt` after every epoch (atomic, see
suite.train.checkpoint) and `metrics.jsonl`, one JSON line per epoch: epoch, iteration, lr,
train_loss, train_top1_err, test_top1_err, test_top5_err (errors in %; null when not evaluated or
the data set has no meaningful labels), on the last line, with `measure.views` on, also
test_top1_err_<view> and test_top5_err_<view> for every rotated or flipped view of
suite.data.views (the zero-shot robustness test, evaluated once at the end, or when a run that
finished without them is resumed with it on), epoch_time_s (training + evaluation), loop_samples_per_sec
(training steps only: loading and step, no evaluation). The checkpoint holds that history too and
is the source of truth: on resume, metrics.jsonl is rewritten from it.

Determinism: the run seed fixes the initialisation (global RNGs, seeded before the model is
built), and derived seeds fix label noise, data order and augmentation (explicit generators,
saved in the checkpoint). On CPU the same config gives the same metrics (with the same torch
thread count: parallel reductions depend on it; and the same number of DDP processes: BatchNorm
normalises each one's share of the global batch), and an interrupted run resumed from its
checkpoint ends with the same weights as an uninterrupted one. On CUDA, cuDNN
autotuning is on, so runs agree only up to non-deterministic kernels.

Every `SYNC_EVERY` steps (the only host syncs of the loop besides epoch ends, and fp16's GradScaler,
which checks each step's gradients for overflow before the optimizer step) all ranks agree on
two flags: a non-finite training loss (raises `Diverged`, a SuiteError; the last good checkpoint is
kept) and a pending `request_checkpoint()` (checkpoint now, then raise `Preempted`).
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from suite import files, precision
from suite.data import DATASETS, build
from suite.data.views import VIEW_METRICS, VIEWS
from suite.errors import SuiteError, SuiteWarning, batch_of_one
from suite.models import create_model
from suite.models.sizes import FirstForward, data_whence
from suite.train import checkpoint
from suite.train.distributed import Dist, distributed
from suite.train.schedule import learning_rate

if TYPE_CHECKING:
    from suite.config import RunConfig

SYNC_EVERY = 16
METRICS = "metrics.jsonl"
CHECKPOINT_FORMAT = 1  # what `_save` writes and `_check_own` reads; a newer one is named, not taken as damaged
EpochHook = Callable[[dict[str, Any]], None]
View = Callable[[torch.Tensor], torch.Tensor]


class Diverged(SuiteError):
    """The training loss became NaN or infinite."""


def run(
    config: RunConfig,
    run_dir: Path | None = None,
    *,
    resume: bool = True,
    progress: bool = True,
    on_epoch_end: EpochHook | None = None,
) -> dict[str, Any]:
    """Train and evaluate `config`; with `run_dir`, checkpoint there and (if `resume`) continue
    from its checkpoint. Joins/creates the process group the environment describes (see
    suite.train.distributed). `on_epoch_end(line)` is called on every rank after each epoch's
    metrics line is logged and its checkpoint written. Returns the final metrics: top1_err,
    top5_err, best_top1_err, best_epoch, train_loss, train_top1_err, epochs, iterations,
    loop_samples_per_sec, wall_time_s (accuracy entries None for data without real labels)."""
    with distributed(config.device) as (env, device):
        trainer = Trainer(config, None if run_dir is None else Path(run_dir), env=env, device=device,
                          progress=progress)
        return trainer.fit(resume=resume, on_epoch_end=on_epoch_end)


def trained(config: RunConfig, run_dir: Path) -> Trainer:
    """The run's trained network, its weights from the final checkpoint in `run_dir` (on this
    process's device, outside any process group), with its test data: what is evaluated after
    training. Only the weights: the training state (optimiser, the loader's generator, RNGs) of a
    run trained on another device type need not fit this one."""
    from suite.measure.env import resolve_device

    trainer = Trainer(config, Path(run_dir), device=resolve_device(config.device))
    path = trainer.run_dir / checkpoint.FILENAME
    state = checkpoint.load(path)
    if state is None:
        raise SuiteError("no checkpoint: the run has no trained network to evaluate", file=str(path))
    trainer._check_own(state, path)
    if int(state.get("iteration") or 0) < trainer.total:
        raise SuiteError(f"the checkpoint is of iteration {state.get('iteration')} of {trainer.total}: the run has "
                         f"not finished training", file=str(path))
    with _reading(path):
        trainer.model.load_state_dict(state["model"])
    trainer.model.eval()
    return trainer


def evaluate_views(config: RunConfig, run_dir: Path) -> dict[str, float | None]:
    """The views' metrics (VIEW_METRICS) of a done run asked for `measure.views` after it trained:
    its trained network, from the final checkpoint, evaluated on them; nothing is trained again."""
    errors = trained(config, run_dir)._views()
    return {metric: errors[f"test_{metric}"] for metric in VIEW_METRICS}


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Loading a checkpoint's entries: a missing or mis-shaped one is a damaged checkpoint, named."""
    try:
        yield
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as exc:
        detail = f"no {exc.args[0]!r} entry" if isinstance(exc, KeyError) else " ".join(str(exc).split())[:300]
        raise SuiteError(f"damaged checkpoint ({detail}); delete it to start the run over", file=str(path)) from None


class Trainer:
    """The state of one training run on one rank: model, optimiser, data, counters."""

    def __init__(self, config: RunConfig, run_dir: Path | None, *, env: Dist = Dist(),
                 device: torch.device = torch.device("cpu"), progress: bool = False) -> None:
        self.config, self.run_dir, self.env, self.device, self.progress = config, run_dir, env, device, progress
        info = DATASETS[config.data.name]
        self.has_labels = info.accuracy
        num_classes = config.model.kwargs.get("num_classes") or info.num_classes
        if num_classes is None:
            raise SuiteError(f"{config.model.name} has no num_classes option to size synthetic labels",
                             key="model.num_classes")
        if config.batch_size % env.world_size:
            raise SuiteError(f"batch_size {config.batch_size} is the global batch: it must be divisible by "
                             f"the {env.world_size} processes", key="batch_size")
        if run_dir is not None and env.is_main and not run_dir.is_dir():  # before the data and the model: at once
            # not made here: a run's folder deleted while it runs (`rm -rf`) would come back holding a checkpoint
            # alone; `suite train` makes its --run-dir, `suite run` its runs' (store.plan)
            raise files.Gone("no such folder: a run's folder is made by what plans the run (`suite run`, `suite train "
                             "--run-dir`); from Python, make it first", file=str(run_dir))
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        download_first = config.data.download and env.enabled  # rank 0 downloads, the others wait
        if download_first and not env.is_main:
            env.barrier()
        self.data = build(config.data, batch_size=config.batch_size // env.world_size, seed=config.seed,
                          num_classes=num_classes, device=device, rank=env.rank, world_size=env.world_size)
        if download_first and env.is_main:
            env.barrier()
        self.steps_per_epoch = len(self.data.train)
        if self.steps_per_epoch == 0:
            raise SuiteError(f"batch_size {config.batch_size} is larger than the training set", key="batch_size")
        self.total = config.iterations or max(1, round(config.epochs * self.steps_per_epoch))

        _seed_globals(config.seed)
        self.model = create_model(config.model.name, **config.model.kwargs).to(device)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self.net: nn.Module = self.model
        size = config.data.input_size  # resolve()'s: the data set's unless given
        self.first = FirstForward(self.model, config.model.name, size, key="data.input_size",
                                  whence=data_whence(config.data.name, size))  # said if the model cannot take it
        if env.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=config.lr, momentum=config.momentum,
                                         nesterov=config.nesterov, weight_decay=config.weight_decay)
        self.scaler = precision.grad_scaler(config.amp, device)
        self.autocast = precision.autocast(config.amp, device)

        self.iteration = 0
        self.stats = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, samples (this epoch)
        self.history: list[dict[str, Any]] = []
        self.clock = {"train_s": 0.0, "wall_s": 0.0, "epoch_train_s": 0.0, "samples": 0.0}
        self._session = (time.perf_counter(), 0.0)  # (start of this session, wall_s of earlier sessions)

    # ------------------------------------------------------------------------------------ fit
    def fit(self, *, resume: bool = True, on_epoch_end: EpochHook | None = None) -> dict[str, Any]:
        path = None if self.run_dir is None else self.run_dir / checkpoint.FILENAME
        if path is not None:  # the folder made when the trainer was (a run's folder deleted since is not made again)
            state = checkpoint.load(path) if resume else None
            if state is not None:
                self._restore(state, path)
                if self.env.is_main and not self.progress:  # a bar starts where it resumes; a log says it
                    print(f"resuming from {path} at iteration {self.iteration}/{self.total}", file=sys.stderr,
                          flush=True)
                if self.iteration >= self.total and self.env.is_main:
                    warnings.warn(f"{self.run_dir}: training finished in an earlier attempt; its checkpoint's final "
                                  f"metrics are used (delete the directory to train it again)", SuiteWarning, stacklevel=2)
                if self.iteration >= self.total:
                    self._add_missing_views(path)
            if self.env.is_main:
                _write_lines(self.run_dir / METRICS, self.history)
        self._session = (time.perf_counter(), self.clock["wall_s"])
        bar = tqdm(total=self.total, initial=self.iteration, unit="it", file=sys.stderr, dynamic_ncols=True,
                   desc=f"{self.config.model.name} on {self.config.data.name}",
                   disable=not (self.progress and self.env.is_main))
        try:
            while self.iteration < self.total:
                epoch_start = self._now()
                self.net.train()
                for x, y in self.data.train:
                    self._step(x, y)
                    self.iteration += 1
                    bar.update()
                    if self.iteration >= self.total:
                        break
                    if self.iteration % SYNC_EVERY == 0:
                        self._sync_point(bar, path, epoch_start)
                line = self._end_epoch(self._now() - epoch_start, path, bar)
                if on_epoch_end is not None:
                    on_epoch_end(line)
        finally:
            bar.close()
        return self.final_metrics()

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        lr = learning_rate(self.config, self.iteration, self.steps_per_epoch, self.total)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x = x.contiguous(memory_format=self.memory_format)
        with self.first, self.autocast(), batch_of_one(len(x), "batch_size"):
            out = self.net(x)
        loss = smoothed_cross_entropy(out.float(), y, self.config.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        with torch.no_grad():
            self.stats[0] += loss.detach().double() * y.numel()
            self.stats[1] += (out.argmax(1) == y).sum()
            self.stats[2] += y.numel()

    def _sync_point(self, bar: tqdm, path: Path | None, epoch_start: float) -> None:
        flags = torch.stack([(~torch.isfinite(self.stats[0])).double(),
                             torch.tensor(float(checkpoint.checkpoint_requested()), device=self.device, dtype=torch.float64)])
        nonfinite, requested = self.env.all_reduce(flags, torch.distributed.ReduceOp.MAX).tolist()
        if nonfinite:
            raise self._diverged()
        loss_sum, _, n = self.stats.tolist()
        bar.set_postfix(loss=f"{loss_sum / max(n, 1):.4f}", lr=f"{self.optimizer.param_groups[0]['lr']:.4g}",
                        refresh=False)
        if requested:
            checkpoint.clear_request()
            self.clock["epoch_train_s"] += self._now() - epoch_start
            self._tick()
            self._save(path)
            raise checkpoint.Preempted(path, self.iteration)

    def _end_epoch(self, train_s: float, path: Path | None, bar: tqdm) -> dict[str, Any]:
        train_s += self.clock["epoch_train_s"]
        loss_sum, correct, n = self.env.all_reduce(self.stats.clone()).tolist()
        if not math.isfinite(loss_sum):
            raise self._diverged()
        epoch_number = math.ceil(self.iteration / self.steps_per_epoch)
        eval_start = self._now()
        self.env.broadcast_buffers(self.model)
        test, views = (None, None), {}
        final = self.iteration >= self.total
        if self.has_labels and (epoch_number % self.config.eval_every == 0 or final):
            test = self._evaluate()
        if self.has_labels and final and self.config.measure.views:  # the zero-shot robustness test, once
            views = self._views()
        epoch_s = train_s + self._now() - eval_start
        line = {
            "epoch": _epoch_value(self.iteration, self.steps_per_epoch),
            "iteration": self.iteration,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": loss_sum / n,
            "train_top1_err": 100 * (1 - correct / n) if self.has_labels else None,
            "test_top1_err": test[0],
            "test_top5_err": test[1],
            **views,
            "epoch_time_s": epoch_s,
            "loop_samples_per_sec": n / train_s if train_s > 0 else None,
        }
        self.history.append(line)
        self.clock["train_s"] += train_s
        self.clock["samples"] += n
        self.clock["epoch_train_s"] = 0.0  # training time of the current epoch spent in earlier sessions
        self.stats.zero_()
        self._tick()
        if test[0] is not None:
            bar.set_postfix(loss=f"{line['train_loss']:.4f}", test_err=f"{test[0]:.2f}", refresh=False)
        if bar.disable and self.env.is_main:  # no bar (a run's log.txt, a SLURM log): a line per epoch instead
            tested = "" if test[0] is None else f", test top-1 err {test[0]:.2f} %"
            print(f"epoch {epoch_number} of {math.ceil(self.total / self.steps_per_epoch)} (iteration "
                  f"{self.iteration}/{self.total}): train loss {line['train_loss']:.4f}{tested}, {epoch_s:.1f} s",
                  file=sys.stderr, flush=True)
        self._save(path)
        if self.env.is_main and self.run_dir is not None:
            with open(self.run_dir / METRICS, "a") as f:
                f.write(json.dumps(line) + "\n")
        return line

    def _views(self) -> dict[str, float | None]:
        out = {}
        for name, view in VIEWS.items():
            out[f"test_top1_err_{name}"], out[f"test_top5_err_{name}"] = self._evaluate(view)
        return out

    def _add_missing_views(self, path: Path) -> None:
        """A run that finished without the views (before they existed, or with measure.views off) and
        is asked for them: its trained network is evaluated on them now (nothing is trained again),
        and the checkpoint keeps them."""
        last = self.history[-1] if self.history else None
        if self.config.measure.views and self.has_labels and last is not None \
                and not all(f"test_{m}" in last for m in VIEW_METRICS):
            last.update(self._views())
            self._save(path)

    def _evaluate(self, view: View | None = None) -> tuple[float, float | None]:
        return evaluate(self.model, self.data.test, autocast=self.autocast, memory_format=self.memory_format,
                        env=self.env, view=view)

    def final_metrics(self) -> dict[str, Any]:
        """The run's result as its last checkpoint holds it (the clock too: read back, a finished run's
        metrics are the same), so the time to write the last checkpoint is not in wall_time_s."""
        evaluated = [h for h in self.history if h["test_top1_err"] is not None]
        best = min(evaluated, key=lambda h: h["test_top1_err"], default=None)
        last = self.history[-1] if self.history else {}
        return {
            "top1_err": last.get("test_top1_err"),
            "top5_err": last.get("test_top5_err"),
            **{metric: last.get(f"test_{metric}") for metric in VIEW_METRICS},
            "best_top1_err": None if best is None else best["test_top1_err"],
            "best_epoch": None if best is None else best["epoch"],
            "train_loss": last.get("train_loss"),
            "train_top1_err": last.get("train_top1_err"),
            "epochs": _epoch_value(self.iteration, self.steps_per_epoch),
            "iterations": self.iteration,
            "loop_samples_per_sec": self.clock["samples"] / self.clock["train_s"] if self.clock["train_s"] else None,
            "wall_time_s": self.clock["wall_s"],
        }

    # ----------------------------------------------------------------------- checkpointing
    def _save(self, path: Path | None) -> None:
        """Checkpoint the current state (collective: every rank must call it; rank 0 writes)."""
        stats = self.env.all_reduce(self.stats.clone())
        if path is None or not self.env.is_main:
            return
        checkpoint.save(path, {
            "format": CHECKPOINT_FORMAT,
            "run_id": self.config.run_id,
            "iteration": self.iteration,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            # The lr schedule is a pure function of the iteration (suite.train.schedule): no state.
            "loader": self.data.train.state_dict(),
            "rng": _rng_state(self.device),
            "stats": stats.cpu(),
            "history": self.history,
            "clock": dict(self.clock),
            "threads": torch.get_num_threads(),  # CPU results depend on it (see the module docstring)
            "world_size": self.env.world_size,  # so do all results: BN normalises each process's share of a batch
        })

    def _restore(self, state: dict[str, Any], path: Path) -> None:
        self._check_own(state, path)
        with _reading(path):
            self._load_state(state)
        threads = state.get("threads")
        finished = self.iteration >= self.total  # nothing left to train: the thread count cannot matter
        if self.device.type == "cpu" and not finished and threads is not None and threads != torch.get_num_threads():
            warnings.warn(f"{path}: resuming with {torch.get_num_threads()} CPU threads, the checkpoint's run used "
                          f"{threads}: parallel sums depend on the thread count, so the result will not be "
                          f"bit-identical to an uninterrupted run", SuiteWarning, stacklevel=2)
        processes, now = state.get("world_size"), self.env.world_size  # None: a checkpoint from before it was kept
        if not finished and processes is not None and processes != now:
            warnings.warn(f"{path}: resuming with {now} process{'es' * (now > 1)}, the checkpoint's run used "
                          f"{processes}: BatchNorm normalises each process's share of the batch, so the result "
                          f"will not be that of an uninterrupted run", SuiteWarning, stacklevel=2)

    def _check_own(self, state: Any, path: Path) -> None:
        """`state` is a checkpoint of this suite, of this run."""
        if not isinstance(state, dict) or "run_id" not in state:
            raise SuiteError("not a checkpoint of this suite (no run_id); delete it to start the run over",
                             file=str(path))
        made = state.get("format")
        if isinstance(made, int) and not isinstance(made, bool) and made > CHECKPOINT_FORMAT:
            # not damaged, and not to be deleted: its training is readable by the version that wrote it
            raise SuiteError(f"{made}, written by a newer version of the suite (this one reads format "
                             f"{CHECKPOINT_FORMAT}): upgrade the suite to resume or evaluate it", file=str(path),
                             key="format")
        if state["run_id"] != self.config.run_id:
            raise SuiteError(f"checkpoint belongs to run {state['run_id']}, not {self.config.run_id} "
                             f"(different config); use another run directory or delete it", file=str(path))

    def _load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.data.train.load_state_dict(state["loader"])
        _set_rng_state(state["rng"], self.device)
        if self.env.is_main:  # partial-epoch sums are global; the epoch-end all-reduce adds the rest
            self.stats.copy_(state["stats"].to(self.device))
        self.iteration = state["iteration"]
        self.history = list(state["history"])
        self.clock = dict(state["clock"])

    def _diverged(self) -> Diverged:
        epoch = math.ceil(self.iteration / self.steps_per_epoch)  # as _end_epoch numbers it
        amp = "" if self.config.amp == "fp32" else " or use amp=fp32"
        return Diverged(f"training loss is not finite by iteration {self.iteration} (epoch {epoch}); "
                        f"lower lr{',' if amp else ' or'} add warm-up{amp}", key="lr")

    def _tick(self) -> None:
        start, before = self._session
        self.clock["wall_s"] = before + time.perf_counter() - start

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()


@torch.inference_mode()
def evaluate(model: nn.Module, loader: Any, *, autocast: Callable[[], Any] = contextlib.nullcontext,
             memory_format: torch.memory_format = torch.contiguous_format, env: Dist = Dist(),
             view: View | None = None) -> tuple[float, float | None]:
    """Top-1 and top-5 error (%) over the whole split (this rank's shard, summed over ranks), of the
    images as they are or turned by `view` (suite.data.views); top-5 is None with 5 classes or
    fewer, where every guess is in the top 5."""
    model.eval()
    counts = None
    classes = 0
    for x, y in loader:
        if view is not None:
            x = view(x)
        with autocast():
            out = model(x.contiguous(memory_format=memory_format))
        classes = out.shape[1]
        top = out.topk(min(5, classes), dim=1).indices == y[:, None]
        # the count made on the device: a tensor from host data is a blocking copy on CUDA, a host sync per batch
        batch = torch.stack([top[:, 0].sum(), top.any(1).sum(), top.new_full((), len(y), dtype=torch.int64)]).double()
        counts = batch if counts is None else counts + batch
    if counts is None:
        counts = torch.zeros(3, dtype=torch.float64, device=next(model.parameters()).device)
    top1, top5, n = env.all_reduce(counts).tolist()
    return 100 * (1 - top1 / n), 100 * (1 - top5 / n) if classes > 5 else None


def smoothed_cross_entropy(logits: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Cross-entropy against 1 - eps on the target and eps / (K - 1) on every other class, as SAN's
    `smooth_loss` (torch's label_smoothing puts eps / K on every class, the target included)."""
    if smoothing == 0:
        return F.cross_entropy(logits, target)
    logp = F.log_softmax(logits, dim=1)
    nll = -logp.gather(1, target[:, None]).squeeze(1)
    others = -logp.sum(1) - nll
    return ((1 - smoothing) * nll + smoothing / (logits.shape[1] - 1) * others).mean()


def _seed_globals(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _epoch_value(iteration: int, steps_per_epoch: int) -> int | float:
    """Completed epochs: an int at epoch boundaries, else a fraction (RAN's iteration counts)."""
    whole, rest = divmod(iteration, steps_per_epoch)
    return whole if rest == 0 else round(iteration / steps_per_epoch, 4)


def _write_lines(path: Path, lines: list[dict[str, Any]]) -> None:
    files.write_text(path, "".join(json.dumps(line) + "\n" for line in lines))
