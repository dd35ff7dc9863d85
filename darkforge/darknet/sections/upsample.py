"""[upsample] (upsample_layer.c): a core Upsample (nearest) or the fork's DarknetUpsample (`scale`,
or a negative stride that sums blocks)."""

from __future__ import annotations

from typing import Any

from darkforge.darknet import fork
from darkforge.darknet.catalog import DarknetSection, Options
from darkforge.darknet.cfgtext import Section
from darkforge.darknet.rulekit import Graph, make
from darkforge.darknet.writekit import fmt
from darkforge.spec.base import LayerSpec
from darkforge.spec.layers import Upsample


def read(s: Section, graph: Graph) -> LayerSpec:
    stride, scale = s.get("stride", "int", 2), s.get("scale", "float", 1.0)
    if stride > 0 and scale == 1:
        return make(s, Upsample, {"stride": stride})
    return make(s, fork.DarknetUpsample, {"stride": stride, "scale": scale})


def write(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    if getattr(layer, "mode", "nearest") != "nearest":  # Darknet's [upsample] repeats pixels
        raise place.error(
            f"mode {layer.mode} has no Darknet spelling", "Darknet upsamples by nearest neighbour"
        )
    scale = getattr(layer, "scale", 1.0)
    return "upsample", [("stride", fmt(layer.stride))] + ([("scale", fmt(scale))] if scale != 1 else [])


SECTIONS = [
    DarknetSection(
        "upsample",
        read,
        types=((fork.DarknetUpsample, "darkforge.darknet.fork_modules"),),
        writes={"Upsample": write, "DarknetUpsample": write},
    )
]
