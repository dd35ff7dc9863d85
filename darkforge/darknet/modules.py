"""nn.Modules for Darknet's own layer types (specs in darkforge/darknet/layers.py).

Same constructor contract as darkforge/nn/layers.py: (spec, static input shapes). Each forward
follows Darknet's C code (pjreddie/darknet src/*_layer.c, blas.c) where torch has no exact match.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from darkforge.darknet import layers as specs
from darkforge.nn.activations import ACTIVATIONS
from darkforge.nn.norm import batch_norm
from darkforge.spec.base import LayerSpec, Shape, prod


class Connected(nn.Module):
    """flatten -> linear -> bn -> act; names `linear`, `bn`, `act` are the checkpoint keys."""

    def __init__(self, spec: specs.Connected, inputs: Sequence[Shape]) -> None:
        super().__init__()
        norm = spec.batch_norm
        self.linear = nn.Linear(prod(inputs[0]), spec.out, bias=norm is None)
        self.bn = batch_norm(norm, spec.out, dims=1) if norm else nn.Identity()
        self.act = ACTIVATIONS[spec.activation](spec.slope)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.linear(x.flatten(1))))  # (B, features) -> (B, out)


class DarknetShortcut(nn.Module):
    """shortcut_cpu: out = prev; out[:c, ::sample, ::sample] = alpha·out + beta·add[:c, ::stride, ::stride]
    over the overlapping h×w, then the activation."""

    def __init__(self, spec: specs.DarknetShortcut, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.flat = spec.rule == "alexeyab"
        if not self.flat:
            self.stride, self.sample, self.c, self.h, self.w = specs.shortcut_geometry(inputs[1], inputs[0])
        self.alpha, self.beta = spec.alpha, spec.beta
        self.act = ACTIVATIONS[spec.activation](spec.slope)

    def forward(self, prev: Tensor, add: Tensor) -> Tensor:
        if self.flat:  # shortcut_multilayer_cpu: out[i] += add[i] for i below the shorter length
            out, extra = prev.flatten(1), add.flatten(1)
            n = min(out.shape[1], extra.shape[1])
            out = torch.cat([out[:, :n] + extra[:, :n], out[:, n:]], 1)
            return self.act(out.view_as(prev))
        k, n = self.stride, self.sample
        source = add[:, : self.c, ::k, ::k][:, :, : self.h, : self.w]
        out = prev.clone()
        region = out[:, : self.c, ::n, ::n][:, :, : self.h, : self.w]  # a view into `out`
        region.mul_(self.alpha).add_(source, alpha=self.beta)
        return self.act(out)


class Softmax(nn.Module):
    """(B, ...) -> (B, N): the logits, or Darknet's softmax over `groups` consecutive chunks."""

    def __init__(self, spec: specs.Softmax, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.logits, self.groups, self.temperature = spec.logits, spec.groups, spec.temperature

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        if self.logits:
            return x
        chunks = x.view(x.shape[0], self.groups, -1) / self.temperature
        return chunks.softmax(-1).flatten(1)


class Crop(nn.Module):
    """forward_crop_layer: one random window (and mirror) for the whole batch in training, the
    centre in eval; a mirrored crop is taken from the mirrored image, as Darknet indexes it."""

    def __init__(self, spec: specs.Crop, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.height, self.width, self.flip, self.rescale = spec.height, spec.width, spec.flip, spec.rescale

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if self.training:
            dh = int(torch.randint(h - self.height + 1, ()))
            dw = int(torch.randint(w - self.width + 1, ()))
            if self.flip and bool(torch.randint(2, ())):
                x = x.flip(-1)
        else:
            dh, dw = (h - self.height) // 2, (w - self.width) // 2
        x = x[..., dh : dh + self.height, dw : dw + self.width]
        return x * 2 - 1 if self.rescale else x


class Reorg(nn.Module):
    """reorg_cpu(forward=0): output element (k, j, i) of the C×H×W buffer is input element
    (k mod C/s², j·s + (k div C/s²) div s, i·s + (k div C/s²) mod s) of the buffer read as
    (C/s², H·s, W·s); the result is then read as (C·s², H/s, W/s)."""

    def __init__(self, spec: specs.Reorg, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.stride = spec.stride

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        s = self.stride
        y = x.reshape(b, c // (s * s), h, s, w, s).permute(0, 3, 5, 1, 2, 4)  # (B, dy, dx, c2, j, i)
        return y.reshape(b, c * s * s, h // s, w // s)


class _Marker(nn.Identity):
    """Detection and cost sections: the input passes through; the spec keeps the loss's settings."""

    def __init__(self, spec: LayerSpec, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.spec = spec


class Yolo(_Marker):
    """With `decode`, forward_yolo_layer's output: per anchor (x, y, w, h, objectness, classes…),
    the logistic on all but w, h (none with new_coords, whose conv is logistic already); then
    x, y ← x·s − (s − 1)/2. Without it the raw conv output passes through (for a loss)."""

    def __init__(self, spec: specs.Yolo, inputs: Sequence[Shape]) -> None:
        super().__init__(spec, inputs)
        self.decode, self.new_coords, self.scale = spec.decode, spec.new_coords, spec.scale_x_y
        self.attributes = spec.classes + 5

    def forward(self, x: Tensor) -> Tensor:
        if not self.decode:
            return x
        b, c, h, w = x.shape
        y = x.view(b, c // self.attributes, self.attributes, h, w)
        if not self.new_coords:
            y = torch.cat([y[:, :, :2].sigmoid(), y[:, :, 2:4], y[:, :, 4:].sigmoid()], 2)
        s = self.scale
        y = torch.cat([y[:, :, :2] * s - 0.5 * (s - 1), y[:, :, 2:]], 2)
        return y.reshape(b, c, h, w)


class GaussianYolo(Yolo):
    """forward_gaussian_yolo_layer: per anchor (μx, σx, μy, σy, μw, σw, μh, σh, objectness,
    classes…): the logistic on all but μw, μh; μx, μy ← μ·s − (s − 1)/2 (the fork's CPU code
    ignores new_coords here)."""

    def __init__(self, spec: specs.GaussianYolo, inputs: Sequence[Shape]) -> None:
        super().__init__(spec, inputs)
        self.attributes = spec.classes + 9
        keep = torch.zeros(self.attributes, dtype=torch.bool)
        keep[[4, 6]] = True  # μw, μh stay raw
        scaled = torch.zeros(self.attributes, dtype=torch.bool)
        scaled[[0, 2]] = True
        self.keep: Tensor
        self.scaled: Tensor
        self.register_buffer("keep", keep.view(1, 1, -1, 1, 1), persistent=False)
        self.register_buffer("scaled", scaled.view(1, 1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if not self.decode:
            return x
        b, c, h, w = x.shape
        y = x.view(b, c // self.attributes, self.attributes, h, w)
        y = torch.where(self.keep, y, y.sigmoid())
        s = self.scale
        return torch.where(self.scaled, y * s - 0.5 * (s - 1), y).reshape(b, c, h, w)


class Region(_Marker):
    pass


class Detection(_Marker):
    pass


class Cost(_Marker):
    pass
