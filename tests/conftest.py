"""Shared pytest fixtures. Each section is owned by one part of the suite; keep them delimited."""

# >>> signals: what the tests' children inherit >>>
import signal

# A pytest started in the background of a non-interactive shell (`pytest &` in a script) inherits
# SIGINT ignored, and every child it starts would too: the tests that press Ctrl-C on a run (or
# check its handlers) would then see it ignored, as `suite.processes.handle` leaves it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# <<< signals <<<

# >>> threads: tests that time or train on a shared CPU >>>
import pytest
import torch


@pytest.fixture
def one_thread():
    """Other work shares these 2-core machines: a step must not wait for a second OpenMP thread to
    be scheduled (1-15 ms a step there), and runs in subprocesses stay comparable."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
# <<< threads <<<

# >>> slurm: the local SLURM cluster (slurm/local-cluster.sh) >>>
import dataclasses
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

LOCAL_CLUSTER = Path(__file__).resolve().parents[1] / "slurm" / "local-cluster.sh"


@dataclasses.dataclass(frozen=True)
class SlurmCluster:
    """The running cluster as tests see it; knobs are read back from slurmctld, not assumed."""

    partition: str  # default partition
    gpu_partition: str
    cpus: int
    mem_mb: int
    gpus: int  # fake GPUs (symlinks to /dev/null): CUDA_VISIBLE_DEVICES plumbing only
    max_array_size: int


def _slurm_unavailable(reason: str) -> None:
    # CI sets SUITE_REQUIRE_SLURM=1: there a missing cluster must not pass as a skip.
    if os.environ.get("SUITE_REQUIRE_SLURM") == "1":
        pytest.fail(f"SUITE_REQUIRE_SLURM=1 but no SLURM cluster: {reason}", pytrace=False)
    pytest.skip(f"no SLURM cluster: {reason}")


def _local_cluster(command: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(LOCAL_CLUSTER), command], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _scontrol(*args: str) -> str:
    return subprocess.run(["scontrol", *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout


@pytest.fixture
def hangup_default():
    """SIGHUP's default action here and in the processes a test starts, as a shell on a terminal
    gives it: under `nohup pytest` both would ignore it, and a test of what a hangup does would see
    nothing happen."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGHUP, previous)


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    """A running local cluster: reused when up, started when we are root on Debian, else skip
    (or fail under SUITE_REQUIRE_SLURM=1). Tests using it carry the `slurm` marker."""
    if shutil.which("sinfo") is None or _local_cluster("status", 120).returncode != 0:
        if os.geteuid() != 0 or not Path("/etc/debian_version").exists():
            _slurm_unavailable(f"not running, and starting it needs root on Debian: "
                               f"`sudo bash {LOCAL_CLUSTER} up`")
        up = _local_cluster("up", 1800)  # first run installs packages: ~30 s
        if up.returncode != 0:
            _slurm_unavailable(f"`bash {LOCAL_CLUSTER} up` failed with exit {up.returncode}:\n"
                               f"{up.stdout[-3000:]}{up.stderr[-3000:]}")
    config = dict(re.findall(r"^(\w+)\s+= (.*)$", _scontrol("show", "config"), re.M))
    node = dict(re.findall(r"(\w+)=(\S*)", _scontrol("show", "node", "--oneliner")))
    gpus = re.search(r"gpu:(\d+)", node.get("Gres", ""))
    return SlurmCluster(partition="debug", gpu_partition="gpu", cpus=int(node["CPUTot"]),
                        mem_mb=int(node["RealMemory"]),
                        gpus=int(gpus.group(1)) if gpus else 0,
                        max_array_size=int(config["MaxArraySize"]))
# <<< slurm <<<
