"""[activation] (the fork's activation_layer.c): one of Darknet's activations on its own."""

from __future__ import annotations

from typing import Any

from darkforge.darknet import fork
from darkforge.darknet.catalog import DarknetSection, Options
from darkforge.darknet.cfgtext import Section
from darkforge.darknet.rulekit import Graph, make, plain_activation
from darkforge.spec.base import LayerSpec


def read(s: Section, graph: Graph) -> LayerSpec:
    return make(s, fork.DarknetActivationLayer, {"activation": plain_activation(s)})


def write(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    return "activation", [("activation", layer.activation)]


SECTIONS = [
    DarknetSection(
        "activation",
        read,
        types=((fork.DarknetActivationLayer, "darkforge.darknet.fork_modules"),),
        writes={"DarknetActivationLayer": write},
    )
]
