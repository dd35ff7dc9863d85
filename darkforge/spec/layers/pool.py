"""Layers that resample feature maps: pooling and upsampling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from darkforge.spec.base import LayerCost, LayerSpec, Operand, fmt_shape, require


def pooled_size(n: int, size: int, stride: int, before: int, after: int, ceil: bool = False) -> int:
    """torch's pooling output: floor (or ceil) of (n + pads − size) / stride, plus one; with
    `ceil`, a last window that would start in the right padding is dropped (as torch does)."""
    span = n + before + after - size
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= n + before:
        out -= 1
    return out


def _pooled(
    layer: str, x: Operand, size: int, stride: int, sides: tuple[int, int], ceil: bool = False
) -> LayerCost:
    require(len(x.shape) == 3, f"{layer} needs a C×H×W map, but {x.name} gives {fmt_shape(x.shape)}")
    c, h, w = x.shape
    oh, ow = (pooled_size(n, size, stride, *sides, ceil) for n in (h, w))
    require(
        oh >= 1 and ow >= 1,
        f"a {size}×{size}/{stride} {layer} shrinks {x.name}'s {fmt_shape(x.shape)} map below 1×1",
    )
    return LayerCost((c, oh, ow))


class MaxPool(LayerSpec):
    """Max pooling. `pad` is per side, as for convs and torch (torch's padding=1 is pad: 1);
    `[before, after]` pads unevenly, as Darknet does when its total padding is odd (yolov3-tiny's
    size 2 / stride 1 keeps 13×13 with pad: [0, 1]). Padding is -inf: never picked by max."""

    type: Literal["MaxPool"] = "MaxPool"
    module: ClassVar[str | None] = "darkforge.nn.layers:MaxPool"
    size: int = Field(2, ge=1, le=64)
    stride: int | None = Field(None, ge=1, le=64, description="default: size")
    pad: int | tuple[int, int] = Field(
        0, description="per side, or [before, after] on each axis (Darknet's odd total padding)"
    )
    ceil_mode: bool = Field(False, description="round the output size up (torch's ceil_mode)")

    @model_validator(mode="before")
    @classmethod
    def _old_padding(cls, data: Any) -> Any:
        if isinstance(data, dict) and "padding" in data:
            total = data["padding"]
            how = (
                f"padding: {total} is pad: {total // 2}"
                if isinstance(total, int) and total % 2 == 0
                else f"padding: {total} is pad: [{total // 2}, {total - total // 2}]"
                if isinstance(total, int)
                else "pad: N pads N on each side"
            )
            raise ValueError(f"`padding` (the total per axis) is now `pad`, per side like convs: {how}")
        return data

    @model_validator(mode="after")
    def _pads(self) -> Self:
        if min(self.sides) < 0 or max(self.sides) > 64:
            raise ValueError("pad must lie in 0..64")
        if self.ceil_mode and (self.sides[0] != self.sides[1] or 2 * self.sides[0] > self.size):
            raise ValueError("ceil_mode needs an even pad of at most half the size (torch's rule)")
        return self

    @property
    def sides(self) -> tuple[int, int]:
        """(before, after) on each axis."""
        return (self.pad, self.pad) if isinstance(self.pad, int) else self.pad

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        stride = self.stride or self.size
        return _pooled("max pool", inputs[0], self.size, stride, self.sides, self.ceil_mode)


class AvgPool(LayerSpec):
    """Average pooling over `size`×`size` windows, `pad` zeros on each side."""

    type: Literal["AvgPool"] = "AvgPool"
    module: ClassVar[str | None] = "darkforge.nn.layers:AvgPool"
    size: int = Field(2, ge=1, le=64)
    stride: int | None = Field(None, ge=1, le=64, description="default: size")
    pad: int = Field(0, ge=0, le=32, description="zeros on each side")
    ceil_mode: bool = Field(False, description="round the output size up (torch's ceil_mode)")
    count_include_pad: bool = Field(True, description="padding zeros count in the mean (torch's default)")

    @model_validator(mode="after")
    def _half(self) -> Self:
        if 2 * self.pad > self.size:
            raise ValueError("pad must be at most half the size (torch's rule)")
        return self

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        stride = self.stride or self.size
        return _pooled("avg pool", inputs[0], self.size, stride, (self.pad, self.pad), self.ceil_mode)


class GlobalAvgPool(LayerSpec):
    """Averages each channel over the whole map: C×H×W -> C×1×1 (Darknet [avgpool])."""

    type: Literal["GlobalAvgPool"] = "GlobalAvgPool"
    module: ClassVar[str | None] = "darkforge.nn.layers:GlobalAvgPool"

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = inputs[0]
        require(len(x.shape) == 3, f"needs a C×H×W map, but {x.name} gives {fmt_shape(x.shape)}")
        return LayerCost((x.shape[0], 1, 1))


class Upsample(LayerSpec):
    """Upsampling by an integer factor: nearest neighbour (Darknet [upsample] stride=2) or
    bilinear, with or without align_corners (torch's F.interpolate)."""

    type: Literal["Upsample"] = "Upsample"
    module: ClassVar[str | None] = "darkforge.nn.layers:Upsample"
    stride: int = Field(2, ge=1, le=64, description="scale factor")
    mode: Literal["nearest", "bilinear"] = Field("nearest", description="how new pixels are made")
    align_corners: bool | None = Field(
        None, description="bilinear only: corner pixels aligned (torch's align_corners); default false"
    )

    @model_validator(mode="after")
    def _corners(self) -> Self:
        if self.align_corners is not None and self.mode != "bilinear":
            raise ValueError("align_corners is for mode: bilinear (nearest has no corners to align)")
        return self

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = inputs[0]
        require(len(x.shape) == 3, f"needs a C×H×W map, but {x.name} gives {fmt_shape(x.shape)}")
        c, h, w = x.shape
        return LayerCost((c, h * self.stride, w * self.stride))


class AdaptiveAvgPool(LayerSpec):
    """Averages over the windows that divide the map into `size` (torch's AdaptiveAvgPool2d):
    any input size in, C×size×size (or C×height×width) out."""

    type: Literal["AdaptiveAvgPool"] = "AdaptiveAvgPool"
    module: ClassVar[str | None] = "darkforge.nn.channel:AdaptiveAvgPool"
    size: int | tuple[int, int] = Field(description="output side, or [height, width]")

    @property
    def output_size(self) -> tuple[int, int]:
        return (self.size, self.size) if isinstance(self.size, int) else self.size

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = inputs[0]
        require(len(x.shape) == 3, f"needs a C×H×W map, but {x.name} gives {fmt_shape(x.shape)}")
        require(min(self.output_size) >= 1, "sizes must be at least 1")
        return LayerCost((x.shape[0], *self.output_size))
