"""Darknet .cfg -> darkforge spec, with Darknet's semantics (pjreddie/darknet and the AlexeyAB
fork, src/parser.c).

Each section after [net] is one layer, numbered from 0, and the spec keeps that numbering: layer i
of the cfg is `layers[i]`, so `from=-3` and `layers=-1,61` mean what they meant. A table maps each
section to its darkforge layer type (the fork's sections and keys: darkforge/darknet/read_fork.py;
[net]: darkforge/darknet/net.py); Darknet's defaults are applied here, so the YAML states what
Darknet would have done. Keys that change the computation are honoured exactly or refused;
keys that change no output (training settings, loss settings) are carried for the round trip;
`lenient=True` drops only keys the converter has never seen, with a warning. The cfg syntax is
darkforge/darknet/sections.py; the reverse direction (spec -> .cfg) is darkforge/darknet/write.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from darkforge.darknet import layers as dn
from darkforge.darknet.net import NET_KEYS, read_net
from darkforge.darknet.read_fork import CONV_REFUSED, FORK_RULES, weight_layout
from darkforge.darknet.rulekit import Graph, make
from darkforge.darknet.sections import ACTIVATIONS, COMMON_KEYS, Section, read_cfg
from darkforge.errors import UsageError, did_you_mean
from darkforge.spec.base import LayerSpec, NetworkSpec, ShapeError
from darkforge.spec.layers import Dropout, GlobalAvgPool, Linear
from darkforge.spec.load import SourceMap
from darkforge.spec.messages import located_error
from darkforge.spec.registry import network_model
from darkforge.spec.shapes import plan

# [yolo]/[Gaussian_yolo] keys of the fork that shape the loss, NMS or tracking, never the outputs:
# carried in the layer's `loss` (typed as written) for the round trip.
LOSS_KEYS = [
    "label_smooth_eps",
    "objectness_smooth",
    "iou_normalizer",
    "obj_normalizer",
    "cls_normalizer",
    "delta_normalizer",
    "uc_normalizer",
    "iou_loss",
    "iou_thresh_kind",
    "beta_nms",
    "nms_kind",
    "resize",
    "focal_loss",
    "iou_thresh",
    "max_delta",
    "counters_per_class",
    "show_details",
    "track_history_size",
    "sim_thresh",
    "dets_for_track",
    "dets_for_show",
    "track_ciou_norm",
    "embedding_layer",
    "yolo_point",
]


@dataclass(frozen=True)
class Keyed:
    """A section whose keys map one to one onto a spec's fields."""

    spec: type[LayerSpec]
    keys: dict[str, tuple[str, str, Any]]  # cfg key -> (field, kind, Darknet's default)
    unsupported: dict[str, Any] = field(default_factory=dict)  # cfg key -> the one value honoured
    carried: tuple[str, ...] = ()  # keys kept in the spec's `loss` (loss settings)


def _detect(classes: int, num: int) -> dict[str, tuple[str, str, Any]]:
    keys: dict[str, tuple[str, str, Any]] = {
        "classes": ("classes", "int", classes),
        "num": ("num", "int", num),
    }
    keys |= {"jitter": ("jitter", "float", 0.2), "random": ("random", "flagnum", False)}
    return keys | {
        k: (k, "float", 1.0) for k in ("coord_scale", "object_scale", "noobject_scale", "class_scale")
    }


def _flags(*names: str) -> dict[str, tuple[str, str, Any]]:
    return {name: (name, "flag", False) for name in names}


# Sections read by the table (parser.c's defaults); the others have rules of their own below.
KEYED: dict[str, Keyed] = {
    "avgpool": Keyed(GlobalAvgPool, {}),
    "dropout": Keyed(
        Dropout,
        {"probability": ("p", "float", 0.5)},
        {"dropblock": 0, "dropblock_size_rel": 0, "dropblock_size_abs": 0},
    ),
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
        | {"max": ("max_boxes", "int", 90)}
        | {"new_coords": ("new_coords", "flag", False), "scale_x_y": ("scale_x_y", "float", 1.0)},
        {"map": None},
        tuple(LOSS_KEYS),
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


def _connected(s: Section, graph: Graph) -> LayerSpec:
    out = s.get("output", "int", 1)
    darknet = s.get("activation", "activation", "logistic")
    if darknet not in ACTIVATIONS or darknet in ("mish", "swish", "relu6"):
        raise s.error(
            f"{darknet!r} in [connected]: not supported (the fork's CPU forward has no case for the newer "
            "activations outside [convolutional])",
            "use [activation] or a 1×1 [convolutional]",
            "activation",
        )
    activation = ACTIVATIONS[darknet]
    bn = s.get("batch_normalize", "flag", False)
    if activation == "linear" and not bn:
        return make(s, Linear, {"out": out}, {"output": ("out", "int", 1)})
    fields = {"out": out, "activation": activation, "bn": graph.bn if bn else False}
    return make(s, dn.Connected, fields, {"output": ("out", "int", 1)})


def _keyed(table: Keyed) -> Callable[[Section, Graph], LayerSpec]:
    def rule(s: Section, graph: Graph) -> LayerSpec:
        keys = {k: (f, kind, graph.defaults.get((s.name, k), d)) for k, (f, kind, d) in table.keys.items()}
        fields = s.read(keys)
        if "anchors" in fields and fields["anchors"] and len(fields["anchors"]) > fields.get("num", 0):
            # parse_yolo_layer reads the first 2·num numbers only
            _, line = s.options["anchors"]
            s.notes.append(
                f"{s.file}:{line}: [{s.header}] (layer {s.index}): anchors: {len(fields['anchors'])} pairs "
                f"for num={fields['num']}: Darknet uses the first {fields['num']}"
            )
            fields["anchors"] = fields["anchors"][: fields["num"]]
        if table.carried:
            fields["loss"] = {k: s.get(k, "carried") for k in table.carried if k in s.options}
            for key in s.options:  # Darknet ignores keys it does not read: none can change an output
                if key not in s.seen and key not in table.unsupported and key not in COMMON_KEYS:
                    fields["loss"][key] = s.get(key, "carried")
                    s.notes.append(
                        f"{s.file}:{s.options[key][1]}: [{s.header}] (layer {s.index}): {key}: "
                        "Darknet ignores it; kept as written"
                    )
        return make(s, table.spec, fields, keys)

    return rule


@dataclass(frozen=True)
class Rule:
    build: Callable[[Section, Graph], LayerSpec]
    unsupported: dict[str, Any] = field(default_factory=dict)


KEYED["Gaussian_yolo"] = Keyed(dn.GaussianYolo, KEYED["yolo"].keys, {"map": None}, tuple(LOSS_KEYS))
RULES: dict[str, Rule] = {name: Rule(rule) for name, rule in FORK_RULES.items()}
RULES["convolutional"] = Rule(FORK_RULES["convolutional"], CONV_REFUSED)
RULES["connected"] = Rule(_connected)
RULES["maxpool"] = Rule(FORK_RULES["maxpool"], {"maxpool_zero_nonmax": 0})
RULES |= {name: Rule(_keyed(table), table.unsupported) for name, table in KEYED.items()}
# Darknet sections darkforge has no layer for: refused with a clearer word than "unknown".
_NO_LAYER = "Darknet's section has no darkforge layer (see docs/darknet.md)"
_RECURRENT = (
    "a recurrent layer (state carried over the [net] time_steps of a sequence): darkforge builds "
    "feed-forward networks of one image, so it cannot compute it"
)
UNSUPPORTED_SECTIONS = dict.fromkeys(["deconvolutional", "deconv", "lrn", "normalization", "logistic"], _NO_LAYER)
UNSUPPORTED_SECTIONS |= dict.fromkeys(["l2norm", "iseg", "history", "implicit_add", "implicit_mul"], _NO_LAYER)
UNSUPPORTED_SECTIONS |= dict.fromkeys(["rnn", "gru", "lstm", "crnn", "conv_lstm"], _RECURRENT)


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
    sections = read_cfg(path)
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


def _layer(s: Section, graph: Graph, settings: dict[str, Any], lenient: bool, warnings: list[str]) -> LayerSpec:
    """One section as a layer, its shape inferred (the next sections read it)."""
    if s.name not in RULES:
        known = s.name in UNSUPPORTED_SECTIONS
        raise s.error(
            UNSUPPORTED_SECTIONS[s.name] if known else "unknown section",
            "" if known else did_you_mean(s.name, [*RULES, "net"]),
        )
    rule = RULES[s.name]
    layer = rule.build(s, graph)
    stop = s.get("stopbackward", "int", 0)
    if stop:  # Darknet freezes every layer up to this one (for `stop` iterations when > 1)
        settings["stopbackward"] = [s.index, stop]
    s.finish(rule.unsupported, lenient, warnings)
    sources = [s.index + r if r < 0 else r for r in layer.sources() if isinstance(r, int)]
    try:
        cost = layer.infer([graph.tensor(t) for t in sources])
    except ShapeError as e:
        raise s.error(str(e)) from None
    graph.shapes.append(cost.output)
    graph.kinds.append(layer.type)
    return layer


def _network(
    path: Path, sections: list[Section], shape: tuple[int, ...], settings: dict[str, Any], layers: list[LayerSpec]
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
    positions = {("layers", s.index): (s.line, 1) for s in sections[1:]}
    positions |= {(): (net.line, 1)}
    for key in ("channels", "height", "width"):
        line = net.options[key][1] if key in net.options else net.line
        positions[("input", key)] = (line, 1)
    positions[("input", "size")] = positions[("input", "height")]
    source = SourceMap(str(path), positions)
    try:
        spec = network_model()(**data)
    except ValidationError as e:
        raise located_error(e, data, source) from None
    spec._source = source
    return spec


__all__ = ["KEYED", "NET_KEYS", "Converted", "Keyed", "convert_cfg", "load_cfg"]
