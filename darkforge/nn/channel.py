"""Modules of the channel layers (specs in darkforge/spec/layers/channel.py) and adaptive pooling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.ops import stochastic_depth

from darkforge.nn.activations import activation
from darkforge.spec import layers as specs
from darkforge.spec.base import Shape


class Mul(nn.Module):
    def __init__(self, spec: specs.Mul, inputs: Sequence[Shape]) -> None:
        super().__init__()

    def forward(self, x: Tensor, *gates: Tensor) -> Tensor:
        for gate in gates:
            x = x * gate  # (B, C, H, W) * (B, C, 1, 1) or (B, 1, H, W) or (B, C, H, W)
        return x


class Slice(nn.Module):
    def __init__(self, spec: specs.Slice, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.start, self.end = spec.channels(inputs[0][0])

    def forward(self, x: Tensor) -> Tensor:
        return x[:, self.start : self.end]


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm over the channel dimension: maps are moved channels-last and back."""

    def __init__(self, spec: specs.LayerNorm, inputs: Sequence[Shape]) -> None:
        super().__init__(inputs[0][0], eps=spec.eps)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 2:
            return super().forward(x)
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class LayerScale(nn.Module):
    def __init__(self, spec: specs.LayerScale, inputs: Sequence[Shape]) -> None:
        super().__init__()
        shape = inputs[0]
        self.gamma = nn.Parameter(torch.full((shape[0], *([1] * (len(shape) - 1))), spec.init))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class DropPath(nn.Module):
    def __init__(self, spec: specs.DropPath, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.p = spec.p

    def forward(self, x: Tensor) -> Tensor:
        return stochastic_depth(x, self.p, "row", self.training)


class AdaptiveAvgPool(nn.AdaptiveAvgPool2d):
    def __init__(self, spec: specs.AdaptiveAvgPool, inputs: Sequence[Shape]) -> None:
        super().__init__(spec.output_size)


class ChannelShuffle(nn.ChannelShuffle):
    def __init__(self, spec: specs.ChannelShuffle, inputs: Sequence[Shape]) -> None:
        super().__init__(spec.groups)


class BatchNorm(nn.Module):
    """BatchNorm2d (maps) or BatchNorm1d (vectors) as a child `bn`, so its keys read `x.bn.weight`
    like a conv's batch norm."""

    def __init__(self, spec: specs.BatchNormLayer, inputs: Sequence[Shape]) -> None:
        super().__init__()
        cls = nn.BatchNorm2d if len(inputs[0]) == 3 else nn.BatchNorm1d
        self.bn = cls(inputs[0][0], eps=spec.eps, momentum=spec.momentum, affine=spec.affine)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(x)  # type: ignore[no-any-return]


class Activation(nn.Module):
    def __init__(self, spec: specs.ActivationLayer, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.act = activation(spec.activation, spec.slope)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x)  # type: ignore[no-any-return]
