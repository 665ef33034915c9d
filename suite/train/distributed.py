"""Data-parallel process groups from the launcher's environment (torchrun, SLURM, submitit).

Where rank and world size come from, in order:
1. a process group the caller already initialised (left alone on exit);
2. torchrun-style variables: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT (also what
   submitit.helpers.TorchDistributedEnvironment().export() sets);
3. a multi-task SLURM step (SLURM_STEP_NUM_TASKS > 1, e.g. srun or a submitit job with several
   tasks): translated to 2. as submitit's TorchDistributedEnvironment does (master = first node of
   the job, port derived from the job id). A batch script or salloc shell of several tasks is one
   process outside any step (SLURM_NTASKS > 1 there too, but no SLURM_STEP_NUM_TASKS).
Otherwise the run is a single process. Backend: NCCL on CUDA, gloo on CPU. One process per GPU:
rank r uses cuda:LOCAL_RANK, or the only GPU it sees where SLURM binds one to each task.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from suite.errors import SuiteError
from suite.measure.env import resolve_device


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce(self, tensor: torch.Tensor, op: dist.ReduceOp.RedOpType = dist.ReduceOp.SUM) -> torch.Tensor:
        if self.enabled:
            dist.all_reduce(tensor, op=op)
        return tensor

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def broadcast_buffers(self, module: torch.nn.Module) -> None:
        """Rank 0's buffers (BN running statistics) everywhere. DDP broadcasts them before each
        forward, so after the last training step every rank holds statistics of its own batch;
        evaluation must use one model on all ranks."""
        if self.enabled:
            for buffer in module.buffers():
                dist.broadcast(buffer, src=0)


@contextmanager
def distributed(device: str = "auto") -> Iterator[tuple[Dist, torch.device]]:
    """The process group (joined or created from the environment) and this rank's device.
    A group created here is destroyed on exit."""
    created = False
    if not dist.is_initialized():
        world_size = _world_size_from_env()
        if world_size > 1:
            local_rank = int(os.environ.get("LOCAL_RANK", 0))
            target = _device(device, local_rank)
            backend = "nccl" if target.type == "cuda" else "gloo"
            if target.type == "cuda":
                torch.cuda.set_device(target)
            dist.init_process_group(backend=backend, init_method="env://")
            created = True
    if dist.is_initialized():
        info = Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    else:
        info = Dist()
    target = _device(device, info.local_rank)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    try:
        yield info, target
    finally:
        if created:
            dist.destroy_process_group()


def world_size() -> int:
    """How many processes train together: the process group's size, else what the environment says."""
    return dist.get_world_size() if dist.is_initialized() else _world_size_from_env()


def _world_size_from_env() -> int:
    env = os.environ
    if "WORLD_SIZE" in env and "RANK" in env:
        return int(env["WORLD_SIZE"])
    if slurm_step_tasks() > 1 and "SLURM_PROCID" in env:
        _export_slurm()
        return int(env["WORLD_SIZE"])
    return 1


def slurm_step_tasks() -> int:
    """The tasks of the SLURM job step this process is one of (srun sets SLURM_STEP_NUM_TASKS); 1
    outside a step: `sbatch -n 2` or `salloc -n 2` running the suite directly is one process, though
    its SLURM_NTASKS says 2, and waiting for the other rank would wait until torch's timeout."""
    return int(os.environ.get("SLURM_STEP_NUM_TASKS", "1"))


def _export_slurm() -> None:
    """SLURM task variables -> torchrun's, as submitit's TorchDistributedEnvironment.export() does
    (same master port rule), but also for plain `srun` steps outside submitit (its JobEnvironment
    only activates under SUBMITIT_EXECUTOR) and keeping variables the user already set."""
    from submitit.slurm.slurm import SlurmJobEnvironment

    job = SlurmJobEnvironment()
    port = random.Random(job.job_id).randint(20_000, 60_000)
    for key, value in {"MASTER_ADDR": job.hostnames[0], "MASTER_PORT": port, "RANK": job.global_rank,
                       "WORLD_SIZE": job.num_tasks, "LOCAL_RANK": job.local_rank}.items():
        os.environ.setdefault(key, str(value))


def _device(spec: str, local_rank: int) -> torch.device:
    """`auto` = this rank's GPU if there is one, else CPU; `cuda` = this rank's GPU (`_local_gpu`)."""
    device = resolve_device(spec)
    return torch.device("cuda", _local_gpu(local_rank)) if device.type == "cuda" and device.index is None else device


def _local_gpu(local_rank: int) -> int:
    """The GPU index of the node's process `local_rank`: cuda:LOCAL_RANK among the node's GPUs, or
    cuda:0 where the process sees a single GPU, its own: SLURM's --gpus-per-task binds each task to
    its GPU (CUDA_VISIBLE_DEVICES per task), and cuda:LOCAL_RANK would not exist there."""
    count = torch.cuda.device_count()
    if local_rank < count:
        return local_rank
    if count == 1:
        return 0
    raise SuiteError(f"process {local_rank} of this node has no GPU of its own: it sees {count} GPUs (DDP runs "
                     "one process per GPU: as many tasks per node as GPUs)", key="device")
