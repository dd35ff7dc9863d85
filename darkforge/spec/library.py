"""A file's own layer types: its `blocks:` and the block libraries it `include`s, and the network
model whose layer union holds them beside the registered types."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PydanticSchemaGenerationError, TypeAdapter, ValidationError, create_model
from pydantic_core import SchemaError

from darkforge.errors import SpecError
from darkforge.spec import registry
from darkforge.spec.base import NetworkSpec
from darkforge.spec.blocks import BLOCK_NAME, RESERVED_NAMES, Block, BlockUse, Library
from darkforge.spec.defaults import Defaults, applied, block_fields, checked, fields_of_type
from darkforge.spec.definitions import BlockDefinition, Param
from darkforge.spec.messages import describe
from darkforge.spec.shipped import shipped_library
from darkforge.spec.source import SourceMap, read_yaml


def network_model_for(data: dict[str, Any], source: SourceMap) -> tuple[type[NetworkSpec], Library | None]:
    """The model `data` validates against: the registered types, plus its blocks when it has any."""
    if not data.get("blocks") and not data.get("include"):
        return registry.network_model(), None
    blocks = read_blocks(data, source, (os.path.realpath(source.file),))
    library = make_library(blocks)
    return registry.network_model(tuple(library.models.values())), library


_PARAM_TYPES: dict[str, Any] = {
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "mapping": dict[str, Any],
}
MAX_INCLUDE_DEPTH = 16  # libraries including libraries
MAX_INCLUDE_FILES = 64  # distinct files one network reads, however often they are included
MAX_PATH = 4096  # characters of an include path (Linux's PATH_MAX)
LIBRARY_KEYS = frozenset({"blocks", "include", "description", "name", "defaults"})


@dataclass
class _Reads:
    """The libraries one network has read: each file once (a diamond or a file including the next
    twice costs one read per file, not 2**depth), by its real path, so `a/../x.yaml` and `x.yaml`
    are one file and a cycle is seen however it is spelt."""

    done: dict[str, dict[str, Block]] = field(default_factory=dict)


def read_blocks(
    data: dict[str, Any],
    source: SourceMap,
    chain: tuple[str, ...],
    reads: _Reads | None = None,
) -> dict[str, Block]:
    """Blocks of `data` and of the files it includes (paths relative to its own file, or the
    name of a library shipped with darkforge)."""
    reads = reads if reads is not None else _Reads()
    blocks: dict[str, Block] = {}
    includes = data.get("include") or []
    if not isinstance(includes, list) or not all(isinstance(p, str) for p in includes):
        raise source.error(
            "`include` is a list of file paths", "e.g. include: [blocks/resnet.yaml]", ("include",)
        )
    for k, name in enumerate(includes):
        for block in _included(name, source, chain, reads, ("include", k)).values():
            _add(blocks, block, source, ("include", k))
    written = data.get("blocks") or {}
    if not isinstance(written, dict):
        raise source.error("`blocks` maps block names to definitions", "", ("blocks",))
    own = [_block(name, raw, data, source) for name, raw in written.items()]
    known = {**blocks, **{block.name: block for block in own}}
    defaults = checked(data, source, lambda kind: layer_fields(kind, known))
    for block in own:
        _add(blocks, _with_defaults(block, defaults), source, ("blocks", block.name))
    return blocks


def layer_fields(kind: str, blocks: Mapping[str, Block]) -> set[str] | None:
    """The keys a layer of `kind` can write: a registered type's fields or a block's parameters."""
    if kind in blocks:
        return block_fields(blocks[kind].params())
    return fields_of_type(kind)


def _with_defaults(block: Block, defaults: Defaults) -> Block:
    """`block` with its file's defaults written into its layers (so an inlined copy keeps them)."""
    layers = applied(block.definition.layers, defaults)
    if layers == block.definition.layers:
        return block
    definition = block.definition.model_copy(update={"layers": layers})
    return replace(block, definition=definition)


def _included(
    name: str, source: SourceMap, chain: tuple[str, ...], reads: _Reads, at: tuple[Any, ...]
) -> dict[str, Block]:
    if "\0" in name or len(name) > MAX_PATH:
        raise source.error(
            f"include path '{_shown(name)}' is no file name", "give a path to a .yaml file", at
        )
    path = Path(source.file).parent / name
    shipped = shipped_library(name) if not path.exists() else None
    path = shipped or path  # `include: [ultralytics]`: a library that ships with darkforge
    real = os.path.realpath(path)
    if real in chain:
        shown = " → ".join([*(Path(c).name for c in chain), Path(real).name])
        raise source.error(f"{_shown(name)} includes itself ({shown})", "remove the cycle", at)
    if real in reads.done:
        return reads.done[real]
    if len(chain) > MAX_INCLUDE_DEPTH:
        raise source.error(f"includes nest deeper than {MAX_INCLUDE_DEPTH} files", "", at)
    if len(reads.done) >= MAX_INCLUDE_FILES:
        raise source.error(f"a network may include at most {MAX_INCLUDE_FILES} files", "", at)
    reads.done[real] = {}  # counted before it is read: a failing read still counts
    try:
        included, included_source = read_yaml(path)
    except SpecError as e:  # a library's own errors, without what the file holds (it may be no library)
        if e.line is None:  # missing, a folder, a FIFO, too big: said where the include is written
            raise source.error(f"{_shown(name)}: {e.message}", e.hint, at) from None
        raise SpecError(_without_content(e.message), e.hint, e.file, e.line, e.column) from None
    if not isinstance(included, dict) or set(included) - LIBRARY_KEYS:
        raise source.error(
            f"{_shown(name)} is not a block library", "a library holds `blocks:` (and `include:`)", at
        )
    reads.done[real] = read_blocks(included, included_source, (*chain, real), reads)
    return reads.done[real]


def _shown(name: str) -> str:
    """An include path for an error: control characters escaped, at most 60 characters."""
    text = name if name.isprintable() else repr(name)[1:-1]
    return text if len(text) <= 60 else text[:59] + "…"


def _without_content(message: str) -> str:
    """A YAML error's words without the file's text it quotes (`found character '…'`)."""
    return re.sub(r"'[^']*'|\"[^\"]*\"", "…", message)[:200]


def _block(name: object, raw: Any, data: dict[str, Any], source: SourceMap) -> Block:
    path = ("blocks", name)
    if not isinstance(name, str) or not re.match(BLOCK_NAME, name):
        raise source.error(f"block name {name!r} must start with a capital letter", "e.g. Bottleneck", path)
    try:
        definition = BlockDefinition.model_validate(raw)
    except ValidationError as e:
        raise describe(e, data, path, BlockDefinition).at(source) from None
    for pname in definition.params:
        if internal_name(pname):
            raise source.error(
                f"parameter name {pname!r} is reserved (darkforge uses it internally)",
                "rename the parameter (e.g. add a suffix) and its $references",
                (*path, "params", pname),
            )
    line, _ = source.locate(path)
    positions = {p[2:]: pos for p, pos in source.positions.items() if p[:2] == path}
    return Block(name, definition, source.file, line, positions)


def _add(blocks: dict[str, Block], block: Block, source: SourceMap, path: tuple[Any, ...]) -> None:
    builtin = block.name in registry.names()
    if builtin and not block.definition.shadows:
        raise source.error(
            f"block {block.name} has the name of a layer type",
            "rename the block, or say `shadows: true` in it to stand for that type in this file",
            path,
        )
    if block.definition.shadows and not builtin:
        raise source.error(
            f"block {block.name} says `shadows: true`, but no layer type has its name", "", path
        )
    if blocks.get(block.name) is block:  # one library reached twice (a diamond of includes)
        return
    if block.name in blocks:
        raise source.error(
            f"block {block.name} is defined twice ({blocks[block.name].where} and {block.where})", "", path
        )
    blocks[block.name] = block


# Names a use's parameters cannot take: a parameter is an attribute of the use's model, so one named
# like the model's own fields, methods or class data (`type`, `infer`, `block`, pydantic's
# `model_config`...) would replace what darkforge reads there. Refused by name when the file is read.
_INTERNAL = frozenset(
    {*dir(BlockUse), *BlockUse.model_fields, "from", "block", "library", "module", *RESERVED_NAMES}
)


def internal_name(name: str) -> bool:
    """True for a parameter name that collides with darkforge's or pydantic's internals."""
    return name in _INTERNAL or name.startswith(("_", "model_"))


def make_library(blocks: Mapping[str, Block]) -> Library:
    """Use models for the blocks, and the union (built-in types + blocks) their layers validate against."""
    library = Library(dict(blocks))
    for name, block in blocks.items():
        fields: dict[str, Any] = {"type": (Literal[name], name)}  # type: ignore[valid-type]
        for pname, param in block.params().items():
            if internal_name(pname):  # read_blocks refuses it with its line; this guards other callers
                raise SpecError(f"block {name}: parameter name {pname!r} is reserved", "rename it")
            fields[pname] = _field(param)
        arity = len(block.definition.inputs)
        try:
            model = create_model(
                name,
                __base__=BlockUse,
                __doc__=block.definition.description or f"User block {name} ({block.where}).",
                **fields,
            )
        except (PydanticSchemaGenerationError, SchemaError, TypeError, ValueError) as e:
            # the parameters' checks (darkforge.spec.definitions) should leave nothing pydantic refuses
            first = (str(e).splitlines() or [type(e).__name__])[-1][:120]
            raise SpecError(
                f"block {name} ({block.where}): its parameters cannot be checked ({first})"
            ) from None
        model.block = block
        model.library = library
        model.arity = (arity, arity)
        library.models[name] = model
    library.adapter = TypeAdapter(registry.layer_union(tuple(library.models.values())))
    return library


def _field(param: Param) -> tuple[Any, Any]:
    kind: Any = _PARAM_TYPES[param.type]
    if param.choices is not None:
        kind = Literal[tuple(param.choices)]  # type: ignore[valid-type]
    limits: dict[str, Any] = {k: v for k, v in (("ge", param.min), ("le", param.max)) if v is not None}
    if param.nullable:
        kind = kind | None
    default: Any = ... if param.default is None and not param.nullable else param.default
    if param.type != "float" and param.choices is None:
        limits["strict"] = True  # 64.0 is no channel count, "yes" no bool; 1 is a fine float
    return (kind, Field(default, description=param.description, validate_default=True, **limits))
