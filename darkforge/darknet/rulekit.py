"""What every section rule of the cfg reader shares (darkforge/darknet/sections/*.py): the graph
converted so far, and building a spec with its refusals at the cfg's line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from darkforge.darknet.cfgtext import Section
from darkforge.darknet.fork import CONV_ONLY
from darkforge.spec.base import LayerSpec, Operand, Shape
from darkforge.spec.messages import describe


@dataclass
class Graph:
    """The layers converted so far, so a rule can see its inputs' shapes."""

    input: Shape
    shapes: list[Shape] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # each converted layer's type
    convs: dict[int, tuple[int, ...]] = field(default_factory=dict)  # conv index -> its weight layout
    bn: dict[str, Any] = field(default_factory=dict)  # batch norm as the Darknet of the file computes it
    defaults: dict[tuple[str, str], Any] = field(default_factory=dict)  # (section, key): that Darknet's
    fork: bool = True  # the AlexeyAB fork's semantics where the two Darknets differ

    def shape(self, s: Section, ref: int, key: str) -> Shape:
        target = s.index + ref if ref < 0 else ref
        if not 0 <= target < s.index:
            where = "before the first layer" if target < 0 else f"to layer {target}, not an earlier one"
            raise s.error(f"{ref} points {where}", "a layer can only use earlier layers", key)
        return self.shapes[target]

    def tensor(self, target: int) -> Operand:
        if target < 0:
            return Operand(self.input, "the input")
        return Operand(self.shapes[target], f"layer {target}")


def make(
    s: Section,
    cls: type[LayerSpec],
    fields: dict[str, Any],
    keys: dict[str, tuple[str, str, Any]] | None = None,
) -> LayerSpec:
    """cls(**fields), its refusal located at the cfg key it came from (`keys`: cfg key -> (field,
    kind, default), where the names differ) and worded by darkforge.spec.messages."""
    try:
        return cls(**fields)
    except ValidationError as e:
        names = {name: key for key, (name, _, _) in (keys or {}).items()}

        def cfg_key(name: str) -> str:
            return names.get(name, name.rstrip("_"))

        found = describe(e, fields, model=cls)
        if not found.loc:  # the spec's own consistency check: its words, at the section
            detail = e.errors(include_input=False, include_url=False)[0]
            raise s.error(str(detail["msg"]).removeprefix("Value error, ")) from None
        name = str(found.loc[0])
        if cfg_key(name) in s.options:
            raise s.error(found.message, found.hint, cfg_key(name)) from None
        raise s.error(f"{name}: {found.message}", found.hint) from None


def earlier(s: Section, graph: Graph, key: str) -> int:
    """A `key=` naming one earlier layer (checked), as written."""
    ref = s.get(key, "int")
    graph.shape(s, ref, key)
    return int(ref)


def plain_activation(s: Section) -> str:
    """An activation outside [convolutional]: the fork's CPU activate() lacks the newer ones."""
    activation = str(s.get("activation", "activation", "linear"))
    if activation in CONV_ONLY:
        raise s.error(
            f"Darknet's activate() has no case for {activation!r} outside [convolutional] (its output "
            "is garbage there)",
            "use it in the [convolutional] before",
            "activation",
        )
    return activation
