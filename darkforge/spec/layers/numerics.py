"""The numerics a convolution carries: activation, bias, batch norm."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from darkforge.spec.activations import Activation  # the one table of names (spec/activations.py)
from darkforge.spec.base import Strict


class BatchNorm(Strict):
    momentum: float = Field(
        0.1, gt=0, le=1, description="torch's convention: weight of each new batch (Darknet: 0.01)"
    )
    eps: float = Field(1e-5, gt=0, lt=1)
    formula: Literal["torch", "pjreddie"] = Field(
        "torch",
        description="eval: (x−mean)/sqrt(var+eps) (torch, AlexeyAB Darknet) or /(sqrt(var)+eps) "
        "(pjreddie's original Darknet, eps 1e-6)",
    )


class ConvNumerics(Strict):
    """The numerics a conv layer carries; shared by every layer made of convolutions."""

    activation: Activation = Field("leaky", description="applied after batch norm")
    slope: float = Field(0.1, ge=0, lt=1, description="negative slope of `leaky` (Darknet: 0.1)")
    bias: bool | None = Field(
        None, description="conv bias; default: on without batch norm, off with it (Darknet's rule)"
    )
    bn: bool | BatchNorm = Field(True, description="batch norm: true, false or {momentum, eps}")

    @property
    def batch_norm(self) -> BatchNorm | None:
        if self.bn is False:
            return None
        return BatchNorm() if self.bn is True else self.bn

    @property
    def has_bias(self) -> bool:
        return self.bias if self.bias is not None else self.batch_norm is None

    def numerics(self) -> dict[str, object]:
        """The numeric fields as keyword arguments, to hand down to the convs inside a block."""
        return {name: getattr(self, name) for name in ConvNumerics.model_fields}
