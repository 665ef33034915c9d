"""What the suite knows about each data set without loading it (classes, natural image size)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int | None  # None: take the model's default (synthetic)
    classes_fixed: bool  # the files always have num_classes (not ImageNet: a folder may hold a subset)
    input_size: int | None  # natural training crop; None: the model's natural size (synthetic)
    accuracy: bool  # False for data whose labels mean nothing (never report its accuracy)
    train_size: int | None  # training images, where the files fix them (a batch must fit: checked before a run)
    doc: str
    title: str  # as the papers' tables name it (CIFAR-10), for reports


DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo("digits", 10, True, 32, True, 1437, "scikit-learn's 1,797 handwritten 8x8 digits, up-sampled to 32x32 RGB (offline)",
                    "digits"),
        DatasetInfo("cifar10", 10, True, 32, True, 50000, "CIFAR-10, python-format batches in <root>/cifar-10-batches-py",
                    "CIFAR-10"),
        DatasetInfo("cifar100", 100, True, 32, True, 50000, "CIFAR-100, python-format files in <root>/cifar-100-python",
                    "CIFAR-100"),
        DatasetInfo("imagenet", 1000, False, 224, True, None, "ILSVRC-2012 as <root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG",
                    "ImageNet"),
        DatasetInfo("synthetic", None, False, None, False, 512, "random tensors, for throughput only (accuracy is never reported)",
                    "synthetic"),
    )
}
