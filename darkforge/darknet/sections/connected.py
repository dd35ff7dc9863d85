"""[connected] / [conn] (connected_layer.c): a core Linear when linear without batch norm, else
Darknet's Connected (flatten -> linear -> batch norm -> activation)."""

from __future__ import annotations

from typing import Any

from darkforge.darknet import layers as dn
from darkforge.darknet.catalog import DarknetSection, Options
from darkforge.darknet.cfgtext import ACTIVATIONS, Section
from darkforge.darknet.rulekit import Graph, make
from darkforge.darknet.writekit import darknet_activation, fmt
from darkforge.spec.base import LayerSpec
from darkforge.spec.layers import Linear

KEYS = {"output": ("out", "int", 1)}


def read(s: Section, graph: Graph) -> LayerSpec:
    out = s.get("output", "int", 1)
    darknet = s.get("activation", "activation", "logistic")
    if darknet not in ACTIVATIONS or darknet in ("mish", "swish", "relu6"):
        raise s.error(
            f"{darknet!r} in [connected]: not supported (the fork's CPU forward has no case for the newer "
            "activations outside [convolutional])",
            "use [activation] or a 1×1 [convolutional]",
            "activation",
        )
    activation = ACTIVATIONS[darknet]
    bn = s.get("batch_normalize", "flag", False)
    if activation == "linear" and not bn:
        return make(s, Linear, {"out": out}, KEYS)
    fields = {"out": out, "activation": activation, "bn": graph.bn if bn else False}
    return make(s, dn.Connected, fields, KEYS)


def write_linear(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    if not layer.bias:
        raise place.error("has no bias", "Darknet's [connected] always has one")
    return "connected", [("output", fmt(layer.out)), ("activation", "linear")]


def write_connected(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    options = [("batch_normalize", "1")] if layer.batch_norm else []
    options.append(("output", fmt(layer.out)))
    return "connected", [*options, ("activation", darknet_activation(place, layer.activation, layer.slope))]


SECTIONS = [
    DarknetSection(
        "connected",
        read,
        aliases=("conn",),
        types=((dn.Connected, "darkforge.darknet.modules"),),
        writes={"Linear": write_linear, "Connected": write_connected},
    )
]
