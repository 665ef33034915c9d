"""In-memory image data (CIFAR, digits, synthetic) batched and augmented on the training device.

The whole split lives on the device as one uint8 NCHW tensor (GPU-resident on CUDA, as airbench
and hlb-CIFAR10 do); each batch is gathered, normalised, zero-padded, randomly cropped and
flipped there, as whole-batch tensor ops, never per image through PIL.

Padding happens after normalisation, so the padded border is the per-channel mean (zero input),
as in fb.resnet.torch's CIFAR recipe that the RAN/ResNet CIFAR protocol follows.

Data-parallel runs: every rank draws the same permutation and the same crop/flip parameters for
the *global* batch (batch_size x world_size) from identically seeded generators and keeps its own
slice, so an N-rank run sees exactly the batches of a 1-rank run with the global batch size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Augment:
    pad: int = 0  # zero-pad this many pixels per side, then crop back to the original size
    flip: bool = False  # horizontal flip with probability 1/2


@dataclass(frozen=True)
class Splits:
    """A data set held in memory: uint8 NCHW images and int64 labels, plus its training augmentation."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    augment: Augment


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact per-channel mean and std of uint8 images, in [0, 1] units, from value histograms
    (no float copy of the data set)."""
    values = torch.arange(256, dtype=torch.float64, device=images.device) / 255
    mean, std = [], []
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].reshape(-1), minlength=256).double()
        m = (hist * values).sum() / hist.sum()
        mean.append(m)
        std.append(((hist * values.square()).sum() / hist.sum() - m.square()).clamp_min(1e-12).sqrt())
    return torch.stack(mean).float().cpu(), torch.stack(std).float().cpu()


class TensorLoader:
    """Batches of (float images, int64 labels) from uint8 tensors, on their device.

    Training loaders shuffle with `generator` (which must live on the data's device), drop the last
    partial batch, and can checkpoint their position mid-epoch (`state_dict`). Evaluation loaders
    (`generator=None`) walk this rank's shard (indices rank, rank + world_size, ...) in order.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        mean: torch.Tensor,
        std: torch.Tensor,
        size: int,
        augment: Augment = Augment(),
        generator: torch.Generator | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.size, self.augment = batch_size, size, augment
        self.generator, self.rank, self.world_size = generator, rank, world_size
        device = images.device
        # x / 255 normalised = x * scale + bias
        self._scale = (1 / (255 * std)).view(1, -1, 1, 1).to(device)
        self._bias = (-mean / std).view(1, -1, 1, 1).to(device)
        self._start: torch.Tensor | None = None  # generator state at the start of the current epoch
        self._resume_state: torch.Tensor | None = None
        self._consumed = 0  # batches of the current epoch already yielded

    @property
    def train(self) -> bool:
        return self.generator is not None

    def __len__(self) -> int:
        n = self.images.shape[0]
        if self.train:
            return n // (self.batch_size * self.world_size)
        shard = len(range(self.rank, n, self.world_size))
        return -(-shard // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        return self._train_batches() if self.train else self._eval_batches()

    def _eval_batches(self) -> Iterator[Batch]:
        shard = torch.arange(self.rank, self.images.shape[0], self.world_size, device=self.images.device)
        for idx in shard.split(self.batch_size):
            yield self._resize(self._normalise(idx)), self.labels[idx]

    def _train_batches(self) -> Iterator[Batch]:
        g = self.generator
        assert g is not None
        start = self._start if self._start is not None else g.get_state()
        g.set_state(start)
        perm = torch.randperm(self.images.shape[0], generator=g, device=g.device)
        if self._resume_state is not None:  # resuming mid-epoch: same permutation, later position
            g.set_state(self._resume_state)
            self._resume_state = None
        self._start = start
        global_batch = self.batch_size * self.world_size
        lo = self.rank * self.batch_size
        for i in range(self._consumed, len(self)):
            idx = perm[i * global_batch:(i + 1) * global_batch]
            shifts, flips = self._draw(global_batch)
            mine = slice(lo, lo + self.batch_size)
            x = self._normalise(idx[mine])
            if shifts is not None:
                x = _crop_flip(x, shifts[mine], flips[mine], self.augment.pad)
            self._consumed = i + 1
            yield self._resize(x), self.labels[idx[mine]]
        self._start, self._consumed = None, 0

    def _draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor] | tuple[None, None]:
        pad, flip, g = self.augment.pad, self.augment.flip, self.generator
        if not pad and not flip:
            return None, None
        shifts = torch.randint(0, 2 * pad + 1, (n, 2), generator=g, device=g.device)
        if flip:
            flips = torch.rand(n, generator=g, device=g.device) < 0.5
        else:
            flips = torch.zeros(n, dtype=torch.bool, device=g.device)
        return shifts, flips

    def _normalise(self, idx: torch.Tensor) -> torch.Tensor:
        return self.images.index_select(0, idx).float().mul_(self._scale).add_(self._bias)

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.size and x.shape[-2] == self.size:
            return x
        return F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)

    def state_dict(self) -> dict[str, Any]:
        assert self.generator is not None, "only training loaders have a position"
        return {"start": self._start, "now": self.generator.get_state(), "consumed": self._consumed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.generator is not None, "only training loaders have a position"
        self.generator.set_state(state["now"])
        self._start, self._consumed = state["start"], state["consumed"]
        self._resume_state = state["now"] if state["consumed"] else None


def _crop_flip(x: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor, pad: int) -> torch.Tensor:
    """Per-sample crop at offset `shifts` of the zero-padded batch and optional mirror, as one gather."""
    b, c, h, w = x.shape
    if pad:
        x = F.pad(x, (pad, pad, pad, pad))
    dev = x.device
    rows = shifts[:, 0, None] + torch.arange(h, device=dev)  # (b, h)
    cols = shifts[:, 1, None] + torch.arange(w, device=dev)  # (b, w)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    return x[
        torch.arange(b, device=dev)[:, None, None, None],
        torch.arange(c, device=dev)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
