"""Layers that join branches of the graph: Shortcut (add, Darknet [shortcut]) and Route (concat)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import Field

from darkforge.spec.base import LayerCost, LayerSpec, Operand, Ref, fmt_shape, require
from darkforge.spec.layers.numerics import Activation


class Shortcut(LayerSpec):
    """Adds feature maps of equal shape. `from: -3` adds layer -3 to the previous layer (Darknet);
    a list names every input explicitly."""

    type: Literal["Shortcut"] = "Shortcut"
    module: ClassVar[str | None] = "darkforge.nn.layers:Shortcut"
    from_: Ref | list[Ref] = Field(
        alias="from",
        description="the layer added to the previous one (Darknet), or a list of every input",
    )
    activation: Activation = Field("linear", description="applied after the add (Darknet: linear)")
    slope: float = Field(0.1, ge=0, lt=1, description="negative slope of `leaky`")
    arity: ClassVar[tuple[int, int | None]] = (2, None)

    def sources(self) -> list[Ref]:
        return list(self.from_) if isinstance(self.from_, list) else [-1, self.from_]

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        first = inputs[0]
        for other in inputs[1:]:
            require(
                other.shape == first.shape,
                f"cannot add {first.name} ({fmt_shape(first.shape)}) and "
                f"{other.name} ({fmt_shape(other.shape)}): shapes differ",
            )
        return LayerCost(first.shape)


class Route(LayerSpec):
    """Concatenates its inputs along channels (Darknet [route] layers=-1,61); one input passes through."""

    type: Literal["Route"] = "Route"
    module: ClassVar[str | None] = "darkforge.nn.layers:Route"
    from_: Ref | list[Ref] = Field(alias="from", description="the layers to concatenate, in order")
    arity: ClassVar[tuple[int, int | None]] = (1, None)

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        first = inputs[0]
        for other in inputs[1:]:
            require(
                len(other.shape) == len(first.shape) and other.shape[1:] == first.shape[1:],
                f"cannot concatenate {first.name} ({fmt_shape(first.shape)}) and "
                f"{other.name} ({fmt_shape(other.shape)}): spatial sizes differ",
            )
        return LayerCost((sum(x.shape[0] for x in inputs), *first.shape[1:]))
