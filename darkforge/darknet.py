"""Darknet .cfg -> darkforge spec, with Darknet's semantics and errors at the cfg's line.

Darknet (pjreddie/darknet src/parser.c) reads a cfg by deleting every space and tab, skipping lines
that start with `#` or `;`, and splitting `key=value` at the first `=`. Each section after [net] is
one layer, numbered from 0, and the spec keeps that numbering: layer i of the cfg is `layers[i]`,
so `from=-3` and `layers=-1,61` mean what they meant. Darknet ignores what it does not know and
reads `activation=leaky # note` as the activation `leaky#note`; here every unknown section, key or
value is a SpecError naming the file and line (`lenient=True` turns unknown keys into warnings).
The reverse direction (spec -> .cfg) is darkforge/darknet_write.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from darkforge.errors import SpecError
from darkforge.load import MAX_BYTES, Source
from darkforge.registry import did_you_mean
from darkforge.shapes import plan
from darkforge.spec import LayerSpec, NetworkSpec, Shape, ShapeError, Tensor, network_model
from darkforge.specs import (
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
from darkforge.specs import darknet as dn

# Darknet activation name -> darkforge's (activations.c get_activation; swish/mish from AlexeyAB's fork).
ACTIVATIONS = {
    "linear": "linear",
    "leaky": "leaky",
    "relu": "relu",
    "logistic": "logistic",
    "ramp": "ramp",
    "tanh": "tanh",
    "elu": "elu",
    "relu6": "relu6",
    "mish": "mish",
    "swish": "silu",
}
SECTION_ALIASES = {"conv": "convolutional", "conn": "connected", "max": "maxpool", "avg": "avgpool"}
SECTION_ALIASES |= {"soft": "softmax", "network": "net"}
# Keys every Darknet layer accepts (parse_network_cfg), with the only value darkforge can honour.
COMMON_KEYS = {"truth": 0, "onlyforward": 0, "stopbackward": 0, "dontsave": 0, "dontload": 0, "numload": 0}
COMMON_KEYS |= {"dontloadscales": 0, "learning_rate": 1, "smooth": 0}
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_REQUIRED = object()


@dataclass
class Section:
    """One [section] of a cfg: its options with their lines, and which keys a rule looked at."""

    name: str  # canonical: "convolutional" for [conv] too
    header: str  # as written
    line: int
    file: str
    index: int  # Darknet's layer index; -1 for [net]
    options: dict[str, tuple[str, int]] = field(default_factory=dict)  # key -> (value, line)
    seen: set[str] = field(default_factory=set)

    def error(self, message: str, hint: str = "", key: str | None = None) -> SpecError:
        line = self.options[key][1] if key in self.options else self.line
        where = f"[{self.header}]" + (f" (layer {self.index})" if self.index >= 0 else "")
        return SpecError(
            f"{where}: {key}: {message}" if key else f"{where}: {message}", hint, self.file, line
        )

    def get(self, key: str, kind: str, default: Any = _REQUIRED) -> Any:
        self.seen.add(key)
        if key not in self.options:
            if default is _REQUIRED:
                raise self.error("missing required key", f"add `{key}=`", key)
            return default
        return VALUES[kind](self, key, self.options[key][0])

    def read(self, keys: dict[str, tuple[str, str, Any]]) -> dict[str, Any]:
        """Spec fields from `keys` (cfg key -> (field, kind, Darknet's default))."""
        return {name: self.get(key, kind, default) for key, (name, kind, default) in keys.items()}

    def finish(self, unsupported: dict[str, Any], lenient: bool, warnings: list[str]) -> None:
        """Refuse Darknet keys set to what darkforge cannot do, and keys no rule read."""
        for key, honoured in ({**COMMON_KEYS, **unsupported} if self.index >= 0 else unsupported).items():
            if key in self.options:
                self.seen.add(key)
                value = self.options[key][0]
                if honoured is None or _number(value) != honoured:
                    self._refuse(f"`{key}={value}` has no darkforge equivalent", key, lenient, warnings)
        for key in self.options:
            if key not in self.seen:
                hint = did_you_mean(key, self.seen) if self.seen else ""
                self._refuse(f"unknown key {key!r}", key, lenient, warnings, hint)

    def _refuse(self, message: str, key: str, lenient: bool, warnings: list[str], hint: str = "") -> None:
        error = self.error(message, hint or "remove it (or convert with --lenient to ignore it)", key)
        if not lenient:
            raise error
        warnings.append(f"{error.file}:{error.line}: {error.message}: ignored")


def _number(text: str) -> float | None:
    return float(text) if _FLOAT.fullmatch(text) else None


def _int(s: Section, key: str, text: str) -> int:
    if not _INT.fullmatch(text):
        raise s.error(f"expected an integer, got {text!r}", key=key)
    return int(text)


def _float(s: Section, key: str, text: str) -> float:
    if not _FLOAT.fullmatch(text):
        raise s.error(f"expected a number, got {text!r}", key=key)
    return float(text)


def _flag(s: Section, key: str, text: str) -> bool:
    if text not in ("0", "1"):
        raise s.error(f"expected 0 or 1, got {text!r}", key=key)
    return text == "1"


def _list(item: Callable[[Section, str, str], Any]) -> Callable[[Section, str, str], list[Any]]:
    return lambda s, key, text: [item(s, key, part) for part in text.split(",")]


def _pairs(s: Section, key: str, text: str) -> list[tuple[int | float, int | float]]:
    values = [int(v) if _INT.fullmatch(v) else _float(s, key, v) for v in text.split(",")]
    if len(values) % 2:
        raise s.error(f"needs (width, height) pairs, got {len(values)} numbers", key=key)
    return list(zip(values[::2], values[1::2], strict=True))


def _activation(s: Section, key: str, text: str) -> str:
    if text not in ACTIVATIONS:
        raise s.error(f"unknown activation {text!r}", did_you_mean(text, ACTIVATIONS), key)
    return ACTIVATIONS[text]


def _choice(*names: str) -> Callable[[Section, str, str], str]:
    def parse(s: Section, key: str, text: str) -> str:
        if text not in names:
            raise s.error(f"unknown value {text!r}", did_you_mean(text, names), key)
        return text

    return parse


VALUES: dict[str, Callable[[Section, str, str], Any]] = {
    "int": _int,
    "float": _float,
    "flag": _flag,
    "noflag": lambda s, key, text: not _flag(s, key, text),
    "ints": _list(_int),
    "floats": _list(_float),
    "pairs": _pairs,
    "activation": _activation,
    "policy": _choice("constant", "step", "exp", "poly", "steps", "sigmoid", "random"),
    "cost": _choice("sse", "masked", "smooth", "L1", "seg", "wgan"),
}

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

    def tensor(self, target: int) -> Tensor:
        if target < 0:
            return Tensor(self.input, "the input")
        return Tensor(self.shapes[target], f"layer {target}")


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
    if padding != size // 2:
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
    return _make(s, MaxPool, {"size": size, "stride": None if stride == size else stride, "padding": padding})


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
    spec._source = Source(str(path), {("layers", s.index): (s.line, 1) for s in sections[1:]})
    plan(spec)  # the whole graph once more, as `validate` sees it
    return Converted(spec, warnings)


def read_cfg(path: str | os.PathLike[str]) -> list[Section]:
    """Split a cfg into sections the way Darknet's read_cfg does, refusing what it would misread."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()[: MAX_BYTES + 1]
    except FileNotFoundError:
        raise SpecError("no such file", "check the path", name) from None
    except OSError as e:
        raise SpecError(f"cannot read: {e.strerror}", file=name) from None
    if len(raw) > MAX_BYTES:
        raise SpecError(f"file is larger than {MAX_BYTES // 2**20} MiB", "is this a .cfg?", name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"byte {e.start} is not UTF-8", "is this a .cfg?", name) from None
    sections: list[Section] = []
    for number, written in enumerate(text.splitlines(), 1):
        line = "".join(written.split())  # Darknet's strip(): every space and tab goes
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]") or len(line) < 3:
                raise SpecError(
                    f"bad section header {written.strip()!r}", "write e.g. [convolutional]", name, number
                )
            header = line[1:-1]
            index = len(sections) - 1
            canonical = SECTION_ALIASES.get(header, header)
            if (canonical == "net") != (index == -1):
                where = "the first section must be [net]" if index == -1 else "[net] must come first, once"
                raise SpecError(where, "Darknet reads the input size from it", name, number)
            sections.append(Section(canonical, header, number, name, index))
            continue
        key, eq, value = line.partition("=")
        if not sections:
            raise SpecError(f"{key!r} comes before any [section]", "start with [net]", name, number)
        section = sections[-1]
        if not eq or not key or not value:
            raise SpecError(
                f"[{section.header}]: expected key=value, got {written.strip()!r}", "", name, number
            )
        if "#" in value or ";" in value:
            raise SpecError(
                f"{key}: comment after the value: Darknet deletes spaces and reads {value!r}",
                "put the comment on a line of its own",
                name,
                number,
            )
        if key in section.options:
            raise SpecError(f"duplicate key {key!r} in [{section.header}]", "keep one", name, number)
        section.options[key] = (value, number)
    if not sections:
        raise SpecError("no sections", "a .cfg starts with [net]", name, 1)
    return sections
