"""From a head's decoded output to detections: confidence filter, then torchvision's NMS; and the
way back from letterboxed input pixels to the original image's pixels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.ops import batched_nms, box_convert

MAX_CANDIDATES = 30_000  # boxes per image NMS looks at (the best-scored); NMS is quadratic in it


def postprocess(
    decoded: Tensor,
    conf: float = 0.001,
    iou: float = 0.7,
    max_det: int = 300,
    agnostic: bool = False,
    max_candidates: int = MAX_CANDIDATES,
) -> list[Tensor]:
    """Detections per image, each (K, 6) float32: x1, y1, x2, y2, score, class, best score first.

    `decoded` is (B, 4 + nc, A): rows cx, cy, w, h (input pixels), then per-class probabilities.
    Each anchor proposes its one best class (not every class above `conf`): one box per anchor,
    so `max_det` holds distinct objects. NMS is per class (`batched_nms`), or across classes
    with `agnostic`; boxes scoring at most `conf` are dropped first."""
    if decoded.dim() != 3 or decoded.shape[1] < 5:
        raise ValueError(f"decoded output must be (B, 4 + classes, anchors), got {tuple(decoded.shape)}")
    out = []
    for image in decoded.float():  # (4 + nc, A)
        scores, classes = image[4:].max(0)  # (A,), (A,)
        keep = scores > conf
        boxes, scores, classes = image[:4, keep].T, scores[keep], classes[keep]
        if len(scores) > max_candidates:
            top = scores.topk(max_candidates).indices
            boxes, scores, classes = boxes[top], scores[top], classes[top]
        boxes = box_convert(boxes, "cxcywh", "xyxy")
        groups = torch.zeros_like(classes) if agnostic else classes
        kept = batched_nms(boxes, scores, groups, iou)[:max_det]  # sorted by score, best first
        out.append(torch.cat([boxes[kept], scores[kept, None], classes[kept, None].float()], 1))
    return out


def to_original(detections: Tensor, scale: float, pad: Sequence[float], size: Sequence[int]) -> Tensor:
    """Boxes (K, 4 + …) from letterboxed input pixels to the original image's pixels, clipped to
    the image: original = (input - pad) / scale. `pad` is (pad_x, pad_y), `size` the original
    (height, width). Columns after the fourth (score, class) are kept as they are."""
    pad_x, pad_y = float(pad[0]), float(pad[1])
    height, width = int(size[0]), int(size[1])
    out = detections.clone()
    boxes = out[:, :4]
    boxes -= boxes.new_tensor([pad_x, pad_y, pad_x, pad_y])
    boxes /= scale
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    return out


def targets_per_image(targets: Tensor, images: int) -> list[Tensor]:
    """A batch's targets (M, 6: image index, class, x1, y1, x2, y2) as the ground truth `evaluate`
    takes: one (M_i, 5) tensor (class, x1, y1, x2, y2) per image, an empty one for a background
    image. Map a true box back with `to_original(rows[:, 1:5], ...)` as predictions are."""
    index = targets[:, 0].long()
    return [targets[index == i, 1:] for i in range(images)]
