"""What every section rule of the cfg reader shares: the graph converted so far, and building a
spec with Darknet's words in its errors (darkforge/darknet/read.py, darkforge/darknet/read_fork.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from darkforge.darknet.sections import Section
from darkforge.spec.base import LayerSpec, Operand, Shape


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
    try:
        return cls(**fields)
    except ValidationError as e:
        detail = e.errors(include_input=False, include_url=False)[0]
        name = str(detail["loc"][0]) if detail["loc"] else ""
        key = next((k for k, (f, _, _) in (keys or {}).items() if f == name), name.rstrip("_"))
        if key in s.options:
            raise s.error(detail["msg"], key=key) from None
        raise s.error(f"{name}: {detail['msg']}" if name else detail["msg"]) from None
