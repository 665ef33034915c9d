"""`build(data_config, ...)`: the train and test loaders of a run, on its device, for its rank.

Where files live: `data.root` (which `suite.config.resolve` sets from $SUITE_DATA when a run does
not give it), else ~/.cache/suite/data. CIFAR expects
<root>/cifar-10-batches-py/ or <root>/cifar-100-python/; ImageNet <root>/train/ and <root>/val/
(or point data.root straight at the ImageNet directory: see `data_root`). digits and synthetic need
no files.

`batch_size` here is per rank: the training loop passes the run's batch_size / world_size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from suite.data.catalog import DATASETS
from suite.data.noise import corrupt_labels
from suite.data.seeds import derive_seed
from suite.data.tensor import Splits, TensorLoader, channel_stats
from suite.errors import SuiteError
from suite.files import check_lookup

if TYPE_CHECKING:  # suite.config imports suite.data.catalog: no runtime import back
    from suite.config import DataConfig

DEFAULT_ROOT = Path("~/.cache/suite/data")


class Loader(Protocol):
    """What the training loop needs from a loader. Training loaders also have
    `state_dict()` / `load_state_dict()` (their position in the data order, for resume)."""

    def __len__(self) -> int: ...  # batches per epoch on this rank

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...  # (images, labels) on the device


@dataclass
class Data:
    train: Any  # a Loader with state_dict() / load_state_dict()
    test: Loader
    num_classes: int
    # the per-channel normalisation the loaders apply, in [0, 1] pixel units: where the valid images
    # lie in the normalised space the models see (suite.measure.attack keeps its images valid)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    test_size: int  # images in the test split (all ranks)


def data_root(config: DataConfig) -> Path:
    """`data.root` (a resolved run's holds $SUITE_DATA's folder when it gave none), else
    ~/.cache/suite/data. For ImageNet, a root that has no train/ but an `imagenet/` subdirectory
    resolves to that subdirectory."""
    root = Path(config.root or DEFAULT_ROOT).expanduser()
    check_lookup(root, key="data.root")  # a name too long, a symlink loop: said, not an OSError from is_dir
    if config.name == "imagenet" and not (root / "train").is_dir() and (root / "imagenet" / "train").is_dir():
        return root / "imagenet"
    return root


def check_present(config: DataConfig, num_classes: int | None = None) -> None:
    """The data set's files are where a run on this machine would look, with the classes the model
    predicts: checked before runs start, so a missing download is one error, not a failed run per
    grid point."""
    if config.name == "imagenet":
        from suite.data.imagenet import check_splits

        found = check_splits(data_root(config))
        if num_classes is not None:
            _check_classes(found, num_classes, config.name)
    elif config.name in ("cifar10", "cifar100") and not config.download:
        from suite.data.cifar import check_files

        check_files(config.name, data_root(config))


def check_readable(config: DataConfig) -> None:
    """Read the files training will read, where that takes seconds (CIFAR's batches), so a corrupt
    one fails a run before its model is measured (minutes on a CPU), not after."""
    if config.name in ("cifar10", "cifar100"):
        from suite.data.cifar import load_cifar

        load_cifar(config.name, data_root(config), download=config.download)


def build(
    config: DataConfig,
    *,
    batch_size: int,
    seed: int,
    num_classes: int,
    device: torch.device = torch.device("cpu"),
    rank: int = 0,
    world_size: int = 1,
) -> Data:
    """Loaders for `config` with this rank's `batch_size`; `num_classes` is what the model predicts
    (the data must have exactly that many classes). Labels are corrupted here when
    `clean_ratio` < 1 (training split only), seeded from `seed`."""
    info = DATASETS[config.name]
    size = config.input_size or info.input_size
    if size is None:
        raise SuiteError(f"{config.name} needs an explicit input size", key="data.input_size")
    eval_size = config.eval_size or size
    noise_seed = derive_seed(seed, "label-noise")
    order_seed = derive_seed(seed, "train-order")
    if config.name == "imagenet":
        return _imagenet(config, size, eval_size, batch_size, num_classes, noise_seed, order_seed, device, rank,
                         world_size)
    splits = _load_tensors(config, size, num_classes, seed)
    classes = info.num_classes or num_classes
    _check_classes(classes, num_classes, config.name)
    train_labels = corrupt_labels(splits.train_labels, classes, config.clean_ratio, noise_seed)
    mean, std = channel_stats(splits.train_images)
    common = dict(batch_size=batch_size, mean=mean, std=std, rank=rank, world_size=world_size)
    generator = torch.Generator(device=device).manual_seed(order_seed)
    train = TensorLoader(splits.train_images.to(device), train_labels.to(device), size=size,
                         augment=splits.augment, generator=generator, **common)
    test = TensorLoader(splits.test_images.to(device), splits.test_labels.to(device), size=eval_size, **common)
    return Data(train, test, classes, tuple(mean.tolist()), tuple(std.tolist()), len(splits.test_images))


def _load_tensors(config: DataConfig, size: int, num_classes: int, seed: int) -> Splits:
    if config.name == "digits":
        from suite.data.digits import load_digits

        return load_digits(size)
    if config.name == "synthetic":
        from suite.data.synthetic import make_synthetic

        return make_synthetic(size, num_classes, derive_seed(seed, "synthetic"))
    from suite.data.cifar import load_cifar

    return load_cifar(config.name, data_root(config), download=config.download)


def _imagenet(config: DataConfig, size: int, eval_size: int, batch_size: int, num_classes: int,
              noise_seed: int, order_seed: int, device: torch.device, rank: int, world_size: int) -> Data:
    from suite.data.imagenet import MEAN, STD, FolderLoader, eval_transform, image_folders, train_transform

    train, val = image_folders(data_root(config))
    _check_classes(len(train.classes), num_classes, config.name)
    if config.clean_ratio < 1.0:
        targets = corrupt_labels(torch.tensor(train.targets), len(train.classes), config.clean_ratio, noise_seed)
        train.samples = [(path, int(t)) for (path, _), t in zip(train.samples, targets)]
        train.targets = [t for _, t in train.samples]
    # at most one worker per core this process may use (more only warns and competes); the batches
    # do not depend on the count (each sample draws from its own seed)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = min(config.workers, cores)
    common = dict(batch_size=batch_size, workers=workers, device=device, rank=rank, world_size=world_size)
    return Data(
        FolderLoader(train, train_transform(size), seed=order_seed, **common),
        FolderLoader(val, eval_transform(eval_size), **common),
        len(train.classes),
        MEAN,
        STD,
        len(val),
    )


def _check_classes(found: int, num_classes: int, name: str) -> None:
    if found != num_classes:
        raise SuiteError(f"{name} has {found} classes but the model predicts {num_classes}", key="model.num_classes")
