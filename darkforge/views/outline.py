"""Drawing a network as it is written: one node per layer, one cluster per composite layer (a block
use, a stage, a repeated layer) holding the layers it is made of, one level down, with ×N for
repeats; composites inside a cluster are one node each ("Bottleneck ×5"). ResNet-50 and
EfficientNet-B0 come out in a few dozen nodes, whatever their depth.

Clusters carry no graphviz label (an edge entering a cluster would run through it): the title is
a plain-text node beside the cluster's first node, on its rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import graphviz

from darkforge.errors import SpecError
from darkforge.spec.base import INPUT, LayerSpec, Shape, fmt_shape
from darkforge.spec.blocks import BlockUse
from darkforge.spec.graph import LayerInfo, Scope, walk
from darkforge.spec.shapes import Plan
from darkforge.views.looks import (
    BLOCK,
    CIRCLE,
    RUN_BOX,
    SKIP,
    STAGE_BOX,
    count,
    draw_taps,
    html_label,
    join,
    look,
    merged,
)

TITLE = {"shape": "plaintext", "style": "", "fontsize": "12"}


def composite(spec: LayerSpec, inputs: Sequence[Shape]) -> tuple[list[LayerSpec], int] | None:
    """What a cluster shows: the layer's parts, or one copy of a repeated layer."""
    if spec.repeat > 1:
        return [spec.copy_at(0)], 0
    return None if spec.repeat == 0 else spec.composition(inputs)


def uses_outline(p: Plan) -> bool:
    """Networks with user blocks or repeats are drawn as written; the rest from the flat spelling."""
    return any(info.spec.repeat > 1 or isinstance(info.spec, BlockUse) for info in p.layers)


class OutlinePainter:
    def __init__(self, graph: graphviz.Digraph, p: Plan) -> None:
        self.graph, self.p = graph, p
        self.node_of: dict[int, str] = {INPUT: "input"}
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        self.types: set[str] = set()  # the layer types drawn, for the legend
        self.repeats = False  # a dashed ×N box was drawn
        self.collects = False  # a repeat that concatenates its copies' outputs was drawn

    def paint(self) -> None:
        self.graph.node(
            "input", html_label("input", fmt_shape(self.p.input)), style="filled,bold", fillcolor="white"
        )
        for info in self.p.layers:
            shapes = [self.p.shape_of(s) for s in info.sources]
            sources = [self.node_of[s] for s in info.sources]
            parts = composite(info.spec, shapes)
            if parts is None:
                self.node_of[info.index] = self.layer(self.graph, f"L{info.index}", info, sources, shapes)
            else:
                self.node_of[info.index] = self.cluster(info, parts, sources, shapes)
        for k, index in enumerate(self.p.outputs):
            shape = fmt_shape(self.p.shape_of(index))
            title = f"output {k + 1}" if len(self.p.outputs) > 1 else "output"
            label = html_label(title, shape, note=self.p.layers[index].spec.id or "")
            self.graph.node(f"output{k}", label, style="filled,bold", fillcolor="white")
            self.edges.append((self.node_of[index], f"output{k}", {"label": f" {shape}"}))
        for tail, head, attrs in merged(self.edges):
            self.graph.edge(tail, head, **attrs)

    def taps(self, names: Sequence[str]) -> None:
        draw_taps(self.graph, names, self.p, self.node_of)

    def cluster(
        self, info: LayerInfo, parts: tuple[list[LayerSpec], int], sources: list[str], shapes: list[Shape]
    ) -> str:
        layers, output = parts
        spec = info.spec
        names = spec.input_names(len(shapes)) if spec.repeat == 1 else ["input"]
        inner = walk(layers, Scope(tuple(zip(names, shapes, strict=False)), _unreachable))
        prefix = f"L{info.index}_"
        with self.graph.subgraph(name=f"cluster_{info.index}") as box:
            box.attr(label="", **STAGE_BOX)
            nodes: dict[int, str] = {-(k + 1): name for k, name in enumerate(sources)}
            inner_shapes = {-(k + 1): shape for k, shape in enumerate(shapes)}
            inner_shapes |= {i.index: i.output for i in inner}
            for part in inner:
                part_shapes = [inner_shapes[s] for s in part.sources]
                part_sources = [nodes[s] for s in part.sources]
                nodes[part.index] = self.layer(box, f"{prefix}{part.index}", part, part_sources, part_shapes)
            title = f"{prefix}title"
            repeat = f"  {times(spec)}" if spec.repeat > 1 else ""
            self.collects |= spec.collect and spec.repeat > 1
            what = spec.type if spec.id is None else f"{spec.id}  ·  {spec.type}"
            note = params_note(info.cost.params, spec.repeat)
            # Graphviz refuses an empty <FONT></FONT>: a block without weights has no note line
            small = f"<BR/><FONT POINT-SIZE='9'>{escape(note)}</FONT>" if note else ""
            box.node(title, f"<<B>{escape(what)}{repeat}</B>{small}>", **TITLE)
            with box.subgraph() as rank:  # the title beside the first node, not across an edge
                rank.attr(rank="same")
                rank.node(title)
                rank.node(nodes[0])
        return nodes[output]

    def layer(
        self, graph: graphviz.Digraph, name: str, info: LayerInfo, sources: list[str], shapes: list[Shape]
    ) -> str:
        spec = info.spec
        self.types.add(spec.type)
        style = look(info)
        one = spec.copy_at(0) if spec.repeat > 1 else spec
        parts = one.composition(shapes) if spec.repeat else None
        repeat = f" {times(spec)}" if spec.repeat > 1 else ""
        self.collects |= spec.collect and spec.repeat > 1
        note = join(spec.id or "", params_note(info.cost.params, spec.repeat))
        if parts is not None and repeat:  # repeated: in a dashed box marked ×N, as runs are drawn
            inside = parts_text(parts[0])
            self.repeats = True
            with graph.subgraph(name=f"cluster_{name}") as box:
                box.attr(label=f"<<B>{repeat.strip()}</B>>", **RUN_BOX)
                box.node(name, html_label(f"{spec.type} ×{spec.repeat}", inside, note=note), fillcolor=BLOCK)
        elif parts is not None:  # a composite inside a cluster: one node naming its parts
            inside = parts_text(parts[0])
            graph.node(name, html_label(f"{spec.type}{repeat}", inside, note=note), fillcolor=BLOCK)
        elif spec.repeat == 0:  # no copy: the input passes
            graph.node(
                name, html_label(f"{spec.type} ×0", "left out: passes its input"), fillcolor=style.fill
            )
        elif style.symbol and not repeat and getattr(spec, "activation", "linear") == "linear":
            graph.node(name, style.symbol, fillcolor=style.fill, **CIRCLE)
        else:
            details = style.details(spec)
            label = html_label(f"{spec.type}{repeat}", details, note=note, dead=info.cost.dead_params)
            graph.node(name, label, fillcolor=style.fill)
        for k, (source, shape) in enumerate(zip(sources, shapes, strict=True)):
            main = k == 0 and info.sources[0] == info.index - 1
            attrs = {"label": f" {fmt_shape(shape)}", **({"weight": "10"} if main else SKIP)}
            self.edges.append((source, name, attrs))
        return name


def times(spec: LayerSpec) -> str:
    """'×3' over a repeated layer's box; '×3, concatenated' where it collects every copy's output."""
    return f"×{spec.repeat}, concatenated" if spec.collect else f"×{spec.repeat}"


def params_note(params: int, repeat: int) -> str:
    """'216k params'; a layer repeated N times shows its total and the copy's share, the same at
    the top level (a cluster's title) and inside a cluster (one node), so the numbers add up."""
    if not params:
        return ""
    if repeat == 1:
        return f"{count(params)} params"
    return f"{count(params)} params ({repeat} × {count(params // repeat)})"


def parts_text(parts: Sequence[LayerSpec]) -> str:
    """Every part of a collapsed composite, in order of first appearance, equal ones counted:
    ResNet-50's first Bottleneck reads 'Conv 1×1 relu, Conv 3×3 relu, Conv 1×1 ×2, + relu'
    (its third conv and the projection are the two plain 1×1s)."""
    counts: dict[str, int] = {}
    for layer in parts:
        name = _short(layer)
        counts[name] = counts.get(name, 0) + layer.repeat
    return ", ".join(name if n == 1 else f"{name} ×{n}" for name, n in counts.items())


def _short(layer: LayerSpec) -> str:
    """A part in a word or two: 'Conv 3×3', 'Conv 1×1 gelu', '+ relu', 'Bottleneck'."""
    size = getattr(layer, "size", None)
    if layer.type in ("Conv", "ConvBnLeaky") and isinstance(size, int):
        act = getattr(layer, "activation", "linear")
        shown = "" if act == "linear" or layer.type == "ConvBnLeaky" else f" {act}"
        return f"{layer.type} {size}×{size}{shown}"
    if layer.type == "Shortcut":
        act = getattr(layer, "activation", "linear")
        return "+" if act == "linear" else f"+ {act}"
    return layer.type


def _unreachable(message: str, path: tuple[object, ...], hint: str) -> SpecError:
    # the plan already walked every composite, so its parts walk again without errors
    return SpecError(message, hint, path=path)


__all__ = ["OutlinePainter", "composite", "uses_outline"]
