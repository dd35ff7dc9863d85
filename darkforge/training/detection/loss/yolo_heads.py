"""The geometry of Darknet's anchor-based [yolo] heads (YOLOv3, Redmon & Farhadi 2018), shared by
their loss and their decoding.

A head's raw map is (B, n·(5 + nc), H, W), n = len(mask): per anchor of the mask tx, ty, tw, th,
objectness, nc class logits. Its box (input pixels, stride = input / map side):
    x = (sigmoid(tx)·s − (s − 1)/2 + cx) · stride_x        s = scale_x_y (1 in YOLOv3)
    w = anchor_w · exp(tw)
With new_coords (YOLOv4-csp/v7) the conv before the layer is already logistic: x uses tx as is and
w = anchor_w · (2·tw)², and objectness/classes are probabilities, not logits.

Decoded (for evaluation, the Detect head's layout): (B, 4 + nc, A) rows cx, cy, w, h in input
pixels, then class probability × objectness; A = sum over heads of n·H·W, head by head, then
anchor of the mask, then row-major.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from darkforge.errors import DataError
from darkforge.training.detection.loss.targets import input_hw

# exp(tw) of a wild initial prediction overflows float32 near 88; a box 20000× its anchor is
# already meaningless, and the clamp keeps CIoU finite.
MAX_TW = 10.0


@dataclass(frozen=True)
class HeadOutput:
    boxes: Tensor  # (B, n, H, W, 4) xyxy input pixels
    objectness: Tensor  # (B, n, H, W) logits (probabilities with new_coords)
    classes: Tensor  # (B, n, H, W, nc) logits (probabilities with new_coords)
    stride: tuple[float, float]  # (y, x) input pixels per cell


@dataclass(frozen=True)
class YoloHeads:
    nc: int
    anchors: tuple[tuple[float, float], ...]  # (w, h) input pixels, all heads' anchors
    masks: tuple[tuple[int, ...], ...]  # per head, the anchors it predicts
    scale_x_y: tuple[float, ...]  # per head
    new_coords: bool = False

    def split(self, raw: Tensor, head: int, image_size: tuple[int, int]) -> HeadOutput:
        """One head's raw map -> its decoded boxes and its objectness and class outputs."""
        n = len(self.masks[head])
        b, c, h, w = raw.shape
        if c != n * (5 + self.nc):
            raise DataError(
                f"yolo head {head}: the map must have {n} anchors × (5 + {self.nc} classes) = "
                f"{n * (5 + self.nc)} channels, got {c}"
            )
        t = raw.view(b, n, 5 + self.nc, h, w).permute(0, 1, 3, 4, 2)  # (B, n, H, W, 5 + nc)
        stride = (image_size[0] / h, image_size[1] / w)
        ys = torch.arange(h, device=raw.device, dtype=raw.dtype)
        xs = torch.arange(w, device=raw.device, dtype=raw.dtype)
        cells = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)  # (H, W, 2) as x, y
        anchors = raw.new_tensor([self.anchors[m] for m in self.masks[head]])[:, None, None]  # (n,1,1,2)
        s = self.scale_x_y[head]
        if self.new_coords:
            xy, wh = t[..., :2], anchors * (2 * t[..., 2:4]) ** 2
        else:
            xy, wh = t[..., :2].sigmoid(), anchors * t[..., 2:4].clamp(max=MAX_TW).exp()
        centre = (xy * s - (s - 1) / 2 + cells) * raw.new_tensor([stride[1], stride[0]])
        boxes = torch.cat([centre - wh / 2, centre + wh / 2], -1)
        return HeadOutput(boxes, t[..., 4], t[..., 5:], stride)

    def decode(self, raw_maps: Sequence[Tensor], image_size: int | tuple[int, int]) -> Tensor:
        """Raw maps of every head -> (B, 4 + nc, A) decoded as the Detect head's eval output."""
        size = input_hw(image_size)
        rows = []
        for i, raw in enumerate(raw_maps):
            out = self.split(raw, i, size)
            obj, cls = out.objectness, out.classes
            if not self.new_coords:
                obj, cls = obj.sigmoid(), cls.sigmoid()
            xyxy = out.boxes
            cxcywh = torch.cat([(xyxy[..., :2] + xyxy[..., 2:]) / 2, xyxy[..., 2:] - xyxy[..., :2]], -1)
            rows.append(torch.cat([cxcywh, cls * obj[..., None]], -1).flatten(1, 3))  # (B, n·H·W, 4+nc)
        return torch.cat(rows, 1).transpose(1, 2)
