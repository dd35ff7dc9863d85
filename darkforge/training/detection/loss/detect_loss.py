"""The loss of an anchor-free Detect head: task-aligned assignment, then BCE on classes, CIoU on
boxes and the distribution focal loss (DFL) on the box bins.

    loss = DetectionLoss(nc=80, reg_max=16, strides=[8., 16., 32.])
    total, parts = loss(raw_maps, targets, image_size=640)

Normalisation (as Ultralytics' v8 loss, which these gains belong to): every component is divided
by the sum of the soft class targets of the batch (at least 1), so a batch with more boxes does not
weigh more; the box and DFL terms of a positive anchor are weighted by its soft target; `total` is
(box·7.5 + cls·0.5 + dfl·1.5) × batch size, and `parts` are the three gained terms without the
batch factor (what a log shows per epoch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import complete_box_iou_loss

from darkforge.errors import DataError
from darkforge.training.detection.loss.anchors import bbox2dist, dfl_expectation, dist2bbox, make_anchors
from darkforge.training.detection.loss.assign import Assignment, TaskAlignedAssigner
from darkforge.training.detection.loss.decode import flatten_levels
from darkforge.training.detection.loss.targets import input_hw, pad_targets


def dfl_loss(logits: Tensor, target: Tensor) -> Tensor:
    """(N, 4, reg_max) bin logits, (N, 4) target distances in bins -> (N,) the DFL (GFL paper,
    eq. 6): cross-entropy towards the two bins around the target, weighted by nearness; mean over
    the four sides."""
    flat = logits.flatten(0, 1)  # (N·4, reg_max)
    left = target.flatten().long()
    w_left = left + 1 - target.flatten()
    loss = F.cross_entropy(flat, left, reduction="none") * w_left
    loss = loss + F.cross_entropy(flat, left + 1, reduction="none") * (1 - w_left)
    return loss.view(-1, 4).mean(-1)


class DetectionLoss:
    def __init__(
        self,
        nc: int,
        reg_max: int = 16,
        strides: Sequence[float] = (8.0, 16.0, 32.0),
        box: float = 7.5,
        cls: float = 0.5,
        dfl: float = 1.5,
        assigner: TaskAlignedAssigner | None = None,
    ) -> None:
        self.nc, self.reg_max, self.strides = nc, reg_max, [float(s) for s in strides]
        self.gains = {"box": box, "cls": cls, "dfl": dfl}
        self.assigner = assigner or TaskAlignedAssigner()

    @staticmethod
    def for_head(head: Any, *, box: float = 7.5, cls: float = 0.5, dfl: float = 1.5) -> DetectionLoss:
        """The loss of a Detect module, from its `nc`, `reg_max` and `stride` (DETECTION.md)."""
        strides = [float(s) for s in head.stride]
        return DetectionLoss(head.nc, head.reg_max, strides, box=box, cls=cls, dfl=dfl)

    def __call__(
        self, raw_maps: Sequence[Tensor], targets: Tensor, image_size: int | tuple[int, int]
    ) -> tuple[Tensor, dict[str, float]]:
        """raw_maps: per level (B, 4·reg_max + nc, H_i, W_i); targets (M, 6) rows (image, class,
        x1, y1, x2, y2) in input pixels; image_size the input's side (or (h, w))."""
        self._check(raw_maps, image_size)
        flat = flatten_levels(raw_maps).float()  # (B, A, 4R + nc); float32 under autocast too
        b = flat.shape[0]
        box_logits, cls_logits = flat.split([4 * self.reg_max, self.nc], -1)
        points, stride = make_anchors(
            [m.shape[-2:] for m in raw_maps], self.strides, device=flat.device, dtype=flat.dtype
        )
        grid = points / stride[:, None]  # anchor points in stride units
        dist = dfl_expectation(box_logits, self.reg_max)  # (B, A, 4) in stride units
        pred_boxes = dist2bbox(grid, dist) * stride[:, None]  # (B, A, 4) xyxy input pixels
        gt = pad_targets(targets.to(flat.device, flat.dtype), b)
        got = self.assigner(cls_logits.detach().sigmoid(), pred_boxes.detach(), points, gt)
        norm = got.scores.sum().clamp(min=1)
        cls_loss = F.binary_cross_entropy_with_logits(cls_logits, got.scores, reduction="sum") / norm
        box_loss, dfl = self._box_terms(box_logits, pred_boxes, got, grid, stride, norm)
        parts = {
            "box": box_loss * self.gains["box"],
            "cls": cls_loss * self.gains["cls"],
            "dfl": dfl * self.gains["dfl"],
        }
        total = torch.stack(list(parts.values())).sum() * b
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def _box_terms(
        self, box_logits: Tensor, pred: Tensor, got: Assignment, grid: Tensor, stride: Tensor, norm: Tensor
    ) -> tuple[Tensor, Tensor]:
        """CIoU and DFL over the positive anchors, each weighted by its soft target's sum."""
        fg = got.foreground
        if not fg.any():  # no box in the batch: zero terms that still reach the graph
            zero = box_logits.sum() * 0
            return zero, zero
        weight = got.scores.sum(-1)[fg]  # (P,)
        ciou = complete_box_iou_loss(pred[fg], got.boxes[fg], reduction="none")
        a = torch.nonzero(fg)[:, 1]  # the anchor of each positive
        target = bbox2dist(grid[a], got.boxes[fg] / stride[a, None], self.reg_max)
        dfl = dfl_loss(box_logits[fg].view(-1, 4, self.reg_max), target)
        return (ciou * weight).sum() / norm, (dfl * weight).sum() / norm

    def _check(self, raw_maps: Sequence[Tensor], image_size: int | tuple[int, int]) -> None:
        size = input_hw(image_size)
        if len(raw_maps) != len(self.strides):
            raise DataError(f"the loss has {len(self.strides)} strides, the head gave {len(raw_maps)} maps")
        need = 4 * self.reg_max + self.nc
        for i, (m, s) in enumerate(zip(raw_maps, self.strides, strict=True)):
            if m.ndim != 4 or m.shape[1] != need:
                raise DataError(
                    f"level {i}: a Detect map must be (B, {need}, H, W) (4·reg_max {self.reg_max} + "
                    f"{self.nc} classes), got {tuple(m.shape)}"
                )
            if (m.shape[2] * s, m.shape[3] * s) != size:
                raise DataError(
                    f"level {i}: a {m.shape[2]}×{m.shape[3]} map at stride {s:g} does not cover the "
                    f"{size[0]}×{size[1]} input; the strides must be input size / map size"
                )
