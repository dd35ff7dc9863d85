"""Layers that resample feature maps: pooling and upsampling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from darkforge.spec.base import LayerCost, LayerSpec, Operand, fmt_shape, require


def _pooled(layer: str, x: Operand, size: int, stride: int, total_pad: int) -> LayerCost:
    require(len(x.shape) == 3, f"{layer} needs a C×H×W map, but {x.name} gives {fmt_shape(x.shape)}")
    c, h, w = x.shape
    oh, ow = ((n + total_pad - size) // stride + 1 for n in (h, w))
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
        return self

    @property
    def sides(self) -> tuple[int, int]:
        """(before, after) on each axis."""
        return (self.pad, self.pad) if isinstance(self.pad, int) else self.pad

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        return _pooled("max pool", inputs[0], self.size, self.stride or self.size, sum(self.sides))


class AvgPool(LayerSpec):
    """Average pooling over `size`×`size` windows, `pad` zeros on each side."""

    type: Literal["AvgPool"] = "AvgPool"
    module: ClassVar[str | None] = "darkforge.nn.layers:AvgPool"
    size: int = Field(2, ge=1, le=64)
    stride: int | None = Field(None, ge=1, le=64, description="default: size")
    pad: int = Field(0, ge=0, le=32, description="zeros on each side")

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        return _pooled("avg pool", inputs[0], self.size, self.stride or self.size, 2 * self.pad)


class GlobalAvgPool(LayerSpec):
    """Averages each channel over the whole map: C×H×W -> C×1×1 (Darknet [avgpool])."""

    type: Literal["GlobalAvgPool"] = "GlobalAvgPool"
    module: ClassVar[str | None] = "darkforge.nn.layers:GlobalAvgPool"

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = inputs[0]
        require(len(x.shape) == 3, f"needs a C×H×W map, but {x.name} gives {fmt_shape(x.shape)}")
        return LayerCost((x.shape[0], 1, 1))


class Upsample(LayerSpec):
    """Nearest-neighbour upsampling by an integer factor (Darknet [upsample] stride=2)."""

    type: Literal["Upsample"] = "Upsample"
    module: ClassVar[str | None] = "darkforge.nn.layers:Upsample"
    stride: int = Field(2, ge=1, le=64, description="scale factor")

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
