"""One split's labels as the files say them: images, their sizes, boxes in original pixels.

Both readers (YOLO txt: yolo.py, COCO json: coco.py) produce this one structure, so "the two forms
of a set give identical targets" is a comparison of two `Labels`; letterboxing (split.py) starts
from it whatever the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor


@dataclass
class Labels:
    files: list[Path]  # N images, sorted by path
    sizes: Tensor  # (N, 2) int64: (h, w) of each image as displayed (EXIF orientation applied)
    boxes: Tensor  # (T, 4) float32 x1, y1, x2, y2 in original pixels, inside the image
    classes: Tensor  # (T,) int64 in [0, number of names)
    counts: Tensor  # (N,) int64: boxes per image, image by image (0: a background image)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def offsets(self) -> Tensor:
        """(N + 1,) int64: image i's boxes are rows offsets[i]:offsets[i + 1]."""
        return torch.cat([torch.zeros(1, dtype=torch.int64), self.counts.cumsum(0)])

    def of(self, i: int) -> tuple[Tensor, Tensor]:
        """Image i's (boxes (K, 4), classes (K,))."""
        start, end = self.offsets[i : i + 2].tolist()
        return self.boxes[start:end], self.classes[start:end]


def build_labels(
    files: list[Path], sizes: list[tuple[int, int]], boxes: list[list[list[float]]], classes: list[list[int]]
) -> Labels:
    """Labels from per-image lists (boxes as [x1, y1, x2, y2] lists), sorted by file path."""
    order = sorted(range(len(files)), key=lambda i: str(files[i]))
    flat_boxes = [b for i in order for b in boxes[i]]
    return Labels(
        [files[i] for i in order],
        torch.tensor([sizes[i] for i in order], dtype=torch.int64).reshape(-1, 2),
        torch.tensor(flat_boxes, dtype=torch.float64).reshape(-1, 4).float(),
        torch.tensor([c for i in order for c in classes[i]], dtype=torch.int64),
        torch.tensor([len(boxes[i]) for i in order], dtype=torch.int64),
    )


def concat(parts: list[Labels]) -> Labels:
    """Several sources of one split (data.yaml may list folders) as one, in the order given."""
    if len(parts) == 1:
        return parts[0]
    return Labels(
        [f for p in parts for f in p.files],
        torch.cat([p.sizes for p in parts]),
        torch.cat([p.boxes for p in parts]),
        torch.cat([p.classes for p in parts]),
        torch.cat([p.counts for p in parts]),
    )
