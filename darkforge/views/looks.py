"""How each layer type is drawn (colour, a line of key numbers, a symbol, a legend entry), and
the label helpers both painters share (darkforge.views.draw, darkforge.views.outline)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from darkforge.spec.graph import LayerInfo

FONT = "Helvetica"
BLUE = "#2166ac"
SKIP = {"style": "dashed", "color": BLUE, "fontcolor": BLUE, "penwidth": "1.4", "weight": "0"}
# Where a run's skip leaves the block (its input side) and enters "+", so it loops around the block.
SKIP_PORTS = {"TB": ("n", "e"), "LR": ("nw", "n")}
CONV, BLOCK, POOL, JOIN, HEAD, OTHER = "#d4e4f4", "#b9d3ec", "#dcefd6", "#fbe3c4", "#f6d5d5", "#eeeeee"
GRAPH = {
    "labelloc": "t",
    "fontname": FONT,
    "fontsize": "16",
    "nodesep": "0.3",
    "ranksep": "0.3",
    "newrank": "true",
}
NODE = {"fontname": FONT, "fontsize": "11", "shape": "box", "style": "rounded,filled"}
EDGE = {"fontname": FONT, "fontsize": "9", "fontcolor": "#444444", "arrowsize": "0.7"}
STAGE_BOX = {
    "style": "rounded,filled",
    "fillcolor": "#f7f7f7",
    "color": "#999999",
    "fontsize": "12",
    "labeljust": "l",
}
RUN_BOX = {"style": "dashed,rounded", "color": BLUE, "fontcolor": BLUE, "labeljust": "r", "margin": "14"}
CIRCLE = {"shape": "circle", "fixedsize": "true", "width": "0.3", "fontsize": "14"}


@dataclass(frozen=True)
class Look:
    """How a layer type is drawn: the line of key numbers under its name, and its colour."""

    details: Callable[[Any], str] = lambda spec: ""  # unknown (plugin) types: name and params only
    fill: str = OTHER
    symbol: str | None = None  # drawn as a small circle holding this symbol instead of a box
    legend: str = ""  # what a newcomer may not know, said once under the title


def _conv(spec: Any) -> str:
    stride = f" /{spec.stride}" if spec.stride > 1 else ""
    text = f"{spec.size}×{spec.size}{stride}, {spec.filters} filters"
    if spec.groups > 1:
        text += f", {spec.groups} groups"
    if getattr(spec, "dilation", 1) > 1:
        text += f", dilation {spec.dilation}"
    if spec.type == "Conv" and spec.batch_norm is not None:
        text += ", bn"
    if spec.activation != type(spec).model_fields["activation"].default:
        text += f", {spec.activation}"
    return text


def _slice(spec: Any) -> str:
    if spec.groups is not None:
        return f"channel group {spec.group + 1} of {spec.groups}"
    return f"channels {spec.start}–{spec.end - 1}"


def _add(spec: Any) -> str:
    return "add" if spec.activation == "linear" else f"add, then {spec.activation}"


def _route(spec: Any) -> str:
    return "concatenate channels" if len(spec.sources()) > 1 else "an earlier layer's output"


def _pool(spec: Any) -> str:
    ceil = ", ceil" if getattr(spec, "ceil_mode", False) else ""
    return f"{spec.size}×{spec.size} /{spec.stride or spec.size}{ceil}"


def _upsample(spec: Any) -> str:
    corners = ", aligned corners" if getattr(spec, "align_corners", None) else ""
    return f"×{spec.stride} {spec.mode}{corners}"


# Keyed by layer type, as the registry is; a type missing here (a plugin) gets Look().
LOOKS: dict[str, Look] = {
    "ConvBnLeaky": Look(
        _conv, CONV, legend="ConvBnLeaky = conv → batch norm → leaky ReLU (or the named one)"
    ),
    "Conv": Look(_conv, CONV, legend="Conv = a convolution (+ batch norm, activation when named)"),
    "Shortcut": Look(_add, JOIN, "+", legend="+ adds its inputs (Shortcut)"),
    "Route": Look(_route, JOIN),
    "Upsample": Look(_upsample, POOL),
    "MaxPool": Look(_pool, POOL),
    "AvgPool": Look(_pool, POOL),
    "GlobalAvgPool": Look(lambda s: "mean over H×W", POOL),
    "Linear": Look(lambda s: f"{s.out} outputs", HEAD),
    "Dropout": Look(lambda s: f"p = {s.p:g}", HEAD),
    "Flatten": Look(lambda s: "C×H×W → vector", HEAD),
    "Mul": Look(lambda s: "multiply by the gate", JOIN, "×", legend="× multiplies by a gate (Mul)"),
    "Slice": Look(_slice, JOIN),
    "LayerNorm": Look(lambda s: "over channels", OTHER),
    "LayerScale": Look(lambda s: "a scale per channel", OTHER),
    "DropPath": Look(lambda s: f"drop path p = {s.p:g}", OTHER),
    "AdaptiveAvgPool": Look(lambda s: "mean to {}×{}".format(*s.output_size), POOL),
    "ChannelShuffle": Look(lambda s: f"interleave {s.groups} groups", JOIN),
    "BatchNorm": Look(lambda s: "batch norm", OTHER),
    "Activation": Look(lambda s: s.activation, OTHER),
}


def look(info: LayerInfo) -> Look:
    return LOOKS.get(info.spec.type, Look())


def count(n: int) -> str:
    """18560 -> '18.6k', 4723712 -> '4.72M': short enough for a node label."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.3g}{suffix}"
    return str(n)


def html_label(title: str, *lines: str, note: str = "", dead: int = 0) -> str:
    """An HTML-like label: bold title, plain lines, a small grey note, a red word on dead weights."""
    rows = [f"<B>{escape(title)}</B>", *(escape(line) for line in lines if line)]
    if note:
        rows.append(f'<FONT POINT-SIZE="9" COLOR="#555555">{escape(note)}</FONT>')
    if dead:  # kernel taps that only ever cover zero padding never learn
        rows.append(
            f'<FONT POINT-SIZE="9" COLOR="#b2182b">{count(dead)} weights see only zero padding</FONT>'
        )
    return "<" + "<BR/>".join(rows) + ">"


def join(*parts: str) -> str:
    return ", ".join(x for x in parts if x)


def draw_taps(graph: Any, names: Sequence[str], plan: Any, node_of: dict[int, str]) -> None:
    """Each tap (a layer id of `plan`) a dashed node off the node that gives its layer's output."""
    index_of = {info.spec.id: info.index for info in plan.layers if info.spec.id}
    for k, name in enumerate(names):
        if name not in index_of:
            raise ValueError(f"taps: no layer with id {name!r}")
        shape = "×".join(map(str, plan.shape_of(index_of[name])))
        graph.node(f"tap{k}", html_label(f"tap {k}", shape, note=name), style="dashed")
        graph.edge(node_of[index_of[name]], f"tap{k}", label=f" {shape}", style="dashed")


Edge = tuple[str, str, dict[str, str]]


def merged(edges: Sequence[Edge]) -> list[Edge]:
    """Identical parallel edges (a Route reading one layer 5,000 times) as one edge labelled ×N:
    the same picture, and Graphviz lays out one edge instead of thousands. Edges that differ (a
    block's body and its skip) stay apart."""
    counts: dict[tuple[str, str, frozenset[tuple[str, str]]], int] = {}
    for tail, head, attrs in edges:
        key = (tail, head, frozenset(attrs.items()))
        counts[key] = counts.get(key, 0) + 1
    out = []
    for (tail, head, items), n in counts.items():
        attrs = dict(items)
        if n > 1:
            attrs["label"] = f"{attrs.get('label', '')} ×{n}"
        out.append((tail, head, attrs))
    return out
