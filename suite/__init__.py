"""Benchmark and ablation suite for attention in image classifiers (RAN, SAN)."""

__version__ = "0.1.0"
