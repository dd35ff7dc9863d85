"""[empty] / [silence] (the fork's empty_layer.c): the input passes through; the layer number stays."""

from __future__ import annotations

from typing import Any

from darkforge.darknet import fork
from darkforge.darknet.catalog import DarknetSection, Options
from darkforge.darknet.cfgtext import Section
from darkforge.darknet.rulekit import Graph, make
from darkforge.spec.base import LayerSpec


def read(s: Section, graph: Graph) -> LayerSpec:
    return make(s, fork.Empty, {"silence": s.header == "silence"})


def write(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    return ("silence" if layer.silence else "empty"), []


SECTIONS = [
    DarknetSection(
        "empty",
        read,
        aliases=("silence",),
        types=((fork.Empty, "darkforge.darknet.fork_modules"),),
        writes={"Empty": write},
    )
]
