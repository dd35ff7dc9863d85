"""IoU of boxes paired by broadcasting. torchvision.ops.box_iou is all-pairs over two 2-D lists;
the assigner needs it per image, (B, G, 1, 4) against (B, 1, A, 4), and the Yolo loss between
centred shapes, so this is the one small piece written here."""

from __future__ import annotations

from torch import Tensor


def paired_iou(a: Tensor, b: Tensor, eps: float = 1e-9) -> Tensor:
    """(…, 4) xyxy against (…, 4) xyxy, broadcast -> (…) IoU (0 for empty boxes)."""
    lt = a[..., :2].maximum(b[..., :2])
    rb = a[..., 2:].minimum(b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    return inter / (area_a + area_b - inter + eps)


def shape_iou(wh_a: Tensor, wh_b: Tensor) -> Tensor:
    """(…, 2) widths/heights against (…, 2), broadcast -> (…) IoU of the boxes centred together
    (YOLOv3's anchor match)."""
    inter = wh_a.minimum(wh_b).prod(-1)
    return inter / (wh_a.prod(-1) + wh_b.prod(-1) - inter)
