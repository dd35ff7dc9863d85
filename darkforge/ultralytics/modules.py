"""Ultralytics' module names -> darkforge layers, one translator per module (a registry, not a
chain of ifs). A translator gets the row with its arguments resolved and the channels of its
inputs, and returns the layer (a plain dict, validated by the caller) and its output channels.

The arguments are the modules' public signatures (Ultralytics' docs), e.g. Conv(c2, k=1, s=1,
p=None, g=1, d=1, act=True); an argument darkforge cannot honour exactly is refused (`Refused`),
never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

YOLO_BN = {"momentum": 0.03, "eps": 0.001}  # Ultralytics' BatchNorm2d settings (torch convention)


class Refused(ValueError):
    """An argument (or row) the translation cannot honour: the message says which and why."""


@dataclass(frozen=True)
class Row:
    """One `[from, repeats, module, args]` row, scaled: `repeats` after the depth rule."""

    index: int
    from_: int | list[int]
    repeats: int
    module: str
    args: list[Any]
    inputs: list[int]  # channels of each input
    width: Callable[[int], int]  # the scale's channel rule (min(c, max_channels) · width, up to 8s)
    nc: int  # the file's class count
    nc_symbol: bool  # whether args[0] was written `nc` (a head then follows --classes)
    scale: str | None
    v11: bool  # the file uses C3k2 (YOLO11): Detect's class branch is depthwise

    def arg(self, k: int, default: Any) -> Any:
        return self.args[k] if k < len(self.args) else default

    def at_most(self, count: int) -> None:
        if len(self.args) > count:
            raise Refused(f"{self.module} takes at most {count} arguments here, got {len(self.args)}")


Translation = tuple[dict[str, Any], int]


def _int(row: Row, k: int, default: Any, what: str) -> int:
    value = row.arg(k, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Refused(f"{row.module} argument {k + 1} ({what}) must be an integer, got {value!r}")
    return value


def _bool(row: Row, k: int, default: bool, what: str) -> bool:
    value = row.arg(k, default)
    if not isinstance(value, bool):
        raise Refused(f"{row.module} argument {k + 1} ({what}) must be True or False, got {value!r}")
    return value


def _float(row: Row, k: int, default: float, what: str) -> float:
    value = row.arg(k, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Refused(f"{row.module} argument {k + 1} ({what}) must be a number, got {value!r}")
    return float(value)


def _act(row: Row, k: int) -> str:
    value = row.arg(k, True)
    if value is True:
        return "silu"
    if value is False:
        return "linear"
    raise Refused(f"{row.module}: act={value!r} is not supported (only True = SiLU or False = none)")


def _out(row: Row) -> int:
    """Output channels: args[0] through the width rule (Ultralytics leaves a width equal to the
    class count alone)."""
    c2 = _int(row, 0, None, "output channels")
    return c2 if c2 == row.nc else row.width(c2)


def _numerics(activation: str = "silu") -> dict[str, Any]:
    return {"bn": dict(YOLO_BN), "activation": activation}


def conv(row: Row, depthwise: bool = False) -> Translation:
    # Conv(c2, k=1, s=1, p=None, g=1, d=1, act=True); DWConv(c2, k=1, s=1, d=1, act=True)
    row.at_most(5 if depthwise else 7)
    c1, c2 = row.inputs[0], _out(row)
    size, stride = _int(row, 1, 1, "kernel"), _int(row, 2, 1, "stride")
    if depthwise:
        pad, groups, dilation, act = None, math.gcd(c1, c2), row.arg(3, 1), _act(row, 4)
    else:
        pad, groups, dilation, act = row.arg(3, None), _int(row, 4, 1, "groups"), row.arg(5, 1), _act(row, 6)
    if dilation != 1:
        raise Refused(f"{row.module}: dilation {dilation!r} is not supported (only 1)")
    if pad is not None and (isinstance(pad, bool) or not isinstance(pad, int)):
        raise Refused(f"{row.module}: padding must be an integer or None, got {pad!r}")
    layer = {"type": "Conv", "filters": c2, "size": size, "stride": stride, "groups": groups}
    layer |= {"pad": size // 2 if pad is None else pad, "bias": False} | _numerics(act)
    return layer, c2


def bottleneck(row: Row) -> Translation:
    # Bottleneck(c2, shortcut=True, g=1, k=(3, 3), e=0.5), `repeats` copies in series
    row.at_most(5)
    c2, sizes = _out(row), row.arg(3, [3, 3])
    if not (isinstance(sizes, list | tuple) and len(sizes) == 2 and all(isinstance(k, int) for k in sizes)):
        raise Refused(f"Bottleneck: kernels must be two integers, got {sizes!r}")
    layer = {"type": "YoloBottleneck", "filters": c2, "shortcut": _bool(row, 1, True, "shortcut")}
    layer |= {
        "groups": _int(row, 2, 1, "groups"),
        "sizes": list(sizes),
        "expansion": _float(row, 4, 0.5, "e"),
    }
    return layer | _numerics(), c2


def csp(kind: str, shortcut: bool) -> Callable[[Row], Translation]:
    """C2f / C3 / C2: (c2, shortcut, g=1, e=0.5); `repeats` is the inner blocks' count."""

    def translate(row: Row) -> Translation:
        row.at_most(4)
        c2 = _out(row)
        layer = {"type": kind, "filters": c2, "blocks": row.repeats}
        layer |= {"shortcut": _bool(row, 1, shortcut, "shortcut"), "groups": _int(row, 2, 1, "groups")}
        return layer | {"expansion": _float(row, 3, 0.5, "e")} | _numerics(), c2

    return translate


def c3k2(row: Row) -> Translation:
    # C3k2(c2, c3k=False, e=0.5, g=1, shortcut=True); the m/l/x scales switch c3k on (YOLO11)
    row.at_most(5)
    c2 = _out(row)
    c3k = _bool(row, 1, False, "c3k") or (row.scale is not None and row.scale in "mlx")
    layer = {"type": "C3k2", "filters": c2, "blocks": row.repeats, "c3k": c3k}
    layer |= {"expansion": _float(row, 2, 0.5, "e"), "groups": _int(row, 3, 1, "groups")}
    return layer | {"shortcut": _bool(row, 4, True, "shortcut")} | _numerics(), c2


def c2psa(row: Row) -> Translation:
    # C2PSA(c2, e=0.5); keeps its channels
    row.at_most(2)
    c2 = _out(row)
    layer = {"type": "C2PSA", "filters": c2, "blocks": row.repeats, "expansion": _float(row, 1, 0.5, "e")}
    return layer | _numerics(), c2


def sppf(row: Row) -> Translation:
    row.at_most(2)
    c2 = _out(row)
    return {"type": "SPPF", "filters": c2, "size": _int(row, 1, 5, "kernel")} | _numerics(), c2


def spp(row: Row) -> Translation:
    row.at_most(2)
    c2, sizes = _out(row), row.arg(1, [5, 9, 13])
    if not (isinstance(sizes, list | tuple) and all(isinstance(k, int) for k in sizes)):
        raise Refused(f"SPP: pool sizes must be a list of integers, got {sizes!r}")
    return {"type": "SPP", "filters": c2, "sizes": list(sizes)} | _numerics(), c2


def concat(row: Row) -> Translation:
    row.at_most(1)
    if row.arg(0, 1) != 1:
        raise Refused(f"Concat: only dimension 1 (channels) is supported, got {row.arg(0, 1)!r}")
    return {"type": "Route"}, sum(row.inputs)


def upsample(row: Row) -> Translation:
    # nn.Upsample(size=None, scale_factor=2, mode="nearest")
    row.at_most(3)
    size, factor, mode = row.arg(0, None), row.arg(1, None), row.arg(2, "nearest")
    if size is not None or mode != "nearest":
        raise Refused(f"nn.Upsample: only size=None, mode='nearest' is supported, got {size!r}, {mode!r}")
    if isinstance(factor, float) and factor.is_integer():
        factor = int(factor)
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise Refused(f"nn.Upsample: scale_factor must be a positive integer, got {factor!r}")
    return {"type": "Upsample", "stride": factor}, row.inputs[0]


def maxpool(row: Row) -> Translation:
    # nn.MaxPool2d(kernel_size, stride=None, padding=0)
    row.at_most(3)
    size = _int(row, 0, None, "kernel")
    stride = row.arg(1, None)
    layer = {"type": "MaxPool", "size": size, "stride": size if stride is None else stride}
    return layer | {"pad": _int(row, 2, 0, "padding")}, row.inputs[0]


def zeropad(row: Row) -> Translation:
    row.at_most(1)
    pad = row.arg(0, None)
    pads = [pad] * 4 if isinstance(pad, int) and not isinstance(pad, bool) else pad
    if not (isinstance(pads, list) and len(pads) == 4 and all(isinstance(p, int) for p in pads)):
        raise Refused(f"nn.ZeroPad2d: padding must be an integer or [left, right, top, bottom], got {pad!r}")
    return {"type": "ZeroPad", "pad": pads}, row.inputs[0]


def detect(row: Row) -> Translation:
    # Detect(nc): the levels come from `from`
    row.at_most(1)
    classes = "classes" if row.nc_symbol else _int(row, 0, None, "classes")
    layer = {"type": "Detect", "classes": classes, "style": "v11" if row.v11 else "v8"} | _numerics()
    return layer, 0


def classify(row: Row) -> Translation:
    # Classify(c2=nc, k=1, s=1, p=None, g=1)
    row.at_most(5)
    if row.arg(3, None) is not None or row.arg(4, 1) != 1:
        raise Refused("Classify: only padding None and groups 1 are supported")
    classes = "classes" if row.nc_symbol else _int(row, 0, None, "classes")
    layer = {"type": "Classify", "classes": classes, "size": _int(row, 1, 1, "kernel")}
    return layer | {"stride": _int(row, 2, 1, "stride")} | _numerics(), 0


MODULES: dict[str, Callable[[Row], Translation]] = {
    "Conv": conv,
    "DWConv": lambda row: conv(row, depthwise=True),
    "Bottleneck": bottleneck,
    "C2f": csp("C2f", False),
    "C3": csp("C3", True),
    "C2": csp("C2", True),
    "C3k2": c3k2,
    "C2PSA": c2psa,
    "SPP": spp,
    "SPPF": sppf,
    "Concat": concat,
    "nn.Upsample": upsample,
    "nn.MaxPool2d": maxpool,
    "nn.ZeroPad2d": zeropad,
    "Detect": detect,
    "Classify": classify,
}
# Modules whose `repeats` is their inner blocks' count (one layer); others repeat in series.
INNER_REPEATS = {"C2f", "C3", "C2", "C3k2", "C2PSA"}
