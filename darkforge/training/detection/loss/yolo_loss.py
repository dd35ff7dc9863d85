"""The loss of Darknet's anchor-based [yolo] heads, matched as YOLOv3 (Redmon & Farhadi 2018).

Each ground-truth box goes to one prediction: the anchor whose shape (width, height, centred) has
the best IoU with it across all heads, in the cell of that anchor's head holding the box centre.
That prediction learns objectness 1, the box's class (BCE per class) and the box (CIoU of the
decoded box, Zheng et al. 2020, from torchvision.ops). Every other prediction learns objectness 0,
except those whose decoded box already overlaps some box by more than the head's ignore_thresh:
they are left out of the objectness loss (YOLOv3 section 2.1).

    loss = YoloLoss(nc=80, anchors=[(10, 13), ...], masks=[[6, 7, 8], [3, 4, 5], [0, 1, 2]])
    total, parts = loss(raw_maps, targets, image_size=416)     # parts: {"box", "obj", "cls"}

Normalisation (as YOLOv5's, whose gains these are): box and class terms are means over the matched
predictions, the objectness term the sum over heads of each head's mean; `total` is
(box·0.05 + obj·1.0 + cls·0.5) × batch size, `parts` the gained terms without the batch factor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import complete_box_iou_loss

from darkforge.errors import DataError
from darkforge.training.detection.loss.iou import paired_iou, shape_iou
from darkforge.training.detection.loss.targets import PaddedTargets, input_hw, pad_targets
from darkforge.training.detection.loss.yolo_heads import HeadOutput, YoloHeads


class YoloLoss:
    def __init__(
        self,
        nc: int,
        anchors: Sequence[tuple[float, float]],
        masks: Sequence[Sequence[int]],
        *,
        ignore_thresh: float | Sequence[float] = 0.7,
        scale_x_y: float | Sequence[float] = 1.0,
        new_coords: bool = False,
        box: float = 0.05,
        obj: float = 1.0,
        cls: float = 0.5,
    ) -> None:
        self.heads = YoloHeads(
            nc,
            tuple((float(w), float(h)) for w, h in anchors),
            tuple(tuple(m) for m in masks),
            _per_head(scale_x_y, len(masks)),
            new_coords,
        )
        self.ignore_thresh = _per_head(ignore_thresh, len(masks))
        self.gains = {"box": box, "obj": obj, "cls": cls}

    def decode(self, raw_maps: Sequence[Tensor], image_size: int | tuple[int, int]) -> Tensor:
        """(B, 4 + nc, A): cx, cy, w, h input pixels, class probability × objectness."""
        return self.heads.decode(raw_maps, image_size)

    def __call__(
        self, raw_maps: Sequence[Tensor], targets: Tensor, image_size: int | tuple[int, int]
    ) -> tuple[Tensor, dict[str, float]]:
        """raw_maps: per head (B, n·(5 + nc), H, W); targets (M, 6) rows (image, class, x1, y1, x2,
        y2) in input pixels; image_size the input's side (or (h, w))."""
        if len(raw_maps) != len(self.heads.masks):
            heads, given = len(self.heads.masks), len(raw_maps)
            raise DataError(f"the loss has {heads} yolo heads, the network gave {given} maps")
        raw_maps = [m.float() for m in raw_maps]  # the loss in float32, under autocast too
        size, b = input_hw(image_size), raw_maps[0].shape[0]
        targets = targets.to(raw_maps[0].device, raw_maps[0].dtype)
        gt = pad_targets(targets, b)  # for the ignore rule; a box without area overlaps nothing
        # ... and is never matched: the CIoU of a point is undefined (NaN), and nothing can learn it
        targets = targets[(targets[:, 4:6] > targets[:, 2:4]).all(1)]
        best = self._best_anchor(targets)
        box = cls = obj = raw_maps[0].sum() * 0  # zero terms that still reach the graph
        n_matched = 0
        for i, raw in enumerate(raw_maps):
            out = self.heads.split(raw, i, size)
            where, matched = self._match(targets, best, i, out)
            obj = obj + self._objectness(out, gt, where, i)
            if len(matched):
                box = box + complete_box_iou_loss(out.boxes[where], matched[:, 2:], reduction="sum")
                cls = cls + self._bce(out.classes[where], F.one_hot(matched[:, 1].long(), self.heads.nc))
            n_matched += len(matched)
        n = max(n_matched, 1)
        parts = {
            "box": box / n * self.gains["box"],
            "obj": obj * self.gains["obj"],
            "cls": cls / (n * self.heads.nc) * self.gains["cls"],
        }
        total = torch.stack(list(parts.values())).sum() * b
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def _best_anchor(self, targets: Tensor) -> Tensor:
        """(M,) the index of the anchor whose shape best fits each box, across all heads."""
        wh = targets[:, 4:6] - targets[:, 2:4]
        anchors = targets.new_tensor(self.heads.anchors)
        return shape_iou(wh[:, None], anchors[None]).argmax(1)

    def _match(
        self, targets: Tensor, best: Tensor, head: int, out: HeadOutput
    ) -> tuple[tuple[Tensor, ...], Tensor]:
        """Boxes whose best anchor is in this head -> (index of their predictions as (image,
        anchor of the mask, row, column), those boxes' target rows)."""
        mask = torch.tensor(self.heads.masks[head], device=targets.device)
        hit = best[:, None] == mask[None]  # (M, n)
        rows, local = hit.nonzero(as_tuple=True)
        matched = targets[rows]
        _, _, h, w, _ = out.boxes.shape
        centre = (matched[:, 2:4] + matched[:, 4:6]) / 2
        col = (centre[:, 0] / out.stride[1]).long().clamp(0, w - 1)
        row = (centre[:, 1] / out.stride[0]).long().clamp(0, h - 1)
        return (matched[:, 0].long(), local, row, col), matched

    def _objectness(self, out: HeadOutput, gt: PaddedTargets, where: tuple[Tensor, ...], head: int) -> Tensor:
        """This head's mean objectness BCE: 1 at the matched predictions, 0 elsewhere, predictions
        overlapping a box by more than ignore_thresh left out (unless matched)."""
        target = torch.zeros_like(out.objectness)
        target[where] = 1.0
        keep = torch.ones_like(out.objectness, dtype=torch.bool)
        if gt.boxes.shape[1]:
            b = out.boxes.shape[0]
            pred = out.boxes.detach().reshape(b, -1, 1, 4)  # (B, N, 1, 4)
            iou = paired_iou(pred, gt.boxes[:, None]) * gt.mask[:, None]  # (B, N, G)
            keep = iou.amax(-1).view_as(keep) <= self.ignore_thresh[head]
            keep[where] = True
        return (self._bce(out.objectness, target, reduce=False) * keep).mean()

    def _bce(self, pred: Tensor, target: Tensor, reduce: bool = True) -> Tensor:
        """BCE on logits, or on probabilities when the heads use new_coords (already logistic)."""
        target = target.to(pred.dtype)
        if self.heads.new_coords:
            loss = F.binary_cross_entropy(pred.clamp(1e-7, 1 - 1e-7), target, reduction="none")
        else:
            loss = F.binary_cross_entropy_with_logits(pred, target, reduction="none")
        return loss.sum() if reduce else loss


def _per_head(value: float | Sequence[float], heads: int) -> tuple[float, ...]:
    """One setting for every head, or one per head."""
    values = tuple(float(v) for v in value) if isinstance(value, Sequence) else (float(value),) * heads
    if len(values) != heads:
        raise ValueError(f"{len(values)} values for {heads} yolo heads")
    return values
