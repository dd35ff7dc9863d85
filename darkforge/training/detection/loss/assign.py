"""Task-aligned assignment (TOOD, Feng et al. 2021, section 3.2), batched over images.

For every ground-truth box g and anchor a the alignment metric is t = s^alpha * u^beta, s the
predicted probability of g's class at a and u the IoU of a's predicted box with g. An anchor is a
candidate for g when its point lies inside g; the top-k candidates by t are g's positives (t > 0).
An anchor positive for several boxes keeps the one its prediction overlaps most (as MMDetection's
TaskAlignedAssigner, Apache-2.0). The soft class target of a positive is t normalised per box so
that the box's largest equals its largest IoU (TOOD's t-hat), the target for BCE and the weight of
the box losses. Written here, not taken from a library, because torchvision has no assigner and
MMDetection's works per image on its own data structures.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from darkforge.training.detection.loss.iou import paired_iou
from darkforge.training.detection.loss.targets import PaddedTargets

EPS = 1e-9


@dataclass(frozen=True)
class Assignment:
    foreground: Tensor  # (B, A) bool: the anchor has a box
    gt_index: Tensor  # (B, A) long: which of the image's boxes (0 where background)
    labels: Tensor  # (B, A) long: that box's class (0 where background)
    boxes: Tensor  # (B, A, 4) xyxy input pixels: that box (0 where background)
    scores: Tensor  # (B, A, nc): soft class targets, t-hat at the box's class, 0 elsewhere


@dataclass(frozen=True)
class TaskAlignedAssigner:
    topk: int = 10
    alpha: float = 0.5  # weight of the class score in t
    beta: float = 6.0  # weight of the IoU in t: localisation dominates which anchors win

    @torch.no_grad()
    def __call__(self, scores: Tensor, boxes: Tensor, points: Tensor, gt: PaddedTargets) -> Assignment:
        """scores (B, A, nc) probabilities, boxes (B, A, 4) predicted xyxy, points (A, 2) anchor
        points (all in input pixels); gt the padded boxes of each image."""
        b, a, nc = scores.shape
        if gt.boxes.shape[1] == 0:
            return _background(b, a, nc, boxes)
        inside = _inside(points, gt.boxes) & gt.mask[..., None]  # (B, G, A)
        iou = paired_iou(gt.boxes[:, :, None], boxes[:, None]) * inside
        cls_score = scores.transpose(1, 2).gather(1, gt.labels[..., None].expand(-1, -1, a))
        metric = cls_score.pow(self.alpha) * iou.pow(self.beta) * inside  # (B, G, A)
        top = metric.topk(min(self.topk, a), dim=-1).indices
        candidate = torch.zeros_like(inside).scatter_(-1, top, True) & inside & (metric > 0)
        # One box per anchor: among its candidate boxes, the one its prediction overlaps most.
        best = torch.where(candidate, iou, -1.0).argmax(1)  # (B, A)
        foreground = candidate.any(1)
        positive = torch.zeros_like(candidate).scatter_(1, best[:, None], True) & foreground[:, None]
        # t-hat: t rescaled per box so its largest over its positives equals its largest IoU.
        metric, iou = metric * positive, iou * positive
        scale = iou.amax(-1, keepdim=True) / (metric.amax(-1, keepdim=True) + EPS)
        t_hat = (metric * scale).sum(1)  # (B, A): one positive box per anchor at most
        labels = gt.labels.gather(1, best) * foreground
        target = torch.zeros_like(scores).scatter_(-1, labels[..., None], t_hat[..., None])
        gt_boxes = gt.boxes.gather(1, best[..., None].expand(-1, -1, 4)) * foreground[..., None]
        return Assignment(foreground, best * foreground, labels, gt_boxes, target * foreground[..., None])


def _inside(points: Tensor, gt_boxes: Tensor) -> Tensor:
    """(A, 2) points, (B, G, 4) boxes -> (B, G, A) bool: the point lies strictly inside the box."""
    p = points[None, None]  # (1, 1, A, 2)
    lt = p - gt_boxes[:, :, None, :2]
    rb = gt_boxes[:, :, None, 2:] - p
    return torch.cat([lt, rb], -1).amin(-1) > EPS


def _background(b: int, a: int, nc: int, like: Tensor) -> Assignment:
    zeros = torch.zeros(b, a, dtype=torch.long, device=like.device)
    return Assignment(zeros.bool(), zeros, zeros, like.new_zeros(b, a, 4), like.new_zeros(b, a, nc))
