"""YAML -> plain data and the position of every key, safely.

Safety: PyYAML's SafeLoader refuses tags that construct Python objects; on top of it we cap the
file size, the nesting depth and the number of nodes *after alias expansion* while composing, so
an alias bomb fails before anything walks the expanded document.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from darkforge.errors import SpecError
from darkforge.files import read_text

try:  # libyaml's event parser (C); PyYAML's own reader, scanner and parser without it
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _Parser = yaml.SafeLoader  # type: ignore[assignment,misc]

_C_COMPOSER = hasattr(yaml, "CSafeLoader")
MAX_DEPTH = 64
MAX_NODES = 200_000  # counted with aliases expanded; Darknet-53 flat is ~2,000


@dataclass
class SourceMap:
    """Where each key path of a document sits in its file (1-based line and column)."""

    file: str
    positions: dict[tuple[object, ...], tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: tuple[object, ...]) -> tuple[int | None, int | None]:
        for end in range(len(path), -1, -1):
            if path[:end] in self.positions:
                return self.positions[path[:end]]
        return None, None

    def error(self, message: str, hint: str = "", path: tuple[object, ...] = ()) -> SpecError:
        line, column = self.locate(path)
        return SpecError(message, hint, self.file, line, column, path)


class _CappedLoader(
    yaml.composer.Composer, _Parser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver
):
    """SafeLoader that stops deep nesting and alias bombs while composing (in Python, below);
    libyaml scans and parses when installed (3× faster: `validate` stays linear and quick)."""

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> node count with aliases expanded
        self._total = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            self._count(self._sizes.get(id(node), 1), event.start_mark)  # type: ignore[union-attr]
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise yaml.YAMLError(
                f"nesting deeper than {MAX_DEPTH} levels at line {self.peek_event().start_mark.line + 1}"  # type: ignore[union-attr]
            )
        before = self._total
        composed: Any = super().compose_node(parent, index)
        self._depth -= 1
        self._count(1, composed.start_mark)
        self._sizes[id(composed)] = self._total - before
        return composed

    def _count(self, nodes: int, mark: Any) -> None:
        self._total += nodes
        if self._total > MAX_NODES:
            raise yaml.YAMLError(
                f"document expands to more than {MAX_NODES:,} nodes (an alias bomb?) by line {mark.line + 1}"
            )


def read_yaml(path: str | os.PathLike[str]) -> tuple[Any, SourceMap]:
    """Parse one YAML file into plain data and the positions of its keys."""
    return parse_yaml_text(read_text(path, "give a .yaml file"), str(path))


def parse_yaml_text(text: str, name: str) -> tuple[Any, SourceMap]:
    """Parse YAML text (from file `name`) into plain data and the positions of its keys."""
    source = SourceMap(name)
    try:
        # libyaml composes in C (and caps nesting itself); the caps below then walk the node graph.
        # Without libyaml, PyYAML's Python composer is capped while it composes.
        loader: Any = yaml.CSafeLoader(text) if _C_COMPOSER else _CappedLoader(text)
    except yaml.YAMLError as e:  # the reader refuses NUL and other control characters at once
        raise SpecError(f"invalid YAML: {str(e).splitlines()[0][:120]}", file=name) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError("file is empty", "an architecture needs `name`, `input` and `layers`", name, 1)
        _check_caps(node)
        _record(node, (), source)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = (e.problem or str(e)).strip()
        if e.context and "constructor" in problem:
            problem = f"{problem} (only plain YAML is allowed; tags that build objects are refused)"
        where: dict[str, Any] = {"line": mark.line + 1, "column": mark.column + 1} if mark else {}
        raise SpecError(f"invalid YAML: {problem}", file=name, **where) from None
    except yaml.YAMLError as e:  # libyaml's reader errors span lines: the first says what
        raise SpecError(f"invalid YAML: {str(e).splitlines()[0][:120]}", file=name) from None
    except ValueError as e:  # int("9" * 5000): Python caps integers at 4,300 digits
        raise SpecError(f"invalid YAML: {str(e).split(';')[0][:120]}", "use a smaller number", name) from None
    finally:
        loader.dispose()
    return data, source


def _check_caps(root: yaml.Node) -> None:
    """Nesting depth and node count with aliases expanded, in one pass over the composed graph
    (each distinct collection once: an alias bomb is caught in time linear in the file)."""
    sizes: dict[int, int] = {}  # id(collection) -> nodes under it, aliases expanded (scalars: 1)
    open_: set[int] = set()  # collections whose children are still being counted
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if not isinstance(node, yaml.CollectionNode):
            continue
        children = _children(node)
        if done:
            total = 1 + sum(sizes.get(id(child), 1) for child in children)
            if total > MAX_NODES:
                line = node.start_mark.line + 1
                raise yaml.YAMLError(
                    f"document expands to more than {MAX_NODES:,} nodes (an alias bomb?) by line {line}"
                )
            sizes[id(node)] = total
            open_.discard(id(node))
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_:
            line = node.start_mark.line + 1
            raise yaml.YAMLError(f"an alias refers to the node that contains it (line {line}); remove it")
        if depth > MAX_DEPTH:
            raise yaml.YAMLError(f"nesting deeper than {MAX_DEPTH} levels at line {node.start_mark.line + 1}")
        stack.append((node, depth, True))
        open_.add(id(node))
        stack.extend(
            (child, depth + 1, False)
            for child in children
            if isinstance(child, yaml.CollectionNode) and id(child) not in sizes
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value)


def _record(node: yaml.Node, path: tuple[object, ...], source: SourceMap) -> None:
    """Remember where every key path starts; reject duplicate keys (PyYAML keeps the last).
    Runs after _check_caps, which refused alias cycles and bombs: the walk is bounded."""
    source.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[object] = set()
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key.value)
            if name in seen:
                raise SpecError(
                    f"duplicate key {name!r}",
                    "keep one",
                    source.file,
                    key.start_mark.line + 1,
                    key.start_mark.column + 1,
                    path,
                )
            seen.add(name)
            _record(value, (*path, name), source)
            # errors about an entry point at its key, where the user reads the line
            source.positions[(*path, name)] = (key.start_mark.line + 1, key.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record(item, (*path, i), source)
