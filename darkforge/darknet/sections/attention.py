"""[scale_channels] (squeeze-excitation: a C×1×1 or, with scale_wh, 1×H×W gate) and [sam]
(elementwise): `from` times the previous layer. The core Mul is written as whichever fits its gate."""

from __future__ import annotations

from typing import Any

from darkforge.darknet import fork
from darkforge.darknet.catalog import DarknetSection, Options
from darkforge.darknet.cfgtext import Section
from darkforge.darknet.rulekit import Graph, earlier, make, plain_activation
from darkforge.darknet.writekit import previous_and_from
from darkforge.spec.base import INPUT, LayerSpec


def read_scale(s: Section, graph: Graph) -> LayerSpec:
    fields = {"from_": earlier(s, graph, "from"), "scale_wh": s.get("scale_wh", "flag", False)}
    return make(s, fork.ScaleChannels, fields | {"activation": plain_activation(s)})


def read_sam(s: Section, graph: Graph) -> LayerSpec:
    return make(s, fork.Sam, {"from_": earlier(s, graph, "from"), "activation": plain_activation(s)})


def write_scale(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    options = [("from", previous_and_from(place, layer, sources)[0])]
    if layer.scale_wh:
        options.append(("scale_wh", "1"))
    return "scale_channels", [*options, ("activation", layer.activation)]


def write_sam(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    options = [("from", previous_and_from(place, layer, sources)[0])]
    return "sam", [*options, ("activation", layer.activation)]


def write_mul(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    """The core Mul: [sam] for a gate of the same shape, [scale_channels] for C×1×1 or 1×H×W."""
    if len(sources) != 2:
        raise place.error(f"multiplies {len(sources)} inputs", "Darknet's [scale_channels] multiplies two")
    x, gate = sources
    if gate == INPUT or place.where[gate] != place.index - 1:
        raise place.error(
            "its gate is not the layer before",
            "Darknet's [scale_channels]/[sam] multiply `from` by the previous layer: put the gate last",
        )
    shape, gate_shape = place.shapes
    source = [("from", place.ref(layer.sources()[0], x))]
    if gate_shape == shape:
        return "sam", [*source, ("activation", "linear")]
    if gate_shape == (shape[0], 1, 1):
        return "scale_channels", [*source, ("activation", "linear")]
    if gate_shape == (1, *shape[1:]):
        return "scale_channels", [*source, ("scale_wh", "1"), ("activation", "linear")]
    raise place.error(
        f"a gate of shape {gate_shape} has no Darknet section", "use C×1×1, 1×H×W or the same shape"
    )


SECTIONS = [
    DarknetSection(
        "scale_channels",
        read_scale,
        types=((fork.ScaleChannels, "darkforge.darknet.fork_modules"),),
        writes={"ScaleChannels": write_scale, "Mul": write_mul},
        wires=("ScaleChannels", "Mul"),
    ),
    DarknetSection(
        "sam",
        read_sam,
        types=((fork.Sam, "darkforge.darknet.fork_modules"),),
        writes={"Sam": write_sam},
        wires=("Sam",),
    ),
]
