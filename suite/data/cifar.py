"""CIFAR-10 / CIFAR-100 from the standard python-format pickles, loaded once as uint8 tensors.

Expected layout (what the official tarballs extract to):
    <root>/cifar-10-batches-py/{data_batch_1..5,test_batch}
    <root>/cifar-100-python/{train,test}
`data.download=true` fetches and extracts them through torchvision (needs internet).

Training augmentation is the papers' (RAN Sec. 4.1, after He et al.): zero-pad 4 pixels per side,
random 32x32 crop, random horizontal flip; applied per batch on the device (suite.data.tensor).
Normalisation is not quite the paper's: RAN subtracts the "per-pixel RGB mean"; here each channel is
standardised with the training split's mean and std (suite.data.loaders), as the Torch ResNet
code behind RAN's CIFAR recipe (He et al.) does, and with one rule for every data set here.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from suite.data.catalog import DATASETS
from suite.data.tensor import Augment, Splits
from suite.errors import SuiteError


@dataclass(frozen=True)
class _Layout:
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_key: bytes
    url: str
    torchvision: str


LAYOUTS = {
    "cifar10": _Layout(
        "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), b"labels",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "CIFAR10",
    ),
    "cifar100": _Layout(
        "cifar-100-python", ("train",), ("test",), b"fine_labels",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "CIFAR100",
    ),
}
AUGMENT = Augment(pad=4, flip=True)


def load_cifar(name: str, root: Path, *, download: bool = False) -> Splits:
    layout = LAYOUTS[name]
    folder = root / layout.folder
    if download and _missing(layout, folder):
        _download(layout, root)
    check_files(name, root)
    classes = DATASETS[name].num_classes
    train_x, train_y = _read(folder, layout.train, layout.label_key, classes)
    test_x, test_y = _read(folder, layout.test, layout.label_key, classes)
    return Splits(train_x, train_y, test_x, test_y, AUGMENT)


def check_files(name: str, root: Path) -> None:
    """The data set's files are all in `root` (what `suite run` checks before it starts runs)."""
    layout = LAYOUTS[name]
    folder = root / layout.folder
    missing = _missing(layout, folder)
    if missing:
        raise SuiteError(
            f"{name}: missing {', '.join(missing)} in {folder}; download {layout.url} and extract it "
            f"into {root}, or set data.download=true (needs internet), or point data.root / $SUITE_DATA "
            f"at the directory that holds {layout.folder}/",
            key="data.root",
        )


def _missing(layout: _Layout, folder: Path) -> list[str]:
    return [f for f in layout.train + layout.test if not (folder / f).is_file()]


def _read(folder: Path, files: tuple[str, ...], label_key: bytes, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = [], []
    for name in files:
        path = folder / name
        try:
            with path.open("rb") as f:
                batch = pickle.load(f, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[label_key], dtype=np.int64))
        # Any type: a damaged pickle fails in whatever its bytes turned into (AttributeError, ImportError,
        # LookupError, MemoryError, ... besides UnpicklingError); TypeError, KeyError: not a batch dict.
        except Exception as exc:
            raise SuiteError(f"not a CIFAR python batch file ({type(exc).__name__}: {exc})", file=str(path)) from None
        if len(images[-1]) != len(labels[-1]):
            raise SuiteError(f"{len(images[-1])} images but {len(labels[-1])} labels", file=str(path))
        if len(labels[-1]) and not 0 <= labels[-1].min() <= labels[-1].max() < classes:  # e.g. another CIFAR's file
            raise SuiteError(f"labels from {labels[-1].min()} to {labels[-1].max()}, but this data set has classes "
                             f"0 to {classes - 1}", file=str(path))
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


def _download(layout: _Layout, root: Path) -> None:
    import torchvision

    root.mkdir(parents=True, exist_ok=True)
    dataset = getattr(torchvision.datasets, layout.torchvision)
    try:
        for train in (True, False):
            dataset(str(root), train=train, download=True)
    except Exception as exc:  # network errors come in many types (URLError, HTTPError, socket errors, ...)
        raise SuiteError(f"download of {layout.url} into {root} failed: {exc}", key="data.download") from None
