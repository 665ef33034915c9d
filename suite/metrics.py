"""The names of what a run records, for the spec checks, the reference and the reports alike."""

from __future__ import annotations

from suite.data.views import VIEW_METRICS, VIEWS

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
# What suite.measure records beside them, with the names reports give them: parameters, multiply-adds,
# activations (1e6 outputs per image, suite.measure.complexity), speed, peak memory (MiB, suite.measure.memory,
# whatever `_mb` says).
COST_LABELS = {"params_m": "params (M)", "gmacs": "GMACs", "macts": "activations (M)",
               "infer_samples_per_sec": "infer img/s", "train_samples_per_sec": "train img/s",
               "infer_peak_memory_mb": "infer peak memory (MiB)", "train_peak_memory_mb": "train peak memory (MiB)"}
COSTS = tuple(COST_LABELS)
# The metrics a spec's `reference:` (the paper's numbers) may give.
REFERENCE_METRICS = ("top1_err", "top5_err", *VIEW_METRICS, *ATTACK_METRICS, "params_m", "gmacs")


def error(metric: str) -> bool:
    """Whether a metric is an error in percent (top1_err, a view's top1_err_rot180)."""
    return metric.endswith("_err") or "_err_" in metric


def percent(metric: str) -> bool:
    """Whether a metric is in percent (errors, attack success rates): the report's legend and plot
    axes say so."""
    return error(metric) or metric in ATTACK_METRICS


# Cost columns a pivot shows beside the metrics (throughput only when measured); the others are
# shown when a report asks for them as metrics.
TABLE_COSTS = {c: COST_LABELS[c] for c in ("params_m", "gmacs", "infer_samples_per_sec", "train_samples_per_sec")}
LABELS = {"top1_err": "top-1 err", "top5_err": "top-5 err", "best_top1_err": "best top-1 err",
          "train_loss": "train loss", "train_top1_err": "train top-1 err", "wall_time_s": "wall time (s)",
          # the epochs trained when the best top-1 was measured: 0.25 for a run that stopped a quarter
          # into its first epoch (the `epochs` a run records, suite.train.loop), not an epoch's index
          "best_epoch": "epochs to best top-1 err",
          **COST_LABELS}
# How each view turns the test images (suite.data.views), in words: `rot90_cw` headed a column as itself.
VIEW_LABELS = {"flip_ud": "upside down", "rot90_cw": "turned 90° cw", "rot90_ccw": "turned 90° ccw",
               "rot180": "turned 180°"}
LABELS |= {f"top{k}_err_{view}": f"top-{k} err {VIEW_LABELS[view]}" for view in VIEWS for k in (1, 5)}
LABELS |= {f"attack_success_{t}": f"attack success {t} step{'s' * (t > 1)}" for t in ATTACK_STEPS}


def label(metric: str) -> str:
    """A metric's name in a report's table and plots (its key where it has none)."""
    return LABELS.get(metric, metric)


def column_names() -> set[str]:
    """Every name a report's table may give a column of metrics or costs (with the paper's value
    and the difference beside it), and its run counts: an axis named so would read as one."""
    return {"runs"} | {f"{pre}{label(m)}{post}" for m in (*RUN_METRICS, *COSTS)
                       for pre, post in (("", ""), ("", ", paper"), ("Δ ", ""))}
