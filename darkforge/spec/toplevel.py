"""Expressions in a network's own layers: `filters: "${3 * (5 + classes)}"` (a YOLOv3 head's
width). At the top level an expression reads one name, `classes` (the file's, or `--classes` /
the dataset's when the network is resolved), so a class count reaches a convolution and
`--classes 10` changes it. Inside blocks expressions read the block's parameters too
(darkforge.spec.blocks).

The layers are kept as written; `NetworkSpec.resolved(classes=N)` validates them again with N.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from darkforge.spec.base import LayerSpec, NetworkSpec
from darkforge.spec.expr import ExprError, names_in, substitute
from darkforge.spec.source import SourceMap

TOP_LEVEL_NAMES = ("classes",)


def computed(data: dict[str, Any], source: SourceMap) -> dict[int, frozenset[str]]:
    """The keys of each layer that hold expressions (none: {}); each reads only `classes`, and
    a file whose layers read it says how many (its `classes:`)."""
    layers = data.get("layers")
    found: dict[int, frozenset[str]] = {}
    if not isinstance(layers, list):
        return found
    for k, layer in enumerate(layers):
        if not isinstance(layer, dict):
            continue
        for key, value in layer.items():
            read = names_in(value)
            if not read:
                continue
            found[k] = found.get(k, frozenset()) | {key}
            other = sorted(read - set(TOP_LEVEL_NAMES))
            if other:
                raise source.error(
                    f"{key}: a top-level expression reads only `classes`, not {', '.join(other)}",
                    "compute it in a block: parameters, `in_channels` and channels(input) are names there",
                    ("layers", k, key),
                )
            if data.get("classes") is None:
                raise source.error(
                    f"{key} reads `classes`, but the file gives no `classes:`",
                    "add `classes: N` (training and --classes then override it)",
                    ("layers", k, key),
                )
    return found


def substituted(data: dict[str, Any], source: SourceMap, classes: int) -> dict[str, Any]:
    """`data` with its layers' expressions computed for `classes`."""
    layers = []
    for k, layer in enumerate(data["layers"]):
        try:
            layers.append(substitute(layer, {"classes": classes}))
        except ExprError as e:
            raise source.error(str(e), "", ("layers", k)) from None
    return {**data, "layers": layers, "classes": classes}


def relayer(
    model: type[NetworkSpec], data: dict[str, Any], source: SourceMap, describe: Callable[..., Any]
) -> Callable[[int], list[LayerSpec]]:
    """The file's layers for another class count, validated as at load."""

    def layers(classes: int) -> list[LayerSpec]:
        written = substituted(data, source, classes)
        try:
            return model.model_validate(written).layers
        except ValidationError as e:
            raise describe(e, written).at(source) from None

    return layers
