"""Classifier-head layers: Linear (Darknet [connected]), Dropout, Flatten."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field

from darkforge.spec.base import LayerCost, LayerSpec, Operand, prod, require
from darkforge.spec.layers.numerics import Activation


class Linear(LayerSpec):
    """Fully connected; flattens its input first. With no `out` its width is the network's
    `classes`, so another dataset or `build(..., classes=N)` resizes the head."""

    type: Literal["Linear"] = "Linear"
    module: ClassVar[str | None] = "darkforge.nn.layers:Linear"
    out: Annotated[int, Field(ge=1, le=1_000_000)] | Literal["classes"] | None = Field(
        None, description="output features; default (or `classes`): the network's classes"
    )
    bias: bool = True
    activation: Activation = Field("linear", description="applied after the product")
    slope: float = Field(0.1, ge=0, lt=1, description="negative slope of `leaky`")

    def with_classes(self, classes: int | None) -> Self:
        if isinstance(self.out, int) or classes is None:
            return self
        return self.model_copy(update={"out": classes})

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        require(
            isinstance(self.out, int),
            "has no width: give it `out`, or give the network `classes`",
        )
        assert isinstance(self.out, int)
        features = prod(inputs[0].shape)
        params = features * self.out + (self.out if self.bias else 0)
        return LayerCost((self.out,), params, features * self.out)


class Dropout(LayerSpec):
    type: Literal["Dropout"] = "Dropout"
    module: ClassVar[str | None] = "darkforge.nn.layers:Dropout"
    p: float = Field(0.5, ge=0, lt=1, description="probability of zeroing an element in training")

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        return LayerCost(inputs[0].shape)


class Flatten(LayerSpec):
    """C×H×W -> (C·H·W,)."""

    type: Literal["Flatten"] = "Flatten"
    module: ClassVar[str | None] = "darkforge.nn.layers:Flatten"

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        return LayerCost((prod(inputs[0].shape),))
