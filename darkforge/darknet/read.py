"""Darknet .cfg -> darkforge spec, with Darknet's semantics (pjreddie/darknet src/parser.c).

Each section after [net] is one layer, numbered from 0, and the spec keeps that numbering: layer i
of the cfg is `layers[i]`, so `from=-3` and `layers=-1,61` mean what they meant. A table maps each
section to its darkforge layer type; Darknet's defaults are applied here, so the YAML states what
Darknet would have done. Unknown sections, keys and values are SpecErrors at the cfg's line
(`lenient=True` turns unknown keys into warnings). The cfg syntax is darkforge/darknet/sections.py;
the reverse direction (spec -> .cfg) is darkforge/darknet/write.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from darkforge.darknet import layers as dn
from darkforge.darknet.sections import Section, read_cfg
from darkforge.errors import did_you_mean
from darkforge.spec.base import LayerSpec, NetworkSpec, Operand, Shape, ShapeError
from darkforge.spec.layers import (
    Conv,
    ConvBnLeaky,
    Dropout,
    GlobalAvgPool,
    Linear,
    MaxPool,
    Route,
    Shortcut,
    Upsample,
)
from darkforge.spec.load import SourceMap
from darkforge.spec.registry import network_model
from darkforge.spec.shapes import plan

# [net] (parse_net_options): the input size, and the training settings kept as `train: {darknet: ...}`.
NET_KEYS = {key: "int" for key in ("batch", "subdivisions", "time_steps", "notruth", "random", "adam")}
NET_KEYS |= {key: "int" for key in ("max_crop", "min_crop", "center", "burn_in", "step", "max_batches")}
NET_KEYS |= {key: "float" for key in ("learning_rate", "momentum", "decay", "B1", "B2", "eps", "clip")}
NET_KEYS |= {key: "float" for key in ("max_ratio", "min_ratio", "angle", "aspect", "saturation")}
NET_KEYS |= {key: "float" for key in ("exposure", "hue", "power", "scale", "gamma")}
NET_KEYS |= {"policy": "policy", "steps": "ints", "scales": "floats"}


@dataclass(frozen=True)
class Keyed:
    """A section whose keys map one to one onto a spec's fields."""

    spec: type[LayerSpec]
    keys: dict[str, tuple[str, str, Any]]  # cfg key -> (field, kind, Darknet's default)
    unsupported: dict[str, Any] = field(default_factory=dict)  # cfg key -> the one value honoured


def _detect(classes: int, num: int) -> dict[str, tuple[str, str, Any]]:
    keys: dict[str, tuple[str, str, Any]] = {
        "classes": ("classes", "int", classes),
        "num": ("num", "int", num),
    }
    keys |= {"jitter": ("jitter", "float", 0.2), "random": ("random", "flag", False)}
    return keys | {
        k: (k, "float", 1.0) for k in ("coord_scale", "object_scale", "noobject_scale", "class_scale")
    }


def _flags(*names: str) -> dict[str, tuple[str, str, Any]]:
    return {name: (name, "flag", False) for name in names}


# Sections read by the table (parser.c's defaults); the others have rules of their own below.
KEYED: dict[str, Keyed] = {
    "avgpool": Keyed(GlobalAvgPool, {}),
    "upsample": Keyed(Upsample, {"stride": ("stride", "int", 2)}, {"scale": 1}),
    "dropout": Keyed(Dropout, {"probability": ("p", "float", 0.5)}),
    "softmax": Keyed(
        dn.Softmax,
        {"groups": ("groups", "int", 1), "temperature": ("temperature", "float", 1.0)},
        {"spatial": 0, "noloss": 0, "tree": None},
    ),
    "reorg": Keyed(dn.Reorg, {"stride": ("stride", "int", 1)}, {"reverse": 0, "flatten": 0, "extra": 0}),
    "crop": Keyed(
        dn.Crop,
        {"crop_height": ("height", "int", 1), "crop_width": ("width", "int", 1)}
        | {"flip": ("flip", "flag", False), "noadjust": ("rescale", "noflag", True)}
        | {"angle": ("angle", "float", 0.0), "saturation": ("saturation", "float", 1.0)}
        | {"exposure": ("exposure", "float", 1.0), "shift": ("shift", "float", 0.0)},
    ),
    "yolo": Keyed(
        dn.Yolo,
        {k: v for k, v in _detect(20, 1).items() if not k.endswith("_scale")}
        | {"mask": ("mask", "ints", None), "anchors": ("anchors", "pairs", None)}
        | {"ignore_thresh": ("ignore_thresh", "float", 0.5), "truth_thresh": ("truth_thresh", "float", 1.0)}
        | {"max": ("max_boxes", "int", 90)},
        {"map": None},
    ),
    "region": Keyed(
        dn.Region,
        _detect(20, 1)
        | {"coords": ("coords", "int", 4), "anchors": ("anchors", "pairs", None)}
        | _flags("softmax", "bias_match", "rescore", "absolute", "log", "sqrt", "background")
        | {"thresh": ("thresh", "float", 0.5), "classfix": ("classfix", "int", 0)}
        | {"max": ("max_boxes", "int", 30), "mask_scale": ("mask_scale", "float", 1.0)},
        {"tree": None, "map": None},
    ),
    "detection": Keyed(
        dn.Detection,
        _detect(1, 1)
        | {"coords": ("coords", "int", 1), "side": ("side", "int", 7), "max": ("max_boxes", "int", 90)}
        | _flags("rescore", "softmax", "sqrt", "forced", "reorg"),
    ),
    "cost": Keyed(
        dn.Cost,
        {"type": ("loss", "cost", "sse"), "scale": ("scale", "float", 1.0), "ratio": ("ratio", "float", 0.0)}
        | {"noobj": ("noobject_scale", "float", 1.0), "thresh": ("thresh", "float", 0.0)},
    ),
}


@dataclass
class Graph:
    """The layers converted so far, so a rule can see its inputs' shapes."""

    input: Shape
    shapes: list[Shape] = field(default_factory=list)

    def shape(self, s: Section, ref: int, key: str) -> Shape:
        target = s.index + ref if ref < 0 else ref
        if not 0 <= target < s.index:
            where = "before the first layer" if target < 0 else f"to layer {target}, not an earlier one"
            raise s.error(f"{ref} points {where}", "a layer can only use earlier layers", key)
        return self.shapes[target]

    def tensor(self, target: int) -> Operand:
        if target < 0:
            return Operand(self.input, "the input")
        return Operand(self.shapes[target], f"layer {target}")


def _convolutional(s: Section, graph: Graph) -> LayerSpec:
    size = s.get("size", "int", 1)
    padding = s.get("padding", "int", 0)
    if s.get("pad", "int", 0):  # Darknet: any `pad` means size // 2, whatever `padding` says
        padding = size // 2
    fields: dict[str, Any] = {
        "filters": s.get("filters", "int", 1),
        "size": size,
        "stride": s.get("stride", "int", 1),
        "groups": s.get("groups", "int", 1),
        "activation": s.get("activation", "activation", "logistic"),
    }
    if padding != size // 2 or size % 2 == 0:  # an even kernel's pad is always written out
        fields["pad"] = padding
    bn = s.get("batch_normalize", "flag", False)
    return _make(s, ConvBnLeaky if bn else Conv, fields)


def _connected(s: Section, graph: Graph) -> LayerSpec:
    out = s.get("output", "int", 1)
    activation = s.get("activation", "activation", "logistic")
    bn = s.get("batch_normalize", "flag", False)
    if activation == "linear" and not bn:
        return _make(s, Linear, {"out": out}, {"output": ("out", "int", 1)})
    return _make(
        s, dn.Connected, {"out": out, "activation": activation, "bn": bn}, {"output": ("out", "int", 1)}
    )


def _shortcut(s: Section, graph: Graph) -> LayerSpec:
    ref = s.get("from", "int")
    fields = {"from_": ref, "activation": s.get("activation", "activation", "linear")}
    alpha, beta = s.get("alpha", "float", 1.0), s.get("beta", "float", 1.0)
    add = graph.shape(s, ref, "from")
    if graph.tensor(s.index - 1).shape == add and alpha == beta == 1:
        return _make(s, Shortcut, fields)
    return _make(s, dn.DarknetShortcut, {**fields, "alpha": alpha, "beta": beta})


def _route(s: Section, graph: Graph) -> LayerSpec:
    refs = s.get("layers", "ints")
    for ref in refs:
        graph.shape(s, ref, "layers")
    return _make(s, Route, {"from_": refs[0] if len(refs) == 1 else refs})


def _maxpool(s: Section, graph: Graph) -> LayerSpec:
    stride = s.get("stride", "int", 1)
    size = s.get("size", "int", stride)
    padding = s.get("padding", "int", size - 1)  # Darknet's default; output (w + padding - size)/stride + 1
    # Darknet pads padding // 2 before and the rest after
    pad = padding // 2 if padding % 2 == 0 else [padding // 2, padding - padding // 2]
    return _make(s, MaxPool, {"size": size, "stride": None if stride == size else stride, "pad": pad})


def _keyed(table: Keyed) -> Callable[[Section, Graph], LayerSpec]:
    return lambda s, graph: _make(s, table.spec, s.read(table.keys), table.keys)


def _make(
    s: Section,
    cls: type[LayerSpec],
    fields: dict[str, Any],
    keys: dict[str, tuple[str, str, Any]] | None = None,
) -> LayerSpec:
    try:
        return cls(**fields)
    except ValidationError as e:
        detail = e.errors(include_input=False, include_url=False)[0]
        name = str(detail["loc"][0]) if detail["loc"] else ""
        key = next((k for k, (f, _, _) in (keys or {}).items() if f == name), name.rstrip("_"))
        if key in s.options:
            raise s.error(detail["msg"], key=key) from None
        raise s.error(f"{name}: {detail['msg']}" if name else detail["msg"]) from None


@dataclass(frozen=True)
class Rule:
    build: Callable[[Section, Graph], LayerSpec]
    unsupported: dict[str, Any] = field(default_factory=dict)


RULES: dict[str, Rule] = {
    "convolutional": Rule(_convolutional, {"binary": 0, "xnor": 0, "flipped": 0, "dot": 0}),
    "connected": Rule(_connected),
    "shortcut": Rule(_shortcut),
    "route": Rule(_route),
    "maxpool": Rule(_maxpool),
} | {name: Rule(_keyed(table), table.unsupported) for name, table in KEYED.items()}
# Darknet sections darkforge has no layer for (yet): refused with a clearer word than "unknown".
UNSUPPORTED_SECTIONS = {"deconvolutional", "deconv", "local", "rnn", "gru", "lstm", "crnn", "lrn"}
UNSUPPORTED_SECTIONS |= {"normalization", "batchnorm", "activation", "logistic", "l2norm", "iseg"}
UNSUPPORTED_SECTIONS |= {"reorg3d", "scale_channels", "sam", "Gaussian_yolo", "conv_lstm", "local_avgpool"}


@dataclass(frozen=True)
class Converted:
    spec: NetworkSpec
    warnings: list[str]  # keys ignored under `lenient`


def load_cfg(path: str | os.PathLike[str]) -> NetworkSpec:
    """A Darknet .cfg as a darkforge spec (strict; see convert_cfg)."""
    return convert_cfg(path).spec


def convert_cfg(path: str | os.PathLike[str], lenient: bool = False) -> Converted:
    """Read a Darknet .cfg into a spec that builds the same network, layer for layer."""
    sections = read_cfg(path)
    warnings: list[str] = []
    net = sections[0]
    shape = tuple(net.get(key, "int", 0) for key in ("channels", "height", "width"))
    if not all(d > 0 for d in shape):
        raise net.error("needs channels, height and width", "darkforge builds image networks")
    net.seen.update(NET_KEYS)
    settings = {key: net.get(key, kind) for key, kind in NET_KEYS.items() if key in net.options}
    net.finish({"inputs": None}, lenient, warnings)
    graph = Graph(shape)
    layers: list[LayerSpec] = []
    for s in sections[1:]:
        if s.name not in RULES:
            known = s.name in UNSUPPORTED_SECTIONS
            raise s.error(
                "Darknet's section has no darkforge layer yet" if known else "unknown section",
                "" if known else did_you_mean(s.name, [*RULES, "net"]),
            )
        rule = RULES[s.name]
        layer = rule.build(s, graph)
        s.finish(rule.unsupported, lenient, warnings)
        sources = [s.index + r if r < 0 else r for r in layer.sources() if isinstance(r, int)]
        try:
            cost = layer.infer([graph.tensor(t) for t in sources])
        except ShapeError as e:
            raise s.error(str(e)) from None
        graph.shapes.append(cost.output)
        layers.append(layer)
    heads = [i for i, layer in enumerate(layers) if isinstance(layer, dn.Yolo | dn.Region | dn.Detection)]
    channels, height, width = shape
    size = {"size": height} if height == width else {"height": height, "width": width}
    spec = network_model()(
        name=Path(path).stem,
        input={"channels": channels, **size},
        layers=layers,
        outputs=None if heads in ([], [len(layers) - 1]) else heads,
        train={"darknet": settings} if settings else None,
    )
    spec._source = SourceMap(str(path), {("layers", s.index): (s.line, 1) for s in sections[1:]})
    plan(spec)  # the whole graph once more, as `validate` sees it
    return Converted(spec, warnings)
