"""[reorg3d] (the fork's reorg_old_layer.c): space to depth in Darknet's memory order; `reverse`."""

from __future__ import annotations

from typing import Any

from darkforge.darknet import fork
from darkforge.darknet.catalog import DarknetSection, Options
from darkforge.darknet.cfgtext import Section
from darkforge.darknet.rulekit import Graph, make
from darkforge.darknet.writekit import fmt
from darkforge.spec.base import LayerSpec


def read(s: Section, graph: Graph) -> LayerSpec:
    fields = {"stride": s.get("stride", "int", 1), "reverse": s.get("reverse", "flag", False)}
    return make(s, fork.Reorg3d, fields)


def write(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    return "reorg3d", [("stride", fmt(layer.stride))] + ([("reverse", "1")] if layer.reverse else [])


SECTIONS = [
    DarknetSection(
        "reorg3d", read, types=((fork.Reorg3d, "darkforge.darknet.fork_modules"),), writes={"Reorg3d": write}
    )
]
