"""suite.data: loaders, batch augmentation on the device, file formats, label noise."""

from __future__ import annotations

import collections
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from suite.config import DataConfig, resolve
from suite.data import DATASETS, build, data_root
from suite.data.cifar import load_cifar
from suite.data.digits import load_digits
from suite.data.noise import corrupt_labels
from suite.data.tensor import Augment, TensorLoader, channel_stats
from suite.errors import SuiteError


# ------------------------------------------------------------------------------------ label noise
def test_label_noise_ratio_and_never_the_true_label():
    labels = torch.arange(100_000) % 10
    noisy = corrupt_labels(labels, 10, 0.7, seed=3)
    changed = noisy != labels
    assert abs(changed.float().mean().item() - 0.3) < 0.01
    # Corrupted labels are spread uniformly over the 9 other classes.
    offsets = (noisy[changed] - labels[changed]) % 10
    assert offsets.min() >= 1
    counts = torch.bincount(offsets, minlength=10)[1:].float()
    assert (counts / counts.mean() - 1).abs().max() < 0.05
    assert ((noisy >= 0) & (noisy < 10)).all()


def test_label_noise_is_seeded():
    labels = torch.arange(1000) % 7
    a = corrupt_labels(labels, 7, 0.5, seed=1)
    assert torch.equal(a, corrupt_labels(labels, 7, 0.5, seed=1))
    assert not torch.equal(a, corrupt_labels(labels, 7, 0.5, seed=2))
    assert torch.equal(corrupt_labels(labels, 7, 1.0, seed=1), labels)


def test_build_corrupts_training_labels_only():
    clean = build(DataConfig("digits", input_size=8), batch_size=32, seed=0, num_classes=10)
    noisy = build(DataConfig("digits", input_size=8, clean_ratio=0.6), batch_size=32, seed=0, num_classes=10)
    kept = (noisy.train.labels == clean.train.labels).float().mean().item()
    assert 0.55 < kept < 0.65
    assert torch.equal(noisy.test.labels, clean.test.labels)
    again = build(DataConfig("digits", input_size=8, clean_ratio=0.6), batch_size=32, seed=0, num_classes=10)
    assert torch.equal(again.train.labels, noisy.train.labels)


def test_the_run_seed_orders_the_training_data():
    """Seeds vary the training, not the data: another seed draws another order of the same images."""
    a, b = (build(DataConfig("digits", input_size=8), batch_size=32, seed=seed, num_classes=10) for seed in (0, 1))
    assert torch.equal(a.train.labels, b.train.labels)
    assert not torch.equal(next(iter(a.train))[1], next(iter(b.train))[1])


def test_the_normalisation_is_the_training_splits():
    """Nothing about the test images reaches the network before it is evaluated on them."""
    data = build(DataConfig("digits", input_size=8), batch_size=32, seed=0, num_classes=10)
    digits = load_digits(8)
    assert data.mean == tuple(channel_stats(digits.train_images)[0].tolist())
    assert data.mean != tuple(channel_stats(digits.test_images)[0].tolist())


# ------------------------------------------------------------------------------ tensor loader
def _position_images(n: int, size: int) -> torch.Tensor:
    """uint8 images whose pixels encode (sample, row, column), to check crops exactly."""
    rows = torch.arange(size).view(1, 1, size, 1).expand(n, 1, size, size)
    cols = torch.arange(size).view(1, 1, 1, size).expand(n, 1, size, size)
    sample = torch.arange(n).view(n, 1, 1, 1).expand(n, 1, size, size)
    return torch.cat([rows * 10 + 5, cols * 10 + 5, sample * 3 + 1], dim=1).to(torch.uint8)


def _loader(images, labels, batch_size, seed=0, augment=Augment(pad=2, flip=True), **kw):
    mean, std = torch.zeros(images.shape[1]), torch.ones(images.shape[1])
    g = torch.Generator().manual_seed(seed)
    return TensorLoader(images, labels, batch_size=batch_size, mean=mean, std=std, size=images.shape[-1],
                        augment=augment, generator=g, **kw)


def test_crop_and_flip_are_shifted_windows_of_the_padded_image():
    n, size, pad = 12, 6, 2
    images = _position_images(n, size)
    loader = _loader(images, torch.arange(n), batch_size=n)
    (x, y), = list(loader)
    x = (x * 255).round().to(torch.int64)
    flipped = 0
    for img, label in zip(x, y):
        padded = torch.nn.functional.pad(images[label].to(torch.int64), (pad,) * 4)
        matches = []
        for dy in range(2 * pad + 1):
            for dx in range(2 * pad + 1):
                window = padded[:, dy:dy + size, dx:dx + size]
                for flip in (False, True):
                    if torch.equal(img, window.flip(-1) if flip else window):
                        matches.append(flip)
        assert matches, "every output must be a (possibly mirrored) window of the zero-padded input"
        flipped += matches[0]
    assert 0 < flipped < n  # both branches occur


def test_crop_offsets_and_flips_are_drawn_uniformly():
    """The papers' augmentation: each of the (2 pad + 1)^2 crop windows of the padded image can come
    out, and half the images are mirrored (He et al.'s random crop and flip with probability 1/2)."""
    n, size, pad = 400, 6, 2
    images = _position_images(n, size)  # the sample channel wraps past 85; the rows and columns place a crop
    (x, y), = list(_loader(images, torch.arange(n), batch_size=n))
    x = (x * 255).round().to(torch.int64)
    offsets, flipped = collections.Counter(), 0
    for img, label in zip(x, y):
        padded = torch.nn.functional.pad(images[label].to(torch.int64), (pad,) * 4)
        (dy, dx, flip), = [(dy, dx, flip) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                           for flip in (False, True)
                           if torch.equal(img, padded[:, dy:dy + size, dx:dx + size].flip(-1) if flip else
                                          padded[:, dy:dy + size, dx:dx + size])]
        offsets[dy, dx] += 1
        flipped += flip
    assert len(offsets) == (2 * pad + 1) ** 2 and min(offsets.values()) >= n / 25 / 2  # 16 each expected
    assert abs(flipped / n - 0.5) < 0.05  # two standard deviations of 400 draws (the seed is fixed: no flakes)


def test_train_loader_epochs_are_permutations_and_seeded():
    images, labels = _position_images(50, 4), torch.arange(50)
    loader = _loader(images, labels, batch_size=8)
    assert len(loader) == 6  # drop_last
    epoch1 = torch.cat([y for _, y in loader])
    epoch2 = torch.cat([y for _, y in loader])
    assert len(epoch1) == 48 and len(set(epoch1.tolist())) == 48
    assert not torch.equal(epoch1, epoch2)
    other = _loader(images, labels, batch_size=8)
    assert torch.equal(torch.cat([y for _, y in other]), epoch1)
    assert not torch.equal(torch.cat([y for _, y in _loader(images, labels, batch_size=8, seed=1)]), epoch1)


def test_train_loader_resumes_mid_epoch():
    images, labels = _position_images(40, 4), torch.arange(40)
    straight = _loader(images, labels, batch_size=4)
    list(straight)  # one full epoch first, so the resume happens in epoch 2
    expected = [(x.clone(), y.clone()) for x, y in straight]

    first = _loader(images, labels, batch_size=4)
    list(first)
    it = iter(first)
    head = [next(it) for _ in range(3)]
    state = first.state_dict()
    resumed = _loader(images, labels, batch_size=4, seed=99)  # seed is overwritten by the state
    resumed.load_state_dict(state)
    tail = list(resumed)
    got = head + tail
    assert len(got) == len(expected)
    for (x, y), (ex, ey) in zip(got, expected):
        assert torch.equal(x, ex) and torch.equal(y, ey)
    # ... and the following epoch matches too.
    assert all(torch.equal(a[0], b[0]) for a, b in zip(resumed, straight))


def test_ranks_split_the_global_batch():
    images, labels = _position_images(64, 4), torch.arange(64)
    single = list(_loader(images, labels, batch_size=8))
    ranks = [list(_loader(images, labels, batch_size=4, rank=r, world_size=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(single)
    for (x, y), (x0, y0), (x1, y1) in zip(single, *ranks):
        assert torch.equal(torch.cat([x0, x1]), x) and torch.equal(torch.cat([y0, y1]), y)


def test_eval_shards_cover_the_split_once():
    images, labels = _position_images(11, 4), torch.arange(11)
    mean, std = torch.zeros(3), torch.ones(3)
    seen = []
    for rank in range(3):
        loader = TensorLoader(images, labels, batch_size=2, mean=mean, std=std, size=4, rank=rank, world_size=3)
        assert len(loader) == len(list(loader))
        seen += [y for _, y in loader]
    assert sorted(torch.cat(seen).tolist()) == list(range(11))


def test_eval_loader_resizes_to_eval_size():
    images, labels = _position_images(3, 8), torch.arange(3)
    loader = TensorLoader(images, labels, batch_size=3, mean=torch.zeros(3), std=torch.ones(3), size=12)
    (x, _), = list(loader)
    assert x.shape == (3, 3, 12, 12)


def test_channel_stats_are_exact():
    images = torch.randint(0, 256, (20, 3, 5, 5), dtype=torch.uint8)
    mean, std = channel_stats(images)
    ref = images.double().div(255)
    assert torch.allclose(mean.double(), ref.mean(dim=(0, 2, 3)), atol=1e-6)
    assert torch.allclose(std.double(), ref.std(dim=(0, 2, 3), unbiased=False), atol=1e-6)


# ------------------------------------------------------------------------------------- digits
def test_digits_fixed_stratified_split():
    splits = load_digits(32)
    assert splits.train_images.shape == (1437, 3, 32, 32) and splits.test_images.shape == (360, 3, 32, 32)
    assert DATASETS["digits"].train_size == 1437  # what a run's batch_size is checked against before it starts
    assert splits.train_images.dtype == torch.uint8
    assert torch.equal(splits.train_images[:, 0], splits.train_images[:, 2])  # grey as RGB
    assert torch.bincount(splits.test_labels).tolist() == pytest.approx([36] * 10, abs=1)
    # The split does not depend on the run seed.
    a = build(DataConfig("digits", input_size=8), batch_size=16, seed=0, num_classes=10)
    b = build(DataConfig("digits", input_size=8), batch_size=16, seed=5, num_classes=10)
    assert torch.equal(a.test.images, b.test.images) and torch.equal(a.test.labels, b.test.labels)
    assert load_digits(8).train_images.shape[-1] == 8


def test_digits_are_scikit_learns_images_and_split():
    """digits.py reads scikit-learn's file and a written-down split without importing scikit-learn:
    both must still be what scikit-learn's own loader and splitter give."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    from suite.data.digits import _read
    from suite.data.digits_split import TEST_INDICES

    data = sklearn_digits()
    pixels, labels = _read()
    assert np.array_equal(pixels, data.data) and np.array_equal(labels, data.target)
    _, test = train_test_split(np.arange(len(data.target)), test_size=0.2, stratify=data.target, random_state=0)
    assert TEST_INDICES == tuple(sorted(test.tolist()))
    splits = load_digits(8)
    assert torch.equal(splits.test_labels, torch.from_numpy(data.target[sorted(test)]))
    assert torch.equal(splits.test_images[:, 0], torch.from_numpy(data.images[sorted(test)] / 16 * 255).round().to(torch.uint8))


def test_build_digits_batches_are_normalised_on_the_device():
    data = build(DataConfig("digits", input_size=32), batch_size=64, seed=0, num_classes=10)
    x, y = next(iter(data.train))
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    xs = torch.cat([x for x, _ in data.test])
    assert abs(xs.mean().item()) < 0.2 and 0.7 < xs.std().item() < 1.3


def test_class_count_must_match_the_model():
    with pytest.raises(SuiteError) as err:
        build(DataConfig("digits"), batch_size=16, seed=0, num_classes=100)
    assert err.value.key == "model.num_classes"


def test_synthetic_uses_the_model_classes():
    data = build(DataConfig("synthetic", input_size=16), batch_size=8, seed=0, num_classes=37)
    assert not DATASETS["synthetic"].accuracy and data.num_classes == 37
    x, y = next(iter(data.train))
    assert x.shape == (8, 3, 16, 16) and int(y.max()) < 37


# -------------------------------------------------------------------------------------- CIFAR
def _fake_cifar(root: Path, name: str, per_file: int = 6) -> None:
    """Files in the real python-pickle format of the CIFAR tarballs (tiny)."""
    if name == "cifar10":
        folder, files, key = root / "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels"
    else:
        folder, files, key = root / "cifar-100-python", ["train", "test"], b"fine_labels"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, f in enumerate(files):
        data = rng.integers(0, 256, (per_file, 3072), dtype=np.uint8)
        data[:, 0] = i  # first red pixel tags the file
        with open(folder / f, "wb") as fh:
            pickle.dump({b"data": data, key: [int(v) for v in rng.integers(0, 10, per_file)]}, fh)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_reads_python_batches(tmp_path, name):
    _fake_cifar(tmp_path, name)
    splits = load_cifar(name, tmp_path)
    n_train = 30 if name == "cifar10" else 6
    assert splits.train_images.shape == (n_train, 3, 32, 32) and splits.test_images.shape == (6, 3, 32, 32)
    assert splits.train_images.dtype == torch.uint8 and splits.train_labels.dtype == torch.int64
    # Row-major CHW layout: the first byte of a row is channel 0, pixel (0, 0).
    assert splits.train_images[0, 0, 0, 0].item() == 0
    assert splits.augment == Augment(pad=4, flip=True)
    if name == "cifar10":
        assert splits.train_images[-1, 0, 0, 0].item() == 4 and splits.test_images[0, 0, 0, 0].item() == 5


def test_cifar_build_through_suite_data_env(tmp_path, monkeypatch):
    _fake_cifar(tmp_path, "cifar10", per_file=8)
    monkeypatch.setenv("SUITE_DATA", str(tmp_path))  # read as a run is resolved, and recorded as its data.root
    config = resolve({"model.name": "resnet26", "data.name": "cifar10"}).data
    assert data_root(config) == tmp_path
    data = build(config, batch_size=8, seed=0, num_classes=10)
    assert len(data.train) == 5 and next(iter(data.train))[0].shape == (8, 3, 32, 32)


def test_cifar_missing_files_name_path_and_remedy(tmp_path):
    with pytest.raises(SuiteError) as err:
        load_cifar("cifar100", tmp_path)
    text = str(err.value)
    assert err.value.key == "data.root" and str(tmp_path / "cifar-100-python") in text
    assert "cifar-100-python.tar.gz" in text and "data.download=true" in text


# damaged pickles: garbage, a list, a missing module, an opcode on the wrong object (flipped bytes of a real
# batch file fail so too)
@pytest.mark.parametrize("content", [b"not a pickle", pickle.dumps([1, 2, 3]), b"cnosuchmodule\nx\n.", b"}K\x01a."])
def test_cifar_corrupt_file(tmp_path, content):
    _fake_cifar(tmp_path, "cifar100")
    (tmp_path / "cifar-100-python" / "test").write_bytes(content)
    with pytest.raises(SuiteError) as err:
        load_cifar("cifar100", tmp_path)
    assert err.value.file == str(tmp_path / "cifar-100-python" / "test")


def test_cifar_labels_out_of_range(tmp_path):
    """CIFAR-100's files put where CIFAR-10's belong: a file error, not an index error mid-training."""
    _fake_cifar(tmp_path, "cifar10")
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch = pickle.loads(path.read_bytes())
    batch[b"labels"][0] = 99
    path.write_bytes(pickle.dumps(batch))
    with pytest.raises(SuiteError, match=r"labels from \d to 99, but this data set has classes 0 to 9") as err:
        load_cifar("cifar10", tmp_path)
    assert err.value.file == str(path)


# ----------------------------------------------------------------------------------- ImageNet
def _fake_imagenet(root: Path, classes=("n01", "n02", "n03"), train=4, val=2) -> None:
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("val", val)):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (40 + 3 * i, 48, 3), dtype=np.uint8)
                ext = "png" if i % 2 else "jpg"
                Image.fromarray(pixels).save(root / split / c / f"{c}_{i}.{ext}")


def _imagenet(root: Path, **kw):
    config = DataConfig("imagenet", root=str(root), input_size=32, eval_size=24, workers=0, **kw)
    return build(config, batch_size=4, seed=0, num_classes=3)


def test_imagenet_folder_loaders(tmp_path):
    _fake_imagenet(tmp_path)
    data = _imagenet(tmp_path)
    assert len(data.train) == 3 and len(data.test) == 2
    x, y = next(iter(data.train))
    assert x.shape == (4, 3, 32, 32) and y.dtype == torch.int64
    xs, ys = zip(*data.test)
    assert torch.cat(xs).shape == (6, 3, 24, 24) and sorted(torch.cat(ys).tolist()) == [0, 0, 1, 1, 2, 2]


def test_imagenet_augmentation_is_seeded_per_sample_and_resumable(tmp_path):
    _fake_imagenet(tmp_path)
    straight = _imagenet(tmp_path).train
    expected = [b for _, b in zip(range(6), _cycle(straight))]
    first = _imagenet(tmp_path).train
    it = _cycle(first)
    head = [next(it) for _ in range(4)]  # one epoch of 3 batches and one more
    resumed = _imagenet(tmp_path).train
    resumed.load_state_dict(first.state_dict())
    tail = [b for _, b in zip(range(2), _cycle(resumed))]
    assert len(resumed) == len(straight) == 3  # the epoch's batches, wherever in it the loader resumed
    for (x, y), (ex, ey) in zip(head + tail, expected):
        assert torch.equal(x, ex) and torch.equal(y, ey)
    # Workers do not change the result: each sample draws from its own seed.
    config = DataConfig("imagenet", root=str(tmp_path), input_size=32, eval_size=24, workers=2)
    parallel = build(config, batch_size=4, seed=0, num_classes=3).train
    for (x, y), (ex, ey) in zip(parallel, expected[:3]):
        assert torch.equal(x, ex) and torch.equal(y, ey)


@pytest.mark.parametrize("workers", [0, 1])
def test_imagenet_loaders_leave_the_global_rng_alone(tmp_path, workers):
    """Dropout draws from torch's global RNG, which the checkpoint saves: a loader that drew from it
    too would leave a resumed run (a new iterator mid-epoch) a draw ahead of an uninterrupted one."""
    _fake_imagenet(tmp_path)
    config = DataConfig("imagenet", root=str(tmp_path), input_size=32, eval_size=24, workers=workers)
    data = build(config, batch_size=4, seed=0, num_classes=3)
    before = torch.get_rng_state()
    for loader in (data.train, data.test, data.train):
        list(loader)
    assert torch.equal(torch.get_rng_state(), before)


def _gradient_imagenet(root: Path, val: int = 1) -> None:
    """Every image the same 216 x 216 PNG: channel 0 rises from black on the left to white on the
    right, channel 1 falls, channel 2 is 64 throughout; 3 classes, 4 training images each."""
    ramp = np.round(255 * (np.arange(216) + 0.5) / 216).astype(np.uint8)
    pixels = np.stack([np.tile(ramp, (216, 1)), np.tile(255 - ramp, (216, 1)), np.full((216, 216), 64, np.uint8)], -1)
    for split, count in (("train", 4), ("val", val)):
        for c in ("n01", "n02", "n03"):
            (root / split / c).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(pixels).save(root / split / c / f"{c}_{i}.png")


def _pixels(x: torch.Tensor, data) -> torch.Tensor:
    """Normalised images back in [0, 1] pixel units, by the normalisation `data` says its loaders apply."""
    return x * torch.tensor(data.std).view(1, -1, 1, 1) + torch.tensor(data.mean).view(1, -1, 1, 1)


def test_imagenet_evaluates_the_centre_crop_of_the_resized_image_normalised_as_data_says(tmp_path):
    """eval_size 24: the shorter side resized to round(24 / 0.875) = 27 (216 -> 27, a factor of 8),
    then its centre 24 x 24 (from column 2 on): output column j sees the ramp at (j + 2.5) / 27."""
    _gradient_imagenet(tmp_path)
    data = _imagenet(tmp_path)
    x = _pixels(torch.cat([b for b, _ in data.test]), data)
    assert x.shape == (3, 3, 24, 24) and data.test_size == 3
    expected = (torch.arange(24) + 2.5) / 27
    assert torch.allclose(x[:, 0], expected.expand(3, 24, 24), atol=0.01)  # not the whole image, (j + 0.5) / 24
    assert torch.allclose(x[:, 1], 1 - expected.expand(3, 24, 24), atol=0.01)
    assert torch.allclose(x[:, 2], torch.full((3, 24, 24), 64 / 255), atol=0.005)


def test_imagenet_training_crops_are_flipped_half_the_time_and_normalised_as_data_says(tmp_path):
    _gradient_imagenet(tmp_path)
    data = _imagenet(tmp_path)
    x = _pixels(torch.cat([b for b, _ in data.train]), data)
    assert x.shape == (12, 3, 32, 32)
    assert torch.allclose(x[:, 0] + x[:, 1], torch.ones(12, 32, 32), atol=0.01)  # one ramp up, one down
    assert torch.allclose(x[:, 2], torch.full((12, 32, 32), 64 / 255), atol=0.005)
    rising = (x[:, 0, :, -1] - x[:, 0, :, 0]).mean(1)  # a crop is >= 53 px wide: a rise or fall of >= 0.24
    assert rising.abs().min() > 0.2
    assert 3 <= int((rising < 0).sum()) <= 9  # flipped: 12 coins, seeded


def test_imagenet_ranks_evaluate_disjoint_shards_of_the_validation_split(tmp_path):
    _fake_imagenet(tmp_path, val=3)
    config = DataConfig("imagenet", root=str(tmp_path), input_size=32, eval_size=24, workers=0)
    shards = [torch.cat([y for _, y in build(config, batch_size=2, seed=0, num_classes=3, rank=r, world_size=2).test])
              for r in range(2)]
    assert [len(s) for s in shards] == [5, 4]
    assert sorted(torch.cat(shards).tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_imagenet_epochs_are_reshuffled_and_reaugmented(tmp_path):
    from suite.data.imagenet import _EpochSampler

    _fake_imagenet(tmp_path)
    train = _imagenet(tmp_path).train
    epochs = [torch.cat([y for _, y in train]) for _ in range(2)]
    assert train.sampler.epoch == 2 and not torch.equal(*epochs)
    sampler = _EpochSampler(12, seed=0, rank=0, world_size=1)
    first = dict(sampler)
    sampler.epoch = 1
    second = dict(sampler)
    assert sorted(first) == sorted(second) == list(range(12)) and list(first) != list(second)
    assert all(first[i] != second[i] for i in range(12))  # each image's crop and flip drawn anew
    # Two ranks and 13 images: 6 each, none trained twice in an epoch (padding would repeat one).
    shards = [list(_EpochSampler(13, seed=0, rank=r, world_size=2)) for r in range(2)]
    assert [len(s) for s in shards] == [6, 6] and len({i for s in shards for i, _ in s}) == 12
    config = DataConfig("imagenet", root=str(tmp_path), input_size=32, eval_size=24, workers=0)
    odd = build(config, batch_size=5, seed=0, num_classes=3).train  # 12 images: 2 batches, the last 2 dropped
    assert len(odd) == len(list(odd)) == 2


def _cycle(loader):
    while True:
        yield from loader


def test_imagenet_errors(tmp_path):
    with pytest.raises(SuiteError) as err:
        _imagenet(tmp_path)
    assert err.value.key == "data.root" and str(tmp_path / "train") in str(err.value)
    _fake_imagenet(tmp_path)
    (tmp_path / "val" / "n04").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "val" / "n04" / "x.png")
    with pytest.raises(SuiteError, match=r"different class folders \(e.g. \['n04'\]\)"):  # the one val/ adds
        _imagenet(tmp_path)
    shutil.rmtree(tmp_path / "val" / "n04")
    with pytest.raises(SuiteError, match="imagenet has 3 classes but the model predicts 4") as err:
        build(DataConfig("imagenet", root=str(tmp_path), input_size=32, workers=0), batch_size=4, seed=0, num_classes=4)
    assert err.value.key == "model.num_classes"


def test_an_imagenet_root_may_be_the_directory_above_it(tmp_path):
    """data.root (or $SUITE_DATA) shared by every data set: <root>/imagenet/train is found."""
    _fake_imagenet(tmp_path / "imagenet")
    assert data_root(DataConfig("imagenet", root=str(tmp_path))) == tmp_path / "imagenet"
    assert data_root(DataConfig("imagenet", root=str(tmp_path / "imagenet"))) == tmp_path / "imagenet"
    assert data_root(DataConfig("cifar10", root=str(tmp_path))) == tmp_path


@pytest.mark.parametrize("workers", [0, 1])
@pytest.mark.parametrize("damage", ["not an image", "truncated"])
def test_an_unreadable_image_is_named(tmp_path, workers, damage):
    _fake_imagenet(tmp_path)
    bad = tmp_path / "train" / "n02" / "n02_0.jpg"
    bad.write_bytes(b"not an image" if damage == "not an image" else bad.read_bytes()[:200])
    config = DataConfig("imagenet", root=str(tmp_path), input_size=32, eval_size=24, workers=workers)
    data = build(config, batch_size=12, seed=0, num_classes=3)  # one batch: every image
    with pytest.raises(SuiteError) as err:
        next(iter(data.train))
    assert err.value.file == str(bad) and err.value.key == "data.root"
    assert "\n" not in str(err.value) and str(err.value).startswith(f"{bad}: data.root: unreadable image (")


def test_imagenet_label_noise(tmp_path):
    _fake_imagenet(tmp_path, train=20)
    clean = _imagenet(tmp_path)
    noisy = _imagenet(tmp_path, clean_ratio=0.5)
    old = [t for _, t in clean.train.loader.dataset.folder.samples]
    new = [t for _, t in noisy.train.loader.dataset.folder.samples]
    changed = sum(a != b for a, b in zip(old, new))
    assert 10 <= changed <= 50
