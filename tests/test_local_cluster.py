"""The local SLURM cluster (slurm/local-cluster.sh) does what the dispatch tests rely on."""
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import submitit

pytestmark = pytest.mark.slurm

SCRIPT = Path(__file__).resolve().parents[1] / "slurm" / "local-cluster.sh"
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL")


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def sbatch(folder: Path, *args: str) -> str:
    out = run("sbatch", "--parsable", "--time=1", f"--chdir={folder}",
              f"--output={folder}/%j.out", *args)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split(";")[0]


def final_state(job_id: str, timeout: float = 60) -> str:
    """The job's state in sacct (slurmdbd) once terminal; sacct, not squeue, is what submitit reads."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = run("sacct", "-n", "-X", "-P", "-o", "State", "-j", job_id).stdout.strip()
        if state.startswith(TERMINAL):
            return state
        time.sleep(0.2)
    run("scancel", job_id)
    pytest.fail(f"job {job_id} not finished after {timeout} s (sacct state {state!r})")


def daemon_pids() -> dict[str, str]:
    files = {"slurmctld": "/run/slurmctld.pid", "slurmd": "/run/slurmd.pid",
             "slurmdbd": "/run/slurmdbd.pid", "mariadbd": "/run/mysqld/mysqld.pid",
             "munged": "/run/munge/munged.pid"}
    return {name: Path(path).read_text().strip() for name, path in files.items()}


@pytest.mark.parametrize(("command", "state"), [("true", "COMPLETED"), ("exit 3", "FAILED")])
def test_sbatch_state_reaches_sacct(slurm_cluster, tmp_path, command, state):
    assert final_state(sbatch(tmp_path, "--wrap", command)) == state


def test_gpu_job_sees_a_fake_gpu(slurm_cluster, tmp_path):
    if slurm_cluster.gpus < 1:
        pytest.skip("cluster started with LOCAL_SLURM_GPUS=0")
    job = sbatch(tmp_path, f"--partition={slurm_cluster.gpu_partition}", "--gpus-per-node=1",
                 "--wrap", 'echo "$CUDA_VISIBLE_DEVICES $SLURM_JOB_GPUS"')
    assert final_state(job) == "COMPLETED"
    visible, job_gpus = (tmp_path / f"{job}.out").read_text().split()
    # 0 on an idle cluster; another job holding GPU 0 at the same time would give 1
    assert visible == job_gpus
    assert int(visible) in range(slurm_cluster.gpus)


def test_submitit_job_returns_its_result(slurm_cluster, tmp_path):
    executor = submitit.AutoExecutor(folder=tmp_path)
    assert executor.cluster == "slurm"
    executor.update_parameters(slurm_partition=slurm_cluster.partition, timeout_min=5,
                               cpus_per_task=1)
    job = executor.submit(os.getenv, "SLURM_JOB_ID")  # importable in the job: pickled by name
    deadline = time.monotonic() + 60
    while not job.done():
        if time.monotonic() > deadline:
            job.cancel()
            pytest.fail(f"submitit job {job.job_id} not done after 60 s")
        time.sleep(0.2)
    assert job.result() == job.job_id


def test_max_array_size_is_the_configured_one(slurm_cluster, tmp_path):
    written = re.search(r"^MaxArraySize=(\d+)$", Path("/etc/slurm/slurm.conf").read_text(), re.M)
    expected = int(os.environ.get("LOCAL_SLURM_MAX_ARRAY_SIZE") or written.group(1))
    assert slurm_cluster.max_array_size == expected
    largest = expected - 1  # array indices run from 0 to MaxArraySize - 1
    held = sbatch(tmp_path, "--hold", f"--array={largest}", "--wrap", "true")
    run("scancel", held)
    refused = run("sbatch", "--hold", f"--array={expected}", f"--chdir={tmp_path}",
                  "--wrap", "true")
    assert refused.returncode != 0
    assert "Invalid job array specification" in refused.stderr


def test_status_exits_zero_when_up(slurm_cluster):
    status = run("bash", str(SCRIPT), "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert re.search(rf"^{slurm_cluster.partition}\*\s+up\b", status.stdout, re.M)
    assert "cluster: up" in status.stdout


def test_up_with_the_running_settings_changes_nothing(slurm_cluster):
    if os.geteuid() != 0:
        pytest.skip("`up` needs root")
    before = daemon_pids()
    knobs = {"LOCAL_SLURM_GPUS": slurm_cluster.gpus, "LOCAL_SLURM_CPUS": slurm_cluster.cpus,
             "LOCAL_SLURM_MEM_MB": slurm_cluster.mem_mb,
             "LOCAL_SLURM_MAX_ARRAY_SIZE": slurm_cluster.max_array_size}
    env = {k: v for k, v in os.environ.items() if k != "FRESH"} | {k: str(v) for k, v in knobs.items()}
    up = subprocess.run(["bash", str(SCRIPT), "up"], capture_output=True, text=True, timeout=120,
                        stdin=subprocess.DEVNULL, env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "started" not in up.stdout
    assert daemon_pids() == before
