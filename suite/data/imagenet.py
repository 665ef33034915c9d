"""ImageNet (ILSVRC-2012) as an image-folder tree, decoded and augmented by DataLoader workers.

Layout: <root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG (the validation images sorted
into class folders, e.g. with the widely used `valprep.sh`). The data must be obtained from
image-net.org (registration required); nothing here downloads it.

Transforms are the SAN official ones (also torchvision's reference recipe): RandomResizedCrop to
`input_size` + horizontal flip for training; Resize(round(eval_size / 0.875)) (256 for 224) +
CenterCrop(eval_size) for evaluation; ImageNet mean/std. RAN's AlexNet-style colour augmentation
is not applied (its parameters are not given in the paper).

Determinism: a sample's augmentation is drawn from its own seed, derived from (run seed, epoch,
index), so it does not depend on the number of workers, on which worker loads it, or on whether the
epoch was resumed mid-way. The epoch order comes from a DistributedSampler seeded with the run seed
(one replica when not distributed), which also shards the data across ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from torchvision import datasets, transforms

from suite.data.seeds import derive_seed
from suite.errors import SuiteError

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
CROP_FRACTION = 0.875  # evaluation resize = crop / 0.875 (256 for 224)


def train_transform(size: int) -> Callable:
    return transforms.Compose([
        transforms.RandomResizedCrop(size),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])


def eval_transform(size: int) -> Callable:
    return transforms.Compose([
        transforms.Resize(round(size / CROP_FRACTION)),
        transforms.CenterCrop(size),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])


def check_splits(root: Path) -> int:
    """train/ and val/ exist under `root` with the same class folders (what `suite run` checks before
    it starts runs: listing two directories is cheap, finding the mismatch after a model's
    measurement is not); returns the number of classes."""
    classes = []
    for split in ("train", "val"):
        path = root / split
        if not path.is_dir():
            raise SuiteError(
                f"imagenet: {path} does not exist; expected <root>/train/<wnid>/*.JPEG and "
                f"<root>/val/<wnid>/*.JPEG (ILSVRC-2012 from image-net.org, val sorted into class "
                f"folders); set data.root or $SUITE_DATA to the directory holding train/ and val/",
                key="data.root",
            )
        try:  # ImageFolder's own rule for what a class is
            classes.append(datasets.folder.find_classes(str(path))[0])
        except OSError as exc:  # FileNotFoundError: no class folder
            raise SuiteError(f"imagenet: {exc}", file=str(path), key="data.root") from None
    train, val = classes
    if train != val:
        only = sorted(set(train) ^ set(val))[:5]
        raise SuiteError(f"imagenet: train/ and val/ have different class folders (e.g. {only})",
                         file=str(root), key="data.root")
    return len(train)


def image_folders(root: Path) -> tuple[datasets.ImageFolder, datasets.ImageFolder]:
    """The train and val trees (no transforms attached); checks both exist and share classes."""
    check_splits(root)
    folders = []
    for split in ("train", "val"):
        path = root / split
        try:
            folders.append(datasets.ImageFolder(str(path)))
        except OSError as exc:  # FileNotFoundError: no class folder, or one without images
            raise SuiteError(f"imagenet: {exc}", file=str(path), key="data.root") from None
    return folders[0], folders[1]


class _Transformed(Dataset):
    """Applies `transform` to an ImageFolder sample; a key `(index, seed)` draws the random
    transform from that seed (the CPU RNG is restored afterwards)."""

    def __init__(self, folder: datasets.ImageFolder, transform: Callable) -> None:
        self.folder, self.transform = folder, transform

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        path, target = self.folder.samples[index]
        try:  # PIL decodes lazily: a truncated file fails in the transform
            image = self.folder.loader(path)
            if seed is None:
                return self.transform(image), target
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(seed)
                return self.transform(image), target
        except OSError as exc:  # PIL's UnidentifiedImageError and truncation errors are OSErrors
            raise UnreadableImage(f"{path}{_SEP}{exc}") from None


class UnreadableImage(Exception):
    """A file PIL cannot decode. Raised in a loader worker, it reaches this process as PyTorch
    re-raises it: the same type, its message the worker's whole traceback (see `unreadable`)."""


_SEP = " | "


def unreadable(exc: UnreadableImage) -> SuiteError:
    """The user-facing error: the file and PIL's reason, from the last line of the message."""
    last = str(exc).strip().splitlines()[-1]
    last = last.removeprefix(f"{UnreadableImage.__module__}.{UnreadableImage.__qualname__}: ")
    path, _, reason = last.partition(_SEP)
    return SuiteError(f"unreadable image ({reason}); remove or replace the file", file=path, key="data.root")


class _EpochSampler(Sampler):
    """This rank's (index, sample seed) keys for one epoch, from `skip` on (mid-epoch resume)."""

    def __init__(self, n: int, *, seed: int, rank: int, world_size: int) -> None:
        self.order = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=True,
                                        seed=seed, drop_last=True)
        self.seed, self.epoch, self.skip = seed, 0, 0

    def __len__(self) -> int:
        return len(self.order) - self.skip

    def __iter__(self) -> Iterator[tuple[int, int]]:
        self.order.set_epoch(self.epoch)
        for position, index in enumerate(self.order):
            if position >= self.skip:
                yield index, derive_seed(self.seed, self.epoch, index)


class FolderLoader:
    """Device batches from an image folder. Training loaders (`seed` given) shuffle per epoch,
    drop the last partial batch and checkpoint their position; evaluation loaders read this rank's
    shard (indices rank, rank + world_size, ...) in order, without padding."""

    def __init__(
        self,
        folder: datasets.ImageFolder,
        transform: Callable,
        *,
        batch_size: int,
        workers: int,
        device: torch.device,
        seed: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.device, self.batch_size = device, batch_size
        dataset = _Transformed(folder, transform)
        self.sampler: _EpochSampler | None = None
        if seed is not None:
            self.sampler = _EpochSampler(len(folder), seed=seed, rank=rank, world_size=world_size)
            sampler: Any = self.sampler
        else:
            sampler = range(rank, len(folder), world_size)
        # A generator of its own: a DataLoader draws its workers' base seed at every iterator it makes,
        # from torch's global RNG by default, which a resumed run (a new iterator mid-epoch) would then
        # leave one draw ahead of an uninterrupted one, and dropout would differ. The base seed itself
        # changes nothing: each training sample draws from its own seed (_EpochSampler).
        self.loader = DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=seed is not None,
            pin_memory=device.type == "cuda", persistent_workers=workers > 0, generator=torch.Generator(),
        )
        self._consumed = 0

    def __len__(self) -> int:
        if self.sampler is None:
            return len(self.loader)
        return len(self.sampler.order) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.sampler is not None:
            self.sampler.skip = self._consumed * self.batch_size
        batches = iter(self.loader)
        while True:
            try:
                x, y = next(batches)
            except StopIteration:
                break
            except UnreadableImage as exc:
                raise unreadable(exc) from None
            if self.sampler is not None:
                self._consumed += 1
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if self.sampler is not None:
            self.sampler.epoch += 1
            self._consumed = 0

    def state_dict(self) -> dict[str, Any]:
        assert self.sampler is not None, "only training loaders have a position"
        return {"epoch": self.sampler.epoch, "consumed": self._consumed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.sampler is not None, "only training loaders have a position"
        self.sampler.epoch, self._consumed = state["epoch"], state["consumed"]
