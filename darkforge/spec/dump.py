"""Spec -> YAML text in the house style: one flow mapping per layer, defaults left out."""

from __future__ import annotations

from typing import Any

import yaml

from darkforge.spec.base import NetworkSpec


def flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000)
    return text.strip().removesuffix("...").strip()  # plain scalars get a document-end marker


def layer_dict(layer: Any, defaults: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A layer as the user would write it: `type` first, then only what differs from defaults
    (the field's, or the file's `defaults:` for its type: a value written against a file default
    stays written, even when it equals the field's own default)."""
    data = layer.model_dump(exclude_defaults=True, by_alias=True)
    data.pop("type", None)
    full = layer.model_dump(by_alias=True)
    for key, value in ((defaults or {}).get(layer.type) or {}).items():
        if key not in data and key in full and full[key] != value:
            data[key] = full[key]
    graph = {key: data.pop(key) for key in ("from", "id") if key in data}
    return {"type": layer.type, **data, **graph}


def _blocks(blocks: dict[str, Any]) -> list[str]:
    """`blocks:` as written by hand: one key per line, one flow mapping per layer."""
    lines = ["blocks:"]
    for name, definition in blocks.items():
        if not isinstance(definition, dict):
            lines.append(f"  {name}: {flow(definition)}")
            continue
        lines.append(f"  {name}:")
        for key, value in definition.items():
            if key == "layers" and isinstance(value, list):
                lines.append("    layers:")
                lines += [f"      - {flow(layer)}" for layer in value]
            else:
                lines.append(f"    {key}: {flow(value)}")
    return lines


def dump_spec(spec: NetworkSpec, header: str = "") -> str:
    top = spec.model_dump(exclude_none=True, by_alias=True, exclude={"layers", "scales", "train", "blocks"})
    top.pop("version", None)
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines.append("version: 1")
    for key, value in top.items():
        lines.append(f"{key}: {flow(value)}")
    if spec.blocks:
        lines += _blocks(spec.blocks)
    lines.append("layers:")
    lines += [f"  - {flow(layer_dict(layer, spec.defaults))}" for layer in spec.layers]
    if spec.scales:
        lines.append("scales:")
        lines += [
            f"  {name}: {flow(scale.model_dump(exclude_defaults=True))}"
            for name, scale in spec.scales.items()
        ]
    if spec.train:
        lines.append(yaml.safe_dump({"train": spec.train}, sort_keys=False).rstrip())
    return "\n".join(lines) + "\n"
