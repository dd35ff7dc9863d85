"""[local] (local_layer.c, both Darknets; yolov1's yolo.cfg): a locally connected layer, a conv
whose weights are not shared: every output position j has its own filters×(C·size²) matrix, and
every output element its own bias.

Darknet sizes the output (h − 1)/stride + 1 with `pad`, else (h − size)/stride + 1, and im2cols with
`pad` zeros on each side; the two agree only for pad = 0 or pad = (size − 1)/2, so other pads are
refused (Darknet's product would read the wrong columns there). Its .weights hold the biases
(filters × out_h × out_w), then the weights, location by location, each filters × (C, ky, kx) —
the order of `weight` (locations, filters, C·size²) and `bias` (filters, out_h, out_w) here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import Any, Literal

from pydantic import Field, model_validator

from darkforge.darknet.catalog import DarknetSection, Options
from darkforge.darknet.cfgtext import Section
from darkforge.darknet.fork import DarknetActivation
from darkforge.darknet.rulekit import Graph, make, plain_activation
from darkforge.darknet.writekit import fmt
from darkforge.spec.base import LayerCost, LayerSpec, Operand, Shape, fmt_shape, require

MODULE = "darkforge.darknet.sections.local"


class LocalSpec(LayerSpec):
    """Darknet [local]: a convolution with separate weights at each output position."""

    type: Literal["DarknetLocal"] = "DarknetLocal"
    filters: int = Field(1, ge=1, le=65536)
    size: int = Field(1, ge=1, le=31)
    stride: int = Field(1, ge=1, le=64)
    pad: int = Field(0, ge=0, le=15, description="zeros on each side (Darknet `pad`)")
    activation: DarknetActivation = "logistic"

    @model_validator(mode="after")
    def _consistent(self) -> LocalSpec:
        if self.pad and 2 * self.pad != self.size - 1:
            raise ValueError(
                f"pad={self.pad} with size={self.size}: Darknet sizes the output for pad (size − 1)/2 "
                "but pads by `pad`, so its locally connected product is misaligned"
            )
        return self

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        span = 1 if self.pad else self.size  # local_out_height
        return (h - span) // self.stride + 1, (w - span) // self.stride + 1

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = inputs[0]
        require(len(x.shape) == 3, f"needs a C×H×W feature map, but {x.name} gives {fmt_shape(x.shape)}")
        c, h, w = x.shape
        oh, ow = self.output_size(h, w)
        require(oh >= 1 and ow >= 1, f"the [local] layer shrinks {x.name}'s {h}×{w} map below 1×1")
        macs = oh * ow * self.filters * c * self.size**2
        return LayerCost((self.filters, oh, ow), macs + self.filters * oh * ow, macs)


def read(s: Section, graph: Graph) -> LayerSpec:
    fields = {key: s.get(key, "int", default) for key, default in (("filters", 1), ("size", 1))}
    fields |= {"stride": s.get("stride", "int", 1), "pad": s.get("pad", "int", 0)}
    return make(s, LocalSpec, fields | {"activation": plain_activation(s)})


def write(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    options = [(key, fmt(getattr(layer, key))) for key in ("filters", "size", "stride", "pad")]
    return "local", [*options, ("activation", layer.activation)]


@cache
def _module() -> type:
    """The nn.Module, made on first use: importing the reader must not import torch."""
    import torch  # heavy: only when a network is built
    import torch.nn.functional as F
    from torch import nn

    from darkforge.darknet.activations import activation  # imports torch

    class DarknetLocal(nn.Module):
        """x (B, C, H, W) -> unfold (B, C·size², L) -> per location j: weight[j] (filters, C·size²)
        times column j, plus bias -> (B, filters, out_h, out_w) -> activation (forward_local_layer)."""

        def __init__(self, spec: Any, inputs: Sequence[Shape]) -> None:
            super().__init__()
            c, h, w = inputs[0]
            self.out = spec.output_size(h, w)
            self.size, self.stride, self.pad = spec.size, spec.stride, spec.pad
            k = c * spec.size**2
            scale = math.sqrt(2.0 / k)  # make_local_layer's scale, uniform in (−scale, scale)
            weight = torch.empty(self.out[0] * self.out[1], spec.filters, k).uniform_(-scale, scale)
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(torch.zeros(spec.filters, *self.out))
            self.act = activation(spec.activation)

        def darknet_tensors(self) -> list[torch.Tensor]:
            return [self.bias, self.weight]  # the .weights order: biases, then weights

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            columns = F.unfold(x, self.size, padding=self.pad, stride=self.stride)  # (B, C·size², L)
            y = torch.einsum("jfk,bkj->bfj", self.weight, columns)
            return self.act(y.view(x.shape[0], -1, *self.out) + self.bias)

    return DarknetLocal


def __getattr__(name: str) -> Any:
    """The module class, by its type's name, as darkforge.spec.registry looks it up (PEP 562: asked
    only when building, so torch loads then)."""
    if name == "DarknetLocal":
        return _module()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


SECTIONS = [
    DarknetSection("local", read, types=((LocalSpec, MODULE),), writes={"DarknetLocal": write}),
]
