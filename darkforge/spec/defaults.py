"""File-level layer defaults: `defaults: {Conv: {activation: silu, bias: false}}` gives every layer
of that type written in this file (its top-level layers and its own blocks' layers) these fields
unless the layer writes them. An included library's blocks take the library's own `defaults`, never
the including file's: what a block builds is read in the file that defines it.

A default is a whole value (a `bn` mapping replaces the field, it is not merged key by key), it
is checked when the file is read (an unknown type or field is an error at its line), and a
layer's `type`, `from` and `id` have none: each layer says its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from darkforge.errors import did_you_mean
from darkforge.spec import registry
from darkforge.spec.base import LayerSpec
from darkforge.spec.source import SourceMap

Defaults = dict[str, dict[str, Any]]
PER_LAYER = ("type", "from", "id")  # what a default cannot give: each layer's own


def fields_of_type(name: str) -> set[str] | None:
    """The keys a layer of a registered type can write (aliases: `from`), or None for no type."""
    if name not in registry.names():
        return None
    return _keys(registry.get(name).spec.model_fields)


def block_fields(params: Iterable[str]) -> set[str]:
    """The keys a use of a block can write: its parameters and what every layer has."""
    return set(params) | _keys(LayerSpec.model_fields)


def checked(
    data: Mapping[str, Any], source: SourceMap, fields_of: Callable[[str], set[str] | None]
) -> Defaults:
    """The `defaults:` of a file's data, each type and field known (`fields_of(type)`: its keys)."""
    written = data.get("defaults")
    if written is None:
        return {}
    example = "e.g. defaults: {Conv: {activation: silu, bias: false}}"
    if not isinstance(written, dict):
        raise source.error("`defaults` maps layer types to field values", example, ("defaults",))
    for kind, values in written.items():
        at = ("defaults", kind)
        fields = fields_of(kind) if isinstance(kind, str) else None
        if fields is None:
            known = [*registry.names(), *(n for n in _names(data) if fields_of(n) is not None)]
            raise source.error(
                f"defaults for {kind!r}: no such layer type", did_you_mean(str(kind), known), at
            )
        if not isinstance(values, dict):
            raise source.error(f"the defaults of {kind} map its fields to values", example, at)
        for key in values:
            if key in PER_LAYER:
                raise source.error(f"`{key}` has no default: each layer says its own", "", (*at, key))
            if key not in fields:
                raise source.error(f"{kind} has no field {key!r}", did_you_mean(str(key), fields), (*at, key))
    return written


def applied(layers: Any, defaults: Defaults) -> Any:
    """Layers (plain data) with the defaults of their type filled in where they write nothing."""
    if not defaults or not isinstance(layers, list):
        return layers
    return [_filled(layer, defaults) for layer in layers]


def _filled(layer: Any, defaults: Defaults) -> Any:
    kind = layer.get("type") if isinstance(layer, dict) else None
    if not isinstance(kind, str) or kind not in defaults:
        return layer
    missing = {key: value for key, value in defaults[kind].items() if key not in layer}
    return {**layer, **missing} if missing else layer


def _keys(fields: Mapping[str, Any]) -> set[str]:
    return {field.alias or name for name, field in fields.items()}


def _names(data: Mapping[str, Any]) -> list[str]:
    blocks = data.get("blocks")
    return [str(n) for n in blocks] if isinstance(blocks, dict) else []
