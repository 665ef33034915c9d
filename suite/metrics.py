"""The names of what a run records, for the spec checks, the reference and the reports alike."""

from __future__ import annotations

from suite.data.views import VIEW_METRICS

# What a run asked for `measure.attack` records (suite.measure.attack): the targeted attack's success rate
# (%) after each step count, and how many test images were attacked.
ATTACK_STEPS = (1, 2, 4, 8, 16)
ATTACK_METRICS = tuple(f"attack_success_{t}" for t in ATTACK_STEPS)
# Result metrics of a run (suite.train.loop's final_metrics; wall_time_s, as suite.execute records it, is
# measurement plus training over all the run's attempts; the view metrics, errors on rotated and flipped test
# images, see suite.data.views; the attack's, after training, see suite.measure.attack).
RUN_METRICS = ("top1_err", "top5_err", *VIEW_METRICS, *ATTACK_METRICS, "best_top1_err", "best_epoch", "train_loss",
               "train_top1_err", "epochs", "iterations", "wall_time_s")
# The result metrics of a data set with meaningful labels (never recorded on synthetic data).
ACCURACY = ("top1_err", "top5_err", *VIEW_METRICS, *ATTACK_METRICS, "best_top1_err", "best_epoch", "train_top1_err")
# The result metrics that count something (epochs, iterations): reports show their whole means without decimals.
COUNTS = ("best_epoch", "epochs", "iterations")
# What suite.measure records beside them: parameters, multiply-adds, activations, speed, memory.
COSTS = ("params_m", "gmacs", "macts", "infer_samples_per_sec", "train_samples_per_sec", "infer_peak_memory_mb",
         "train_peak_memory_mb")
# The metrics a spec's `reference:` (the paper's numbers) may give.
REFERENCE_METRICS = ("top1_err", "top5_err", *VIEW_METRICS, *ATTACK_METRICS, "params_m", "gmacs")


def error(metric: str) -> bool:
    """Whether a metric is an error in percent (top1_err, a view's top1_err_rot180)."""
    return metric.endswith("_err") or "_err_" in metric


def percent(metric: str) -> bool:
    """Whether a metric is in percent (errors, attack success rates): the report's legend and plot
    axes say so."""
    return error(metric) or metric in ATTACK_METRICS
