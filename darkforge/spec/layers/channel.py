"""Layers that work across channels: multiply (squeeze-and-excitation gates, Darknet's
[scale_channels] and [sam]), slice (CSP's split, Darknet's [route] groups), channel LayerNorm,
per-channel layer scale, stochastic depth on a residual branch, channel shuffle, and plain batch
norm and activation layers (pre-activation networks: DenseNet's BN-ReLU-Conv)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from darkforge.spec.base import LayerCost, LayerSpec, Operand, Ref, fmt_shape, require
from darkforge.spec.layers.numerics import Activation


class Mul(LayerSpec):
    """Multiplies its first input by the others, element-wise with broadcasting: a gate of C×1×1
    scales each channel (squeeze-and-excitation), 1×H×W each position, C×H×W each element."""

    type: Literal["Mul"] = "Mul"
    module: ClassVar[str | None] = "darkforge.nn.channel:Mul"
    from_: Ref | list[Ref] = Field(alias="from", description="the input, then the gate(s)")
    arity: ClassVar[tuple[int, int | None]] = (2, None)

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = inputs[0]
        for gate in inputs[1:]:
            require(
                len(gate.shape) == len(x.shape)
                and all(g in (1, d) for g, d in zip(gate.shape, x.shape, strict=True)),
                f"cannot scale {x.name} ({fmt_shape(x.shape)}) by {gate.name} ({fmt_shape(gate.shape)}): "
                "each side of the gate must be 1 or equal the input's",
            )
        return LayerCost(x.shape)


class Slice(LayerSpec):
    """Channels `start` to `end` (end excluded) of its input; or, Darknet's spelling, group
    `group` of `groups` equal groups (CSP's split: groups 2, group 1 is the second half)."""

    type: Literal["Slice"] = "Slice"
    module: ClassVar[str | None] = "darkforge.nn.channel:Slice"
    start: int | None = Field(None, ge=0, le=65536, description="first channel")
    end: int | None = Field(None, ge=1, le=65536, description="one past the last channel")
    groups: int | None = Field(None, ge=1, le=65536, description="split the channels in this many groups")
    group: int | None = Field(None, ge=0, le=65535, description="... and keep this one (from 0)")

    @model_validator(mode="after")
    def _one_spelling(self) -> Self:
        by_range = self.start is not None or self.end is not None
        by_group = self.groups is not None or self.group is not None
        if by_range == by_group:
            raise ValueError("give `start` and `end`, or `groups` and `group`")
        if by_range and (self.start is None or self.end is None or self.end <= self.start):
            raise ValueError("give `start` < `end`")
        if by_group and (self.groups is None or self.group is None or self.group >= self.groups):
            raise ValueError("give `groups` and a `group` below it")
        return self

    def channels(self, c: int) -> tuple[int, int]:
        """(start, end) of the slice of a C-channel input."""
        if self.groups is not None and self.group is not None:
            size = c // self.groups
            return self.group * size, (self.group + 1) * size
        assert self.start is not None and self.end is not None  # _one_spelling
        return self.start, self.end

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = inputs[0]
        require(len(x.shape) >= 1, f"needs channels, but {x.name} gives {fmt_shape(x.shape)}")
        c = x.shape[0]
        if self.groups is not None:
            require(c % self.groups == 0, f"groups={self.groups} must divide {x.name}'s {c} channels")
        start, end = self.channels(c)
        require(end <= c, f"channels {start}..{end - 1} do not exist: {x.name} has {c}")
        return LayerCost((end - start, *x.shape[1:]))


class LayerNorm(LayerSpec):
    """Normalizes over the channels at each position (ConvNeXt's LayerNorm2d), or over the
    features of a vector, then scales and shifts per channel."""

    type: Literal["LayerNorm"] = "LayerNorm"
    module: ClassVar[str | None] = "darkforge.nn.channel:LayerNorm"
    eps: float = Field(1e-6, gt=0, lt=1)

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        shape = inputs[0].shape
        return LayerCost(shape, 2 * shape[0])


class LayerScale(LayerSpec):
    """Multiplies each channel by a learned scale (ConvNeXt, CaiT), initially `init`."""

    type: Literal["LayerScale"] = "LayerScale"
    module: ClassVar[str | None] = "darkforge.nn.channel:LayerScale"
    init: float = Field(1e-6, description="initial value of every scale")

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        shape = inputs[0].shape
        return LayerCost(shape, shape[0])


class DropPath(LayerSpec):
    """Stochastic depth: in training, zeroes the whole input of a sample with probability `p` and
    scales the rest by 1/(1-p) (put it on a residual branch, before the Shortcut); identity in eval."""

    type: Literal["DropPath"] = "DropPath"
    module: ClassVar[str | None] = "darkforge.nn.channel:DropPath"
    p: float = Field(0.0, ge=0, lt=1, description="probability of dropping a sample's branch")

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        return LayerCost(inputs[0].shape)


class ChannelShuffle(LayerSpec):
    """Interleaves `groups` groups of channels (ShuffleNet): C = g·n channels read as g×n, written
    as n×g — torch's nn.ChannelShuffle, torchvision's channel_shuffle."""

    type: Literal["ChannelShuffle"] = "ChannelShuffle"
    module: ClassVar[str | None] = "darkforge.nn.channel:ChannelShuffle"
    groups: int = Field(ge=1, le=65536, description="groups of channels to interleave")

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = inputs[0]
        require(len(x.shape) == 3, f"needs a C×H×W map, but {x.name} gives {fmt_shape(x.shape)}")
        require(
            x.shape[0] % self.groups == 0,
            f"groups={self.groups} must divide {x.name}'s {x.shape[0]} channels",
        )
        return LayerCost(x.shape)


# The classes are named ...Layer because `BatchNorm` and `Activation` already name what every conv
# carries (its `bn: {momentum, eps}` and its `activation:`); the YAML types read BatchNorm, Activation.
class BatchNormLayer(LayerSpec):
    """Batch norm on its own, with torch's defaults (momentum 0.1, eps 1e-5): BatchNorm2d on a
    C×H×W map, BatchNorm1d on a vector."""

    type: Literal["BatchNorm"] = "BatchNorm"
    module: ClassVar[str | None] = "darkforge.nn.channel:BatchNorm"
    momentum: float = Field(0.1, gt=0, le=1, description="torch's convention: weight of each new batch")
    eps: float = Field(1e-5, gt=0, lt=1)
    affine: bool = Field(True, description="learned scale and shift per channel")

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        shape = inputs[0].shape
        require(
            len(shape) in (1, 3), f"needs C×H×W or a vector, but {inputs[0].name} gives {fmt_shape(shape)}"
        )
        return LayerCost(shape, 2 * shape[0] if self.affine else 0)


class ActivationLayer(LayerSpec):
    """An activation on its own (any name of the table, docs/layers.md); torch's defaults:
    leaky's slope 0.01."""

    type: Literal["Activation"] = "Activation"
    module: ClassVar[str | None] = "darkforge.nn.channel:Activation"
    activation: Activation = Field(description="the function (see the activation table)")
    slope: float = Field(0.01, ge=0, lt=1, description="negative slope of `leaky` (torch: 0.01)")

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        return LayerCost(inputs[0].shape)
