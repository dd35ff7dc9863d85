"""The AlexeyAB Darknet's start-up table and its BFLOPs total, computed from the plan's shapes.

The fork counts each layer's `l.bflops`: a conv 2·MACs/1e9 (÷32 with xnor; at the stride-1 size
with antialiasing), a maxpool or local_avgpool size²·C_in·H_out·W_out/1e9, a shortcut
C·H·W·(inputs − 1)/1e9 (twice that with weights_type), and nothing else (no [connected]).
pjreddie's original counts conv and connected MACs only (the summary's other count). Layer types
are read by name and field, so this needs no import of darkforge.darknet (views and darknet are
independent layers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from darkforge.spec.base import LayerCost, LayerSpec, Shape, prod
from darkforge.spec.shapes import LayerInfo, Plan, flatten, plan

CONVS = ("ConvBnLeaky", "Conv", "DarknetConv")
SHORTCUTS = ("Shortcut", "DarknetShortcut", "WeightedShortcut")


def _pooled(n: int, size: int, padding: int) -> int:
    return n + padding - size + 1  # the stride-1 size of an antialiased pool


def fork_bflops(spec: LayerSpec, inputs: Sequence[Shape], cost: LayerCost) -> float:
    """The layer's `l.bflops` as the fork's parser computes it."""
    s: Any = spec
    if spec.type in CONVS:
        return 2 * cost.macs / 1e9 / (32 if getattr(s, "xnor", False) else 1)
    if spec.type in ("MaxPool", "DarknetPool"):  # [local_avgpool] counts as a maxpool does
        c, h, w = inputs[0]
        _, oh, ow = cost.output
        if getattr(s, "antialiasing", 0):
            oh, ow = _pooled(h, s.size, s.padding), _pooled(w, s.size, s.padding)
        return s.size * s.size * c * oh * ow / 1e9
    if spec.type in SHORTCUTS:  # twice with weights_type (a multiply and an add per input)
        weighted = 2 if getattr(s, "weights", "none") != "none" else 1
        return weighted * prod(cost.output) * (len(inputs) - 1) / 1e9
    return 0.0


def fork_total(p: Plan) -> float:
    """`Total BFLOPS` of the fork's start-up table, over the flat (Darknet) spelling."""
    flat = plan(flatten(p.spec))
    return sum(fork_bflops(i.spec, [flat.shape_of(s) for s in i.sources], i.cost) for i in flat.layers)


def _dims(shape: Shape) -> str:
    if len(shape) == 3:
        c, h, w = shape
        return f"{w:4d} x{h:4d} x{c:4d}"
    return f"{shape[0]:18d}"


def _io(p: Plan, info: LayerInfo, bflops: bool = True) -> str:
    text = f"{_dims(p.shape_of(info.sources[0]))} -> {_dims(info.output)}"
    if not bflops:
        return text
    return text + f" {fork_bflops(info.spec, [p.shape_of(s) for s in info.sources], info.cost):5.3f} BF"


def _strides(s: Any) -> tuple[int, int]:
    sy = getattr(s, "stride_y", None)
    sx = s.stride or s.size
    return sx, sx if sy is None else sy


def _conv(p: Plan, info: LayerInfo) -> str:
    s: Any = info.spec
    kind = "convX " if getattr(s, "xnor", False) else "conv  "
    filters = f"{s.filters:5d}/{s.groups:4d} " if s.groups > 1 else f"{s.filters:5d}      "
    (sx, sy), dilation = _strides(s), getattr(s, "dilation", 1)
    if sx != sy:
        window = f"{s.size:2d}x{s.size:2d}/{sx:2d}x{sy:2d} "
    elif dilation > 1:
        window = f"{s.size:2d} x{s.size:2d}/{sx:2d}({dilation:1d})"
    else:
        window = f"{s.size:2d} x{s.size:2d}/{sx:2d}   "
    return kind + filters + window + _io(p, info)


def _pool(p: Plan, info: LayerInfo) -> str:
    s: Any = info.spec
    if getattr(s, "average", False):
        name = "local_avg"
    else:
        name = "max-depth" if getattr(s, "depth", False) else "max"
    sx, sy = _strides(s)
    stride = f"{sx:2d}" if sx == sy else f"{sx:2d}x{sy:2d}"
    return f"{name:<18}{s.size:2d}x{s.size:2d}/{stride}   " + _io(p, info)


def _shortcut(p: Plan, info: LayerInfo) -> str:
    s: Any = info.spec
    fields = f"wt = {getattr(s, 'weights', 'none')}, wn = {getattr(s, 'normalization', 'none')}"
    froms = ", ".join(str(x) for x in info.sources[1:])
    return f"Shortcut Layer: {froms},  {fields}, outputs:{_dims(info.output)} {_io(p, info).split()[-2]} BF"


def _route(p: Plan, info: LayerInfo) -> str:
    s: Any = info.spec
    group = f"{s.group}/{s.groups}" if getattr(s, "groups", 1) > 1 else "   "
    return f"route  {' '.join(str(x) for x in info.sources):<24}{group} -> {_dims(info.output)}"


def _plain(name: str) -> Callable[[Plan, LayerInfo], str]:
    return lambda p, info: f"{name:<24}{_io(p, info, bflops=False)}"


ROWS: dict[str, Callable[[Plan, LayerInfo], str]] = {
    **dict.fromkeys(CONVS, _conv),
    **dict.fromkeys(SHORTCUTS, _shortcut),
    "MaxPool": _pool,
    "DarknetPool": _pool,
    "Route": _route,
    "GroupRoute": _route,
    "GlobalAvgPool": _plain("avg"),
    "Upsample": _plain("upsample"),
    "DarknetUpsample": _plain("upsample"),
    "Linear": _plain("connected"),
    "Connected": _plain("connected"),
    "Yolo": lambda p, info: "yolo",
    "GaussianYolo": lambda p, info: "Gaussian_yolo",
}


def darknet_table(p: Plan) -> str:
    """The network as the AlexeyAB fork prints it at start-up: flat layers, Darknet's numbering,
    each layer's BFLOPs and the fork's total; then pjreddie's count."""
    flat = plan(flatten(p.spec))
    lines = ["   layer   filters  size/strd(dil)      input                output"]
    for info in flat.layers:
        row = ROWS.get(info.spec.type, _plain(info.spec.type.lower()))
        lines.append(f"{info.index:4d} {row(flat, info)}")
    lines.append(f"Total BFLOPS {fork_total(p):5.3f} ")
    return "\n".join(lines)
