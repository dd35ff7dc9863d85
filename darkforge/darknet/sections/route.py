"""[route] (route_layer.c): a core Route that concatenates, or the fork's GroupRoute (groups and
group_id: one channel chunk of each input; onlyforward=1: no gradient back through it); the core
Slice by groups is written as one."""

from __future__ import annotations

from typing import Any

from darkforge.darknet import fork
from darkforge.darknet.catalog import DarknetSection, Options
from darkforge.darknet.cfgtext import Section
from darkforge.darknet.rulekit import Graph, make
from darkforge.darknet.writekit import fmt
from darkforge.spec.base import LayerSpec
from darkforge.spec.layers import Route


def read(s: Section, graph: Graph) -> LayerSpec:
    refs = s.get("layers", "ints")
    for ref in refs:
        graph.shape(s, ref, "layers")
    groups, group = s.get("groups", "int", 1), s.get("group_id", "int", 0)
    detach = s.get("onlyforward", "flag", False)  # backward_network skips the layer: no gradient
    source = refs[0] if len(refs) == 1 else refs
    if groups == 1 and group == 0 and not detach:
        return make(s, Route, {"from_": source})
    return make(s, fork.GroupRoute, {"from_": source, "groups": groups, "group": group, "detach": detach})


def write_core(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    refs = [place.ref(w, t) for w, t in zip(layer.sources(), sources, strict=True)]
    return "route", [("layers", ",".join(refs))]


def write_groups(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    refs = [place.ref(w, t) for w, t in zip(layer.sources(), sources, strict=True)]
    options = [("groups", fmt(layer.groups)), ("group_id", fmt(layer.group))] if layer.groups > 1 else []
    options += [("onlyforward", "1")] if layer.detach else []
    return "route", [("layers", ",".join(refs)), *options]


def write_slice(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    """The core Slice by groups; a channel range has no Darknet spelling."""
    if layer.groups is None:
        raise place.error(
            "slices a channel range", "Darknet's [route] slices equal groups: use groups and group"
        )
    ref = place.ref(layer.sources()[0], sources[0])
    return "route", [("layers", ref), ("groups", fmt(layer.groups)), ("group_id", fmt(layer.group))]


SECTIONS = [
    DarknetSection(
        "route",
        read,
        types=((fork.GroupRoute, "darkforge.darknet.fork_modules"),),
        writes={"Route": write_core, "GroupRoute": write_groups, "Slice": write_slice},
        wires=("Route", "GroupRoute", "Slice"),
    )
]
