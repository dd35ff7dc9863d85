"""Spec -> graphviz.Digraph: the network as a picture, from the static Plan (no torch, no forward pass).

The picture is drawn from Darknet's flat spelling (`spec.flatten`), so `darknet53.yaml` and
`darknet53-flat.yaml` look the same. Two steps:

1. Recognise stages and runs of residual blocks (`darkforge.structure`).
2. Emit it (`_Painter`). One cluster per stage; a run is one "ResidualBlock ×N" node and a "+" node
   inside a dashed "×N" box, the skip drawn around the block; `expand=True` draws every flat layer.
   Every edge carries the shape of the tensor it moves.

`draw` never renders (building a graph needs no `dot` binary, so tests and `--format dot` work
without Graphviz); the CLI renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import graphviz

from darkforge.spec.base import INPUT, fmt_shape
from darkforge.spec.shapes import LayerInfo, Plan, flatten_with_origins, plan
from darkforge.views.looks import (
    BLOCK,
    CIRCLE,
    EDGE,
    GRAPH,
    JOIN,
    LOOKS,
    NODE,
    RUN_BOX,
    SKIP,
    SKIP_PORTS,
    STAGE_BOX,
    count,
    draw_taps,
    html_label,
    join,
    look,
    merged,
)
from darkforge.views.outline import OutlinePainter, uses_outline
from darkforge.views.structure import Group, Span, structure_of

RANKDIRS = ("TB", "LR")


def draw(p: Plan, *, expand: bool = False, rankdir: str = "TB", taps: Sequence[str] = ()) -> graphviz.Digraph:
    """The network of `p` as a graph: as written (clusters for blocks and repeats) when it uses
    blocks or repeats, else from the flat spelling with stages clustered and residual runs
    collapsed; `expand` draws every flat layer. Each of `taps` (layer ids, as
    `build(..., features=...)` takes) is a dashed node off its layer."""
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {RANKDIRS}, not {rankdir!r}")
    graph = graphviz.Digraph(
        p.spec.name, graph_attr={**GRAPH, "rankdir": rankdir}, node_attr=NODE, edge_attr=EDGE
    )
    if not expand and uses_outline(p):
        outline = OutlinePainter(graph, p)
        outline.paint()
        outline.taps(taps)
        skips = any(i.sources != (i.index - 1,) for i in p.layers) or "Shortcut" in outline.types
        graph.attr(
            label=_title(p, outline.types, runs=outline.repeats, skips=skips, collects=outline.collects)
        )
        return graph
    flat_spec, origins = flatten_with_origins(p.spec)
    flat = plan(flat_spec)
    items = structure_of(p, flat, origins)
    runs = any(unit.blocks for item in items for unit in (item.units if isinstance(item, Group) else [item]))
    skips = any(i.sources != (i.index - 1,) for i in flat.layers)
    types = {info.spec.type for info in flat.layers}
    graph.attr(label=_title(p, types, runs=runs and not expand, skips=skips))
    painter = _Painter(graph, flat, expand, rankdir)
    painter.paint(items)
    painter.taps(taps)
    return graph


def _title(p: Plan, types: set[str], runs: bool, skips: bool, collects: bool = False) -> str:
    """Name and totals, then a legend of what this picture uses, two items a line."""
    legend = [x.legend for name, x in LOOKS.items() if name in types and x.legend]
    if runs:
        legend.append("×N: the dashed box repeats N times")
    if collects:
        legend.append("×N, concatenated: the output is every copy's output, along channels")
    if skips:
        legend.append("dashed blue: a skip connection or branch")
    legend.append("edges: the shape of the tensor (C×H×W)")
    lines = ["   ·   ".join(escape(x) for x in legend[k : k + 2]) for k in range(0, len(legend), 2)]
    totals = f"input {fmt_shape(p.input)} · {p.params:,} params · {p.bflops:.3g} BFLOPs"
    head = f"<B>{escape(p.spec.name)}</B>   {totals}"
    small = "".join(f'<BR/><FONT POINT-SIZE="10" COLOR="#444444">{line}</FONT>' for line in lines)
    return f"<{head}{small}>"


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
        self.first_node: dict[int, str] = {}  # a unit's first flat layer -> its first node

    def paint(self, items: Sequence[Span | Group]) -> None:
        self.graph.node(
            "input", html_label("input", fmt_shape(self.flat.input)), style="filled,bold", fillcolor="white"
        )
        for item in items:
            if isinstance(item, Span):
                self.unit(self.graph, item)
                continue
            self.titles.add(item.title)
            with self.graph.subgraph(name=f"cluster_{item.units[0].first}") as cluster:
                title = f"<B>{escape(item.title)}</B>"
                if item.subtitle:
                    title += f'<BR/><FONT POINT-SIZE="10">{escape(item.subtitle)}</FONT>'
                cluster.attr(label="", **STAGE_BOX)
                for unit in item.units:
                    self.unit(cluster, unit)
                # the title as a node beside the stage's first node: an edge never crosses it
                name = f"T{item.units[0].first}"
                cluster.node(name, f"<{title}>", shape="plaintext", style="", fontsize="12")
                with cluster.subgraph() as rank:
                    rank.attr(rank="same")
                    rank.node(name)
                    rank.node(self.first_node[item.units[0].first])
        self.outputs()
        for tail, head, attrs in merged(self.edges):
            self.graph.edge(tail, head, **attrs)

    def unit(self, graph: graphviz.Digraph, unit: Span) -> None:
        self.first_node[unit.first] = (
            f"R{unit.first}" if unit.blocks and not self.expand else f"L{unit.first}"
        )
        if unit.blocks and not self.expand:
            self.run(graph, unit)
        else:
            for index in range(unit.first, unit.last + 1):
                self.layer(graph, self.flat.layers[index])

    def layer(self, graph: graphviz.Digraph, info: LayerInfo) -> None:
        name, style = f"L{info.index}", look(info)
        main = info.index - 1  # a layer that reads the layer before stays on its line
        line = self.line_of[self.node_of[main]] if info.sources[:1] == (main,) else name
        note = join(
            self.shown_id(info),
            f"#{info.index}" if self.expand else "",  # Darknet's layer number
            f"{count(info.cost.params)} params" if info.cost.params else "",
        )
        if style.symbol and getattr(info.spec, "activation", "linear") == "linear":
            graph.node(
                name,
                style.symbol,
                tooltip=self.tooltip(info.index, info.index, info.spec.type),
                group=line,
                fillcolor=style.fill,
                **CIRCLE,
            )
        else:
            label = html_label(
                info.spec.type, style.details(info.spec), note=note, dead=info.cost.dead_params
            )
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
        label = html_label(
            f"ResidualBlock ×{unit.blocks}",
            *(f"{i.spec.type} {look(i).details(i.spec)}".strip() for i in (a, b)),
            "" if (act := getattr(add.spec, "activation", "linear")) == "linear" else f"+ skip, then {act}",
            note=join(self.shown_id(self.flat.layers[unit.last]), f"{count(params)} params"),
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
        sources = layers[0].sources
        inputs = ", ".join(fmt_shape(self.flat.shape_of(s)) for s in sources[:4])
        inputs += f", … ({len(sources)} inputs)" if len(sources) > 4 else ""
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
        draw_taps(self.graph, names, self.flat, self.node_of)

    def outputs(self) -> None:
        several = len(self.flat.outputs) > 1
        for k, index in enumerate(self.flat.outputs):
            name, shape = f"output{k}", fmt_shape(self.flat.shape_of(index))
            title = f"output {k + 1}" if several else "output"
            label = html_label(title, shape, note=self.flat.layers[index].spec.id or "")
            self.graph.node(name, label, style="filled,bold", fillcolor="white")
            self.edges.append((self.node_of[index], name, {"label": f" {shape}"}))
