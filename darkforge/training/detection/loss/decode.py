"""The raw maps of an anchor-free (Detect) head, flattened over levels, and their decoded boxes.

Raw maps (DETECTION.md): one per level, (B, 4 * reg_max + nc, H_i, W_i): box DFL logits (sides
l, t, r, b, reg_max bins each), then class logits. Decoded: (B, 4 + nc, A), rows cx, cy, w, h in
input pixels, then sigmoid class probabilities; A = sum H_i * W_i, levels in order, row-major.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from darkforge.training.detection.loss.anchors import dfl_expectation, dist2bbox, make_anchors


def flatten_levels(raw_maps: Sequence[Tensor]) -> Tensor:
    """[(B, C, H_i, W_i)] -> (B, A, C), anchors level by level, row-major."""
    return torch.cat([m.flatten(2) for m in raw_maps], 2).transpose(1, 2)


def decode_detect(raw_maps: Sequence[Tensor], strides: Sequence[float], reg_max: int = 16) -> Tensor:
    """Raw maps -> (B, 4 + nc, A) decoded as the Detect head's eval output."""
    flat = flatten_levels(raw_maps)  # (B, A, 4R + nc)
    points, stride = make_anchors(
        [m.shape[-2:] for m in raw_maps], strides, device=flat.device, dtype=flat.dtype
    )
    dist = dfl_expectation(flat[..., : 4 * reg_max], reg_max)  # (B, A, 4) in stride units
    xyxy = dist2bbox(points / stride[:, None], dist) * stride[:, None]
    cxcywh = torch.cat([(xyxy[..., :2] + xyxy[..., 2:]) / 2, xyxy[..., 2:] - xyxy[..., :2]], -1)
    return torch.cat([cxcywh, flat[..., 4 * reg_max :].sigmoid()], -1).transpose(1, 2)
