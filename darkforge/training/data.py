"""Datasets -> in-memory uint8 tensors, and batches augmented on the training device.

Images are decoded once (and cached on disk beside the data), then the whole split lives on the
device as one (N, C, H, W) uint8 tensor. A batch is a gather, a float conversion and batched
augmentation: no per-sample PIL work and no worker processes in the hot loop.

Sources (`--data`): `cifar10` (torchvision download), `imagefolder:DIR` (DIR/train/<class>/*,
DIR/test/<class>/*), `fake` (generated, learnable, for smoke tests).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from darkforge.errors import DataError, UsageError
from darkforge.files import check_regular, write_with
from darkforge.training.distributed import shard

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"


@dataclass
class Split:
    images: Tensor  # (N, C, H, W) uint8
    labels: Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> Split:
        return Split(self.images.to(device), self.labels.to(device))

    def subset(self, index: Tensor | slice) -> Split:
        return Split(self.images[index], self.labels[index])


@dataclass
class Dataset:
    name: str
    train: Split
    test: Split
    classes: list[str]

    @property
    def mean_std(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the train split, in [0, 1] units."""
        x = self.train.images[:50_000].float().div_(255)
        return x.mean((0, 2, 3)).tolist(), x.std((0, 2, 3)).tolist()


def cache_dir() -> Path:
    return Path(os.environ.get("DARKFORGE_CACHE", Path.home() / ".cache" / "darkforge"))


def load_dataset(source: str, data_dir: str | None, size: tuple[int, int]) -> Dataset:
    """`source` is cifar10, fake, or imagefolder:DIR; images come out at `size` (H, W)."""
    kind, _, arg = source.partition(":")
    if kind not in SOURCES:
        raise UsageError(f"--data {source!r} is not a dataset", "use cifar10, imagefolder:DIR or fake")
    return SOURCES[kind](arg, data_dir, size)


def _cifar10(arg: str, data_dir: str | None, size: tuple[int, int]) -> Dataset:
    import torchvision

    root = Path(data_dir) if data_dir else cache_dir() / "cifar10"
    try:
        root.mkdir(parents=True, exist_ok=True)
        splits = [
            torchvision.datasets.CIFAR10(str(root), train=train, download=True) for train in (True, False)
        ]
    except (OSError, RuntimeError) as e:  # URLError is an OSError; a bad archive a RuntimeError
        raise DataError(
            f"cannot get CIFAR-10 into {root} ({_reason(e)})",
            f"offline? put {CIFAR_ARCHIVE} in {root} (or pass --data-dir), "
            "or train from image folders with --data imagefolder:DIR",
        ) from None
    parts = [
        Split(
            _resize(torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(), size), torch.tensor(s.targets)
        )
        for s in splits
    ]
    return Dataset("cifar10", parts[0], parts[1], list(splits[0].classes))


def _reason(error: Exception) -> str:
    reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
    return str(reason).split("\n")[0][:120]


def _imagefolder(arg: str, data_dir: str | None, size: tuple[int, int]) -> Dataset:
    if not arg:
        raise UsageError("--data imagefolder needs a folder", "e.g. --data imagefolder:/data/cifar10-jpeg")
    root = Path(arg).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder", "it must hold train/<class>/ and test/<class>/")
    files = {split: _class_files(root / split) for split in ("train", "test")}
    train_classes, test_classes = list(files["train"]), list(files["test"])
    if train_classes != test_classes:
        only = sorted(set(train_classes) ^ set(test_classes))
        raise DataError(
            f"{root}: train and test have different classes ({', '.join(only)})",
            "both splits need the same class folders",
        )
    key = hashlib.sha256(repr((size, sorted(_stat_key(files)))).encode()).hexdigest()[:16]
    cached = _read_cache(root, key)
    if cached is None:
        cached = {split: _decode_split(files[split], size) for split in files}
        _write_cache(root, key, cached)
    return Dataset(f"imagefolder:{root}", cached["train"], cached["test"], train_classes)


def _class_files(folder: Path) -> dict[str, list[Path]]:
    if not folder.is_dir():
        raise DataError(f"{folder}: missing", "an image folder needs train/<class>/ and test/<class>/")
    classes: dict[str, list[Path]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        images = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DataError(f"{sub}: no images (.jpg, .jpeg, .png)", "remove the folder or add images")
        classes[sub.name] = images
    if not classes:
        raise DataError(f"{folder}: no class folders", "put each class's images in folder/<class>/")
    return classes


def _stat_key(files: dict[str, dict[str, list[Path]]]) -> Iterator[tuple[str, int, int]]:
    for classes in files.values():
        for images in classes.values():
            for path in images:
                stat = path.stat()
                yield str(path), stat.st_size, int(stat.st_mtime)


def read_image(path: str | os.PathLike[str], channels: int = 3) -> Tensor:
    """One image file as a (C, H, W) uint8 tensor. PIL decodes it (once: results are cached)."""
    import numpy as np
    from PIL import Image

    check_regular(path, "give a JPEG or PNG file")  # a FIFO would block Image.open
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB" if channels == 3 else "L"))
    except (
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
    ) as e:  # UnidentifiedImageError: OSError
        raise DataError(f"{path}: cannot decode image ({_reason(e)})", "remove or replace it") from None
    tensor = torch.from_numpy(pixels.copy())
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)


def _decode_split(classes: dict[str, list[Path]], size: tuple[int, int]) -> Split:
    images, labels = [], []
    for label, paths in enumerate(classes.values()):
        for path in paths:
            images.append(_resize(read_image(path)[None], size)[0])
            labels.append(label)
    return Split(torch.stack(images), torch.tensor(labels))


def _resize(images: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(images.shape[-2:]) == size:
        return images
    from torchvision.transforms.v2.functional import resize

    return resize(images, list(size), antialias=True)


def _cache_file(root: Path, key: str) -> list[Path]:
    """Beside the data if writable, else in the user cache."""
    name = f"darkforge-{key}.pt"
    return [root / ".darkforge-cache" / name, cache_dir() / "imagefolder" / name]


def _read_cache(root: Path, key: str) -> dict[str, Split] | None:
    for path in _cache_file(root, key):
        if path.exists():
            try:
                data = torch.load(path, weights_only=True)
                return {s: Split(data[f"{s}_images"], data[f"{s}_labels"]) for s in ("train", "test")}
            except Exception:  # a corrupt cache is rebuilt, never fatal
                continue
    return None


def _write_cache(root: Path, key: str, splits: dict[str, Split]) -> None:
    data = {f"{s}_{k}": getattr(v, k) for s, v in splits.items() for k in ("images", "labels")}
    for path in _cache_file(root, key):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_with(path, lambda temp: torch.save(data, temp))
            return
        except OSError:
            continue


def _fake(arg: str, data_dir: str | None, size: tuple[int, int]) -> Dataset:
    """Learnable synthetic data: each class is a colour and stripe pattern plus noise."""
    if arg and not re.fullmatch(r"[1-9]\d{0,6},[1-9]\d{0,6}", arg):
        raise UsageError(
            f"--data fake:{arg[:40]}: give two counts", "e.g. fake:1000,200 (train, test images)"
        )
    counts = [int(n) for n in arg.split(",")] if arg else [1000, 200]
    g = torch.Generator().manual_seed(1234)
    classes = [f"class{i}" for i in range(10)]
    prototypes = torch.rand(len(classes), 3, *size, generator=g)
    stripes = torch.arange(size[1]).float().div(3).sin()
    prototypes += (torch.arange(len(classes)) % 3).view(-1, 1, 1, 1) * stripes * 0.3

    def split(n: int) -> Split:
        labels = torch.arange(n) % len(classes)
        noise = torch.rand(n, 3, *size, generator=g) * 0.8
        images = (prototypes[labels] * 0.6 + noise * 0.5).clamp(0, 1).mul(255).to(torch.uint8)
        return Split(images, labels)

    return Dataset("fake", split(counts[0]), split(counts[1]), classes)


SOURCES: dict[str, Callable[[str, str | None, tuple[int, int]], Dataset]] = {
    "cifar10": _cifar10,
    "imagefolder": _imagefolder,
    "fake": _fake,
}


class Batches:
    """Shuffled, augmented float batches of a split on its device. Seeded per epoch, so a resumed
    run sees exactly the batches an uninterrupted one would.

    With `world` > 1 (DDP) `batch` is the global batch and each rank gets its slice of it: every
    rank shuffles and draws augmentation numbers alike, so the ranks' slices together are exactly
    the batch one process would see."""

    def __init__(
        self,
        split: Split,
        batch: int,
        mean: list[float],
        std: list[float],
        crop: int = 0,
        flip: bool = False,
        cutout: int = 0,
        shuffle: bool = False,
        drop_last: bool = False,
        channels_last: bool = False,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.split, self.batch, self.rank, self.world = split, batch, rank, world
        device = split.images.device
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255
        self.crop, self.flip, self.cutout = crop, flip, cutout
        self.shuffle, self.drop_last, self.channels_last = shuffle, drop_last, channels_last

    def __len__(self) -> int:
        full, rest = divmod(len(self.split), self.batch)
        return full + (0 if self.drop_last or rest < self.world else 1)  # every rank gets an image

    def epoch(self, seed: int) -> Iterator[tuple[Tensor, Tensor]]:
        device = self.split.images.device
        g = torch.Generator(device="cpu").manual_seed(seed)
        n = len(self.split)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        for k in range(len(self)):
            batch = order[k * self.batch : (k + 1) * self.batch]  # the global batch
            part = shard(len(batch), self.rank, self.world)  # this rank's slice of it
            index = batch[part].to(device)
            x = self.split.images[index]
            x = self.augment(x, g, len(batch), part)
            x = (x.float() - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.split.labels[index]

    def augment(
        self, x: Tensor, g: torch.Generator, whole: int | None = None, part: slice = slice(None)
    ) -> Tensor:
        """Batched crop (zero padding), flip and cutout on uint8 images (B, C, H, W).

        `x` may be `part` of a batch of `whole` images (a DDP rank's slice): the random numbers are
        drawn for the whole batch and this part of them used, as one process would use them."""
        b, c, h, w = x.shape
        device = x.device

        def draw(high: int) -> Tensor:  # (B,) integers in [0, high)
            return torch.randint(0, high, (whole or b,), generator=g)[part].to(device)

        if self.crop:
            p = self.crop
            padded = torch.nn.functional.pad(x, (p, p, p, p))
            dy = draw(2 * p + 1)
            dx = draw(2 * p + 1)
            rows = (dy[:, None] + torch.arange(h, device=device))[:, None, :, None]  # (B, 1, H, 1)
            cols = (dx[:, None] + torch.arange(w, device=device))[:, None, None, :]  # (B, 1, 1, W)
            batch = torch.arange(b, device=device)[:, None, None, None]
            chans = torch.arange(c, device=device)[None, :, None, None]
            x = padded[batch, chans, rows, cols]
        if self.flip:
            mirror = (torch.rand(whole or b, generator=g)[part] < 0.5).to(device)[:, None, None, None]
            x = torch.where(mirror, x.flip(3), x)
        if self.cutout:
            cy = draw(h)[:, None, None, None]
            cx = draw(w)[:, None, None, None]
            ys = torch.arange(h, device=device)[None, None, :, None]
            xs = torch.arange(w, device=device)[None, None, None, :]
            half = self.cutout // 2
            hole = ((ys - cy).abs() <= half) & ((xs - cx).abs() <= half)
            x = x.masked_fill(hole, 0)
        return x
