"""Anchor points of an anchor-free head and the box <-> distance coding around them.

An anchor point is a cell centre ((x + 0.5) * stride, (y + 0.5) * stride) in input pixels, levels
in order, each row-major (DETECTION.md). A box is coded as its distances (left, top, right, bottom)
from the point, in stride units; the DFL head predicts each distance as a distribution over
`reg_max` bins 0..reg_max-1 (Generalized Focal Loss, Li et al. 2020).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

# Targets are clamped just below the last bin so that both neighbouring bins of a distance exist
# (the DFL reads bins floor(d) and floor(d) + 1).
DFL_EPS = 0.01


def make_anchors(
    feature_sizes: Sequence[Sequence[int]],  # (H, W) per level
    strides: Sequence[float],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Cell centres of every level -> (points (A, 2) as x, y in input pixels, stride (A,))."""
    points, per_anchor = [], []
    for (h, w), s in zip(feature_sizes, strides, strict=True):
        ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) * s
        xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) * s
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")  # row-major: x varies fastest
        points.append(torch.stack([xx, yy], -1).reshape(-1, 2))
        per_anchor.append(torch.full((h * w,), float(s), device=device, dtype=dtype))
    return torch.cat(points), torch.cat(per_anchor)


def dist2bbox(points: Tensor, dist: Tensor) -> Tensor:
    """(…, A, 2) points and (…, A, 4) ltrb distances (same unit) -> (…, A, 4) xyxy."""
    lt, rb = dist.chunk(2, -1)
    return torch.cat([points - lt, points + rb], -1)


def bbox2dist(points: Tensor, boxes: Tensor, reg_max: int) -> Tensor:
    """The inverse for targets: (…, A, 4) xyxy -> ltrb distances, clamped to [0, reg_max - 1 - eps]
    (a point outside its box or a side beyond the last bin gets the nearest codable distance)."""
    x1y1, x2y2 = boxes.chunk(2, -1)
    dist = torch.cat([points - x1y1, x2y2 - points], -1)
    return dist.clamp(0, reg_max - 1 - DFL_EPS)


def dfl_expectation(logits: Tensor, reg_max: int) -> Tensor:
    """(…, 4 * reg_max) box logits, sides l, t, r, b with reg_max bins each -> (…, 4) distances in
    bins: the expectation of the softmax over bins 0..reg_max-1."""
    probs = logits.unflatten(-1, (4, reg_max)).softmax(-1)
    bins = torch.arange(reg_max, device=logits.device, dtype=probs.dtype)
    return probs @ bins
