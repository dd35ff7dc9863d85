"""Shuffled, augmented detection batches of a split: (B, 3, S, S) uint8 images and (M, 6) targets.

As for classification (training/batches.py): the order and every augmentation number come from one
generator seeded per epoch, in the main process, whatever the cache mode; only fetching the uint8
rows differs (training.batches.fetch: a gather in RAM, a copy out of the memory-mapped cache, or
files decoded in DataLoader workers). One seed therefore gives the same batches in every mode.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from darkforge.training.data.batches import fetch
from darkforge.training.data.splits import Split
from darkforge.training.detection.data.augment import BoxAugment, augment
from darkforge.training.detection.data.split import DetectionSplit


class DetectionBatches:
    def __init__(
        self,
        split: DetectionSplit,
        batch: int,
        boxes: BoxAugment | None = None,  # None: no augmentation (validation)
        shuffle: bool = False,
        drop_last: bool = False,
        device: torch.device | str = "cpu",
    ) -> None:
        self.split, self.batch, self.boxes = split, batch, boxes
        self.shuffle, self.drop_last, self.device = shuffle, drop_last, torch.device(device)
        # fetch() reads pixels only: a classification Split over the same images serves it
        self._pixels = Split(split.images, torch.zeros(len(split), dtype=torch.int64))

    def __len__(self) -> int:
        full, rest = divmod(len(self.split), self.batch)
        return full + (1 if rest and not self.drop_last else 0)

    def epoch(self, seed: int, mosaic: bool = True) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches of one epoch; `mosaic` off for the last epochs of training."""
        g = torch.Generator(device="cpu").manual_seed(seed)
        n = len(self.split)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        indices = [order[k * self.batch : (k + 1) * self.batch] for k in range(len(self))]
        for index, x in zip(indices, fetch(self._pixels, indices), strict=True):
            images = x.to(self.device, non_blocking=True)
            targets = self.split.targets(index).to(self.device)
            if self.boxes is not None:
                images, targets = augment(images, targets, g, mosaic=mosaic, config=self.boxes)
            yield images, targets
