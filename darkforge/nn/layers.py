"""nn.Modules for the built-in layer types. Every one has the same constructor: (spec, inputs),
where `inputs` are the static input shapes the builder inferred, and a forward over its inputs.

Class names equal the YAML `type` tags, so one grep finds the YAML, the spec and the module; the
registry resolves them by name.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from darkforge.nn.activations import ACTIVATIONS
from darkforge.nn.norm import batch_norm
from darkforge.spec import layers as specs
from darkforge.spec.base import Operand, Shape


class ConvLayer(nn.Module):
    """conv -> bn -> act; module names `conv`, `bn`, `act` are the checkpoint keys."""

    def __init__(self, spec: specs.ConvLayer, inputs: Sequence[Shape]) -> None:
        super().__init__()
        channels = inputs[0][0]
        norm = spec.batch_norm
        self.conv = nn.Conv2d(
            channels,
            spec.filters,
            spec.size,
            spec.stride,
            spec.padding,
            dilation=spec.dilation,
            groups=spec.groups,
            bias=spec.has_bias,
        )
        self.bn = batch_norm(norm, spec.filters) if norm else nn.Identity()
        self.act = ACTIVATIONS[spec.activation](spec.slope)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class ConvBnLeaky(ConvLayer):
    pass


class Conv(ConvLayer):
    pass


class ResidualBlock(nn.Module):
    def __init__(self, spec: specs.ResidualBlock, inputs: Sequence[Shape]) -> None:
        super().__init__()
        first, second = spec.convs(inputs[0][0])
        hidden = first.infer([Operand(inputs[0], "")]).output
        self.conv1 = ConvBnLeaky(first, inputs)  # (B, C, H, W) -> (B, C/2, H, W), 1×1
        self.conv2 = ConvBnLeaky(second, [hidden])  # -> (B, C, H, W), 3×3

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.conv1(x))  # Darknet [shortcut] activation=linear


class ResidualStage(nn.Module):
    def __init__(self, spec: specs.ResidualStage, inputs: Sequence[Shape]) -> None:
        super().__init__()
        down, block = spec.parts()
        self.down = ConvBnLeaky(down, inputs)
        shape = down.infer([Operand(inputs[0], "")]).output
        self.blocks = nn.Sequential(*(ResidualBlock(block, [shape]) for _ in range(spec.blocks)))

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.down(x))


class Shortcut(nn.Module):
    def __init__(self, spec: specs.Shortcut, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.act = ACTIVATIONS[spec.activation](spec.slope)

    def forward(self, *xs: Tensor) -> Tensor:
        total = xs[0] + xs[1]
        for x in xs[2:]:
            total = total + x
        return self.act(total)


class Route(nn.Module):
    def __init__(self, spec: specs.Route, inputs: Sequence[Shape]) -> None:
        super().__init__()

    def forward(self, *xs: Tensor) -> Tensor:
        return xs[0] if len(xs) == 1 else torch.cat(xs, dim=1)


class Upsample(nn.Module):
    def __init__(self, spec: specs.Upsample, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.stride, self.mode = spec.stride, spec.mode
        self.align_corners = spec.align_corners if spec.mode == "bilinear" else None

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=self.stride, mode=self.mode, align_corners=self.align_corners)


class MaxPool(nn.Module):
    """Pads `pad` per side (or [before, after]) with -inf (never picked by max), then pools; with
    ceil_mode torch pads (its rule for the last window counts the left padding only)."""

    def __init__(self, spec: specs.MaxPool, inputs: Sequence[Shape]) -> None:
        super().__init__()
        before, after = spec.sides
        stride = spec.stride or spec.size
        if spec.ceil_mode:  # the spec allows it with an even pad only
            self.pad: tuple[int, ...] = (0,) * 4
            self.pool = nn.MaxPool2d(spec.size, stride, before, ceil_mode=True)
        else:
            self.pad = (before, after) * 2  # (left, right, top, bottom)
            self.pool = nn.MaxPool2d(spec.size, stride)

    def forward(self, x: Tensor) -> Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad, value=float("-inf"))
        return self.pool(x)


class AvgPool(nn.AvgPool2d):
    def __init__(self, spec: specs.AvgPool, inputs: Sequence[Shape]) -> None:
        super().__init__(
            spec.size, spec.stride or spec.size, spec.pad, spec.ceil_mode, spec.count_include_pad
        )


class GlobalAvgPool(nn.AdaptiveAvgPool2d):
    def __init__(self, spec: specs.GlobalAvgPool, inputs: Sequence[Shape]) -> None:
        super().__init__(1)


class Linear(nn.Linear):
    """Flattens (B, ...) to (B, features) first — never `squeeze`, which breaks a batch of one."""

    def __init__(self, spec: specs.Linear, inputs: Sequence[Shape]) -> None:
        assert isinstance(spec.out, int)  # the shape rule already refused an unresolved width
        features = 1
        for d in inputs[0]:
            features *= d
        super().__init__(features, spec.out, bias=spec.bias)
        # The activation is held outside the child modules (it has no state): the Linear stays a
        # leaf module with or without one, as torchinfo counts the multiply-adds of leaves only
        # (MobileNetV3's hardswish classifier), and its keys stay `fc.weight`, `fc.bias`.
        self._act: tuple[nn.Module, ...] = (
            () if spec.activation == "linear" else (ACTIVATIONS[spec.activation](spec.slope),)
        )

    def forward(self, x: Tensor) -> Tensor:
        y = super().forward(x.flatten(1))
        return self._act[0](y) if self._act else y


class Dropout(nn.Dropout):
    def __init__(self, spec: specs.Dropout, inputs: Sequence[Shape]) -> None:
        super().__init__(spec.p)


class Flatten(nn.Flatten):
    def __init__(self, spec: specs.Flatten, inputs: Sequence[Shape]) -> None:
        super().__init__(1)
