"""A batch's targets, (M, 6) rows (image index, class, x1, y1, x2, y2) in input pixels, padded to
per-image tensors so assignment runs on the whole batch at once."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from darkforge.errors import DataError


@dataclass(frozen=True)
class PaddedTargets:
    labels: Tensor  # (B, G) long, class ids (0 where padding)
    boxes: Tensor  # (B, G, 4) xyxy in input pixels (0 where padding)
    mask: Tensor  # (B, G) bool, True for a real box; G = the most boxes any image has


def pad_targets(targets: Tensor, batch: int) -> PaddedTargets:
    """(M, 6) -> per-image padded labels, boxes and mask (G = 0 when the batch has no boxes)."""
    if targets.ndim != 2 or targets.shape[1] != 6:
        raise DataError(
            f"detection targets must be (M, 6) rows (image, class, x1, y1, x2, y2): {tuple(targets.shape)}"
        )
    image = targets[:, 0].long()
    if len(image) and (image.min() < 0 or image.max() >= batch):
        raise DataError(f"a target's image index {int(image.max())} lies outside the batch of {batch}")
    counts = torch.bincount(image, minlength=batch)
    g = int(counts.max()) if len(image) else 0
    # Each row's slot inside its image: its rank among the rows of the same image (stable order).
    order = torch.argsort(image, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.empty_like(image)
    slot[order] = torch.arange(len(image), device=image.device) - starts[image[order]]
    labels = torch.zeros(batch, g, dtype=torch.long, device=targets.device)
    boxes = torch.zeros(batch, g, 4, dtype=targets.dtype, device=targets.device)
    mask = torch.zeros(batch, g, dtype=torch.bool, device=targets.device)
    labels[image, slot] = targets[:, 1].long()
    boxes[image, slot] = targets[:, 2:]
    mask[image, slot] = True
    return PaddedTargets(labels, boxes, mask)


def input_hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """The network input's (height, width) from its side or its (h, w)."""
    if isinstance(image_size, int):
        return image_size, image_size
    return int(image_size[0]), int(image_size[1])
