"""YAML -> NetworkSpec, safely, with errors that point at the file, line, column and key path.

Safety: PyYAML's SafeLoader refuses tags that construct Python objects; on top of it we cap the
file size, the nesting depth and the number of nodes *after alias expansion* while composing, so
an alias bomb fails before anything walks the expanded document.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from darkforge import registry
from darkforge.errors import SpecError, key_path
from darkforge.spec import NetworkSpec, network_model

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 200_000  # counted with aliases expanded; Darknet-53 flat is ~2,000


@dataclass
class Source:
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


class _CappedLoader(yaml.SafeLoader):
    """SafeLoader that stops deep nesting and alias bombs while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> node count with aliases expanded
        self._total = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            self._count(self._sizes.get(id(node), 1), event.start_mark)
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


def read_yaml(path: str | os.PathLike[str]) -> tuple[Any, Source]:
    """Parse one YAML file into plain data and the positions of its keys."""
    return parse_yaml_text(read_text(path, "give a .yaml file"), str(path))


def read_text(path: str | os.PathLike[str], hint: str) -> str:
    """A text file of at most MAX_BYTES, as UTF-8; every failure is a located SpecError."""
    name = str(path)
    file = Path(path)
    if file.is_dir():
        raise SpecError("is a directory, not an architecture file", hint, name)
    try:
        with file.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise SpecError("no such file", "check the path", name) from None
    except OSError as e:
        raise SpecError(f"cannot read: {e.strerror}", file=name) from None
    if len(raw) > MAX_BYTES:
        raise SpecError(f"file is larger than {MAX_BYTES // 2**20} MiB", "is this an architecture?", name)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise SpecError(f"byte {e.start} is not UTF-8", "save the file as UTF-8", name, line) from None


def parse_yaml_text(text: str, name: str) -> tuple[Any, Source]:
    """Parse YAML text (from file `name`) into plain data and the positions of its keys."""
    source = Source(name)
    loader = _CappedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError("file is empty", "an architecture needs `name`, `input` and `layers`", name, 1)
        _record(node, (), source)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = (e.problem or str(e)).strip()
        if e.context and "constructor" in problem:
            problem = f"{problem} (only plain YAML is allowed; tags that build objects are refused)"
        where: dict[str, Any] = {"line": mark.line + 1, "column": mark.column + 1} if mark else {}
        raise SpecError(f"invalid YAML: {problem}", file=name, **where) from None
    except yaml.YAMLError as e:
        raise SpecError(f"invalid YAML: {e}", file=name) from None
    finally:
        loader.dispose()
    return data, source


def _record(
    node: yaml.Node, path: tuple[object, ...], source: Source, stack: frozenset[int] = frozenset()
) -> None:
    """Remember where every key path starts; reject duplicate keys (PyYAML keeps the last)."""
    if id(node) in stack:
        line = node.start_mark.line + 1
        raise SpecError("an alias refers to the node that contains it", "remove it", source.file, line)
    stack = stack | {id(node)}
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
            _record(value, (*path, name), source, stack)
            # errors about an entry point at its key, where the user reads the line
            source.positions[(*path, name)] = (key.start_mark.line + 1, key.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record(item, (*path, i), source, stack)


SHIPPED = Path(__file__).resolve().parent / "archs"


def arch_path(arch: str | os.PathLike[str]) -> Path:
    """A file path, or the bare name of an architecture shipped with darkforge (`darknet53`),
    so `darkforge train darknet53` works from an installed wheel."""
    path = Path(arch)
    if not path.exists() and not path.suffix and (SHIPPED / f"{arch}.yaml").is_file():
        return SHIPPED / f"{arch}.yaml"
    return path


def load_spec(path: str | os.PathLike[str]) -> NetworkSpec:
    """Read and validate an architecture file (a darkforge YAML, or a Darknet .cfg)."""
    path = arch_path(path)
    if str(path).endswith(".cfg"):
        from darkforge.darknet import load_cfg

        return load_cfg(path)
    data, source = read_yaml(path)
    return parse_spec(data, source)


def spec_from_text(text: str, name: str) -> NetworkSpec:
    """A spec from YAML text, such as the copy a run directory or checkpoint keeps."""
    return parse_spec(*parse_yaml_text(text, name))


def parse_spec(data: Any, source: Source) -> NetworkSpec:
    """Validate plain data (already read from `source`) into a spec."""
    if not isinstance(data, dict):
        raise source.error(f"expected a mapping of `name`, `input`, `layers`…, got {type(data).__name__}")
    try:
        spec = network_model().model_validate(data)
    except ValidationError as e:
        raise _first_error(e, data, source) from None
    if spec.train is not None:  # checked here so `validate` catches a bad recipe too
        from darkforge.recipe import Recipe

        try:
            Recipe.model_validate(spec.train)
        except ValidationError as e:
            raise _first_error(e, data, source, ("train",)) from None
    spec._source = source
    return spec


def _first_error(
    error: ValidationError, data: Any, source: Source, prefix: tuple[Any, ...] = ()
) -> SpecError:
    """Turn pydantic's first error into one line. `include_input=False`: printing the input of an
    alias-heavy document would expand it."""
    details = error.errors(include_input=False, include_url=False)
    # The most telling error first: a misspelt key also shows up as a missing one, and a union
    # such as `bn: bool | {momentum, eps}` reports one error per member.
    detail = min(details, key=lambda d: (_PRIORITY.get(d["type"], 9), -len(d["loc"])))
    loc = prefix + _strip_tags(tuple(detail["loc"]))
    message, hint = detail["msg"], ""
    kind = detail["type"]
    if kind == "union_tag_invalid":
        tag = _lookup(data, (*loc, "type"))
        message = f"unknown layer type {tag!r}"
        hint = registry.did_you_mean(str(tag), registry.names())
        loc = (*loc, "type")
    elif kind == "union_tag_not_found":
        message = "layer has no `type`"
        hint = "valid types: " + ", ".join(registry.names())
    elif kind == "extra_forbidden":
        allowed = _allowed_keys(data, loc[:-1])
        message = f"unknown key {loc[-1]!r}"
        hint = registry.did_you_mean(str(loc[-1]), allowed)
    elif kind == "missing":
        message = f"missing required key {loc[-1]!r}"
        hint = "add it"
    else:
        message = f"{message}; got {_lookup(data, loc)!r}" if _has(data, loc) else message
    if len(details) > 1:
        hint = f"{hint}; " if hint else ""
        hint += f"{len(details) - 1} more error(s) after this one"
    return source.error(message, hint, loc)


_PRIORITY = {"extra_forbidden": 0, "union_tag_invalid": 1, "union_tag_not_found": 1, "missing": 2}
_UNION_MEMBERS = {"bool", "int", "float", "str"}


def _strip_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """('layers', 3, 'ConvBnLeaky', 'bn', 'BatchNorm', 'eps') -> ('layers', 3, 'bn', 'eps').

    Pydantic names the union member it tried (a type tag, a model class, `int`, `list[...]`);
    dialect keys are lower case, so anything capitalised or type-like is such a label.
    """
    return tuple(
        part
        for part in loc
        if not (
            isinstance(part, str)
            and (part[:1].isupper() or part in _UNION_MEMBERS or "[" in part or "-" in part)
        )
    )


def _has(data: Any, loc: tuple[Any, ...]) -> bool:
    try:
        _lookup(data, loc)
    except (KeyError, IndexError, TypeError):
        return False
    return True


def _lookup(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        data = data[part]
    return data


def _allowed_keys(data: Any, loc: tuple[Any, ...]) -> list[str]:
    model: Any = network_model()
    if loc[:1] == ("train",):
        from darkforge.recipe import Recipe

        model, loc = Recipe, loc[1:]
    elif len(loc) >= 2 and loc[0] == "layers" and isinstance(loc[1], int):
        tag = _lookup(data, (*loc[:2], "type")) if _has(data, (*loc[:2], "type")) else None
        try:
            model = registry.get(str(tag)).spec
        except SpecError:
            return []
        loc = loc[2:]
    for part in loc:
        field_info = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field_info, "annotation", None)
        model = next(
            (a for a in getattr(annotation, "__args__", (annotation,)) if hasattr(a, "model_fields")),
            None,
        )
        if model is None:
            return []
    return [f.alias or name for name, f in model.model_fields.items()]


__all__ = ["Source", "key_path", "load_spec", "parse_spec", "read_yaml"]
