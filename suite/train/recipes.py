"""Named training recipes: the papers' schedules as sets of defaults for a run's training keys.

A recipe only fills keys; any key can still be overridden one by one (`lr=0.05`). Learning-rate
milestones are fractions of the whole training length, so a shortened run keeps the shape of the
schedule (RAN's /10 at 64k and 96k of 160k iterations is `lr_milestones: [0.4, 0.6]`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Recipe:
    name: str
    doc: str
    values: dict[str, Any] = field(default_factory=dict)


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "ran_cifar",
            "RAN on CIFAR (Wang et al. 2017, Sec. 4.1): Nesterov SGD, batch 64, lr 0.1, momentum 0.9, "
            "wd 1e-4, lr /10 at 64k and 96k iterations, stop at 160k (204.8 epochs of CIFAR's 50k images).",
            dict(
                iterations=160_000, batch_size=64, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True,
                weight_decay=1e-4, schedule="step", lr_milestones=(0.4, 0.6), lr_decay=0.1, label_smoothing=0.0,
            ),
        ),
        Recipe(
            "ran_imagenet",
            "RAN on ImageNet (Sec. 4.2): SGD momentum 0.9, lr 0.1, /10 at 200k, 400k and 500k iterations, "
            "stop at 530k. The paper gives no batch size or weight decay: 256 (32 per GPU on 8 GPUs, as "
            "the authors' README suggests) and 1e-4 are assumptions.",
            dict(
                iterations=530_000, batch_size=256, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=False,
                weight_decay=1e-4, schedule="step", lr_milestones=(200 / 530, 400 / 530, 500 / 530),
                lr_decay=0.1, label_smoothing=0.0,
            ),
        ),
        Recipe(
            "san_imagenet",
            "SAN on ImageNet (Zhao et al. 2020, official config): SGD momentum 0.9, wd 1e-4 on all "
            "parameters, batch 256, lr 0.1 cosine over 100 epochs stepped per epoch, no warm-up, "
            "label smoothing 0.1.",
            dict(
                epochs=100, batch_size=256, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=False,
                weight_decay=1e-4, schedule="cosine", lr_milestones=(), label_smoothing=0.1,
            ),
        ),
        Recipe(
            "smoke",
            "A few epochs on a small data set with a small batch: checks that everything runs and "
            "learns, on a laptop CPU: on digits, Attention-56 variants end under 3% top-1 error "
            "(results/quick.md, `suite run quick`); batch 16 or 32 at this lr needed more epochs.",
            dict(
                epochs=4, batch_size=8, optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True,
                weight_decay=5e-4, schedule="cosine", lr_milestones=(), label_smoothing=0.0,
            ),
        ),
    )
}
