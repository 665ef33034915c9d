"""The published figures of registered models: where each comes from and what it says about a run.

A model's figures at its default options (parameters, multiply-adds, and the errors its paper
reports for it trained as the paper trains it) live in one place, its registration (`paper=`):
the complexity page cites them, and a spec's run of that model at its defaults is compared with
them without the spec writing them again. A spec's `reference:` holds only the rows of an
ablation table for other settings (a 3x3 footprint, 70% label noise).

Attention nets and their baselines share a table, so they share its label here; the complexity
page cites it beside the paper's parameters and multiply-adds.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SAN_TABLE2 = "SAN (Zhao et al. 2020) Table 2"
RAN_TABLE6 = "RAN Table 6 (CIFAR)"
# Its baselines' rows are the errors their own papers report, as RAN's Table 7 prints them.
RAN_TABLE7 = "RAN Table 7 (ImageNet, single crop)"
# Attention-56's CIFAR-10 error, 5.52, is the default row of three ablations: mixed mask (Table 1),
# ARL (Table 3) and encoder-decoder mask (Table 4).
RAN_CIFAR_ABLATIONS = "RAN Tables 1, 3 and 4 (CIFAR-10, Attention-56)"

# The keys of a registration's `paper` that give a run's metrics, per data set: `top1_err` and
# `top5_err` are ImageNet's (the papers' 224-px models), CIFAR's errors are named by their data set.
COSTS = ("params_m", "gmacs")
ERRORS = {"imagenet": {"top1_err": "top1_err", "top5_err": "top5_err"},
          "cifar10": {"top1_err": "cifar10_top1_err"},
          "cifar100": {"top1_err": "cifar100_top1_err"}}


def ran_cifar_paper(params_m: float, cifar10: float, cifar100: float) -> dict[str, object]:
    """A RAN Table 6 row: parameters (M) and top-1 error (%) on CIFAR-10 and CIFAR-100."""
    return {"params_m": params_m, "cifar10_top1_err": cifar10, "cifar100_top1_err": cifar100,
            "source": RAN_TABLE6}


def run_reference(paper: Mapping[str, Any], data: str) -> dict[str, float]:
    """The metrics a model's figures give a run of it at its defaults on `data` (none on a data
    set the papers do not report on): its costs, and the errors its paper gives for that data set.

    Figures with errors are a table's row for the data sets those errors are on: their costs are
    those of the network trained there, with its classes (Attention-56's 31.9 M has a 1000-way FC),
    so a run on another data set (Attention-56 on CIFAR-10 at 224 px) gets none of them."""
    if data not in ERRORS:
        return {}
    reported = {d for d, keys in ERRORS.items() if any(key in paper for key in keys.values())}
    if reported and data not in reported:
        return {}
    keys = {**{k: k for k in COSTS}, **ERRORS[data]}
    return {metric: float(paper[key]) for metric, key in keys.items() if key in paper}
