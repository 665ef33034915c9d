"""What the README and the command-line help tell a user: the commands they show exist and run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_m(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=120, env=env,
                          cwd=ROOT, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("module", ["suite", "suite.cli"])
def test_the_command_runs_as_a_module(module):
    """`python -m suite.cli` (the module the `suite` entry point names) is the command too, not silence."""
    done = _python_m(module, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: suite ")
    done = _python_m(module, "models", "ran56*")
    assert done.returncode == 0, done.stderr
    assert "ran56_cifar" in done.stdout


def test_the_run_process_entry_point_says_its_usage():
    """`python -m suite.execute RUN_DIR` (the README's flow) without a run directory: a usage line,
    not an IndexError traceback; `--help` is not read as a run directory."""
    done = _python_m("suite.execute")
    assert done.returncode == 2
    assert done.stderr.startswith("usage: python -m suite.execute RUN_DIR")
    assert "Traceback" not in done.stderr
    done = _python_m("suite.execute", "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m suite.execute RUN_DIR")
