"""The layer reference (docs/layers.md), generated from the spec classes so it never drifts."""

from __future__ import annotations

import inspect
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from darkforge.spec import registry
from darkforge.spec.activations import ALIASES, DARKNET, FUNCTIONS, NAMES
from darkforge.spec.base import InputSpec, NetworkSpec, Scale


def _type_name(annotation: Any) -> str:
    """`int | None` -> 'int or null'; Literal -> its values; models by name."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin is Literal and args == NAMES:
        return "an [activation](#activations)"
    if origin is Literal:
        return " or ".join(f"`{a}`" for a in args)
    if origin is Annotated:
        return _type_name(args[0])
    if origin in (Union, UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping of {_type_name(args[1])}"
    return getattr(annotation, "__name__", str(annotation))


def _fields(model: type[BaseModel], skip: tuple[str, ...] = ()) -> list[str]:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        key = field.alias or name
        default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
        rows.append(f"| `{key}` | {_type_name(field.annotation)} | {default} | {field.description or ''} |")
    return rows


COMMON = ("type", "from_", "id", "repeat", "collect")  # every layer's fields, said once up front


def markdown() -> str:
    lines = [
        "# Layer reference",
        "",
        "Generated from the spec classes by `darkforge schema --markdown` (a test keeps this file",
        "current). Every layer also takes `from` (default -1: the previous layer; a negative int is",
        "relative, a non-negative int absolute, a string an `id`, `input` the network input, a list",
        "several inputs) and `id` (a name for references, `outputs` and the module).",
        "",
        "## The file",
        "",
        *_fields(NetworkSpec),
        "",
        "### `input`",
        "",
        *_fields(InputSpec),
        "",
        "### `scales.<name>`",
        "",
        *_fields(Scale),
        "",
        "## Layer types",
        "",
        "Every layer also takes `from` (its input: -1 the previous layer, a non-negative index, an id,",
        "or a list), `id` (a name for references, outputs and the module) and `repeat` (the layer this",
        "many times in series, each copy reading the one before; depth scales multiply it) and",
        "`collect` (with `repeat`: the output is every copy's output concatenated along channels,",
        "first copy first).",
    ]
    builtin = [t for t in map(registry.get, registry.names()) if isinstance(t.module, str)]  # not plugins
    for layer_type in builtin:
        name, spec = layer_type.name, layer_type.spec
        doc = inspect.getdoc(spec) or ""
        lines += ["", f"### {name}", "", doc, "", *_fields(spec, skip=COMMON)]
    return "\n".join([*lines, "", *_activations()]) + "\n"


def _activations() -> list[str]:
    """The one table every `activation:` reads (darkforge/spec/activations.py)."""
    aliases = {name: [a for a, target in ALIASES.items() if target == name] for name in FUNCTIONS}
    darknet = {name: [d for d, target in DARKNET.items() if target == name] for name in FUNCTIONS}
    rows = [
        "## Activations",
        "",
        "Every `activation:` names one of these functions; an alias means exactly the same function.",
        "A Darknet `.cfg`'s names read as the last column says (Darknet's `gelu` is the tanh form).",
        "",
        "| name | computes | aliases | Darknet's name |",
        "|---|---|---|---|",
    ]
    for name, what in FUNCTIONS.items():
        also = ", ".join(f"`{a}`" for a in aliases[name])
        cfg = ", ".join(f"`{d}`" for d in darknet[name])
        rows.append(f"| `{name}` | {what} | {also} | {cfg} |")
    return rows
