"""The topology as a table, as JSON (docs/cli.md), or as Darknet's own per-layer rows.

Everything here reads the static Plan, so a summary needs no torch and no forward pass. torchinfo
would need both (and a model built at full size); tests compare these numbers with torch instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from darkforge.spec.base import INPUT, Shape, fmt_shape
from darkforge.spec.shapes import LayerInfo, Plan, flatten, plan


def dead_weight_warnings(p: Plan) -> list[str]:
    """Kernel taps that only ever cover zero padding never receive a gradient (docs/design.md)."""
    if not p.dead_params:
        return []
    where = ", ".join(
        f"{info.name} ({fmt_shape(_inputs(p, info)[0])} in)" for info in p.layers if info.cost.dead_params
    )
    share = 100 * p.dead_params / max(p.params, 1)
    return [
        f"{p.dead_params:,} parameters ({share:.1f}%) can never see data: their kernel taps only "
        f"cover zero padding on small maps in {where}; a larger --input-size or fewer stages uses them"
    ]


def _inputs(p: Plan, info: LayerInfo) -> list[Shape]:
    return [p.shape_of(s) for s in info.sources]


def _source_name(p: Plan, index: int) -> str:
    return "input" if index == INPUT else p.layers[index].name


def as_dict(p: Plan) -> dict[str, Any]:
    return {
        "name": p.spec.name,
        "input": list(p.input),
        "params": p.params,
        "macs": p.macs,
        "bflops": round(p.bflops, 6),
        "outputs": [list(s) for s in p.output_shapes],
        "layers": [
            {
                "index": info.index,
                "id": info.spec.id,
                "type": info.spec.type,
                "from": info.spec.from_,
                "inputs": [_source_name(p, s) for s in info.sources],
                "output": list(info.output),
                "params": info.cost.params,
                "macs": info.cost.macs,
                "dead_params": info.cost.dead_params,
            }
            for info in p.layers
        ],
        "dead_params": p.dead_params,
        "warnings": dead_weight_warnings(p),
    }


def table(p: Plan, taps: Sequence[str] = ()) -> str:
    """The layer table; `taps` (ids or indices, as `build(..., features=...)` takes) get a
    `tap` column numbering the maps in the order the feature extractor returns them."""
    rows = [("#", "id", "type", "from", "output", "params", "MACs", *(("tap",) if taps else ()))]
    tap_of = {str(name): k for k, name in enumerate(taps)}
    for info in p.layers:
        tap = tap_of.get(info.spec.id or "", tap_of.get(str(info.index)))
        rows.append(
            (
                str(info.index),
                info.spec.id or "",
                info.spec.type,
                ",".join(_source_name(p, s) for s in info.sources),
                fmt_shape(info.output),
                f"{info.cost.params:,}",
                f"{info.cost.macs:,}",
                *((f"<- {tap}" if tap is not None else "",) if taps else ()),
            )
        )
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    right = {0, 5, 6}
    lines = [
        "  ".join(
            cell.rjust(w) if k in right else cell.ljust(w)
            for k, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join([_title(p), "", *lines, "", *_totals(p)])


def _title(p: Plan) -> str:
    classes = f", {p.spec.classes} classes" if p.spec.classes else ""
    return f"{p.spec.name}: input {fmt_shape(p.input)}{classes}"


def _totals(p: Plan) -> list[str]:
    outputs = ", ".join(fmt_shape(s) for s in p.output_shapes)
    lines = [
        f"params   {p.params:,}",
        f"MACs     {p.macs:,} ({p.macs / 1e9:.3f} G)",
        f"BFLOPs   {p.bflops:.3f} (Darknet's count: 2 × conv/connected MACs)",
        f"outputs  {outputs}",
    ]
    return lines + [f"warning: {w}" for w in dead_weight_warnings(p)]


# Darknet's start-up rows, e.g.
# "    1 conv     64  3 x 3 / 2   256 x 256 x  32   ->   128 x 128 x  64  0.604 BFLOPs"
def _dims(shape: Shape) -> str:
    if len(shape) == 3:
        c, h, w = shape
        return f"{w:4d} x{h:4d} x{c:4d}"
    return f"{shape[0]:16d}"


def _io(p: Plan, info: LayerInfo) -> str:
    text = f"{_dims(_inputs(p, info)[0])}   -> {_dims(info.output)}"
    return text + (f"  {2 * info.cost.macs / 1e9:.3f} BFLOPs" if info.cost.macs else "")


def _conv_row(p: Plan, info: LayerInfo) -> str:
    spec: Any = info.spec
    kind = "conv" if spec.groups == 1 else f"conv{spec.groups}g"
    return f"{kind:<7}{spec.filters:5d} {spec.size:2d} x{spec.size:2d} /{spec.stride:2d}  {_io(p, info)}"


def _pool_row(name: str) -> Callable[[Plan, LayerInfo], str]:
    def row(p: Plan, info: LayerInfo) -> str:
        spec: Any = info.spec
        return f"{name:<12} {spec.size:2d} x{spec.size:2d} /{spec.stride or spec.size:2d}  {_io(p, info)}"

    return row


def _plain_row(name: str) -> Callable[[Plan, LayerInfo], str]:
    return lambda p, info: f"{name:<25}{_io(p, info)}"


DARKNET_ROWS: dict[str, Callable[[Plan, LayerInfo], str]] = {
    "ConvBnLeaky": _conv_row,
    "Conv": _conv_row,
    "Shortcut": lambda p, info: f"{'res':<7}{info.sources[-1]:5d}{'':13}{_io(p, info)}",
    "Route": lambda p, info: "route  " + " ".join(str(s) for s in info.sources),
    "MaxPool": _pool_row("max"),
    "AvgPool": _pool_row("avg"),
    "GlobalAvgPool": _plain_row("avg"),
    "Upsample": lambda p, info: f"{'upsample':<20}{info.spec.stride:2d}x  {_io(p, info)}",  # type: ignore[attr-defined]
    "Linear": _plain_row("connected"),
    "Connected": _plain_row("connected"),
    "DarknetShortcut": lambda p, info: f"{'res':<7}{info.sources[-1]:5d}{'':13}{_io(p, info)}",
    "Dropout": lambda p, info: f"{'dropout':<12}p = {info.spec.p:.2f}{'':5}{_io(p, info)}",  # type: ignore[attr-defined]
}


def darknet_rows(spec_plan: Plan) -> str:
    """The network as Darknet prints it at start-up: flat layers, Darknet's numbering."""
    p = plan(flatten(spec_plan.spec))
    lines = ["layer     filters    size              input                output"]
    for info in p.layers:
        row = DARKNET_ROWS.get(info.spec.type, _plain_row(info.spec.type.lower()))
        lines.append(f"{info.index:5d} {row(p, info)}")
    return "\n".join([*lines, "", *_totals(spec_plan)])
