"""`digits`: scikit-learn's 1,797 real 8x8 handwritten digits (bundled, so always offline), as
3-channel images up-sampled to the training size: the suite's data set for demos, the embedded
default and CI accuracy checks.

The train/test split is fixed (stratified 80/20, 1,437 / 360 images, seed 0) and independent of
the run seed, so seeds vary the training, never the test set. Augmentation is milder than CIFAR's:
a crop shift of size/16 pixels (2 at 32x32, i.e. half a source pixel) and no flip (a mirrored
digit is a different glyph).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from suite.data.tensor import Augment, Splits

SPLIT_SEED = 0
TEST_FRACTION = 0.2


def load_digits(size: int = 32) -> Splits:
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    data = sklearn_digits()
    images = torch.from_numpy(data.images.astype(np.float32) / 16.0)[:, None]  # (N, 1, 8, 8) in [0, 1]
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(data.target.astype(np.int64))
    train, test = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, stratify=data.target, random_state=SPLIT_SEED
    )
    train, test = torch.from_numpy(np.sort(train)), torch.from_numpy(np.sort(test))
    return Splits(images[train], labels[train], images[test], labels[test], Augment(pad=max(1, size // 16), flip=False))
