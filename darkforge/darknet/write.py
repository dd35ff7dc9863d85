"""darkforge spec -> Darknet .cfg text: the reverse of darkforge/darknet/read.py, for the layer types
Darknet has.

Composite layers are written in their flat spelling (shapes.flatten), so a ResidualStage becomes
its downsample [convolutional] plus [convolutional]/[convolutional]/[shortcut] per block. A layer
that reads anything but the previous layer gets a [route] in front (as Darknet cfgs do by hand),
and references are renumbered to Darknet's layer indices, relative where the spec wrote them so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from darkforge.darknet import catalog
from darkforge.darknet.writekit import fmt
from darkforge.errors import SpecError
from darkforge.spec.base import INPUT, NetworkSpec, Ref, Shape
from darkforge.spec.shapes import flatten, plan

Options = list[tuple[str, str]]
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


def to_cfg(spec: NetworkSpec) -> tuple[str, list[str]]:
    """The network as Darknet .cfg text, and warnings for what the cfg cannot say."""
    flat = flatten(spec)
    p = plan(flat.resolved())
    sections: list[tuple[str, Options]] = []
    where: list[int] = []
    writers, wiring = catalog.writers(), catalog.wiring()
    for info in p.layers:
        layer = info.spec
        shapes = tuple(p.shape_of(s) for s in info.sources)
        place = Place(len(sections), where, f"layer {len(sections)} ({layer.type})", shapes)
        if layer.type not in writers:
            raise place.error("Darknet has no such layer", "types it has: " + ", ".join(sorted(writers)))
        sources = list(info.sources)
        if layer.type not in wiring and sources[0] != INPUT and where[sources[0]] != place.index - 1:
            # Darknet layers read the previous layer: route the input in first.
            sections.append(("route", [("layers", str(where[sources[0]] - place.index))]))
            place.index += 1
        elif sources[0] == INPUT and place.index != 0 and layer.type not in wiring:
            raise place.error("reads the network input", "Darknet layers after the first cannot")
        sections.append(writers[layer.type](layer, place, sources))
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


__all__ = ["Place", "fmt", "to_cfg"]
