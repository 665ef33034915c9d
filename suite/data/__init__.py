"""Data sets: digits (offline, real), CIFAR-10/100, ImageNet, synthetic; label noise."""

from suite.data.catalog import DATASETS, DatasetInfo

__all__ = ["DATASETS", "DatasetInfo"]
