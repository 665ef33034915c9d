"""Where a measurement ran: device, its name, torch version, CPU threads.

Absolute timings mean nothing without these, so every throughput row carries them as columns.
"""

from __future__ import annotations

import os
import platform
import re
from typing import Any

import torch

from suite.config import DEVICES
from suite.errors import SuiteError
from suite.measure import heap

NVIDIA_DRIVER = "/proc/driver/nvidia/version"  # its first line names the loaded kernel driver's version


def resolve_device(name: str | torch.device | None) -> torch.device:
    """`name` as a torch.device; None or "auto" means CUDA when available, else CPU."""
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise SuiteError(f"invalid device {str(name)!r}", key="device", choices=DEVICES)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SuiteError(f"device {str(name)!r} requested but CUDA is not available", key="device",
                         choices=["auto", "cpu"])
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise SuiteError(f"device {str(name)!r} requested but this machine has {torch.cuda.device_count()} "
                         "CUDA device(s)", key="device", choices=[f"cuda:{i}" for i in range(torch.cuda.device_count())])
    return device


def unseen_gpus(name: str | torch.device | None) -> str | None:
    """Why an `auto` run given GPUs (CUDA_VISIBLE_DEVICES set, as SLURM sets it for `--gpus-per-node`)
    runs on the CPU, or None: torch sees no CUDA there (a CPU-only torch, no driver, or the local
    test cluster's GPUs, which are only the variable), and training on the CPU while the job holds
    GPUs should be said, not found in a slow result."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if name not in (None, "auto") or visible in ("", "-1", "NoDevFiles") or torch.cuda.is_available():
        return None
    return (f"this run was given GPUs (CUDA_VISIBLE_DEVICES is set) but torch {torch.__version__} sees no CUDA "
            "(a CPU-only torch, no driver, or fake GPUs): device auto runs on the CPU; device=cuda makes this an error")


def environment(device: str | torch.device | None = None) -> dict[str, Any]:
    """`device` ("cpu", "cuda:0", ...), `device_name` (CPU model from /proc/cpuinfo or CUDA device
    name), `torch_version`, `threads` (torch.get_num_threads(): intra-op threads of CPU kernels),
    `timing_heap` ("steady" where suite.measure.heap can keep the heap's pages while timing, else "default");
    on CUDA also what GPU timings depend on (`cuda_software`)."""
    device = resolve_device(device)
    extra: dict[str, Any] = {}
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        name, device_str = torch.cuda.get_device_name(index), f"cuda:{index}"
        extra = cuda_software()
    else:
        name, device_str = cpu_name(), "cpu"
    return {"device": device_str, "device_name": name, "torch_version": torch.__version__,
            "threads": torch.get_num_threads(), "timing_heap": "steady" if heap.available() else "default", **extra}


def cuda_software() -> dict[str, Any]:
    """`cuda_version` (the CUDA runtime torch was built with), `cudnn_version` and `gpu_driver` (the
    NVIDIA kernel driver's version; None where /proc does not say): one GPU runs at different speeds
    under different ones."""
    return {"cuda_version": torch.version.cuda, "cudnn_version": torch.backends.cudnn.version(),
            "gpu_driver": gpu_driver()}


def gpu_driver() -> str | None:
    try:
        with open(NVIDIA_DRIVER) as f:
            found = re.search(r"Kernel Module\b.*?\s(\d+(?:\.\d+)+)\s", f.readline())
    except OSError:
        return None
    return found.group(1) if found else None


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def code_version() -> dict[str, Any]:
    """Which code produced a result: the package version, and the git commit (+ dirty flag) when
    the package runs from a git checkout (a SLURM job running a code snapshot reports the
    snapshot's recorded commit through SUITE_GIT_COMMIT / SUITE_GIT_DIRTY)."""
    import suite

    out: dict[str, Any] = {"suite_version": suite.__version__}
    if "SUITE_GIT_COMMIT" in os.environ:
        out["git_commit"] = os.environ["SUITE_GIT_COMMIT"]
        out["git_dirty"] = os.environ.get("SUITE_GIT_DIRTY") == "1"
        return out
    from suite.dispatch.snapshot import git_state, package_dir

    commit, dirty = git_state(package_dir())
    if commit is not None:
        out.update(git_commit=commit, git_dirty=dirty)
    return out
