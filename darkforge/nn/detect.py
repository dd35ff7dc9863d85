"""Modules of the anchor-free heads (darkforge/spec/layers/detect.py), named as Ultralytics'
state_dicts name them (`cv2.i` box branches, `cv3.i` class branches, `dfl.conv`; `conv`, `linear`).

Detect's contract (the detection interface): in training, one raw map per level, each
(B, 4·reg_max + nc, H_i, W_i) — the box DFL logits (sides l, t, r, b, reg_max bins each), then
the class logits; in eval, (decoded, raw maps) with decoded (B, 4 + nc, A): box centre x, centre
y, width, height in input pixels, then sigmoid class probabilities, anchors level by level,
row-major.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from darkforge.nn.csp import cbs
from darkforge.spec import layers as specs
from darkforge.spec.base import Shape
from darkforge.spec.layers.detect import head_widths, level_strides


class DFL(nn.Module):
    """Distribution focal loss' integral: softmax over the reg_max bins of each side, then the
    expectation with the fixed weights 0..reg_max-1 — a 1×1 conv that never trains."""

    def __init__(self, reg_max: int) -> None:
        super().__init__()
        self.reg_max = reg_max
        self.conv = nn.Conv2d(reg_max, 1, 1, bias=False).requires_grad_(False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.arange(reg_max, dtype=torch.float32).view(1, reg_max, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        b, _, a = x.shape  # (B, 4·reg_max, A) -> (B, 4, A) distances in stride units
        bins = x.view(b, 4, self.reg_max, a).transpose(2, 1).softmax(1)  # (B, reg_max, 4, A)
        return self.conv(bins).view(b, 4, a)  # type: ignore[no-any-return]


def anchor_grid(maps: Sequence[Tensor], strides: Tensor) -> tuple[Tensor, Tensor]:
    """Cell centres in grid units (2, A) and each anchor's stride (1, A), level by level."""
    points, steps = [], []
    for level, m in enumerate(maps):
        h, w = m.shape[2:]
        sx = torch.arange(w, device=m.device, dtype=m.dtype) + 0.5
        sy = torch.arange(h, device=m.device, dtype=m.dtype) + 0.5
        gy, gx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((gx, gy), -1).view(-1, 2))
        steps.append(strides[level].to(m.dtype).expand(h * w, 1))  # a tensor op: export keeps it
    return torch.cat(points).transpose(0, 1), torch.cat(steps).transpose(0, 1)


class Detect(nn.Module):
    def __init__(self, spec: specs.Detect, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.nc, self.reg_max, self.nl = spec.nc, spec.reg_max, len(inputs)
        self.no = self.nc + 4 * self.reg_max
        self.levels = [tuple(shape) for shape in inputs]
        c2, c3 = head_widths(inputs[0][0], self.nc, self.reg_max)
        self.cv2 = nn.ModuleList(
            nn.Sequential(cbs(spec, c, c2, 3), cbs(spec, c2, c2, 3), nn.Conv2d(c2, 4 * self.reg_max, 1))
            for c, *_ in inputs
        )
        self.cv3 = nn.ModuleList(self._class_branch(spec, c, c3) for c, *_ in inputs)
        self.dfl = DFL(self.reg_max) if self.reg_max > 1 else nn.Identity()
        # set from the plan by bind_input (Network does it); not a checkpoint tensor
        self.stride: Tensor
        self.register_buffer("stride", torch.zeros(self.nl), persistent=False)
        self.image_size = 640

    def _class_branch(self, spec: specs.Detect, c: int, c3: int) -> nn.Module:
        if spec.style == "v8":
            return nn.Sequential(cbs(spec, c, c3, 3), cbs(spec, c3, c3, 3), nn.Conv2d(c3, self.nc, 1))
        return nn.Sequential(  # YOLO11: (depthwise 3×3, pointwise 1×1) twice
            nn.Sequential(cbs(spec, c, c, 3, groups=c), cbs(spec, c, c3, 1)),
            nn.Sequential(cbs(spec, c3, c3, 3, groups=c3), cbs(spec, c3, c3, 1)),
            nn.Conv2d(c3, self.nc, 1),
        )

    def bind_input(self, network_input: Shape) -> None:
        """Strides from the plan (input height / level height), then the bias prior for them."""
        strides = level_strides(network_input, self.levels)
        self.stride.copy_(torch.tensor(strides, dtype=torch.float32))
        self.image_size = network_input[1]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The YOLO bias prior: box logits 1.0; class logits log(5 / nc / (S / stride)²), i.e.
        about 5 objects per image of S×S spread over the level's cells, so the sigmoid starts near
        that rate instead of 0.5 (focal-loss prior, Lin et al. 2017; YOLOv5/v8 docs)."""
        with torch.no_grad():
            for box, cls, stride in zip(self.cv2, self.cv3, self.stride.tolist(), strict=True):
                box_out: nn.Conv2d = box[-1]  # type: ignore[index]
                cls_out: nn.Conv2d = cls[-1]  # type: ignore[index]
                assert box_out.bias is not None and cls_out.bias is not None
                box_out.bias.fill_(1.0)
                cells = (self.image_size / max(stride, 1.0)) ** 2
                cls_out.bias.fill_(math.log(5 / self.nc / cells))

    def forward(self, *xs: Tensor) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        maps = [torch.cat((box(x), cls(x)), 1) for x, box, cls in zip(xs, self.cv2, self.cv3, strict=True)]
        if self.training:
            return maps
        return self.decode(maps), maps

    def decode(self, maps: Sequence[Tensor]) -> Tensor:
        """Raw maps -> (B, 4 + nc, A): cx, cy, w, h in input pixels, then class probabilities."""
        b = maps[0].shape[0]
        anchors, strides = anchor_grid(maps, self.stride)
        flat = torch.cat([m.view(b, self.no, -1) for m in maps], 2)
        box, cls = flat.split((4 * self.reg_max, self.nc), 1)
        lt, rb = self.dfl(box).chunk(2, 1)  # distances (B, 2, A) each, in stride units
        x1y1, x2y2 = anchors.unsqueeze(0) - lt, anchors.unsqueeze(0) + rb
        xywh = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * strides
        return torch.cat((xywh, cls.sigmoid()), 1)


class Classify(nn.Module):
    def __init__(self, spec: specs.Classify, inputs: Sequence[Shape]) -> None:
        super().__init__()
        assert isinstance(spec.classes, int)  # the shape rule refused a missing class count
        self.conv = cbs(spec, inputs[0][0], spec.hidden, spec.size, spec.stride)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(spec.dropout)
        self.linear = nn.Linear(spec.hidden, spec.classes)
        self.softmax = spec.softmax

    def forward(self, x: Tensor) -> Tensor:
        y = self.linear(self.drop(self.pool(self.conv(x)).flatten(1)))
        return y if self.training or not self.softmax else y.softmax(1)
