"""[maxpool] / [max] and [local_avgpool] / [local_avg] (maxpool_layer.c): a core MaxPool where it
computes the same thing, else the fork's DarknetPool (strides per axis, maxpool_depth,
antialiasing, the average of [local_avgpool])."""

from __future__ import annotations

from typing import Any

from darkforge.darknet import fork
from darkforge.darknet.catalog import DarknetSection, Options
from darkforge.darknet.cfgtext import Section
from darkforge.darknet.rulekit import Graph, make
from darkforge.darknet.writekit import fmt, strides
from darkforge.spec.base import LayerSpec
from darkforge.spec.layers import MaxPool


def _pool(s: Section, average: bool) -> LayerSpec:
    stride = s.get("stride", "int", 1)
    sx, sy = s.get("stride_x", "int", stride), s.get("stride_y", "int", stride)
    size = s.get("size", "int", stride)
    padding = s.get("padding", "int", size - 1)  # output (w + padding - size)/stride + 1
    depth = False if average else s.get("maxpool_depth", "flag", False)
    out_channels = 1 if average else s.get("out_channels", "int", 1)
    antialiasing = 0 if average else s.get("antialiasing", "int", 0)
    if not average and sx == sy and not depth and not antialiasing:
        # Darknet pads padding // 2 before and the rest after: MaxPool's per-side pad, or [before, after]
        pad = padding // 2 if padding % 2 == 0 else [padding // 2, padding - padding // 2]
        return make(s, MaxPool, {"size": size, "stride": None if sx == size else sx, "pad": pad})
    fields: dict[str, Any] = {"size": size, "stride": sx, "stride_y": None if sy == sx else sy}
    fields |= {"padding": padding, "average": average, "depth": depth, "out_channels": out_channels}
    return make(s, fork.DarknetPool, fields | {"antialiasing": antialiasing})


def read_max(s: Section, graph: Graph) -> LayerSpec:
    return _pool(s, average=False)


def read_average(s: Section, graph: Graph) -> LayerSpec:
    return _pool(s, average=True)


def write_core(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    if getattr(layer, "ceil_mode", False):  # Darknet's pools floor their output size
        raise place.error(
            "ceil_mode has no Darknet spelling", "pad the pool instead (`pad`), or keep the YAML"
        )
    options = [("size", fmt(layer.size)), ("stride", fmt(layer.stride or layer.size))]
    before, after = layer.sides
    if after - before not in (0, 1):
        raise place.error(
            f"pads {before} before and {after} after", "Darknet pads total // 2 before, the rest after"
        )
    if before + after != layer.size - 1:  # Darknet's default
        options.append(("padding", fmt(before + after)))
    return "maxpool", options


def write_fork(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    options = [("size", fmt(layer.size)), *strides(layer)]
    if layer.padding != layer.size - 1:
        options.append(("padding", fmt(layer.padding)))
    if layer.average:
        return "local_avgpool", options
    if layer.depth:
        options += [("maxpool_depth", "1"), ("out_channels", fmt(layer.out_channels))]
    if layer.antialiasing:
        options.append(("antialiasing", fmt(layer.antialiasing)))
    return "maxpool", options


SECTIONS = [
    DarknetSection(
        "maxpool",
        read_max,
        aliases=("max",),
        refused={"maxpool_zero_nonmax": 0},
        types=((fork.DarknetPool, "darkforge.darknet.fork_modules"),),
        writes={"MaxPool": write_core, "DarknetPool": write_fork},
    ),
    DarknetSection("local_avgpool", read_average, aliases=("local_avg",)),
]
