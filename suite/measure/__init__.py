"""Measuring models: params, multiply-adds and activations (complexity), inference and training
throughput (throughput, timed on the steady heap of heap), peak memory (memory), where it ran (env),
the PGD attack of `measure.attack` (attack), and `suite profile`'s one-subprocess-per-model
orchestration (profile)."""

from suite.measure.complexity import Complexity, count_params, measure_complexity, model_complexity
from suite.measure.env import environment, resolve_device
from suite.measure.memory import MemoryProbe
from suite.measure.profile import ProfileJob, measure_run, profile_model
from suite.measure.throughput import BenchSettings, Timing, decay_batch_step, is_oom, with_batch_backoff

__all__ = [
    "BenchSettings",
    "Complexity",
    "MemoryProbe",
    "ProfileJob",
    "Timing",
    "count_params",
    "decay_batch_step",
    "environment",
    "is_oom",
    "measure_complexity",
    "measure_run",
    "model_complexity",
    "profile_model",
    "resolve_device",
    "with_batch_backoff",
]
