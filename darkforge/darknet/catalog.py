"""The Darknet sections darkforge knows: one `DarknetSection` per section, declared in its own file
of darkforge/darknet/sections/ (a new file there is found by `sections()`; nothing else changes).

A section says how it reads (`read`: cfg options -> a layer spec), which cfg keys Darknet reads that
darkforge honours at one value only (`refused`), which layer types it brings (`types`: spec and
module), and how each layer type it owns is written back (`writes`). The cfg reader
(darkforge/darknet/read.py), the writer (darkforge/darknet/write.py) and the registration of
layer types (darkforge/darknet/__init__.py) are all built from this one table.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from darkforge.darknet.cfgtext import Section
from darkforge.darknet.rulekit import Graph
from darkforge.spec.base import LayerSpec

Options = list[tuple[str, str]]
# (layer, place, sources) -> (section name, options); `place` is darkforge.darknet.write.Place
Writer = Callable[[Any, Any, list[int]], tuple[str, Options]]
Reader = Callable[[Section, Graph], LayerSpec]


@dataclass(frozen=True)
class DarknetSection:
    """One Darknet section, everything darkforge needs to read, build and write it."""

    name: str  # canonical, as parser.c's string_to_layer_type spells it ("convolutional")
    read: Reader | None = None  # None: Darknet has the section, darkforge refuses it (`refusal`)
    aliases: tuple[str, ...] = ()  # other headers for it ([conv])
    refused: dict[str, Any] = field(default_factory=dict)  # cfg key -> the one value honoured (None: none)
    types: tuple[tuple[type[LayerSpec], str | type], ...] = ()  # layer types it adds: (spec, module)
    writes: dict[str, Writer] = field(default_factory=dict)  # layer type -> its writer
    wires: tuple[str, ...] = ()  # types whose writer names its own inputs (no [route] put in front)
    refusal: str = ""  # why darkforge has no layer for it (with read=None)


@cache
def sections() -> dict[str, DarknetSection]:
    """Every section, by canonical name: the `SECTIONS` of each module in darknet/sections/."""
    package = importlib.import_module("darkforge.darknet.sections")
    found: dict[str, DarknetSection] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for section in getattr(module, "SECTIONS", ()):
            if section.name in found:
                raise ValueError(f"Darknet section [{section.name}] is declared twice ({info.name})")
            found[section.name] = section
    return found


@cache
def aliases() -> dict[str, str]:
    """Header as written -> canonical section name."""
    return {alias: s.name for s in sections().values() for alias in s.aliases}


@cache
def writers() -> dict[str, Writer]:
    """Layer type -> the writer of the section it is written as."""
    table: dict[str, Writer] = {}
    for section in sections().values():
        for kind, writer in section.writes.items():
            if kind in table:
                raise ValueError(f"layer type {kind} is written by two Darknet sections")
            table[kind] = writer
    return table


@cache
def wiring() -> frozenset[str]:
    """Layer types whose writer places its own inputs."""
    return frozenset(kind for s in sections().values() for kind in s.wires)


def layer_types() -> list[tuple[type[LayerSpec], str | type]]:
    """The Darknet layer types to register, each once."""
    seen: dict[type[LayerSpec], str | type] = {}
    for section in sections().values():
        for spec, module in section.types:
            seen.setdefault(spec, module)
    return list(seen.items())


__all__ = ["DarknetSection", "Options", "Writer", "aliases", "layer_types", "sections", "wiring", "writers"]
