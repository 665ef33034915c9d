"""The CUDA paths, on machines without a GPU: torch.cuda's functions replaced by fakes that record
their calls, so the order (synchronise before a clock is read, peak statistics reset before the
step, the GPU chosen before the process group) and the device each one is given are checked."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import pytest
import torch
import torch.distributed as dist

from suite.errors import SuiteError
from suite.measure.memory import MIB, MemoryProbe
from suite.measure.throughput import _timed, time_steps
from suite.precision import autocast
from suite.train.distributed import distributed

GPU1 = torch.device("cuda", 1)


class FakeEvent:
    """torch.cuda.Event: record() on the current stream, synchronize(), elapsed_time() in ms."""

    made = 0

    def __init__(self, calls: list, enable_timing: bool = False) -> None:
        assert enable_timing, "elapsed_time needs enable_timing=True"
        self.calls, self.id = calls, FakeEvent.made
        FakeEvent.made += 1

    def record(self) -> None:
        self.calls.append(("record", self.id))

    def synchronize(self) -> None:
        self.calls.append(("event synchronize", self.id))

    def elapsed_time(self, end: FakeEvent) -> float:
        assert ("event synchronize", end.id) in self.calls, "elapsed_time before the end event completed"
        return 7.5


@pytest.fixture
def calls(monkeypatch) -> list:
    """Every torch.cuda call the code under test makes, in order."""
    calls: list = []

    @contextlib.contextmanager
    def device(d: torch.device) -> Iterator[None]:
        calls.append(("current device", d))
        yield
        calls.append(("current device restored",))

    monkeypatch.setattr(torch.cuda, "device", device)
    monkeypatch.setattr(torch.cuda, "Event", lambda **kw: FakeEvent(calls, **kw))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: calls.append(("synchronize", d)))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    return calls


def test_a_cuda_step_is_timed_between_events_on_its_gpu(calls):
    FakeEvent.made = 0
    seconds = _timed(lambda: calls.append(("step",)), GPU1)
    assert calls == [("current device", GPU1), ("record", 0), ("step",), ("record", 1), ("event synchronize", 1),
                     ("current device restored",)]
    assert seconds == pytest.approx(7.5e-3)


def test_timed_cuda_steps_start_on_an_idle_gpu(calls):
    """Untimed settling steps run before the timed ones: the GPU finishes them before the first event."""
    times = time_steps([lambda: calls.append(("step",))], rounds=2, device=GPU1)
    first_timed = calls.index(("current device", GPU1))
    assert calls[first_timed - 1] == ("synchronize", GPU1) and ("step",) in calls[:first_timed - 1]
    assert times == [[pytest.approx(7.5e-3)] * 2]


def test_cuda_peak_memory_is_the_step_peak_on_its_gpu(calls, monkeypatch):
    allocated = {"now": 100 * MIB}
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda d: calls.append(("allocated", d)) or allocated["now"])
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d: calls.append(("reset peak", d)))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d: calls.append(("max allocated", d)) or 612 * MIB)
    probe = MemoryProbe.start(GPU1)
    assert (probe.method, probe.baseline) == ("cuda_max_allocated", 100 * MIB)
    assert probe.peak_mb(lambda: calls.append(("step",))) == 512
    assert calls == [("synchronize", GPU1), ("allocated", GPU1), ("synchronize", GPU1), ("reset peak", GPU1),
                     ("step",), ("synchronize", GPU1), ("max allocated", GPU1)]


def test_a_ddp_rank_takes_its_gpu_before_joining_the_nccl_group(calls, monkeypatch):
    for key, value in {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "gpu07",
                       "MASTER_PORT": "29500"}.items():
        monkeypatch.setenv(key, value)
    joined = {"group": False}

    def init_process_group(backend: str, init_method: str) -> None:
        calls.append(("init_process_group", backend, init_method))
        joined["group"] = True

    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    monkeypatch.setattr(dist, "is_initialized", lambda: joined["group"])
    monkeypatch.setattr(dist, "init_process_group", init_process_group)
    monkeypatch.setattr(dist, "get_rank", lambda: 3)
    monkeypatch.setattr(dist, "get_world_size", lambda: 4)
    monkeypatch.setattr(dist, "destroy_process_group", lambda: calls.append(("destroy_process_group",)))
    with distributed("cuda") as (env, device):
        assert (env.rank, env.world_size, env.local_rank, device) == (3, 4, 1, GPU1)
        assert calls[:2] == [("set_device", GPU1), ("init_process_group", "nccl", "env://")]
    assert calls[-1] == ("destroy_process_group",)


@pytest.mark.parametrize("native", [True, False])
def test_bf16_is_checked_on_the_runs_gpu_and_emulation_is_said(calls, monkeypatch, native):
    """torch asks the current GPU (cuda:0) whether it takes bf16; the run's is cuda:1. A GPU before
    Ampere passes that check by emulating bf16, several times slower than fp32: said, not silent."""
    def bf16_supported(including_emulation: bool = True) -> bool:
        calls.append(("bf16 supported?", including_emulation))
        return including_emulation or native

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", bf16_supported)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d: "Tesla V100")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        autocast("bf16", GPU1)
    assert calls[0] == ("current device", GPU1) and calls[-1] == ("current device restored",)
    assert ("bf16 supported?", True) in calls[1:-1] and ("bf16 supported?", False) in calls[1:-1]
    emulated = [str(w.message) for w in said if "emulated" in str(w.message)]
    assert emulated == ([] if native else ["amp=bf16 is emulated on Tesla V100 (no native bfloat16 before compute "
                                           "capability 8.0): slower than fp32; amp=fp16 is native there"])


def test_bf16_a_gpu_cannot_run_is_an_error_naming_amp(calls, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    with pytest.raises(SuiteError) as err:
        autocast("bf16", GPU1)
    assert err.value.key == "amp" and "amp=bf16 is not supported on cuda" in str(err.value)


def test_the_training_clock_is_read_after_the_gpu_finished(calls, monkeypatch):
    """Epoch times and loop_samples_per_sec: CUDA kernels run asynchronously, so a clock read without a
    synchronise would time the queueing of the epoch's steps, not their run."""
    import types

    from suite.train import loop

    monkeypatch.setattr(loop.time, "perf_counter", lambda: calls.append(("clock",)) or 1.0)
    assert loop.Trainer._now(types.SimpleNamespace(device=GPU1)) == 1.0
    assert calls == [("synchronize", GPU1), ("clock",)]
