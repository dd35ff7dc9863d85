"""Darknet .cfg -> darkforge spec, with Darknet's semantics (pjreddie/darknet and the AlexeyAB
fork, src/parser.c).

Each section after [net] is one layer, numbered from 0, and the spec keeps that numbering: layer i
of the cfg is `layers[i]`, so `from=-3` and `layers=-1,61` mean what they meant. Each section's
reader lives in its own file of darkforge/darknet/sections/ (the table: darkforge/darknet/catalog.py;
[net]: darkforge/darknet/net.py); Darknet's defaults are applied there, so the YAML states what
Darknet would have done. Keys that change the computation are honoured exactly or refused;
keys that change no output (training settings, loss settings) are carried for the round trip;
`lenient=True` drops only keys the converter has never seen, with a warning. The cfg syntax is
darkforge/darknet/cfgtext.py; the reverse direction (spec -> .cfg) is darkforge/darknet/write.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from darkforge.darknet import catalog
from darkforge.darknet import layers as dn
from darkforge.darknet.cfgtext import Section, read_cfg
from darkforge.darknet.net import NET_KEYS, read_net
from darkforge.darknet.rulekit import Graph
from darkforge.errors import UsageError, did_you_mean
from darkforge.spec.base import LayerSpec, NetworkSpec, ShapeError
from darkforge.spec.load import SourceMap
from darkforge.spec.messages import describe
from darkforge.spec.registry import network_model
from darkforge.spec.shapes import plan


def read_sections(path: str | os.PathLike[str]) -> list[Section]:
    """The cfg's sections, headers canonical ([conv] -> convolutional)."""
    return read_cfg(path, catalog.aliases())


@dataclass(frozen=True)
class Converted:
    spec: NetworkSpec
    warnings: list[str]  # keys dropped under `lenient`, keys Darknet ignores, repeated keys


def load_cfg(path: str | os.PathLike[str]) -> NetworkSpec:
    """A Darknet .cfg as a darkforge spec (strict; see convert_cfg)."""
    return convert_cfg(path).spec


# Batch norm as each Darknet computes it: rolling statistics with momentum 0.01 (torch's terms)
# in both; in eval, the fork divides by sqrt(var + 1e-5) (torch's formula), pjreddie's original by
# sqrt(var) + 1e-6.
# Training-only defaults where the fork's parser differs from pjreddie's (the tables hold pjreddie's).
FORK_DEFAULTS: dict[tuple[str, str], Any] = {
    ("yolo", "max"): 200,
    ("Gaussian_yolo", "max"): 200,
    ("region", "max"): 200,
}
FORK_DEFAULTS |= {("detection", "max"): 200, ("dropout", "probability"): 0.2}
BATCHNORM: dict[str, dict[str, Any]] = {
    "alexeyab": {"momentum": 0.01},
    "pjreddie": {"momentum": 0.01, "eps": 1e-6, "formula": "pjreddie"},
}


def convert_cfg(path: str | os.PathLike[str], lenient: bool = False, darknet: str = "alexeyab") -> Converted:
    """Read a Darknet .cfg into a spec that builds the same network, layer for layer. `darknet`
    names the Darknet the file is for ("alexeyab", the fork, or "pjreddie", the original): where
    the two compute differently (batch norm in eval, [shortcut] between maps of other sizes,
    training defaults), the network computes what that one does."""
    if darknet not in BATCHNORM:
        raise UsageError(f"unknown Darknet {darknet!r}", "alexeyab or pjreddie")
    sections = read_sections(path)
    warnings: list[str] = []
    net = sections[0]
    shape, settings = read_net(net, net.notes)
    net.finish({}, lenient, warnings)
    _check_count(sections)
    fork = darknet == "alexeyab"
    graph = Graph(shape, bn=BATCHNORM[darknet], defaults=FORK_DEFAULTS if fork else {}, fork=fork)
    layers = [_layer(s, graph, settings, lenient, warnings) for s in sections[1:]]
    for s in sections:
        warnings += s.notes
        warnings += [
            f"{s.file}:{line}: [{s.header}]: {key}: repeated; Darknet uses the first ({s.options[key][0]})"
            for key, _, line in s.repeated
        ]
    spec = _network(Path(path), sections, shape, settings, layers)
    plan(spec)  # the whole graph once more, as `validate` sees it
    return Converted(spec, warnings)


def _check_count(sections: list[Section]) -> None:
    """At least one layer, at most what a network holds: refused at the section that is too many."""
    most = network_model().model_fields["layers"].metadata
    limit = next((m.max_length for m in most if getattr(m, "max_length", None)), None)
    if len(sections) == 1:
        raise sections[0].error("no layers after [net]", "a network needs at least one layer section")
    if limit is not None and len(sections) - 1 > limit:
        raise sections[limit + 1].error(f"more than {limit:,} layers", "darkforge builds at most that many")


def _layer(
    s: Section, graph: Graph, settings: dict[str, Any], lenient: bool, warnings: list[str]
) -> LayerSpec:
    """One section as a layer, its shape inferred (the next sections read it)."""
    known = catalog.sections()
    section = known.get(s.name)
    if section is None or section.read is None:
        raise s.error(
            section.refusal if section else "unknown section",
            "" if section else did_you_mean(s.name, [*known, "net"]),
        )
    layer = section.read(s, graph)
    stop = s.get("stopbackward", "int", 0)
    if stop:  # Darknet freezes every layer up to this one (for `stop` iterations when > 1)
        settings["stopbackward"] = [s.index, stop]
    s.finish(section.refused, lenient, warnings)
    sources = [s.index + r if r < 0 else r for r in layer.sources() if isinstance(r, int)]
    try:
        cost = layer.infer([graph.tensor(t) for t in sources])
    except ShapeError as e:
        raise s.error(str(e)) from None
    graph.shapes.append(cost.output)
    graph.kinds.append(layer.type)
    return layer


def _network(
    path: Path,
    sections: list[Section],
    shape: tuple[int, ...],
    settings: dict[str, Any],
    layers: list[LayerSpec],
) -> NetworkSpec:
    """The spec, with pydantic's refusals (an input too large, ...) located at the cfg's line."""
    heads = [i for i, layer in enumerate(layers) if isinstance(layer, dn.Yolo | dn.Region | dn.Detection)]
    channels, height, width = shape
    size = {"size": height} if height == width else {"height": height, "width": width}
    train: dict[str, Any] = {"darknet": settings} if settings else {}
    if "stopbackward" in settings:
        train["freeze"] = settings["stopbackward"][0] + 1
    data = {
        "name": path.stem,
        "input": {"channels": channels, **size},
        "layers": layers,
        "outputs": None if heads in ([], [len(layers) - 1]) else heads,
        "train": train or None,
    }
    net = sections[0]
    positions: dict[tuple[object, ...], tuple[int, int]] = {
        ("layers", s.index): (s.line, 1) for s in sections[1:]
    }
    positions |= {(): (net.line, 1)}
    for key in ("channels", "height", "width"):
        line = net.options[key][1] if key in net.options else net.line
        positions[("input", key)] = (line, 1)
    positions[("input", "size")] = positions[("input", "height")]
    source = SourceMap(str(path), positions)
    try:
        spec = network_model()(**data)
    except ValidationError as e:
        raise describe(e, data).at(source) from None
    spec._source = source
    return spec


__all__ = ["NET_KEYS", "Converted", "convert_cfg", "load_cfg", "read_sections"]
