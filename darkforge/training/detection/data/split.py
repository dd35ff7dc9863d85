"""A detection split: letterboxed uint8 pixels with their boxes beside them, and the geometry that
maps predictions back to each original image (docs/detection.md, "Boxes and targets").

`images` is an (N, 3, S, S) uint8 tensor (`ram`) or an object that indexes like one (`disk`:
training.cache.Mapped, `none`: store.LetterboxFiles). Boxes of image i are rows offsets[i]:offsets[i+1]
of `boxes` (xyxy, input pixels) and `classes`; `targets(index)` gathers a batch's (M, 6) targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from darkforge.training.data.splits import Lazy
from darkforge.training.detection.data.images import letterbox_geometry
from darkforge.training.detection.data.labels import Labels


@dataclass
class DetectionSplit:
    images: Tensor | Lazy  # (N, 3, S, S) uint8, letterboxed
    boxes: Tensor  # (T, 4) float32 x1, y1, x2, y2 in input pixels
    classes: Tensor  # (T,) int64
    offsets: Tensor  # (N + 1,) int64
    sizes: Tensor  # (N, 2) int64 original (h, w)
    scale: Tensor  # (N,) float32 letterbox r: input = original * r + pad
    pad: Tensor  # (N, 2) float32 (pad_x, pad_y)
    files: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def counts(self) -> Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def gather(self, index: Tensor) -> Tensor:
        """(B, 3, S, S) uint8 images of `index` (rows)."""
        if isinstance(self.images, Tensor):
            return self.images[index.to(self.images.device)]
        return self.images[index.cpu()]

    def targets(self, index: Tensor) -> Tensor:
        """(M, 6) float32 (image index in the batch, class, x1, y1, x2, y2) of the images `index`."""
        index = index.cpu()
        starts, counts = self.offsets[index], self.counts[index]
        image = torch.repeat_interleave(torch.arange(len(index)), counts)
        first = torch.repeat_interleave(counts.cumsum(0) - counts, counts)
        rows = torch.repeat_interleave(starts, counts) + torch.arange(len(image)) - first
        return torch.cat([image[:, None].float(), self.classes[rows, None].float(), self.boxes[rows]], 1)

    def to_original(self, boxes: Tensor, i: int) -> Tensor:
        """(K, 4) xyxy boxes in input pixels of image i -> its original pixels, clipped to it."""
        out = (boxes - self.pad[i].repeat(2)) / self.scale[i]
        h, w = self.sizes[i].tolist()
        return torch.stack(
            [out[:, 0].clamp(0, w), out[:, 1].clamp(0, h), out[:, 2].clamp(0, w), out[:, 3].clamp(0, h)], 1
        )

    def original_boxes(self) -> Tensor:
        """(T, 4) every box in its original image's pixels (the ground truth COCO evaluation
        compares predictions with, once they are mapped back too)."""
        per_box = torch.repeat_interleave(torch.arange(len(self)), self.counts)
        return (self.boxes - self.pad[per_box].repeat(1, 2)) / self.scale[per_box, None]

    def subset(self, index: Tensor) -> DetectionSplit:
        """The images `index` (e.g. a held-out part of train) with their boxes."""
        index = index.cpu()
        targets = self.targets(index)
        images = self.images[index] if isinstance(self.images, Tensor) else self.images.subset(index)
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), self.counts[index].cumsum(0)])
        files = [self.files[i] for i in index.tolist()] if self.files else []
        return DetectionSplit(
            images, targets[:, 2:], targets[:, 1].long(), offsets,
            self.sizes[index], self.scale[index], self.pad[index], files,
        )  # fmt: skip


def letterboxed_targets(labels: Labels, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """(boxes in input pixels (T, 4), scale (N,), pad (N, 2)) of `labels` letterboxed to size×size."""
    geometry = [letterbox_geometry(h, w, size) for h, w in labels.sizes.tolist()]
    scale = torch.tensor([g[0] for g in geometry], dtype=torch.float64)
    pad = torch.tensor([[g[3], g[4]] for g in geometry], dtype=torch.float64).reshape(-1, 2)
    per_box = torch.repeat_interleave(torch.arange(len(labels)), labels.counts)
    boxes = labels.boxes.double() * scale[per_box, None] + pad[per_box].repeat(1, 2)
    return boxes.float(), scale.float(), pad.float()
