"""Where a registered model's published figures come from: one label per paper table.

Attention nets and their baselines share a table, so they share its label here; the complexity
page cites it beside the paper's parameters and multiply-adds.
"""
from __future__ import annotations

SAN_TABLE2 = "SAN (Zhao et al. 2020) Table 2"
RAN_TABLE6 = "RAN Table 6 (CIFAR)"
RAN_TABLE7 = "RAN Table 7 (ImageNet, single crop)"
# Attention-56's CIFAR-10 error, 5.52, is the default row of three ablations: mixed mask (Table 1),
# ARL (Table 3) and encoder-decoder mask (Table 4).
RAN_CIFAR_ABLATIONS = "RAN Tables 1, 3 and 4 (CIFAR-10, Attention-56)"


def ran_cifar_paper(params_m: float, cifar10: float, cifar100: float) -> dict[str, object]:
    """A RAN Table 6 row: parameters (M) and top-1 error (%) on CIFAR-10 and CIFAR-100."""
    return {"params_m": params_m, "cifar10_top1_err": cifar10, "cifar100_top1_err": cifar100,
            "source": RAN_TABLE6}
