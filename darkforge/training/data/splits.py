"""A split (images and labels) and a dataset (train, test, optional val), wherever the pixels live.

`Split.images` is an (N, C, H, W) uint8 tensor (`ram`: in memory or on the training device), or an
object that indexes like one and reads on demand: `cache.Mapped` (`disk`) or `images.Files`
(`none`). Indexing any of them with a tensor of rows gives the same uint8 batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor

STATS_IMAGES = 50_000  # mean/std from at most this many images, evenly spread over the split
STATS_CHUNK_BYTES = 2**19  # uint8 bytes per chunk: its float64 copy (4 MiB) bounds the memory


class Lazy(Protocol):
    """Pixels read on demand (disk, none)."""

    @property
    def shape(self) -> torch.Size: ...

    def __len__(self) -> int: ...

    def __getitem__(self, index: Tensor | slice) -> Tensor: ...

    def subset(self, index: Tensor | slice) -> Lazy: ...


@dataclass
class Split:
    images: Tensor | Lazy  # (N, C, H, W) uint8
    labels: Tensor  # (N,) int64, on the device batches go to
    home: torch.device | None = None  # where batches go when `images` is lazy (it stays on the host)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def device(self) -> torch.device:
        """Where batches of this split are delivered."""
        if isinstance(self.images, Tensor):
            return self.images.device
        return self.home or torch.device("cpu")

    @property
    def lazy(self) -> bool:
        return not isinstance(self.images, Tensor)

    def to(self, device: torch.device) -> Split:
        if isinstance(self.images, Tensor):
            return Split(self.images.to(device), self.labels.to(device))
        return Split(self.images, self.labels.to(device), torch.device(device))

    def subset(self, index: Tensor | slice) -> Split:
        if isinstance(self.images, Tensor):
            return Split(self.images[index], self.labels[index])
        rows = index.cpu() if isinstance(index, Tensor) else index
        return Split(self.images.subset(rows), self.labels[index], self.home)

    def gather(self, index: Tensor) -> Tensor:
        """uint8 images of `index` (rows), on this split's device."""
        if isinstance(self.images, Tensor):
            return self.images[index.to(self.images.device)]
        return self.images[index.cpu()].to(self.device, non_blocking=True)


@dataclass
class Dataset:
    name: str
    train: Split
    test: Split
    classes: list[str]
    # imagefolder DIR/val/<class>/ when it exists: the split training picks `best` on (None: no val
    # split in the source; the recipe's `val_split` can hold one out of train instead)
    val: Split | None = None
    cache: str = "ram"  # where the pixels live: ram, disk or none (docs/performance.md)
    cache_file: Path | None = None  # the decoded-image cache an image folder's pixels come from

    @property
    def mean_std(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the train split, in [0, 1] units."""
        return channel_stats(self.train)


def channel_stats(split: Split, limit: int = STATS_IMAGES) -> tuple[list[float], list[float]]:
    """Per-channel mean and (unbiased) std in [0, 1] units, in chunks of bounded size: exact sums
    of the uint8 pixels and their squares (float64 holds a chunk's sums exactly: at most
    2**19 × 255² < 2**53), accumulated as Python integers; never a float copy of the split."""
    n = len(split)
    rows = torch.linspace(0, n - 1, limit).round().long().unique() if n > limit else torch.arange(n)
    _, c, h, w = split.images.shape
    per_chunk = max(1, STATS_CHUNK_BYTES // (c * h * w))
    sums, squares = [0] * c, [0] * c
    for start in range(0, len(rows), per_chunk):
        x = split.gather(rows[start : start + per_chunk]).cpu().double()  # (B, C, H, W), bounded
        sums = [a + round(b) for a, b in zip(sums, x.sum((0, 2, 3)).tolist(), strict=True)]
        sq = x.square_().sum((0, 2, 3)).tolist()
        squares = [a + round(b) for a, b in zip(squares, sq, strict=True)]
    count = len(rows) * h * w
    mean = [s / count / 255 for s in sums]
    var = [(q * count - s * s) / (count * max(count - 1, 1)) for s, q in zip(sums, squares, strict=True)]
    return mean, [max(v, 0.0) ** 0.5 / 255 for v in var]
