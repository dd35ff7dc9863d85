"""Convolution layers and the residual blocks built from them (Darknet's [convolutional])."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal, Self

from pydantic import Field

from darkforge.spec.base import LayerCost, LayerSpec, Operand, Scale, Shape, fmt_shape, require
from darkforge.spec.layers.graph import Shortcut
from darkforge.spec.layers.numerics import Activation, BatchNorm, ConvNumerics


def conv_output(n: int, size: int, stride: int, pad: int, dilation: int = 1) -> int:
    return (n + 2 * pad - dilation * (size - 1) - 1) // stride + 1


def live_taps(n: int, size: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Kernel taps along one axis that touch real data at some output position (not only padding)."""
    first, last = live_range(n, size, stride, pad, dilation)
    return max(0, last - first + 1)


def live_range(n: int, size: int, stride: int, pad: int, dilation: int = 1) -> tuple[int, int]:
    """The first and last kernel tap along one axis that ever touches data (a contiguous range:
    tap t sits at offset t·dilation in the window)."""
    last_start = (conv_output(n, size, stride, pad, dilation) - 1) * stride  # the last window's start

    def touches(tap: int) -> bool:
        # some output o has 0 <= o·stride − pad + tap·dilation < n: a multiple of stride in [lo, hi]
        offset = tap * dilation
        lo, hi = max(0, pad - offset), min(last_start, pad - offset + n - 1)
        return lo <= hi and -(-lo // stride) * stride <= hi

    live = [tap for tap in range(size) if touches(tap)]
    return (live[0], live[-1]) if live else (0, -1)


def conv_cost(
    x: Operand,
    filters: int,
    size: int,
    stride: int,
    pad: int,
    groups: int,
    bias: bool,
    bn: bool,
    dilation: int = 1,
) -> LayerCost:
    """A convolution's output, parameters, MACs and dead weights: one function for every layer
    made of convolutions, so a stage of 1,000 blocks costs arithmetic, not objects."""
    c, h, w = _map(x)
    require(
        c % groups == 0 and filters % groups == 0,
        f"groups={groups} must divide the input channels ({c}) and filters ({filters})",
    )
    oh, ow = (conv_output(n, size, stride, pad, dilation) for n in (h, w))
    require(
        oh >= 1 and ow >= 1,
        f"a {size}×{size}/{stride} conv shrinks {x.name}'s {fmt_shape(x.shape)} map below 1×1",
    )
    per_filter = (c // groups) * size * size
    params = filters * per_filter + (filters if bias else 0) + (2 * filters if bn else 0)
    live = live_taps(h, size, stride, pad, dilation) * live_taps(w, size, stride, pad, dilation)
    dead = filters * (c // groups) * (size * size - live)
    return LayerCost((filters, oh, ow), params, filters * per_filter * oh * ow, dead)


class ConvLayer(LayerSpec, ConvNumerics):
    """What ConvBnLeaky and Conv share: a convolution with its numerics. Subclasses set the type
    tag and the defaults of batch norm and activation."""

    filters: int = Field(ge=1, le=65536, description="output channels")
    size: int = Field(3, ge=1, le=31, description="kernel size")
    stride: int = Field(1, ge=1, le=32)
    pad: int | None = Field(
        None, ge=0, le=31 * 32, description="zeros on each side; default dilation × (size // 2) (odd kernels)"
    )
    groups: int = Field(1, ge=1, le=65536)
    dilation: int = Field(1, ge=1, le=32, description="spacing of the kernel taps (atrous conv)")
    fixed_width: bool = Field(
        False, description="keep `filters` when a scale is applied (e.g. a detection head)"
    )

    @property
    def padding(self) -> int:
        return self.dilation * (self.size // 2) if self.pad is None else self.pad

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        require(
            self.pad is not None or self.size % 2 == 1,
            f"an even kernel ({self.size}×{self.size}) needs an explicit `pad`: the default size // 2 = "
            f"{self.size // 2} would add a row and a column (pad: 0 for a patchify stem)",
        )
        bias, bn = self.has_bias, self.batch_norm is not None
        return conv_cost(
            inputs[0],
            self.filters,
            self.size,
            self.stride,
            self.padding,
            self.groups,
            bias,
            bn,
            self.dilation,
        )

    def scaled(self, scale: Scale) -> Self:
        if self.fixed_width:
            return self
        return self.model_copy(update={"filters": scale.channels(self.filters)})


class ConvBnLeaky(ConvLayer):
    """Conv2d -> BatchNorm2d -> LeakyReLU(0.1): Darknet's workhorse."""

    type: Literal["ConvBnLeaky"] = "ConvBnLeaky"
    module: ClassVar[str | None] = "darkforge.nn.layers:ConvBnLeaky"


class Conv(ConvLayer):
    """A plain convolution: no batch norm and a linear activation unless you say otherwise."""

    type: Literal["Conv"] = "Conv"
    module: ClassVar[str | None] = "darkforge.nn.layers:Conv"
    activation: Activation = Field("linear", description="applied after batch norm (if any)")
    bn: bool | BatchNorm = Field(False, description="batch norm: true, false or {momentum, eps}")


class ResidualBlock(LayerSpec, ConvNumerics):
    """x + conv3x3(conv1x1(x)): 1×1 down to `hidden` channels, 3×3 back; no activation after the add."""

    type: Literal["ResidualBlock"] = "ResidualBlock"
    module: ClassVar[str | None] = "darkforge.nn.layers:ResidualBlock"
    hidden: int | None = Field(None, ge=1, le=65536, description="default: half the input channels")

    def convs(self, channels: int) -> tuple[ConvBnLeaky, ConvBnLeaky]:
        hidden = self.hidden if self.hidden is not None else max(1, channels // 2)
        # model_construct: the fields come from this validated layer and from the input's channels,
        # which no field cap may refuse (a Route can concatenate past 65536; the budget decides).
        return (
            ConvBnLeaky.model_construct(filters=hidden, size=1, **self.numerics()),  # type: ignore[arg-type]
            ConvBnLeaky.model_construct(filters=channels, size=3, **self.numerics()),  # type: ignore[arg-type]
        )

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        return block_cost(inputs[0], self.hidden, self.has_bias, self.batch_norm is not None)

    def scaled(self, scale: Scale) -> Self:
        if self.hidden is None:
            return self
        return self.model_copy(update={"hidden": scale.channels(self.hidden)})

    def expand(self, inputs: Sequence[Shape]) -> list[LayerSpec]:
        return [*self.convs(inputs[0][0]), Shortcut(from_="input")]  # adds the block's input

    def composition(self, inputs: Sequence[Shape]) -> tuple[list[LayerSpec], int]:
        return self.expand(inputs), 2

    def flat_size(self) -> int:
        return 3 * self.repeat + self.collect_route()


class ResidualStage(LayerSpec, ConvNumerics):
    """A stride-2 ConvBnLeaky to `filters` channels, then `blocks` residual blocks (Darknet-53)."""

    type: Literal["ResidualStage"] = "ResidualStage"
    module: ClassVar[str | None] = "darkforge.nn.layers:ResidualStage"
    filters: int = Field(ge=1, le=65536, description="output channels")
    blocks: int = Field(ge=0, le=1000, description="residual blocks after the downsample")
    size: int = Field(3, ge=1, le=31, description="kernel of the downsample conv")
    stride: int = Field(2, ge=1, le=32, description="stride of the downsample conv")
    hidden: int | None = Field(None, ge=1, le=65536, description="block width; default filters / 2")

    def parts(self) -> tuple[ConvBnLeaky, ResidualBlock]:
        # model_construct: every field comes from this validated layer (and is cheap: `validate`
        # infers one stage per layer of the file)
        down = ConvBnLeaky.model_construct(
            filters=self.filters,
            size=self.size,
            stride=self.stride,
            **self.numerics(),  # type: ignore[arg-type]
        )
        return down, ResidualBlock.model_construct(hidden=self.hidden, **self.numerics())  # type: ignore[arg-type]

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        require(
            self.size % 2 == 1,
            f"an even kernel ({self.size}×{self.size}) for the downsample has no centred padding",
        )
        bias, bn = self.has_bias, self.batch_norm is not None
        x = inputs[0]
        cost = conv_cost(x, self.filters, self.size, self.stride, self.size // 2, 1, bias, bn)
        if self.blocks == 0:
            return cost
        # Every block maps C×H×W to itself, so one costs what the next does: infer it once
        # (inferring each made `validate` quadratic in layers × blocks).
        one = block_cost(Operand(cost.output, x.name), self.hidden, bias, bn)
        n = self.blocks
        return LayerCost(
            one.output,
            cost.params + n * one.params,
            cost.macs + n * one.macs,
            cost.dead_params + n * one.dead_params,
            cost.produced + n * one.produced,
        )

    def scaled(self, scale: Scale) -> Self:
        update: dict[str, object] = {
            "filters": scale.channels(self.filters),
            "blocks": scale.blocks(self.blocks),
        }
        if self.hidden is not None:
            update["hidden"] = scale.channels(self.hidden)
        return self.model_copy(update=update)

    def composition(self, inputs: Sequence[Shape]) -> tuple[list[LayerSpec], int]:
        down, block = self.parts()
        if not self.blocks:
            return [down], 0
        return [down, block.model_copy(update={"repeat": self.blocks})], 1

    def expand(self, inputs: Sequence[Shape]) -> list[LayerSpec]:
        down, block = self.parts()
        first, second = block.convs(self.filters)
        return [down, *[c for _ in range(self.blocks) for c in (first, second, Shortcut(from_=-3))]]

    def flat_size(self) -> int:
        return (1 + 3 * self.blocks) * self.repeat + self.collect_route()


def block_cost(x: Operand, hidden: int | None, bias: bool, bn: bool) -> LayerCost:
    """x + 3×3(1×1(x)): a 1×1 to `hidden` (default half the channels), a 3×3 back."""
    c = _map(x)[0]
    a = conv_cost(x, hidden if hidden is not None else max(1, c // 2), 1, 1, 0, 1, bias, bn)
    b = a + conv_cost(Operand(a.output, x.name), c, 3, 1, 1, 1, bias, bn)
    return b + LayerCost(b.output)  # the add makes the third map


def _map(x: Operand) -> Shape:
    require(len(x.shape) == 3, f"needs a C×H×W feature map, but {x.name} gives {fmt_shape(x.shape)}")
    return x.shape
