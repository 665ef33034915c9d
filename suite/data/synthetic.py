"""`synthetic`: random images and labels for throughput runs only. Its labels mean nothing, so its
accuracy is never reported (`DATASETS["synthetic"].accuracy` is False). No augmentation: the
training step, not the loader, is what a synthetic run times."""

from __future__ import annotations

import torch

from suite.data.catalog import DATASETS
from suite.data.tensor import Augment, Splits

TRAIN_SIZE = DATASETS["synthetic"].train_size  # images per epoch
TEST_SIZE = 128


def make_synthetic(size: int, num_classes: int, seed: int) -> Splits:
    g = torch.Generator().manual_seed(seed)

    def images(n: int) -> torch.Tensor:
        return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)

    def labels(n: int) -> torch.Tensor:
        return torch.randint(0, num_classes, (n,), generator=g)

    return Splits(images(TRAIN_SIZE), labels(TRAIN_SIZE), images(TEST_SIZE), labels(TEST_SIZE), Augment())
