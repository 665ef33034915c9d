"""Label noise as in RAN Table 5: each training label is kept with probability r, otherwise
replaced by one of the *other* classes, uniformly (so a corrupted label is never the true one)."""

from __future__ import annotations

import torch


def corrupt_labels(labels: torch.Tensor, num_classes: int, clean_ratio: float, seed: int) -> torch.Tensor:
    """A noisy copy of `labels` (int64, CPU); the same seed always corrupts the same samples."""
    if clean_ratio >= 1.0:
        return labels.clone()
    g = torch.Generator().manual_seed(seed)
    n = labels.numel()
    noisy = torch.rand(n, generator=g) >= clean_ratio
    # Adding 1..K-1 modulo K maps the true class uniformly onto the K-1 others.
    offset = torch.randint(1, num_classes, (n,), generator=g)
    return torch.where(noisy, (labels + offset) % num_classes, labels)
