"""Inference and training-step throughput, with timm-style out-of-memory back-off.

Protocol (every setting becomes a column of the result):
- random input (and random targets) already on the device, so the loader is not measured;
- inference: model.eval() under torch.inference_mode(); training step: zero_grad, forward,
  cross-entropy loss, backward, SGD step (momentum 0.9, so its buffers count in memory);
- AMP: torch.autocast with bf16 or fp16 around forward and loss, weights stay fp32 (timm `--amp`);
- on CUDA with cuDNN autotuning (torch.backends.cudnn.benchmark), as training and timm;
- `warmup` untimed steps, then one step for peak memory (see memory.py), then, on a heap that keeps
  its pages (heap.py: no page faults, whatever the process allocated before), untimed steps until
  two in a row take (almost) no page faults, and `steps` steps timed one by one: on CUDA between
  two torch.cuda.Events and synchronised before the clock is read, on CPU with perf_counter;
- statistics: median and interquartile range of the step times (ms); samples/s = batch / median
  step time (medians resist the bursts of other load on shared machines; means do not);
- several steps timed together (a model and its reference) run round-robin, in rotated order, so
  background load and thermal drift hit them alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from suite import precision
from suite.bench.stats import Summary
from suite.errors import batch_of_one
from suite.measure import heap

T = TypeVar("T")
Step = Callable[[], None]


@dataclass(frozen=True)
class BenchSettings:
    device: torch.device
    img_size: int
    amp: str = "fp32"
    channels_last: bool = False
    warmup: int = 3  # untimed steps (at least one: it is where an out-of-memory error shows up)
    steps: int = 10  # timed steps
    in_chans: int = 3


@dataclass(frozen=True)
class Timing:
    batch_size: int  # actually used, after any out-of-memory back-off
    samples_per_sec: float
    step_time: float  # median, ms
    step_time_iqr: float  # ms
    peak_memory_mb: float | None = None

    def as_row(self, prefix: str) -> dict[str, Any]:
        """timm's names: `infer_samples_per_sec`, `infer_step_time`, `infer_batch_size`, ..."""
        return {
            f"{prefix}_samples_per_sec": round(self.samples_per_sec, 3),
            f"{prefix}_step_time": round(self.step_time, 3),
            f"{prefix}_step_time_iqr": round(self.step_time_iqr, 3),
            f"{prefix}_batch_size": self.batch_size,
            f"{prefix}_peak_memory_mb": None if self.peak_memory_mb is None else round(self.peak_memory_mb, 1),
        }


@dataclass(frozen=True)
class Prepared:
    step: Step
    batch_size: int


# ------------------------------------------------------------------------------------------ steps
def inference_step(model: nn.Module, batch_size: int, s: BenchSettings) -> Step:
    model.eval()
    x = _batch(batch_size, s)
    context = precision.autocast(s.amp, s.device)

    def step() -> None:
        with torch.inference_mode(), context():
            model(x)

    return step


def train_step(model: nn.Module, batch_size: int, s: BenchSettings) -> Step:
    model.train()
    x = _batch(batch_size, s)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    target: torch.Tensor | None = None
    context = precision.autocast(s.amp, s.device)
    scaler = precision.grad_scaler(s.amp, s.device)  # as `suite train` steps, fp16's scaling included

    def step() -> None:
        nonlocal target
        optimizer.zero_grad(set_to_none=True)
        with context(), batch_of_one(batch_size, "batch_size"):
            out = model(x)
            if target is None:  # the class count is whatever the model outputs
                target = torch.randint(out.shape[-1], (batch_size,), device=s.device)
            loss = loss_fn(out, target)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


STEPS: dict[str, Callable[[nn.Module, int, BenchSettings], Step]] = {"infer": inference_step, "train": train_step}


def load_libraries(phases: Sequence[str], s: BenchSettings) -> None:
    """Run each phase's step once on a one-conv model, so what torch loads on first use is in the
    process before a memory baseline is taken: the first optimizer imports torch._dynamo, Python
    objects on the CPU's heap that no model's step needs again (sized in commit 4fd19d6)."""
    tiny = nn.Sequential(nn.Conv2d(s.in_chans, 2, 1), nn.Flatten()).to(s.device)
    small = dataclasses.replace(s, img_size=1)
    for phase in phases:
        STEPS[phase](tiny, 2, small)()


# ---------------------------------------------------------------------------------------- running
def prepare(make_step: Callable[[int], Step], batch_size: int, s: BenchSettings) -> Prepared:
    """Build and warm up the step for the largest batch <= `batch_size` that fits in memory."""
    autotune(s.device)

    def attempt(batch: int) -> Prepared:
        step = make_step(batch)
        for _ in range(max(s.warmup, 1)):
            step()
        synchronize(s.device)
        return Prepared(step, batch)

    return with_batch_backoff(attempt, batch_size, s.device)


def time_steps(steps: Sequence[Step], rounds: int, device: torch.device) -> list[list[float]]:
    """Seconds per call of each step over `rounds` rounds; round i starts with step i mod len(steps).

    On a heap that keeps its pages (see heap.py), after untimed calls of each step have grown it.
    """
    times: list[list[float]] = [[] for _ in steps]
    with heap.steady_heap():
        heap.settle(steps)
        synchronize(device)
        for i in range(rounds):
            for j in range(len(steps)):
                k = (i + j) % len(steps)
                times[k].append(_timed(steps[k], device))
    return times


def summarize(times: Sequence[float], batch_size: int, peak_memory_mb: float | None = None) -> Timing:
    stats = Summary.of(times)
    return Timing(batch_size, batch_size / stats.median, stats.median * 1e3, stats.iqr * 1e3, peak_memory_mb)


def autotune(device: torch.device) -> None:
    """cuDNN autotuning on CUDA, as `suite train` trains (suite.train.loop) and timm's benchmark times:
    each conv then runs the fastest algorithm for its shapes, chosen in the warm-up steps. Without
    it the timed steps would not be the trained ones. suite.measure.profile restores the caller's setting
    after a measurement (torch_settings_kept)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


@contextlib.contextmanager
def torch_settings_kept() -> Iterator[None]:
    """Restores, when the block ends, the process-wide settings a measurement changes: the CPU thread
    count (a job's `threads`, the complexity count's one), cuDNN autotuning (`autotune`) and torch's
    random streams, which building and feeding the model draws from (the CPU's, and those of the CUDA
    devices in use already: forking one would start CUDA). Measured from Python, a notebook's later
    cells then run, and draw, as they would have; a training process keeps the autotuning it turned on
    itself (suite.train.loop)."""
    threads, tuned = torch.get_num_threads(), torch.backends.cudnn.benchmark
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = tuned


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step: Step, device: torch.device) -> float:
    if device.type == "cuda":
        # events go to the current stream of the current device: make that the measured one (cuda:1)
        with torch.cuda.device(device):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def _batch(batch_size: int, s: BenchSettings) -> torch.Tensor:
    x = torch.randn(batch_size, s.in_chans, s.img_size, s.img_size, device=s.device)
    return x.contiguous(memory_format=torch.channels_last) if s.channels_last else x


# --------------------------------------------------------------------------------- OOM back-off
def decay_batch_step(batch_size: int) -> int:
    """The next smaller batch, timm-style: powers of two and their midpoints (256, 192, 128, 96, ...,
    4, 3, 2, 1); 0 below 1."""
    if batch_size <= 1:
        return 0
    power = 1 << ((batch_size - 1).bit_length() - 1)  # largest power of two below batch_size
    mid = power + power // 2
    return mid if power >= 2 and mid < batch_size else power


def is_oom(exc: BaseException) -> bool:
    """An out-of-memory error worth retrying with a smaller batch.

    Never after an illegal memory access: that leaves the CUDA context unusable (timm refuses too).
    """
    message = str(exc)
    if "illegal" in message:
        return False
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and ("out of memory" in message or "can't allocate memory" in message)


def with_batch_backoff(run: Callable[[int], T], batch_size: int, device: torch.device | None = None) -> T:
    """`run(batch)`, retried with decay_batch_step(batch) while it runs out of memory."""
    while True:
        try:
            return run(batch_size)
        except Exception as exc:
            smaller = decay_batch_step(batch_size)
            if not is_oom(exc) or smaller < 1:
                raise
        # outside the except block, so the failed attempt's frames (and tensors) are released
        gc.collect()
        if device is not None and device.type == "cuda":
            torch.cuda.empty_cache()
        batch_size = smaller
