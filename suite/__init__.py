"""Benchmark and ablation suite for attention in image classifiers (RAN, SAN)."""

from pathlib import Path

__version__ = "0.1.0"
# Where the running suite's code is, resolved once: what a run snapshots, the spec folders it
# searches, which stack frames are a plugin's, and the checkout a child process must import from.
PACKAGE_DIR = Path(__file__).resolve().parent
