"""The topology as a table, as JSON (docs/cli.md), or as Darknet's own per-layer rows.

Everything here reads the static Plan, so a summary needs no torch and no forward pass. torchinfo
would need both (and a model built at full size); tests compare these numbers with torch instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from darkforge.spec import lint
from darkforge.spec.base import INPUT, LayerSpec, Shape, fmt_shape
from darkforge.spec.shapes import LayerInfo, Plan
from darkforge.views import memory
from darkforge.views.darknet_table import darknet_table, fork_total

TRAIN_BATCH = 256  # the default recipe's batch: the batch of the training-memory estimate


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


def layer_notes(p: Plan) -> list[str]:
    """What a layer says about itself beyond its shape (a detection head: classes, strides)."""
    notes = (f"{info.name}: {info.spec.note(_inputs(p, info), p.input)}" for info in p.layers)
    return [note for note in notes if not note.endswith(": ")]


def _inputs(p: Plan, info: LayerInfo) -> list[Shape]:
    return [p.shape_of(s) for s in info.sources]


def _source_name(p: Plan, index: int) -> str:
    return "input" if index == INPUT else p.layers[index].name


def as_dict(p: Plan) -> dict[str, Any]:
    acts = memory.layer_activations(p)
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
                "repeat": info.spec.repeat,
                "collect": info.spec.collect,
                "from": info.spec.from_,
                "inputs": [_source_name(p, s) for s in info.sources],
                "output": list(info.output),
                "params": info.cost.params,
                "macs": info.cost.macs,
                "dead_params": info.cost.dead_params,
                "activation_bytes": act,
            }
            for info, act in zip(p.layers, acts, strict=True)
        ],
        "memory": memory.totals(p, TRAIN_BATCH, acts),
        "dead_params": p.dead_params,
        "notes": layer_notes(p),
        "warnings": dead_weight_warnings(p),
    }


def type_text(spec: LayerSpec) -> str:
    """'Bottleneck', 'Bottleneck ×3', 'Bottleneck ×3 collected' (its copies' outputs concatenated)."""
    if spec.repeat == 1:
        return spec.type
    return f"{spec.type} ×{spec.repeat}" + (" collected" if spec.collect else "")


def table(p: Plan, taps: Sequence[str] = (), warn: bool = False) -> str:
    """The layer table; `taps` (ids or indices, as `build(..., features=...)` takes) get a
    `tap` column numbering the maps in the order the feature extractor returns them. `warn`:
    the dead-weight warning in full, else a one-row note (the shipped darknet53 at 32 px has them
    by design, and a warning on every summary of the file newcomers edit reads as a fault)."""
    acts = memory.layer_activations(p)
    rows = [
        ("#", "id", "type", "from", "output", "params", "MACs", "activations", *(("tap",) if taps else ()))
    ]
    tap_of = {str(name): k for k, name in enumerate(taps)}
    for info, act in zip(p.layers, acts, strict=True):
        tap = tap_of.get(info.spec.id or "", tap_of.get(str(info.index)))
        rows.append(
            (
                str(info.index),
                info.spec.id or "",
                type_text(info.spec),
                ",".join(_source_name(p, s) for s in info.sources),
                fmt_shape(info.output),
                f"{info.cost.params:,}",
                f"{info.cost.macs:,}",
                memory.fmt_bytes(act),
                *((f"<- {tap}" if tap is not None else "",) if taps else ()),
            )
        )
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    right = {0, 5, 6, 7}
    lines = [
        "  ".join(
            cell.rjust(w) if k in right else cell.ljust(w)
            for k, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    totals = [*_totals(p, warn), *memory.totals_lines(p, TRAIN_BATCH, acts)]
    return "\n".join([_title(p), "", *lines, "", *totals])


def _title(p: Plan) -> str:
    classes = f", {p.spec.classes} classes" if p.spec.classes else ""
    return f"{p.spec.name}: input {fmt_shape(p.input)}{classes}"


def _totals(p: Plan, warn: bool = True) -> list[str]:
    outputs = ", ".join(fmt_shape(s) for s in p.output_shapes)
    lines = [
        f"params   {p.params:,}",
        f"MACs     {p.macs:,} ({p.macs / 1e9:.3f} G)",
        f"BFLOPs   {p.bflops:.3f} (pjreddie Darknet's count: 2 × conv/connected MACs)",
        f"BFLOPs   {fork_total(p):.3f} (AlexeyAB Darknet's total: convs, maxpools, shortcuts)",
        f"outputs  {outputs}",
        *(f"head     {note}" for note in layer_notes(p)),
    ]
    if p.dead_params and not warn:
        share = 100 * p.dead_params / max(p.params, 1)
        note = f"unused   {p.dead_params:,} params ({share:.1f}%) only see zero padding (--warn: where)"
        return [*lines, note, *(f"warning: {w}" for w in lint.warnings(p))]
    return lines + [f"warning: {w}" for w in [*dead_weight_warnings(p), *lint.warnings(p)]]


def darknet_rows(spec_plan: Plan) -> str:
    """The network as the AlexeyAB Darknet prints it at start-up (views/darknet_table.py)."""
    return "\n".join([darknet_table(spec_plan), "", *_totals(spec_plan)])
