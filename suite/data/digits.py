"""`digits`: scikit-learn's 1,797 real 8x8 handwritten digits (bundled, so always offline), as
3-channel images up-sampled to the training size: the suite's data set for demos, the embedded
default and CI accuracy checks.

The train/test split is fixed (stratified 80/20, 1,437 / 360 images, seed 0) and independent of
the run seed, so seeds vary the training, never the test set. Augmentation is milder than CIFAR's:
a crop shift of size/16 pixels (2 at 32x32, i.e. half a source pixel) and no flip (a mirrored
digit is a different glyph).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from suite.data.digits_split import TEST_INDICES
from suite.data.tensor import Augment, Splits


def load_digits(size: int = 32) -> Splits:
    pixels, labels = _read()
    images = torch.from_numpy(pixels.reshape(-1, 1, 8, 8) / 16.0)  # (N, 1, 8, 8) in [0, 1]
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(labels)
    test = torch.tensor(TEST_INDICES)
    train = torch.ones(len(labels), dtype=torch.bool).index_fill_(0, test, False).nonzero().flatten()
    return Splits(images[train], labels[train], images[test], labels[test], Augment(pad=max(1, size // 16), flip=False))


def _read() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 64) float32 pixels in 0..16 and int64 labels, read from the file scikit-learn ships
    without importing scikit-learn (its import is most of a short run's start)."""
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is None or not path.is_file():  # another layout: the same data through scikit-learn's loader
        from sklearn.datasets import load_digits as sklearn_digits

        pixels, labels = sklearn_digits(return_X_y=True)
    else:
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
        pixels, labels = table[:, :-1], table[:, -1]
    return pixels.astype(np.float32), labels.astype(np.int64)
