"""Augmentations on whole normalized batches, in the training loop: cutout and MixUp/CutMix.

Cutout (DeVries & Taylor 2017) replaces a square of exactly `size`×`size` pixels (clipped at the
border) centred on a random pixel with the train set's mean; on normalized images the mean is
the per-channel `fill`. Its numbers are drawn for the whole global batch and a DDP rank uses its
slice, as training.augment does for crops, so ranks together see what one process would.

MixUp and CutMix are torchvision's transforms v2 (labels become class probabilities); they draw
from torch's global generator, which the loop seeds per epoch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def cutout(x: Tensor, size: int, fill: Tensor, g: torch.Generator, whole: int, part: slice) -> Tensor:
    """x (B, C, H, W) float, `part` of a batch of `whole` images; fill (C,) per-channel values."""
    _, _, h, w = x.shape
    device = x.device
    cy = torch.randint(0, h, (whole,), generator=g)[part].to(device)[:, None, None, None]
    cx = torch.randint(0, w, (whole,), generator=g)[part].to(device)[:, None, None, None]
    top, left = cy - size // 2, cx - size // 2
    ys = torch.arange(h, device=device)[None, None, :, None]
    xs = torch.arange(w, device=device)[None, None, None, :]
    hole = (ys >= top) & (ys < top + size) & (xs >= left) & (xs < left + size)  # (B, 1, H, W)
    return torch.where(hole, fill.to(x.dtype).view(1, -1, 1, 1), x)


BatchMix = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def batch_mix(mixup: float, cutmix: float, classes: int) -> BatchMix | None:
    """MixUp (alpha `mixup`) and/or CutMix (alpha `cutmix`), one of them per batch; None when off."""
    if not mixup and not cutmix:
        return None
    from torchvision.transforms import v2

    chosen = [t for alpha, t in ((mixup, v2.MixUp), (cutmix, v2.CutMix)) if alpha]
    alphas = [a for a in (mixup, cutmix) if a]
    transforms = [t(alpha=a, num_classes=classes) for t, a in zip(chosen, alphas, strict=True)]
    mix = transforms[0] if len(transforms) == 1 else v2.RandomChoice(transforms)

    def apply(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return mix(x, y)  # type: ignore[no-any-return]

    return apply
