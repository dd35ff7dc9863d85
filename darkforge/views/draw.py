"""Spec -> graphviz.Digraph: the network as a picture, from the static Plan (no torch, no forward pass).

The picture is drawn from Darknet's flat spelling (`shapes.flatten`), so `darknet53.yaml` and
`darknet53-flat.yaml` look the same. Two steps:

1. Recognise stages and runs of residual blocks (`darkforge.structure`).
2. Emit it (`_Painter`). One cluster per stage; a run is one "ResidualBlock ×N" node and a "+" node
   inside a dashed "×N" box, the skip drawn around the block; `expand=True` draws every flat layer.
   Every edge carries the shape of the tensor it moves.

`draw` never renders (building a graph needs no `dot` binary, so tests and `--format dot` work
without Graphviz); the CLI renders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import graphviz

from darkforge.spec.base import INPUT, fmt_shape
from darkforge.spec.shapes import LayerInfo, Plan, flatten, plan
from darkforge.views.structure import Group, Span, structure_of

RANKDIRS = ("TB", "LR")
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
    if spec.activation != type(spec).model_fields["activation"].default:
        text += f", {spec.activation}"
    return text


def _add(spec: Any) -> str:
    return "add" if spec.activation == "linear" else f"add, then {spec.activation}"


def _route(spec: Any) -> str:
    return "concatenate channels" if len(spec.sources()) > 1 else "an earlier layer's output"


def _pool(spec: Any) -> str:
    return f"{spec.size}×{spec.size} /{spec.stride or spec.size}"


# Keyed by layer type, as the registry is; a type missing here (a plugin) gets Look().
LOOKS: dict[str, Look] = {
    "ConvBnLeaky": Look(_conv, CONV, legend="ConvBnLeaky = conv → batch norm → leaky ReLU"),
    "Conv": Look(_conv, CONV, legend="Conv = a plain convolution"),
    "Shortcut": Look(_add, JOIN, "+", legend="+ adds its inputs (Shortcut)"),
    "Route": Look(_route, JOIN),
    "Upsample": Look(lambda s: f"×{s.stride} nearest", POOL),
    "MaxPool": Look(_pool, POOL),
    "AvgPool": Look(_pool, POOL),
    "GlobalAvgPool": Look(lambda s: "mean over H×W", POOL),
    "Linear": Look(lambda s: f"{s.out} outputs", HEAD),
    "Dropout": Look(lambda s: f"p = {s.p:g}", HEAD),
    "Flatten": Look(lambda s: "C×H×W → vector", HEAD),
}


def look(info: LayerInfo) -> Look:
    return LOOKS.get(info.spec.type, Look())


def draw(p: Plan, *, expand: bool = False, rankdir: str = "TB", taps: Sequence[str] = ()) -> graphviz.Digraph:
    """The network of `p` as a graph: stages clustered, residual runs collapsed unless `expand`;
    each of `taps` (layer ids, as `build(..., features=...)` takes) a dashed node off its layer."""
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {RANKDIRS}, not {rankdir!r}")
    flat = plan(flatten(p.spec))
    items = structure_of(p, flat)
    title = _title(p, flat, items, expand)
    graph = graphviz.Digraph(
        p.spec.name, graph_attr={**GRAPH, "rankdir": rankdir, "label": title}, node_attr=NODE, edge_attr=EDGE
    )
    painter = _Painter(graph, flat, expand, rankdir)
    painter.paint(items)
    painter.taps(taps)
    return graph


def _title(p: Plan, flat: Plan, items: Sequence[Span | Group], expand: bool) -> str:
    """Name and totals, then a legend of what this picture uses, two items a line."""
    types = {info.spec.type for info in flat.layers}
    legend = [x.legend for name, x in LOOKS.items() if name in types and x.legend]
    runs = any(unit.blocks for item in items for unit in (item.units if isinstance(item, Group) else [item]))
    if runs and not expand:
        legend.append("×N: the dashed box repeats N times")
    if any(i.sources != (i.index - 1,) for i in flat.layers):
        legend.append("dashed blue: a skip connection or branch")
    legend.append("edges: the shape of the tensor (C×H×W)")
    lines = ["   ·   ".join(escape(x) for x in legend[k : k + 2]) for k in range(0, len(legend), 2)]
    totals = f"input {fmt_shape(p.input)} · {p.params:,} params · {p.bflops:.3g} BFLOPs"
    head = f"<B>{escape(p.spec.name)}</B>   {totals}"
    small = "".join(f'<BR/><FONT POINT-SIZE="10" COLOR="#444444">{line}</FONT>' for line in lines)
    return f"<{head}{small}>"


# -- painting ---------------------------------------------------------------------------------


def _count(n: int) -> str:
    """18560 -> '18.6k', 4723712 -> '4.72M': short enough for a node label."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.3g}{suffix}"
    return str(n)


def _label(title: str, *lines: str, note: str = "", dead: int = 0) -> str:
    """An HTML-like label: bold title, plain lines, a small grey note, a red word on dead weights."""
    rows = [f"<B>{escape(title)}</B>", *(escape(line) for line in lines if line)]
    if note:
        rows.append(f'<FONT POINT-SIZE="9" COLOR="#555555">{escape(note)}</FONT>')
    if dead:  # kernel taps that only ever cover zero padding never learn
        rows.append(
            f'<FONT POINT-SIZE="9" COLOR="#b2182b">{_count(dead)} weights see only zero padding</FONT>'
        )
    return "<" + "<BR/>".join(rows) + ">"


def _join(*parts: str) -> str:
    return ", ".join(x for x in parts if x)


class _Painter:
    """Emits nodes (inside their clusters), then edges; remembers the node giving each layer's output."""

    def __init__(self, graph: graphviz.Digraph, flat: Plan, expand: bool, rankdir: str) -> None:
        self.graph = graph
        self.flat = flat
        self.expand = expand
        self.rankdir = rankdir
        self.node_of: dict[int, str] = {INPUT: "input"}
        # Nodes on one straight line share a graphviz `group`: a layer joins its main input's line.
        self.line_of: dict[str, str] = {"input": "input"}
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        self.titles: set[str] = set()  # ids already shown as cluster titles

    def paint(self, items: Sequence[Span | Group]) -> None:
        self.graph.node(
            "input", _label("input", fmt_shape(self.flat.input)), style="filled,bold", fillcolor="white"
        )
        for item in items:
            if isinstance(item, Span):
                self.unit(self.graph, item)
                continue
            self.titles.add(item.title)
            with self.graph.subgraph(name=f"cluster_{item.units[0].first}") as cluster:
                title = f"<B>{escape(item.title)}</B>"
                if item.subtitle:
                    title += f'   <FONT POINT-SIZE="10">{escape(item.subtitle)}</FONT>'
                cluster.attr(label=f"<{title}>", **STAGE_BOX)
                for unit in item.units:
                    self.unit(cluster, unit)
        self.outputs()
        for tail, head, attrs in self.edges:
            self.graph.edge(tail, head, **attrs)

    def unit(self, graph: graphviz.Digraph, unit: Span) -> None:
        if unit.blocks and not self.expand:
            self.run(graph, unit)
        else:
            for index in range(unit.first, unit.last + 1):
                self.layer(graph, self.flat.layers[index])

    def layer(self, graph: graphviz.Digraph, info: LayerInfo) -> None:
        name, style = f"L{info.index}", look(info)
        main = info.index - 1  # a layer that reads the layer before stays on its line
        line = self.line_of[self.node_of[main]] if info.sources[:1] == (main,) else name
        note = _join(
            self.shown_id(info),
            f"#{info.index}" if self.expand else "",  # Darknet's layer number
            f"{_count(info.cost.params)} params" if info.cost.params else "",
        )
        if style.symbol:
            graph.node(
                name,
                style.symbol,
                tooltip=self.tooltip(info.index, info.index, info.spec.type),
                group=line,
                fillcolor=style.fill,
                **CIRCLE,
            )
        else:
            label = _label(info.spec.type, style.details(info.spec), note=note, dead=info.cost.dead_params)
            tooltip = self.tooltip(info.index, info.index, info.spec.type)
            graph.node(name, label, fillcolor=style.fill, group=line, tooltip=tooltip)
        self.line_of[name] = line
        for position, source in enumerate(info.sources):
            # A layer's first input, when it is the layer before, is the main line; the rest jump.
            self.connect(source, name, skip=position > 0 or source != info.index - 1)
        self.node_of[info.index] = name

    def run(self, graph: graphviz.Digraph, unit: Span) -> None:
        """N identical residual blocks: one block node and its "+", in a dashed box marked ×N."""
        a, b, add = self.flat.layers[unit.first : unit.first + 3]
        costs = [self.flat.layers[k].cost for k in range(unit.first, unit.last + 1)]
        params, dead = sum(c.params for c in costs), sum(c.dead_params for c in costs)
        body, plus = f"R{unit.first}", f"A{unit.first}"
        x = unit.first - 1
        line = self.line_of[self.node_of[x]]
        label = _label(
            f"ResidualBlock ×{unit.blocks}",
            *(f"{i.spec.type} {look(i).details(i.spec)}".strip() for i in (a, b)),
            "" if (act := getattr(add.spec, "activation", "linear")) == "linear" else f"+ skip, then {act}",
            note=_join(self.shown_id(self.flat.layers[unit.last]), f"{_count(params)} params"),
            dead=dead,
        )
        with graph.subgraph(name=f"cluster_run{unit.first}") as box:
            box.attr(label=f"<<B>×{unit.blocks}</B>>", **RUN_BOX)
            tooltip = self.tooltip(unit.first, unit.last, f"ResidualBlock ×{unit.blocks}")
            box.node(body, label, fillcolor=BLOCK, group=line, tooltip=tooltip)
            box.node(
                plus,
                "+",
                group=line,
                tooltip="x + F(x): the block's input added back",
                fillcolor=JOIN,
                **CIRCLE,
            )
        self.connect(x, body)
        self.edges.append((body, plus, {"label": f" {fmt_shape(b.output)}", "weight": "10"}))
        tail, head = SKIP_PORTS[self.rankdir]
        self.edges.append((body, plus, {**SKIP, "label": " skip", "tailport": tail, "headport": head}))
        self.node_of[unit.last] = plus
        self.line_of[plus] = line

    def tooltip(self, first: int, last: int, what: str) -> str:
        """Shown on hover in an SVG: Darknet's layer numbers, shapes and exact costs."""
        layers = self.flat.layers[first : last + 1]
        where = f"layer #{first}" if first == last else f"layers #{first}–#{last}"
        named = f" '{layers[-1].spec.id}'" if layers[-1].spec.id else ""
        inputs = ", ".join(fmt_shape(self.flat.shape_of(s)) for s in layers[0].sources)
        shapes = f"{inputs} → {fmt_shape(layers[-1].output)}"
        params, macs = sum(i.cost.params for i in layers), sum(i.cost.macs for i in layers)
        return f"{where}{named}: {what}, {shapes}, {params:,} params, {macs:,} MACs"

    def shown_id(self, info: LayerInfo) -> str:
        return info.spec.id if info.spec.id and info.spec.id not in self.titles else ""

    def connect(self, source: int, head: str, *, skip: bool = False) -> None:
        attrs = {"label": f" {fmt_shape(self.flat.shape_of(source))}"}
        attrs.update(SKIP if skip else {"weight": "10"})  # weight: keep the main line straight
        self.edges.append((self.node_of[source], head, attrs))

    def taps(self, names: Sequence[str]) -> None:
        index_of = {info.spec.id: info.index for info in self.flat.layers if info.spec.id}
        for k, name in enumerate(names):
            if name not in index_of:
                raise ValueError(f"taps: no layer with id {name!r}")
            shape = fmt_shape(self.flat.shape_of(index_of[name]))
            self.graph.node(f"tap{k}", _label(f"tap {k}", shape, note=name), style="dashed")
            self.graph.edge(self.node_of[index_of[name]], f"tap{k}", label=f" {shape}", style="dashed")

    def outputs(self) -> None:
        several = len(self.flat.outputs) > 1
        for k, index in enumerate(self.flat.outputs):
            name, shape = f"output{k}", fmt_shape(self.flat.shape_of(index))
            title = f"output {k + 1}" if several else "output"
            label = _label(title, shape, note=self.flat.layers[index].spec.id or "")
            self.graph.node(name, label, style="filled,bold", fillcolor="white")
            self.edges.append((self.node_of[index], name, {"label": f" {shape}"}))
