"""SAN10 with the shift ops vs the naive unfold ops vs ResNet26: throughput and peak memory.

    python -m suite.ops.benchmark [--batch-size 8] [--input-size 224] [--threads 2] [--rounds 7] [--padding reflect]

Method (every configuration = model x ops backend x {inference, training step}):
- each configuration lives in its own worker process, so its peak memory is its own: the resident
  set high-water mark during one step after warm-up, minus the resident set before the model was
  built (`suite.measure.memory.MemoryProbe`: weights, gradients, SGD momentum, batch and the
  step's transient memory, as `top` would see them);
- steps are those of `suite.measure.throughput` (inference: eval() under inference_mode; training:
  zero_grad, forward, cross-entropy, backward, SGD step), random input, fp32, NCHW by default;
- workers run one at a time, round-robin in rotated order, `steps` timed steps per turn, so load
  from other processes hits every configuration alike; throughput = batch / median step time;
- every configuration is timed on two heaps, first glibc's default one, as a plain PyTorch process
  runs, then `suite.measure.heap`'s steady one, which maps nothing afresh. On the default heap
  every fresh page costs a page fault: the naive ops' temporaries (hundreds of MiB a step, each
  above glibc's largest mmap threshold) pay them at every step, and other models pay them
  depending on the process's allocation history (ResNet26's inference step: 142 and 199 ms in
  two runs, unchanged). The steady heap compares computation and memory traffic alone, as
  jemalloc or tcmalloc would. The page faults of each timed step are counted (median per
  configuration and heap), so a slow step shows whether faults or computation made it slow.
'unfold' is the reference implementation of the same layers: the k^2-expanded neighbourhoods
materialised with F.unfold and gamma on the whole relation tensor, as a direct port of the
official CUDA ops would do; 'shift' is the default (suite.ops).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from suite import processes
from suite.bench.stats import Summary
from suite.errors import SuiteError
from suite.measure.heap import available
from suite.models.registry import resolve_model_kwargs
from suite.ops.window import PADDINGS

CONFIGS: tuple[tuple[str, str], ...] = (
    ("san10_pairwise", "shift"),
    ("san10_pairwise", "unfold"),
    ("san10_patchwise", "shift"),
    ("san10_patchwise", "unfold"),
    ("resnet26", "shift"),  # no local-attention ops: the backend does not matter
)
MODES: tuple[str, ...] = ("infer", "train")
OPS_LABELS = {"shift": "shift (ours)", "unfold": "unfold (naive)"}
HEAPS: tuple[str, ...] = ("default", "steady")  # in this order: a worker stays on the steady heap
# the flag of each model option this command sets, and of the size (a size check that names no key)
FLAGS: dict[str | None, str] = {"padding": "--padding", None: "--input-size"}


@dataclass(frozen=True)
class Job:
    model: str
    backend: str
    mode: str
    batch_size: int
    img_size: int
    threads: int
    warmup: int
    channels_last: bool
    padding: str = "reflect"  # SAN's footprint padding (ResNet26 has none)


def san_kwargs(model: str, padding: str) -> dict[str, str]:
    return {"padding": padding} if model.startswith("san") else {}


@dataclass(frozen=True)
class Result:
    model: str
    backend: str
    mode: str
    heap: str
    samples_per_sec: float
    step_ms: float  # median
    step_ms_iqr: float
    peak_mb: float | None
    faults: float  # page faults a timed step (median): what the two heaps differ in


def run_benchmark(
    *,
    batch_size: int = 8,
    img_size: int = 224,
    threads: int = 2,
    rounds: int = 7,
    steps: int = 2,
    warmup: int = 2,
    channels_last: bool = False,
    padding: str = "reflect",
    configs: Sequence[tuple[str, str]] = CONFIGS,
    modes: Sequence[str] = MODES,
) -> list[Result]:
    """Measure every configuration; one mode at a time so at most len(configs) workers are alive."""
    results = []
    for mode in modes:
        jobs = [Job(m, b, mode, batch_size, img_size, threads, warmup, channels_last, padding) for m, b in configs]
        workers: list[_Worker] = []
        try:
            for job in jobs:  # started (and warmed up) one after another
                workers.append(_Worker(job))
            for heap in HEAPS if available() else HEAPS[:1]:
                times: list[list[float]] = [[] for _ in jobs]
                faults: list[list[int]] = [[] for _ in jobs]
                for r in range(rounds):
                    for i in range(len(jobs)):
                        k = (r + i) % len(jobs)
                        turn = workers[k].time(heap, steps)
                        times[k] += turn["times"]
                        faults[k] += turn["faults"]
                for job, worker, t, f in zip(jobs, workers, times, faults):
                    stats = Summary.of(t)
                    results.append(Result(job.model, job.backend, mode, heap, batch_size / stats.median,
                                          stats.median * 1e3, stats.iqr * 1e3, worker.peak_mb,
                                          statistics.median(f)))
        finally:
            for w in workers:
                w.close()
    return results


class _Worker:
    """A child process holding one configuration, timing steps when asked (line-based JSON)."""

    def __init__(self, job: Job) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "suite.ops.benchmark", "--worker", json.dumps(asdict(job))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=processes.suite_env({**os.environ, "OMP_NUM_THREADS": str(job.threads)}),
        )
        self.peak_mb = self._read()["peak_mb"]

    def time(self, heap: str, steps: int) -> dict[str, list]:
        """{"times": seconds, "faults": page faults} of `steps` steps on `heap`."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{heap} {steps}\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        """Its stdin closed, the worker exits; one stuck (or interrupted mid-step) is stopped."""
        if self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        processes.stop(self.process, patient=True)

    def _read(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            job = Job(**json.loads(self.process.args[-1]))
            raise SuiteError(f"the worker for {job.model} ({job.backend}, {job.mode}) ended with exit status "
                             f"{self.process.wait()}; its error is above")
        return json.loads(line)


def _worker(spec: str) -> None:
    import time

    import torch

    from suite.measure.heap import page_faults, settle, steady_heap
    from suite.measure.memory import MemoryProbe
    from suite.measure.throughput import STEPS, BenchSettings
    from suite.models import create_model
    from suite.ops import use_backend

    job = Job(**json.loads(spec))
    torch.set_num_threads(job.threads)
    device = torch.device("cpu")
    settings = BenchSettings(device, job.img_size, channels_last=job.channels_last, warmup=job.warmup)
    probe = MemoryProbe.start(device)
    torch.manual_seed(0)
    model = create_model(job.model, **san_kwargs(job.model, job.padding))
    if job.channels_last:
        model = model.to(memory_format=torch.channels_last)
    with use_backend(job.backend):
        step = STEPS[job.mode](model, job.batch_size, settings)
        for _ in range(job.warmup):
            step()
        print(json.dumps({"peak_mb": probe.peak_mb(step)}), flush=True)
        with contextlib.ExitStack() as heaps:
            steady = False
            for line in sys.stdin:
                heap, count = line.split()
                if heap == "steady" and not steady:
                    heaps.enter_context(steady_heap())
                    steady = True
                    settle([step])  # grow the heap to the step's size, untimed
                times, faults = [], []
                for _ in range(int(count)):
                    f0, t0 = page_faults(), time.perf_counter()
                    step()
                    times.append(time.perf_counter() - t0)
                    faults.append(page_faults() - f0)
                print(json.dumps({"times": times, "faults": faults}), flush=True)


def format_results(results: Sequence[Result]) -> str:
    lines = [
        "| model | ops | mode | heap | img/s | step ms (median) | IQR ms | peak MiB | page faults/step |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        peak = "n/a" if r.peak_mb is None else f"{r.peak_mb:.0f}"
        ops = OPS_LABELS[r.backend] if r.model.startswith("san") else ""  # ResNet26 has none
        lines.append(f"| {r.model} | {ops} | {r.mode} | {r.heap} | {r.samples_per_sec:.2f} | {r.step_ms:.0f} | "
                     f"{r.step_ms_iqr:.0f} | {peak} | {r.faults:.0f} |")
    by_key = {(r.model, r.backend, r.mode, r.heap): r for r in results}

    def ratios(mode: str, mine: tuple[str, str], theirs: tuple[str, str]) -> str | None:
        pairs = [(heap, by_key.get((*mine, mode, heap)), by_key.get((*theirs, mode, heap))) for heap in HEAPS]
        said = [f"{a.samples_per_sec / b.samples_per_sec:.2f}x ({heap} heap)" for heap, a, b in pairs if a and b]
        return ", ".join(said) or None

    lines.append("")
    for model in sorted({r.model for r in results if r.model.startswith("san")}):
        for mode in MODES:
            throughput = ratios(mode, (model, "shift"), (model, "unfold"))
            if throughput:  # peak memory: measured once per worker, before any timing
                shift, naive = (next(r for r in results if (r.model, r.backend, r.mode) == (model, ops, mode))
                                for ops in ("shift", "unfold"))
                memory = ""
                if shift.peak_mb and naive.peak_mb:
                    memory = f"; peak memory {shift.peak_mb / naive.peak_mb:.2f}x"
                lines.append(f"{model} {mode}: shift vs unfold throughput {throughput}{memory}")
        against = ratios("infer", (model, "shift"), ("resnet26", "shift"))
        if against:
            lines.append(f"{model} infer: throughput against ResNet26's {against}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suite.ops.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="images per step (default: 8)")
    parser.add_argument("--input-size", type=int, default=224, metavar="N",
                        help="square input size (default: 224)")  # as `suite profile` names it
    parser.add_argument("--threads", type=int, default=2, metavar="N",
                        help="torch intra-op threads per worker (default: 2)")
    parser.add_argument("--rounds", type=int, default=7, metavar="N",
                        help="round-robin turns per configuration (default: 7)")
    parser.add_argument("--steps", type=int, default=2, metavar="N", help="timed steps per turn (default: 2)")
    parser.add_argument("--warmup", type=int, default=2, metavar="N",
                        help="untimed steps before the memory step (default: 2)")
    parser.add_argument("--channels-last", action="store_true", help="NHWC input and weights")
    parser.add_argument("--padding", choices=PADDINGS, default="reflect",
                        help="SAN's footprint padding (default: reflect, the official one; zeros fits inputs under 128 px)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), metavar="MODE",
                        help=f"what to time: {', '.join(MODES)} (default: both)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.worker:
            _worker(args.worker)
            return 0
        _check(parser, args)
        results = run_benchmark(batch_size=args.batch_size, img_size=args.input_size, threads=args.threads,
                                rounds=args.rounds, steps=args.steps, warmup=args.warmup,
                                channels_last=args.channels_last, padding=args.padding, modes=args.modes)
    except SuiteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not available():
        print("note: timed on the default heap only: the steady one needs glibc's allocator, untuned "
              "(no MALLOC_*_ or GLIBC_TUNABLES)", file=sys.stderr)
    print(format_results(results))
    return 0


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse what would fail only after minutes of measuring."""
    for name in ("batch_size", "input_size", "threads", "rounds", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be at least 0, got {args.warmup}")
    if args.rounds * args.steps < 2:
        parser.error("--rounds x --steps must be at least 2: the IQR needs two timed steps")
    for model in dict.fromkeys(m for m, _ in CONFIGS):
        try:
            resolve_model_kwargs(model, san_kwargs(model, args.padding), input_size=args.input_size)
        except SuiteError as err:  # named by the flag that set it (a size check with no key: the size's)
            raise err.rekeyed(FLAGS.get(err.key, err.key)) from None


if __name__ == "__main__":
    sys.exit(main())
