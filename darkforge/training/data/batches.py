"""Shuffled, augmented float batches of a split, delivered on its device.

The order and every augmentation number come from one generator seeded per epoch, in the main
process, whatever the cache mode: only fetching the uint8 rows differs (a gather in RAM, a copy out
of the memory-mapped cache, or decoding files in DataLoader workers). So one seed gives the same
batches in every mode, and a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from darkforge.training.data.augment import CropFlip
from darkforge.training.data.splits import Split
from darkforge.training.distributed import shard


class Batches:
    """With `world` > 1 (DDP) `batch` is the global batch and each rank gets its slice of it: every
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
        shuffle: bool = False,
        drop_last: bool = False,
        channels_last: bool = False,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.split, self.batch, self.rank, self.world = split, batch, rank, world
        device = split.device
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255
        self.augment = CropFlip(crop, flip)
        self.shuffle, self.drop_last, self.channels_last = shuffle, drop_last, channels_last

    def __len__(self) -> int:
        full, rest = divmod(len(self.split), self.batch)
        return full + (0 if self.drop_last or rest < self.world else 1)  # every rank gets an image

    def epoch(self, seed: int) -> Iterator[tuple[Tensor, Tensor]]:
        g = torch.Generator(device="cpu").manual_seed(seed)
        n = len(self.split)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        plan = []
        for k in range(len(self)):
            batch = order[k * self.batch : (k + 1) * self.batch]  # the global batch
            part = shard(len(batch), self.rank, self.world)  # this rank's slice of it
            plan.append((len(batch), part, batch[part]))
        rows = fetch(self.split, [index for _, _, index in plan])
        device = self.split.device
        for (whole, part, index), x in zip(plan, rows, strict=True):
            x = self.augment(x.to(device, non_blocking=True), g, whole, part)
            x = (x.float() - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.split.labels[index.to(self.split.labels.device)]


def fetch(split: Split, indices: list[Tensor]) -> Iterator[Tensor]:
    """uint8 rows of `split` for each index tensor, in order. Files are decoded in DataLoader
    workers (`workers` on the source) so decoding overlaps training."""
    workers = getattr(split.images, "workers", 0)
    if not split.lazy or not workers:
        return (split.gather(index) for index in indices)
    loader = torch.utils.data.DataLoader(
        _Rows(split), batch_size=None, sampler=indices, num_workers=workers, prefetch_factor=4
    )
    return iter(loader)


class _Rows(torch.utils.data.Dataset[Tensor]):
    """Map-style view for DataLoader: key = a tensor of rows, item = their uint8 images."""

    def __init__(self, split: Split) -> None:
        self.images = split.images

    def __getitem__(self, index: Tensor) -> Tensor:  # type: ignore[override]
        return self.images[index]
