"""Ultralytics model YAML (`backbone:`/`head:` rows of `[from, repeats, module, args]`) -> a
darkforge spec, one darkforge layer per row, so row i is `layers[i]` (module `layers.i`, which
Ultralytics calls `model.i`: its state_dicts load by name, darkforge/ultralytics/weights.py).

The scale rules are Ultralytics' documented ones: a file's `scales:` maps a letter to
[depth, width, max_channels]; the letter comes from the asked name (`yolov8n.yaml` is
`yolov8.yaml` at n) or `--scale`; repeats n > 1 become max(round(n · depth), 1); output
channels c become ceil(min(c, max_channels) · width / 8) · 8 (except a width equal to the class
count). Files without `scales:` use `depth_multiple` and `width_multiple`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from darkforge.errors import SpecError, UsageError
from darkforge.spec.base import NetworkSpec
from darkforge.spec.registry import network_model
from darkforge.spec.source import SourceMap
from darkforge.ultralytics.modules import INNER_REPEATS, MODULES, Refused, Row

TORCH_BN = {"momentum": 0.1, "eps": 1e-5}
DEFAULT_SIZE = 640  # Ultralytics' default image size
SCALED = re.compile(r"^(?P<base>.*?\d+)(?P<scale>[nslmx])(?P<rest>u?(-.*)?)$")


def recognise(data: Any) -> bool:
    return isinstance(data, dict) and "backbone" in data and "head" in data and "layers" not in data


def candidates(path: Path) -> list[tuple[Path, str | None]]:
    """Files a model name may stand for, with the scale its name gives: `yolov8n-p2.yaml` ->
    yolov8-p2.yaml at n; `yolov5nu` -> yolov5u.yaml, else yolov5.yaml; `yolov3u` -> yolov3.yaml."""
    stem, found = path.stem, []  # type: tuple[str, list[tuple[Path, str | None]]]
    match = SCALED.match(stem)
    names: list[tuple[str, str | None]] = [(stem, None)]
    if match:
        base, scale, rest = match["base"], match["scale"], match["rest"]
        names += [(base + rest, scale), (base + rest.removeprefix("u"), scale)]
    names += [(re.sub(r"u(?=-|$)", "", n, count=1), s) for n, s in names]
    for name, scale in names:
        candidate = path.with_name(name + path.suffix)
        if candidate not in [c for c, _ in found]:
            found.append((candidate, scale))
    return found


def locate(path: Path) -> Path | None:
    if path.suffix.lower() not in (".yaml", ".yml"):
        return None
    for candidate, _ in candidates(path)[1:]:
        if candidate.is_file():
            return candidate
    return None


def name_scale(path: Path) -> str | None:
    match = SCALED.match(path.stem)
    return match["scale"] if match else None


def read(data: dict[str, Any], source: SourceMap, asked: Path, scale: str | None = None) -> NetworkSpec:
    """The spec at `scale` (default: the asked name's letter, else the file's first scale)."""
    chosen, depth, width, max_channels = _multiples(data, source, asked, scale)

    def channels(c: int) -> int:
        return math.ceil(min(c, max_channels) * width / 8) * 8

    t = translated(data, source, depth, channels, chosen)
    return _spec(data, source, asked, chosen, t.nc, t.in_channels, t.layers, t.rows)


@dataclass(frozen=True)
class Translated:
    """A file's rows as darkforge layers (plain data), one per row, and what they came from."""

    layers: list[dict[str, Any]]
    rows: list[tuple[str, int, Any]]  # (section, index in it, the row as written)
    nc: int
    in_channels: int
    v11: bool  # the file uses C3k2 (YOLO11)
    classify: bool  # a classification model (torch's batch norm settings)


def translated(
    data: dict[str, Any], source: SourceMap, depth: float, channels: Callable[[int], int], chosen: str | None
) -> Translated:
    """Every row translated under a scale's depth and channel rule (`chosen`: its letter; at m, l
    and x YOLO11's C3k2 take C3k blocks)."""
    nc = data.get("nc", 80)
    if isinstance(nc, bool) or not isinstance(nc, int) or nc < 1:
        raise source.error(f"`nc` must be a positive integer, got {nc!r}", path=("nc",))
    rows = [
        (section, k, row)
        for section in ("backbone", "head")
        for k, row in enumerate(_rows(data, source, section))
    ]
    v11 = any(isinstance(row, list) and len(row) > 2 and row[2] == "C3k2" for _, _, row in rows)
    layers: list[dict[str, Any]] = []
    widths: list[int] = []
    in_channels = data.get("ch", 3)
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or not 1 <= in_channels <= 4096:
        raise source.error(f"`ch` must be an input channel count (1–4096), got {in_channels!r}", path=("ch",))
    for i, (section, k, raw) in enumerate(rows):
        where = (section, k)
        try:
            row = _row(raw, i, nc, depth, widths, in_channels, channels, chosen, v11)
            translate = MODULES.get(row.module)
            if translate is None:
                known = ", ".join(MODULES)
                raise Refused(f"unknown module {row.module!r} (row {i}); darkforge reads {known}")
            layer, c2 = translate(row)
        except Refused as e:
            raise source.error(str(e), path=where) from None
        if row.repeats > 1 and row.module not in INNER_REPEATS:
            layer["repeat"] = row.repeats
        layers.append({**layer, "from": row.from_})
        widths.append(c2)
    classify = any(row[2] == "Classify" for _, _, row in rows if isinstance(row, list) and len(row) > 2)
    if classify:
        # Ultralytics re-sets batch norm to eps 0.001, momentum 0.03 in its detection models only;
        # a classification model keeps torch's defaults (measured against the oracle's -cls model)
        for layer in layers:
            if "bn" in layer:
                layer["bn"] = dict(TORCH_BN)
    return Translated(layers, rows, nc, in_channels, v11, classify)


def _multiples(
    data: dict[str, Any], source: SourceMap, asked: Path, scale: str | None
) -> tuple[str | None, float, float, float]:
    """(scale, depth, width, max_channels): the asked name's letter or `scale` from `scales:`,
    else the file's depth_multiple/width_multiple."""
    scales = data.get("scales")
    if scales is not None and not isinstance(scales, dict):
        raise source.error("`scales` must map a letter to [depth, width, max_channels]", path=("scales",))
    chosen = scale or name_scale(asked)
    if scales:
        chosen = chosen if chosen is not None else next(iter(scales))
        if chosen not in scales:
            raise UsageError(f"{asked.name} has no scale {chosen!r}", f"its scales: {', '.join(scales)}")
        depth, width, max_channels = _scale_row(scales[chosen], source, chosen)
    else:
        if scale is not None:
            raise UsageError(f"{asked.name} has no scales", "leave out --scale")
        chosen = None
        depth = _number(data.get("depth_multiple", 1.0), source, "depth_multiple")
        width = _number(data.get("width_multiple", 1.0), source, "width_multiple")
        max_channels = math.inf
    return chosen, depth, width, max_channels


def _spec(
    data: dict[str, Any],
    source: SourceMap,
    asked: Path,
    scale: str | None,
    nc: int,
    channels: Any,
    layers: list[dict[str, Any]],
    rows: list[tuple[str, int, Any]],
) -> NetworkSpec:
    # positions of layers[i] are those of the row it came from, so graph errors name the file's line
    mapped = SourceMap(source.file)
    for i, (section, k, _) in enumerate(rows):
        mapped.positions[("layers", i)] = source.positions.get((section, k), (1, 1))
    name = asked.stem if scale is None or name_scale(asked) == scale else _named(asked.stem, scale)
    document = {"name": name, "input": {"channels": channels, "size": DEFAULT_SIZE}, "classes": nc}
    if not rows:
        raise source.error("`backbone` and `head` hold no rows", "add [from, repeats, module, args] rows")
    try:
        spec = network_model().model_validate({**document, "layers": layers})
    except ValidationError as e:  # a value past a field's bounds: name the row as the file does
        detail = e.errors(include_input=False, include_url=False)[0]
        loc = detail["loc"]
        row = rows[loc[1]] if len(loc) > 1 and isinstance(loc[1], int) and loc[1] < len(rows) else None
        where = (row[0], row[1]) if row is not None else tuple(loc[:2])
        what = ".".join(str(p) for p in loc[2:])
        raise source.error(f"{what}: {detail['msg']}" if what else detail["msg"], path=where) from None
    spec._source = mapped
    spec._converted_from = "ultralytics"
    spec._rescale = lambda s: read(data, source, asked, s)
    spec._scale_names = tuple(str(k) for k in data.get("scales") or ())
    return spec


def _named(stem: str, scale: str) -> str:
    match = SCALED.match(stem)
    if match:
        return match["base"] + scale + match["rest"]
    return re.sub(r"(\d+)", rf"\g<1>{scale}", stem, count=1)


def _rows(data: dict[str, Any], source: SourceMap, section: str) -> list[Any]:
    rows = data.get(section)
    if not isinstance(rows, list):
        raise source.error(
            f"`{section}` must be a list of [from, repeats, module, args] rows", path=(section,)
        )
    return rows


def _row(
    raw: Any,
    i: int,
    nc: int,
    depth: float,
    widths: list[int],
    in_channels: int,
    channels: Any,
    scale: str | None,
    v11: bool,
) -> Row:
    if not (isinstance(raw, list) and len(raw) == 4 and isinstance(raw[2], str) and isinstance(raw[3], list)):
        raise Refused(f"row {i}: expected [from, repeats, module, [args]], got {raw!r}"[:200])
    from_, repeats, module, args = raw
    sources = from_ if isinstance(from_, list) else [from_]
    if not sources or not all(isinstance(f, int) and not isinstance(f, bool) for f in sources):
        raise Refused(f"row {i}: `from` must be an integer or a list of them, got {from_!r}")
    inputs = []
    for f in sources:
        at = i + f if f < 0 else f
        if not 0 <= at < i and not (i == 0 and f == -1):
            raise Refused(f"row {i}: `from` {f} is not an earlier row")
        inputs.append(in_channels if at < 0 else widths[at])
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise Refused(f"row {i}: repeats must be a positive integer, got {repeats!r}")
    scaled = max(round(repeats * depth), 1) if repeats > 1 else repeats
    resolved = [_value(a, nc) for a in args]
    symbol = bool(args) and args[0] == "nc"
    return Row(i, from_, scaled, module, resolved, inputs, channels, nc, symbol, scale, v11)


def _value(arg: Any, nc: int) -> Any:
    """An argument as Ultralytics reads it: `nc` is the class count, `None` the null."""
    if arg == "nc":
        return nc
    if arg == "None":
        return None
    return arg


def _scale_row(value: Any, source: SourceMap, name: str) -> tuple[float, float, float]:
    ok = isinstance(value, list) and len(value) == 3
    if not ok or not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in value):
        raise source.error(
            f"scale {name!r} must be [depth, width, max_channels], got {value!r}", path=("scales", name)
        )
    return float(value[0]), float(value[1]), float(value[2])


def _number(value: Any, source: SourceMap, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise source.error(f"`{key}` must be a positive number, got {value!r}", path=(key,))
    return float(value)


__all__ = ["SpecError", "locate", "read", "recognise"]
