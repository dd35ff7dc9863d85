"""[implicit] (YOLOR, the fork's implicit_layer.c): a learned filters×atoms×1 tensor."""

from __future__ import annotations

from typing import Any

from darkforge.darknet import fork
from darkforge.darknet.catalog import DarknetSection, Options
from darkforge.darknet.cfgtext import Section
from darkforge.darknet.rulekit import Graph, make
from darkforge.darknet.writekit import fmt
from darkforge.spec.base import LayerSpec


def read(s: Section, graph: Graph) -> LayerSpec:
    fields = {"filters": s.get("filters", "int", 128), "atoms": s.get("atoms", "int", 1)}
    fields |= {"mean": s.get("mean", "float", 0.0), "std": s.get("std", "float", 0.2)}
    return make(s, fork.Implicit, fields)


def write(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    options = [("filters", fmt(layer.filters)), ("atoms", fmt(layer.atoms))]
    return "implicit", [*options, ("mean", fmt(layer.mean)), ("std", fmt(layer.std))]


SECTIONS = [
    DarknetSection(
        "implicit",
        read,
        types=((fork.Implicit, "darkforge.darknet.fork_modules"),),
        writes={"Implicit": write},
        wires=("Implicit",),
    )
]
