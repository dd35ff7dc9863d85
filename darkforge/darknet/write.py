"""darkforge spec -> Darknet .cfg text: the reverse of darkforge/darknet/read.py, for the layer types
Darknet has.

Composite layers are written in their flat spelling (shapes.flatten), so a ResidualStage becomes
its downsample [convolutional] plus [convolutional]/[convolutional]/[shortcut] per block. A layer
that reads anything but the previous layer gets a [route] in front (as Darknet cfgs do by hand),
and references are renumbered to Darknet's layer indices, relative where the spec wrote them so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from darkforge.darknet.read import KEYED, Keyed
from darkforge.darknet.sections import ACTIVATIONS
from darkforge.darknet.write_core import CORE_MULTI_INPUT, CORE_WRITERS
from darkforge.darknet.write_fork import FORK_MULTI_INPUT, FORK_WRITERS, fmt
from darkforge.errors import SpecError
from darkforge.spec.base import INPUT, LayerSpec, NetworkSpec, Ref, Shape
from darkforge.spec.shapes import flatten, plan

Options = list[tuple[str, str]]
DARKNET_NAMES = {ours: theirs for theirs, ours in ACTIVATIONS.items()}
HEADS = ("Yolo", "Region", "Detection")


@dataclass
class Place:
    """Where a layer lands in the cfg: its Darknet index, and each earlier flat layer's index."""

    index: int
    where: list[int]
    name: str  # how errors name the layer
    shapes: tuple[Shape, ...] = ()  # the layer's input shapes

    def ref(self, written: Ref, target: int) -> str:
        if target == INPUT:
            raise self.error("reads the network input, which Darknet layers after the first cannot")
        n = self.where[target]
        return str(n - self.index) if isinstance(written, int) and written < 0 else str(n)

    def error(self, message: str, hint: str = "") -> SpecError:
        return SpecError(f"{self.name}: {message}", hint)


def _activation(place: Place, activation: str, slope: float) -> str:
    if activation not in DARKNET_NAMES:
        raise place.error(
            f"Darknet has no activation {activation!r}", "use one of: " + ", ".join(DARKNET_NAMES)
        )
    if activation == "leaky" and not math.isclose(slope, 0.1):
        raise place.error(f"Darknet's leaky has slope 0.1, not {slope}")
    return DARKNET_NAMES[activation]


def _conv(layer: Any, place: Place, sources: list[int]) -> tuple[str, Options]:
    bn = layer.batch_norm is not None
    if layer.has_bias == bn:
        what = "a bias and batch norm" if bn else "neither a bias nor batch norm"
        raise place.error(f"has {what}", "Darknet convs have a bias exactly when they have no batch norm")
    options = [("batch_normalize", "1")] if bn else []
    options += [("filters", fmt(layer.filters)), ("size", fmt(layer.size)), ("stride", fmt(layer.stride))]
    same = layer.padding == layer.size // 2
    options.append(("pad", "1") if same else ("padding", fmt(layer.padding)))
    if layer.groups != 1:
        options.append(("groups", fmt(layer.groups)))
    return "convolutional", [*options, ("activation", _activation(place, layer.activation, layer.slope))]


def _linear(layer: Any, place: Place, sources: list[int]) -> tuple[str, Options]:
    if not layer.bias:
        raise place.error("has no bias", "Darknet's [connected] always has one")
    return "connected", [("output", fmt(layer.out)), ("activation", "linear")]


def _connected(layer: Any, place: Place, sources: list[int]) -> tuple[str, Options]:
    options = [("batch_normalize", "1")] if layer.batch_norm else []
    options.append(("output", fmt(layer.out)))
    return "connected", [*options, ("activation", _activation(place, layer.activation, layer.slope))]


def _shortcut(layer: Any, place: Place, sources: list[int]) -> tuple[str, Options]:
    written = layer.sources()
    if len(sources) != 2:
        raise place.error(
            f"adds {len(sources)} layers", "Darknet's [shortcut] adds one layer to the previous"
        )
    previous = [k for k, t in enumerate(sources) if t != INPUT and place.where[t] == place.index - 1]
    if not previous:
        raise place.error("adds two layers, neither of them the previous one", "Darknet adds `from` to it")
    other = 1 - previous[0]
    options = [("from", place.ref(written[other], sources[other]))]
    options.append(("activation", _activation(place, layer.activation, layer.slope)))
    for key in ("alpha", "beta"):
        if getattr(layer, key, 1.0) != 1.0:
            options.append((key, fmt(getattr(layer, key))))
    return "shortcut", options


def _route(layer: Any, place: Place, sources: list[int]) -> tuple[str, Options]:
    refs = [place.ref(w, t) for w, t in zip(layer.sources(), sources, strict=True)]
    return "route", [("layers", ",".join(refs))]


def _maxpool(layer: Any, place: Place, sources: list[int]) -> tuple[str, Options]:
    options = [("size", fmt(layer.size)), ("stride", fmt(layer.stride or layer.size))]
    before, after = layer.sides
    if after - before not in (0, 1):
        raise place.error(
            f"pads {before} before and {after} after", "Darknet pads total // 2 before, the rest after"
        )
    if before + after != layer.size - 1:  # Darknet's default
        options.append(("padding", fmt(before + after)))
    return "maxpool", options


def _keyed(section: str, table: Keyed) -> Callable[[Any, Place, list[int]], tuple[str, Options]]:
    def write(layer: Any, place: Place, sources: list[int]) -> tuple[str, Options]:
        options = []
        for key, (name, kind, _) in table.keys.items():
            value = getattr(layer, name)
            if value is not None:  # every key, defaults too: a cfg read and written keeps its keys
                options.append((key, fmt(not value if kind == "noflag" else value)))
        if table.carried:
            options += [(key, fmt(value)) for key, value in layer.loss.items()]
        return section, options

    return write


def _tag(spec: type[LayerSpec]) -> str:
    return str(spec.model_fields["type"].default)


WRITERS: dict[str, Callable[[Any, Place, list[int]], tuple[str, Options]]] = {
    "ConvBnLeaky": _conv,
    "Conv": _conv,
    "Linear": _linear,
    "Connected": _connected,
    "Shortcut": _shortcut,
    "DarknetShortcut": _shortcut,
    "Route": _route,
    "MaxPool": _maxpool,
} | {_tag(table.spec): _keyed(name, table) for name, table in KEYED.items()}
WRITERS |= FORK_WRITERS | CORE_WRITERS
MULTI_INPUT = {"Route", "Shortcut", "DarknetShortcut"} | FORK_MULTI_INPUT | CORE_MULTI_INPUT


def to_cfg(spec: NetworkSpec) -> tuple[str, list[str]]:
    """The network as Darknet .cfg text, and warnings for what the cfg cannot say."""
    flat = flatten(spec)
    p = plan(flat.resolved())
    sections: list[tuple[str, Options]] = []
    where: list[int] = []
    for info in p.layers:
        layer = info.spec
        shapes = tuple(p.shape_of(s) for s in info.sources)
        place = Place(len(sections), where, f"layer {len(sections)} ({layer.type})", shapes)
        if layer.type not in WRITERS:
            raise place.error("Darknet has no such layer", "types it has: " + ", ".join(sorted(WRITERS)))
        sources = list(info.sources)
        if layer.type not in MULTI_INPUT and sources[0] != INPUT and where[sources[0]] != place.index - 1:
            # Darknet layers read the previous layer: route the input in first.
            sections.append(("route", [("layers", str(where[sources[0]] - place.index))]))
            place.index += 1
        elif sources[0] == INPUT and place.index != 0 and layer.type not in MULTI_INPUT:
            raise place.error("reads the network input", "Darknet layers after the first cannot")
        sections.append(WRITERS[layer.type](layer, place, sources))
        where.append(place.index)
    _stopbackward(flat, sections, where)
    lines = [f"# {spec.name}: written by darkforge; each section after [net] is one layer, from 0", ""]
    for name, options in [("net", _net(flat)), *sections]:
        lines += [f"[{name}]", *(f"{key}={value}" for key, value in options), ""]
    return "\n".join(lines), _warnings(p.outputs, p.layers, where)


def _net(spec: NetworkSpec) -> Options:
    channels, height, width = spec.input.shape
    options = [("height", fmt(height)), ("width", fmt(width)), ("channels", fmt(channels))]
    settings = (spec.train or {}).get("darknet") or {}
    # [net] carries every training setting as written (Darknet ignores keys it does not know)
    return options + [(key, fmt(value)) for key, value in settings.items() if key != "stopbackward"]


def _stopbackward(spec: NetworkSpec, sections: list[tuple[str, Options]], where: list[int]) -> None:
    """`train.freeze: N` (N leading layers) as Darknet's stopbackward on layer N − 1."""
    train = spec.train or {}
    layer, value = ((train.get("darknet") or {}).get("stopbackward") or [None, 1])[:2]
    freeze = train.get("freeze")
    if layer is None and freeze is None:
        return
    if layer is None:
        if not isinstance(freeze, int) or not 0 < freeze <= len(where):
            raise SpecError(f"train.freeze: {freeze!r}", "Darknet's stopbackward needs a count of layers")
        layer = freeze - 1
    sections[where[layer]][1].append(("stopbackward", fmt(value)))


def _warnings(outputs: tuple[int, ...], layers: tuple[Any, ...], where: list[int]) -> list[str]:
    heads = [where[i.index] for i in layers if i.spec.type in HEADS] or [where[-1]]
    if sorted(where[o] for o in outputs) == sorted(heads):
        return []
    return [
        f"outputs {[where[o] for o in outputs]} are not in the cfg: Darknet returns its "
        f"[yolo]/[region]/[detection] layers, else the last layer ({heads})"
    ]


__all__ = ["WRITERS", "fmt", "to_cfg"]
