"""Data sets: digits (offline, real), CIFAR-10/100, ImageNet, synthetic; label noise.

`build(data_config, batch_size=, seed=, num_classes=, device=, rank=, world_size=)` returns the
train/test loaders of a run (see suite.data.loaders); it is imported lazily so that reading the
catalog (as suite.config does) stays free of torch.
"""

from typing import Any

from suite.data.catalog import DATASETS, DatasetInfo

__all__ = ["DATASETS", "Data", "DatasetInfo", "build", "check_present", "data_root"]


def __getattr__(name: str) -> Any:
    if name in ("build", "check_present", "Data", "data_root"):
        from suite.data import loaders as module

        return getattr(module, name)
    raise AttributeError(f"module 'suite.data' has no attribute {name!r}")
