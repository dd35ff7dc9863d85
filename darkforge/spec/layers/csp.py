"""The CSP family of YOLOv5/v8/11 as built-in layer types: Bottleneck, C3, C2, C2f, C3k2, SPP,
SPPF (and ZeroPad, which YOLOv3-tiny needs; C2PSA, built on `Attention`, is in attention.py).
Every convolution inside is conv -> batch norm -> activation with no bias (`yolo_conv`), batch
norm and activation as the layer says (defaults: Ultralytics' eps 0.001, momentum 0.03, SiLU).
The modules (darkforge/nn/csp.py) name their parts as Ultralytics' state_dicts do (`cv1`, `cv2`,
`m.0.cv1`…), so weights load by name.

The channel arithmetic follows the published architectures (YOLOv5/v8 docs, YOLO11 paper):
`hidden = int(filters · expansion)`; C2f and C3k2 concatenate the halves of cv1 and every block's
output, C3 the block chain and a bypass, C2 one half through the blocks and the other straight.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Self

from pydantic import Field

from darkforge.spec.base import LayerCost, LayerSpec, Operand, Scale, Strict, fmt_shape, require
from darkforge.spec.layers.conv import conv_cost
from darkforge.spec.layers.numerics import Activation, BatchNorm

YOLO_BN = BatchNorm(momentum=0.03, eps=0.001)  # Ultralytics' batch norm (torch's momentum convention)


class YoloNumerics(Strict):
    """What the convolutions of a YOLO block carry."""

    activation: Activation = Field("silu", description="after every conv's batch norm")
    bn: BatchNorm = Field(YOLO_BN, description="batch norm of every conv: {momentum, eps}")


def yolo_conv(x: Operand, filters: int, size: int = 1, stride: int = 1, groups: int = 1) -> LayerCost:
    """One conv -> bn -> act, bias-free, centred padding."""
    return conv_cost(x, filters, size, stride, size // 2, groups, False, True)


def chain(x: Operand, *convs: tuple[int, int, int]) -> LayerCost:
    """Stride-1 convs (filters, size, groups) in series; `maps`: their outputs."""
    cost = LayerCost(x.shape, maps=0)
    for filters, size, groups in convs:
        cost = cost + yolo_conv(Operand(cost.output, x.name), filters, size, 1, groups)
    return cost


def with_channels(x: Operand, channels: int) -> Operand:
    return Operand((channels, *x.shape[1:]), x.name)


def map_of(x: Operand) -> Operand:
    require(len(x.shape) == 3, f"needs a C×H×W feature map, but {x.name} gives {fmt_shape(x.shape)}")
    return x


class YoloBlock(LayerSpec, YoloNumerics):
    """What the CSP blocks share: output channels and the blocks' count (depth scales it)."""

    filters: int = Field(ge=1, le=65536, description="output channels")
    blocks: int = Field(1, ge=0, le=1000, description="inner blocks (Ultralytics' n)")
    shortcut: bool = Field(True, description="residual add inside each inner Bottleneck")
    groups: int = Field(1, ge=1, le=65536, description="groups of the inner blocks' second conv")
    expansion: float = Field(0.5, gt=0, le=4, description="hidden channels = int(filters · expansion)")

    @property
    def hidden(self) -> int:
        return max(1, int(self.filters * self.expansion))

    def scaled(self, scale: Scale) -> Self:
        return self.model_copy(
            update={"filters": scale.channels(self.filters), "blocks": scale.blocks(self.blocks)}
        )


def bottleneck_cost(
    x: Operand, filters: int, shortcut: bool, groups: int, sizes: tuple[int, int], expansion: float
) -> LayerCost:
    # `shortcut` changes no cost: the add happens only where the channels match (Ultralytics' rule)
    hidden = max(1, int(filters * expansion))
    return chain(x, (hidden, sizes[0], 1), (filters, sizes[1], groups))


class YoloBottleneck(LayerSpec, YoloNumerics):
    """x + cv2(cv1(x)): k×k to `filters · expansion`, k×k back; the add only when `shortcut` and
    the input has `filters` channels."""

    type: Literal["YoloBottleneck"] = "YoloBottleneck"
    filters: int = Field(ge=1, le=65536, description="output channels")
    shortcut: bool = True
    groups: int = Field(1, ge=1, le=65536, description="groups of the second conv")
    sizes: tuple[int, int] = Field((3, 3), description="kernels of the two convs")
    expansion: float = Field(0.5, gt=0, le=4)

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = map_of(inputs[0])
        cost = bottleneck_cost(x, self.filters, self.shortcut, self.groups, self.sizes, self.expansion)
        if self.shortcut and x.shape[0] == self.filters:  # the add makes a map of its own
            cost = cost + LayerCost(cost.output)
        return cost

    def scaled(self, scale: Scale) -> Self:
        return self.model_copy(update={"filters": scale.channels(self.filters)})


class C2f(YoloBlock):
    """cv1 (1×1 to 2·hidden) split in halves; `blocks` Bottlenecks (3×3, 3×3) on the last half in
    series; cv2 (1×1) over the concatenation of both halves and every block's output (YOLOv8)."""

    type: Literal["C2f"] = "C2f"
    shortcut: bool = Field(False, description="residual add inside each Bottleneck")

    def inner(self, x: Operand) -> LayerCost:
        c = self.hidden
        one = bottleneck_cost(with_channels(x, c), c, self.shortcut, self.groups, (3, 3), 1.0)
        return _times(one, self.blocks)

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = map_of(inputs[0])
        c = self.hidden
        cv1 = yolo_conv(x, 2 * c)
        cv2 = yolo_conv(with_channels(x, (2 + self.blocks) * c), self.filters)
        inner = self.inner(x)
        params, macs = cv1.params + inner.params + cv2.params, cv1.macs + inner.macs + cv2.macs
        # maps: every conv-bn-act's output (the chunks are views; the concatenation is no module's)
        return LayerCost(cv2.output, params, macs, maps=cv1.produced + inner.produced + cv2.produced)


class C3k2(C2f):
    """C2f whose blocks are Bottlenecks (3×3, 3×3, expansion 0.5), or with `c3k` C3k blocks (a C3
    of two 3×3 Bottlenecks) — YOLO11."""

    type: Literal["C3k2"] = "C3k2"  # type: ignore[assignment]
    shortcut: bool = Field(True, description="residual add inside each Bottleneck")
    c3k: bool = Field(False, description="C3k blocks instead of Bottlenecks")

    def inner(self, x: Operand) -> LayerCost:
        c = self.hidden
        y = with_channels(x, c)
        if self.c3k:
            one = c3_cost(y, c, 2, self.shortcut, self.groups, 0.5, (3, 3))
        else:
            one = bottleneck_cost(y, c, self.shortcut, self.groups, (3, 3), 0.5)
        return _times(one, self.blocks)


def c3_cost(
    x: Operand,
    filters: int,
    blocks: int,
    shortcut: bool,
    groups: int,
    expansion: float,
    sizes: tuple[int, int],
) -> LayerCost:
    """cv1, cv2: 1×1 to hidden; blocks on cv1's; cv3: 1×1 over both."""
    c = max(1, int(filters * expansion))
    cv12 = yolo_conv(x, c)
    one = bottleneck_cost(with_channels(x, c), c, shortcut, groups, sizes, 1.0)
    cv3 = yolo_conv(with_channels(x, 2 * c), filters)
    params = 2 * cv12.params + blocks * one.params + cv3.params
    maps = 2 * cv12.produced + blocks * one.produced + cv3.produced
    return LayerCost(cv3.output, params, 2 * cv12.macs + blocks * one.macs + cv3.macs, maps=maps)


def _times(one: LayerCost, count: int) -> LayerCost:
    """`count` copies of `one` in series (same shapes): costs and maps multiplied."""
    return LayerCost(one.output, one.params * count, one.macs * count, maps=one.produced * count)


class C3(YoloBlock):
    """cv3(cat(blocks(cv1(x)), cv2(x))): CSP with 3 convs; Bottlenecks of (1×1, 3×3) (YOLOv5)."""

    type: Literal["C3"] = "C3"

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = map_of(inputs[0])
        return c3_cost(x, self.filters, self.blocks, self.shortcut, self.groups, self.expansion, (1, 3))


class C2(YoloBlock):
    """cv2(cat(blocks(a), b)) where a, b are the halves of cv1(x); Bottlenecks of (3×3, 3×3)."""

    type: Literal["C2"] = "C2"

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = map_of(inputs[0])
        c = self.hidden
        cv1 = yolo_conv(x, 2 * c)
        one = bottleneck_cost(with_channels(x, c), c, self.shortcut, self.groups, (3, 3), 1.0)
        cv2 = yolo_conv(with_channels(x, 2 * c), self.filters)
        params = cv1.params + self.blocks * one.params + cv2.params
        maps = cv1.produced + self.blocks * one.produced + cv2.produced
        return LayerCost(cv2.output, params, cv1.macs + self.blocks * one.macs + cv2.macs, maps=maps)


class SPP(LayerSpec, YoloNumerics):
    """Spatial pyramid pooling: cv1 (1×1 to half), max pools of each size in parallel (stride 1),
    cv2 (1×1) over the concatenation."""

    type: Literal["SPP"] = "SPP"
    filters: int = Field(ge=1, le=65536, description="output channels")
    sizes: list[int] = Field([5, 9, 13], min_length=1, max_length=8, description="odd pool kernels")

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = map_of(inputs[0])
        require(all(k % 2 == 1 for k in self.sizes), f"pool sizes must be odd, got {self.sizes}")
        c = max(1, x.shape[0] // 2)
        cv1 = yolo_conv(x, c)
        cv2 = yolo_conv(with_channels(x, c * (len(self.sizes) + 1)), self.filters)
        maps = cv1.produced + cv2.produced  # the pools are no layer modules of their own
        return LayerCost(cv2.output, cv1.params + cv2.params, cv1.macs + cv2.macs, maps=maps)

    def scaled(self, scale: Scale) -> Self:
        return self.model_copy(update={"filters": scale.channels(self.filters)})


class SPPF(LayerSpec, YoloNumerics):
    """SPP, fast: one `size` max pool applied three times in series, all four maps concatenated."""

    type: Literal["SPPF"] = "SPPF"
    filters: int = Field(ge=1, le=65536, description="output channels")
    size: int = Field(5, ge=1, le=31, description="odd pool kernel")

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = map_of(inputs[0])
        require(self.size % 2 == 1, f"the pool size must be odd, got {self.size}")
        c = max(1, x.shape[0] // 2)
        cv1 = yolo_conv(x, c)
        cv2 = yolo_conv(with_channels(x, 4 * c), self.filters)
        maps = cv1.produced + cv2.produced  # the pools are no layer modules of their own
        return LayerCost(cv2.output, cv1.params + cv2.params, cv1.macs + cv2.macs, maps=maps)

    def scaled(self, scale: Scale) -> Self:
        return self.model_copy(update={"filters": scale.channels(self.filters)})


class ZeroPad(LayerSpec):
    """Zeros around a map (torch's ZeroPad2d): [left, right, top, bottom]."""

    type: Literal["ZeroPad"] = "ZeroPad"
    pad: tuple[int, int, int, int] = Field(description="[left, right, top, bottom]")

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = map_of(inputs[0])
        require(min(self.pad) >= 0 and max(self.pad) <= 64, "pad must lie in 0..64")
        left, right, top, bottom = self.pad
        c, h, w = x.shape
        return LayerCost((c, h + top + bottom, w + left + right))


CSP = (YoloBottleneck, C2f, C3k2, C3, C2, SPP, SPPF, ZeroPad)
