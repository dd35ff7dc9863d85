"""A file's own layer types: its `blocks:` and the block libraries it `include`s, and the network
model whose layer union holds them beside the registered types."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from darkforge.spec import registry
from darkforge.spec.base import NetworkSpec
from darkforge.spec.blocks import BLOCK_NAME, RESERVED_NAMES, Block, BlockDefinition, Library, make_library
from darkforge.spec.messages import describe
from darkforge.spec.source import SourceMap, read_yaml

MAX_INCLUDES = 64


def network_model_for(data: dict[str, Any], source: SourceMap) -> tuple[type[NetworkSpec], Library | None]:
    """The model `data` validates against: the registered types, plus its blocks when it has any."""
    if not data.get("blocks") and not data.get("include"):
        return registry.network_model(), None
    blocks = read_blocks(data, source, (source.file,))
    library = make_library(blocks)
    return registry.network_model(tuple(library.models.values())), library


def read_blocks(data: dict[str, Any], source: SourceMap, chain: tuple[str, ...]) -> dict[str, Block]:
    """Blocks of `data` and of the files it includes (paths relative to its own file)."""
    blocks: dict[str, Block] = {}
    includes = data.get("include") or []
    if not isinstance(includes, list) or not all(isinstance(p, str) for p in includes):
        raise source.error(
            "`include` is a list of file paths", "e.g. include: [blocks/resnet.yaml]", ("include",)
        )
    for k, name in enumerate(includes):
        path = Path(source.file).parent / name
        if str(path) in chain:
            raise source.error(
                f"{name} includes itself ({' → '.join([*chain, str(path)])})", "", ("include", k)
            )
        if len(chain) > MAX_INCLUDES:
            raise source.error(f"includes nest deeper than {MAX_INCLUDES}", "", ("include", k))
        if not path.is_file():  # said at the `include:` line, not only as the missing file's name
            raise source.error(
                f"{name} is no file (looked for {path})",
                "paths are relative to the including file",
                ("include", k),
            )
        included, included_source = read_yaml(path)
        if not isinstance(included, dict) or set(included) - {"blocks", "include", "description", "name"}:
            raise source.error(
                f"{name} is not a block library", "a library holds `blocks:` (and `include:`)", ("include", k)
            )
        for block in read_blocks(included, included_source, (*chain, str(path))).values():
            _add(blocks, block, source, ("include", k))
    written = data.get("blocks") or {}
    if not isinstance(written, dict):
        raise source.error("`blocks` maps block names to definitions", "", ("blocks",))
    for name, raw in written.items():
        path = ("blocks", name)
        if not isinstance(name, str) or not re.match(BLOCK_NAME, name):
            raise source.error(
                f"block name {name!r} must start with a capital letter", "e.g. Bottleneck", path
            )
        try:
            definition = BlockDefinition.model_validate(raw)
        except ValidationError as e:
            raise describe(e, data, path, BlockDefinition).at(source) from None
        clash = set(definition.params) & set(RESERVED_NAMES)
        if clash:
            raise source.error(f"parameter {clash.pop()!r} is reserved", "expressions see it already", path)
        line, _ = source.locate(path)
        positions = {p[2:]: pos for p, pos in source.positions.items() if p[:2] == path}
        _add(blocks, Block(name, definition, source.file, line, positions), source, path)
    return blocks


def _add(blocks: dict[str, Block], block: Block, source: SourceMap, path: tuple[Any, ...]) -> None:
    if block.name in registry.names():
        raise source.error(f"block {block.name} has the name of a layer type", "rename the block", path)
    if block.name in blocks:
        raise source.error(
            f"block {block.name} is defined twice ({blocks[block.name].where} and {block.where})", "", path
        )
    blocks[block.name] = block
