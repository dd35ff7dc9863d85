"""Batched augmentation on uint8 images (B, C, H, W), on whatever device they are: the same code
for every cache mode, so a seed gives the same batches whether pixels come from RAM, disk or files."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class CropFlip:
    crop: int = 0  # random shift of up to `crop` pixels, zero padding
    flip: bool = False  # horizontal mirror with probability 1/2

    def __call__(
        self, x: Tensor, g: torch.Generator, whole: int | None = None, part: slice = slice(None)
    ) -> Tensor:
        """Crop and flip of `x` (cutout is darkforge.training.data.mixing's, on normalized batches),
        which may be `part` of a batch of `whole` images (a DDP
        rank's slice): the random numbers are drawn for the whole batch and this part of them used,
        as one process would use them."""
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
        return x
