"""Sections whose keys map one to one onto a spec's fields (parser.c's defaults in a table): the
reader and the writer built from that table, for darkforge/darknet/sections/markers.py and heads.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from darkforge.darknet.catalog import DarknetSection, Options, Reader, Writer
from darkforge.darknet.cfgtext import COMMON_KEYS, Section
from darkforge.darknet.rulekit import Graph, make
from darkforge.darknet.writekit import fmt
from darkforge.spec.base import LayerSpec

Keys = dict[str, tuple[str, str, Any]]  # cfg key -> (field, kind, Darknet's default)


@dataclass(frozen=True)
class Keyed:
    """A section whose keys map one to one onto a spec's fields."""

    spec: type[LayerSpec]
    keys: Keys
    unsupported: dict[str, Any] = field(default_factory=dict)  # cfg key -> the one value honoured
    carried: tuple[str, ...] = ()  # keys kept in the spec's `loss` (loss settings)
    adjust: Callable[[Section, dict[str, Any]], None] | None = None  # Darknet's reading of the values


def reader(table: Keyed) -> Reader:
    def read(s: Section, graph: Graph) -> LayerSpec:
        keys = {k: (f, kind, graph.defaults.get((s.name, k), d)) for k, (f, kind, d) in table.keys.items()}
        fields = s.read(keys)
        if table.adjust is not None:
            table.adjust(s, fields)
        if table.carried:
            fields["loss"] = {k: s.get(k, "carried") for k in table.carried if k in s.options}
            for key in s.options:  # Darknet ignores keys it does not read: none can change an output
                if key not in s.seen and key not in table.unsupported and key not in COMMON_KEYS:
                    fields["loss"][key] = s.get(key, "carried")
                    s.notes.append(
                        f"{s.file}:{s.options[key][1]}: [{s.header}] (layer {s.index}): {key}: "
                        "Darknet ignores it; kept as written"
                    )
        return make(s, table.spec, fields, keys)

    return read


def writer(section: str, table: Keyed) -> Writer:
    def write(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
        options = []
        for key, (name, kind, _) in table.keys.items():
            value = getattr(layer, name)
            if value is not None:  # every key, defaults too: a cfg read and written keeps its keys
                options.append((key, fmt(not value if kind == "noflag" else value)))
        if table.carried:
            options += [(key, fmt(value)) for key, value in layer.loss.items()]
        return section, options

    return write


def keyed_section(
    name: str, table: Keyed, module: str | None, aliases: tuple[str, ...] = (), read: Reader | None = None
) -> DarknetSection:
    """The section of a table; `module` holds the spec's module when the type is Darknet's own."""
    tag = str(table.spec.model_fields["type"].default)
    return DarknetSection(
        name,
        read or reader(table),
        aliases=aliases,
        refused=table.unsupported,
        types=((table.spec, module),) if module else (),
        writes={tag: writer(name, table)},
    )
