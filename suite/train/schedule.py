"""Learning rate as a pure function of the iteration: nothing to checkpoint but the iteration.

- step: lr *= lr_decay at each milestone; milestones are fractions of the total number of
  iterations, applied per iteration (RAN counts iterations: 64k and 96k of 160k).
- cosine: 0.5 * lr * (1 + cos(pi * epoch / epochs)) with the *integer* epoch, i.e. stepped once
  per epoch like the SAN official code (CosineAnnealingLR(T_max=epochs) stepped each epoch).
- constant.
Linear warm-up (warmup_epochs, may be fractional) multiplies any schedule by (it + 1) / warmup
iterations during its first iterations.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from suite.config import RunConfig


def learning_rate(config: RunConfig, iteration: int, steps_per_epoch: int, total: int) -> float:
    """The lr for the optimizer step that follows `iteration` completed steps (0-based)."""
    lr = config.lr
    if config.schedule == "step":
        passed = sum(iteration >= round(m * total) for m in config.lr_milestones)
        lr *= config.lr_decay**passed
    elif config.schedule == "cosine":
        epochs = total / steps_per_epoch
        lr *= 0.5 * (1 + math.cos(math.pi * (iteration // steps_per_epoch) / epochs))
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if iteration < warmup:
        lr *= (iteration + 1) / warmup
    return lr
