"""[batchnorm] (batchnorm_layer.c): batch norm on its own."""

from __future__ import annotations

from typing import Any

from darkforge.darknet import fork
from darkforge.darknet.catalog import DarknetSection, Options
from darkforge.darknet.cfgtext import Section
from darkforge.darknet.rulekit import Graph, make
from darkforge.spec.base import LayerSpec


def read(s: Section, graph: Graph) -> LayerSpec:
    return make(s, fork.DarknetBatchNorm, {"norm": graph.bn})


def write(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    return "batchnorm", []


SECTIONS = [
    DarknetSection(
        "batchnorm",
        read,
        types=((fork.DarknetBatchNorm, "darkforge.darknet.fork_modules"),),
        writes={"DarknetBatchNorm": write},
    )
]
