"""YAML -> NetworkSpec, safely, with errors that point at the file, line, column and key path.

Safety: PyYAML's SafeLoader refuses tags that construct Python objects; on top of it we cap the
file size, the nesting depth and the number of nodes *after alias expansion* while composing, so
an alias bomb fails before anything walks the expanded document.

Other file formats plug in by suffix (`READERS`): darkforge.darknet registers `.cfg` the way a
user's plugin would, so nothing here knows Darknet.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from darkforge.errors import SpecError, did_you_mean, key_path
from darkforge.files import read_text
from darkforge.spec import registry
from darkforge.spec.base import NetworkSpec

try:  # libyaml's event parser (C); PyYAML's own reader, scanner and parser without it
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _Parser = yaml.SafeLoader  # type: ignore[assignment,misc]

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
        loader = _CappedLoader(text)  # its reader refuses NUL and other control characters at once
    except yaml.YAMLError as e:
        raise SpecError(f"invalid YAML: {str(e).splitlines()[0][:120]}", file=name) from None
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
    except yaml.YAMLError as e:  # libyaml's reader errors span lines: the first says what
        raise SpecError(f"invalid YAML: {str(e).splitlines()[0][:120]}", file=name) from None
    except ValueError as e:  # int("9" * 5000): Python caps integers at 4,300 digits
        raise SpecError(f"invalid YAML: {str(e).split(';')[0][:120]}", "use a smaller number", name) from None
    finally:
        loader.dispose()
    return data, source


def _record(
    node: yaml.Node, path: tuple[object, ...], source: SourceMap, stack: frozenset[int] = frozenset()
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


# Readers of other architecture formats, by file suffix (".cfg": darkforge.darknet fills it in).
READERS: dict[str, Callable[[Path], NetworkSpec]] = {}


def register_reader(suffix: str, reader: Callable[[Path], NetworkSpec]) -> None:
    """Make `load_spec` read files ending in `suffix` (e.g. ".cfg") with `reader`."""
    READERS[suffix.lower()] = reader


def shipped_archs() -> Path:
    """The architectures that ship with darkforge: the wheel's darkforge/archs/, or in a clone the
    top-level archs/ that users edit (the wheel copies it; see pyproject.toml)."""
    packaged = Path(str(resources.files("darkforge"))) / "archs"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "archs"


def arch_path(arch: str | os.PathLike[str]) -> Path:
    """A file path, or the bare name of an architecture shipped with darkforge (`darknet53`),
    so `darkforge train darknet53` works from an installed wheel."""
    path = Path(arch)
    shipped = shipped_archs() / f"{arch}.yaml"
    if not path.exists() and not path.suffix and shipped.is_file():
        return shipped
    return path


DEFAULT_ARCH = "darknet53"


def default_arch() -> Path:
    """What commands use when no ARCH is given: ./archs/darknet53.yaml, else the shipped one."""
    local = Path("archs") / f"{DEFAULT_ARCH}.yaml"
    return local if local.is_file() else shipped_archs() / f"{DEFAULT_ARCH}.yaml"


def load_spec(path: str | os.PathLike[str]) -> NetworkSpec:
    """Read and validate an architecture file (a darkforge YAML, or a format a plugin reads,
    such as Darknet's .cfg)."""
    path = arch_path(path)
    registry.load_plugins()  # entry points may add readers
    reader = READERS.get(path.suffix.lower())
    if reader is not None:
        return reader(path)
    data, source = read_yaml(path)
    return parse_spec(data, source)


def spec_from_text(text: str, name: str) -> NetworkSpec:
    """A spec from YAML text, such as the copy a run directory or checkpoint keeps."""
    return parse_spec(*parse_yaml_text(text, name))


def parse_spec(data: Any, source: SourceMap) -> NetworkSpec:
    """Validate plain data (already read from `source`) into a spec."""
    if not isinstance(data, dict):
        raise source.error(f"expected a mapping of `name`, `input`, `layers`…, got {type(data).__name__}")
    try:
        spec = registry.network_model().model_validate(data)
    except ValidationError as e:
        raise located_error(e, data, source) from None
    spec._source = source
    return spec


def located_error(
    error: ValidationError,
    data: Any,
    source: SourceMap,
    prefix: tuple[Any, ...] = (),
    model: type[BaseModel] | None = None,
) -> SpecError:
    """Turn pydantic's first error into one line. `include_input=False`: printing the input of an
    alias-heavy document would expand it. `prefix` and `model` locate a section validated on its
    own (the `train:` section is checked by darkforge.training against its Recipe)."""
    details = error.errors(include_input=False, include_url=False)
    # The most telling error first: a misspelt key also shows up as a missing one, and a union
    # such as `bn: bool | {momentum, eps}` reports one error per member.
    detail = min(details, key=lambda d: (_PRIORITY.get(d["type"], 9), -len(d["loc"])))
    loc = prefix + _strip_tags(tuple(detail["loc"]))
    message, hint = detail["msg"], ""
    kind = detail["type"]
    if kind == "union_tag_invalid":
        tag = _lookup(data, (*loc, "type"))
        message = f"unknown layer type {_short(tag)}"
        hint = did_you_mean(str(tag), registry.names())
        loc = (*loc, "type")
    elif kind == "union_tag_not_found":
        message = "layer has no `type`"
        hint = "add `type:` (`darkforge schema --markdown` lists the types)"
    elif kind == "extra_forbidden":
        allowed = _allowed_keys(data, loc[:-1], prefix, model)
        message = f"unknown key {loc[-1]!r}"
        hint = did_you_mean(str(loc[-1]), allowed)
    elif kind == "missing":
        message = f"missing required key {loc[-1]!r}"
        hint = "add it"
    else:
        message = f"{message}; got {_short(_lookup(data, loc))}" if _has(data, loc) else message
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


def _short(value: Any, limit: int = 60) -> str:
    """A value for an error message, never longer than `limit` (an alias-expanded input can be huge)."""
    text = (
        repr(value) if isinstance(value, str | int | float | bool) or value is None else type(value).__name__
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _allowed_keys(
    data: Any, loc: tuple[Any, ...], prefix: tuple[Any, ...] = (), root: type[BaseModel] | None = None
) -> list[str]:
    model: Any = registry.network_model()
    if root is not None:
        model, loc = root, loc[len(prefix) :]
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


__all__ = [
    "READERS",
    "SourceMap",
    "key_path",
    "load_spec",
    "located_error",
    "parse_spec",
    "read_yaml",
    "register_reader",
]
