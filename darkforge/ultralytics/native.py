"""Ultralytics model YAML -> a native darkforge file (`darkforge convert yolov8.yaml`): every
scale in one file, the blocks from the shipped `ultralytics` library (archs/blocks/), Ultralytics'
Conv as the file's `defaults:`, row i as layers[i]. archs/yolov8.yaml is what it writes for
yolov8.yaml, comments aside.

The file is checked before it is written: at every scale it must count what the translation
counts, layer by layer, else `NotNative` says why (the caller then writes the one-scale
translation with darkforge's built-in types, which covers every module the reader knows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from darkforge.errors import DarkforgeError
from darkforge.spec import registry
from darkforge.spec.dump import flow
from darkforge.spec.library import read_blocks
from darkforge.spec.load import spec_from_text
from darkforge.spec.shapes import plan
from darkforge.spec.source import SourceMap, read_yaml
from darkforge.ultralytics.modules import YOLO_BN
from darkforge.ultralytics.read import DEFAULT_SIZE, locate, name_scale, read, translated

LIBRARY = "ultralytics"
CONV = {"bias": False, "bn": dict(YOLO_BN), "activation": "silu"}  # Ultralytics' Conv: the defaults
C3K_SCALES = ("m", "l", "x")  # where YOLO11's C3k2 take C3k blocks


class NotNative(ValueError):
    """The file cannot be written natively with the library (the message says why)."""


def native_file(asked: Path) -> str:
    """The native text of an Ultralytics YAML, by the name asked (`yolov8n.yaml` is yolov8.yaml,
    whose default scale is then n)."""
    real = asked if asked.is_file() else locate(asked)
    data, source = read_yaml(real or asked)
    return native_text(data, source, asked)


def native_text(data: dict[str, Any], source: SourceMap, asked: Path) -> str:
    t = translated(data, source, 1.0, lambda c: c, None)  # as written: no scale applied
    if t.classify:
        raise NotNative(
            "a classification model keeps torch's batch norm, which the library's blocks do not take"
        )
    params = _library_params(source)
    layers = [_layer(i, layer, params) for i, layer in enumerate(t.layers)]
    scales = _scales(data, t.v11)
    name = Path(source.file).stem
    default = name_scale(asked) if name_scale(asked) in scales else next(iter(scales), None)
    lines = [
        f"# {name}: Ultralytics' {Path(source.file).name} written by `darkforge convert` with the shipped",
        "# block library (archs/blocks/ultralytics.yaml); layers[i] is its row i (Ultralytics' model.i).",
        "version: 1",
        f"name: {name}",
        f"include: [{LIBRARY}]",
        f"input: {flow({'channels': t.in_channels, 'size': DEFAULT_SIZE})}",
        f"classes: {t.nc}",
        f"defaults: {flow({'Conv': CONV})}",
    ]
    if scales:
        lines += [f"scale: {default}", "scales:", *(f"  {k}: {flow(v)}" for k, v in scales.items())]
    lines.append("layers:")
    lines += [f"  - {flow(layer)}".ljust(64) + f" # {i}" for i, layer in enumerate(layers)]
    text = "\n".join(lines) + "\n"
    _check(text, data, source, asked, list(scales) or [None])
    return text


def _library_params(source: SourceMap) -> dict[str, dict[str, Any]]:
    """Each library block's parameters and their defaults (what a use need not write)."""
    blocks = read_blocks({"include": [LIBRARY]}, SourceMap(""), ("",))
    return {name: {p: param.default for p, param in block.params().items()} for name, block in blocks.items()}


def _layer(i: int, layer: dict[str, Any], library: dict[str, dict[str, Any]]) -> dict[str, Any]:
    kind = layer["type"]
    out = dict(layer)
    if kind in library:  # a block of the library: Ultralytics' numerics are built in
        for key, value in CONV.items():
            if key in out and out.pop(key) != value:
                raise NotNative(f"row {i}: {kind} with {key} {value!r} is not the library's")
        if kind == "SPP" and out.pop("sizes", [5, 9, 13]) != [5, 9, 13]:
            raise NotNative(f"row {i}: the library's SPP pools 5, 9 and 13 only")
        unknown = set(out) - {"type", "from", "repeat", *library[kind]}
        if unknown:
            raise NotNative(f"row {i}: the library's {kind} has no {', '.join(sorted(unknown))}")
        defaults = library[kind]
    else:
        fields = registry.get(kind).spec.model_fields
        defaults = {(f.alias or n): _plain(f.default) for n, f in fields.items()}
        if kind == "Conv":
            defaults |= CONV
            if out.get("pad") == out.get("size", 3) // 2 and out.get("dilation", 1) == 1:
                out.pop("pad")  # "same" padding is the default
    if out.get("classes") == "classes":
        out.pop("classes")  # a head's class count follows the network's
    if out.get("style") == "v8":
        out.pop("style")
    graph = {"from": out.pop("from")} if out.get("from", -1) != -1 else {}
    out.pop("from", None)
    kept = {k: v for k, v in out.items() if k == "type" or defaults.get(k, object()) != v}
    return {**kept, **graph}


def _plain(value: Any) -> Any:
    """A field's default as the data a file writes (a batch norm model as its mapping)."""
    return value.model_dump() if hasattr(value, "model_dump") else value


def _scales(data: dict[str, Any], v11: bool) -> dict[str, dict[str, Any]]:
    written = data.get("scales") or {}
    scales: dict[str, dict[str, Any]] = {}
    for name, (depth, width, max_channels) in written.items():
        scale: dict[str, Any] = {"depth": depth, "width": width, "max_channels": int(max_channels)}
        scale["round"] = "up"
        if v11 and name in C3K_SCALES:
            scale["set"] = {"C3k2": {"c3k": True}}
        scales[str(name)] = scale
    if not written and (data.get("depth_multiple", 1.0), data.get("width_multiple", 1.0)) != (1.0, 1.0):
        depth, width = data.get("depth_multiple", 1.0), data.get("width_multiple", 1.0)
        scales["file"] = {"depth": depth, "width": width, "round": "up"}
    return scales


def _check(text: str, data: dict[str, Any], source: SourceMap, asked: Path, scales: list[str | None]) -> None:
    """The written file counts what the translation counts, layer by layer, at every scale."""
    try:
        spec = spec_from_text(text, str(Path(source.file).with_name("converted.yaml")))
        for scale in scales:
            ours = plan(spec.resolved(scale) if scale is not None else spec.resolved())
            theirs = plan(read(data, source, asked, scale).resolved())
            if [i.cost.params for i in ours.layers] != [i.cost.params for i in theirs.layers]:
                raise NotNative(
                    f"at scale {scale} the library's blocks count differently from the translation"
                )
    except DarkforgeError as e:
        raise NotNative(f"the native file does not build ({e})") from None
