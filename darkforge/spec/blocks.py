"""User-defined blocks: named, parametrised sub-graphs declared in a file's `blocks:` section (or in
a library of blocks it `include`s) and used like layer types.

    blocks:
      Bottleneck:
        params: {width: int, out: int, stride: {type: int, default: 1}}
        layers:
          - {type: Conv, filters: $width, size: 1, bn: true, activation: relu}
          - {type: Conv, filters: $width, size: 3, stride: $stride, bn: true, activation: relu}
          - {type: Conv, filters: $out, size: 1, bn: true, id: last}
          - {type: Conv, from: input, filters: $out, size: 1, stride: $stride, bn: true,
             id: down, when: "${stride != 1 or in_channels != out}"}
          - {type: Shortcut, from: [last, down], activation: relu}

A use (`{type: Bottleneck, width: 64, out: 256, repeat: 3}`) is one layer of the network: its
parameters are checked like any layer's fields; its shape rule instantiates the definition for its
input shapes (`$name` / `${expr}` substituted, `in_channels` = the input's channels, layers whose
`when` is false left out: references to them read their input instead) and walks it as a graph of
its own, whose `from` resolves inside the block (its inputs by name: `input` unless `inputs:` says
otherwise). Errors name the use's line and the definition's.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import PrivateAttr, TypeAdapter, ValidationError

from darkforge.errors import SpecError
from darkforge.spec import registry, work
from darkforge.spec.base import (
    LayerCost,
    LayerSpec,
    Operand,
    Ref,
    Scale,
    Shape,
    ShapeError,
)
from darkforge.spec.blockrefs import References
from darkforge.spec.blockscale import scaled_argument, scaled_part
from darkforge.spec.definitions import BlockDefinition, Param
from darkforge.spec.expr import CHANNELS, ExprError, names_in, substitute
from darkforge.spec.graph import LayerInfo, Scope, walk
from darkforge.spec.layers.graph import Route
from darkforge.spec.messages import describe

BLOCK_NAME = r"^[A-Z][A-Za-z0-9_]*$"
# names expressions see besides the parameters: the input's channels, which copy of a repeated
# use this is (`copy` from 0, of `copies`; 0 of 1 for a use that does not repeat), and the
# network's class count (`classes`: the file's, --classes or the dataset's; a parameter of that
# name is the block's own, and wins)
RESERVED_NAMES = ("in_channels", "copy", "copies")
MAX_DEPTH = 16  # blocks inside blocks; deeper is a mistake (or a bomb)
_stack: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("darkforge_blocks", default=())


@dataclass
class Block:
    """A block definition and where it was written (for errors)."""

    name: str
    definition: BlockDefinition
    file: str
    line: int | None
    positions: Mapping[tuple[object, ...], tuple[int, int]]  # ("layers", k, key) -> (line, column)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def params(self) -> dict[str, Param]:
        return dict(self.definition.params)

    @cached_property
    def reads_copy(self) -> bool:
        """Whether any layer reads `copy` or `copies` (each copy of a repeat is then its own)."""
        return bool({"copy", "copies"} & names_in(self.definition.layers))

    def locate(self, path: tuple[object, ...]) -> str:
        """'resnet.yaml:12:9': the file by its name only (the line's front names the path in full;
        one error line stays readable with a deep folder)."""
        name = Path(self.file).name or self.file
        for end in range(len(path), -1, -1):
            if path[:end] in self.positions:
                line, column = self.positions[path[:end]]
                return f"{name}:{line}:{column}"
        return f"{name}:{self.line}" if self.line else name


@dataclass
class Library:
    """The blocks one file can use, and the layer union their layers are validated against."""

    blocks: dict[str, Block] = field(default_factory=dict)
    models: dict[str, type[BlockUse]] = field(default_factory=dict)
    adapter: TypeAdapter[Any] | None = None
    # (block, input shapes, arguments, scale) -> its instance, shared by every use that asks the
    # same: 20 uses of a block in a block used 20 times are instantiated once, not 400 times
    instances: dict[tuple[Any, ...], Instance] = field(default_factory=dict)

    def layer(self, data: dict[str, Any]) -> LayerSpec:
        assert self.adapter is not None  # set by make_library
        return self.adapter.validate_python(data)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Instance:
    """A block instantiated for given input shapes: its kept layers, walked."""

    layers: list[LayerSpec]
    infos: list[LayerInfo]
    output: int
    size: int  # layers after expansion, summed once here (nested uses have theirs by now)
    cost: LayerCost  # the output's shape and every layer's cost, summed once (a use repeated
    # 1000 times asks 1000 times)
    kept: tuple[int, ...] = ()  # the written position of each layer (the others' `when` is false)


class BlockUse(LayerSpec):
    """A use of a user-defined block. Subclasses are made per block by `make_library`."""

    block: ClassVar[Block]
    library: ClassVar[Library]
    _scale: Scale | None = PrivateAttr(None)
    _copy: tuple[int, int] = PrivateAttr((0, 1))  # (which copy, of how many) in a repeat
    _classes: int | None = PrivateAttr(None)  # the network's class count, once resolved
    _cache: dict[tuple[Any, ...], Instance] = PrivateAttr(default_factory=dict)

    def arguments(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.block.definition.params}

    def arguments_key(self) -> tuple[Any, ...]:
        """What an instance depends on besides the input shapes (the copy only where the
        definition reads it: the copies of other blocks share one instance)."""
        values = tuple((k, _frozen(v)) for k, v in self.arguments().items())
        return (values, self._scale, self._copy if self.block.reads_copy else None, self._classes)

    def copy_at(self, k: int) -> Self:
        one = self.model_copy(update={"repeat": 1, "collect": False, "numbered": False})
        one._copy = (k, self.repeat)
        return one

    def with_classes(self, classes: int | None) -> Self:
        """The use in a network of `classes` classes: `${classes}` inside reads it, and the
        block's own class-count layers (a Linear without `out`, a Detect) take it."""
        if classes == self._classes:
            return self
        copy = self.model_copy()
        copy._classes = classes
        copy._cache = {}
        return copy

    def scaled(self, scale: Scale) -> Self:
        """The use under `scale`: parameters declared `scale: width|depth` scaled (spec/blockscale.py),
        the block's layers scaled when instantiated."""
        kinds = {name: param.scale for name, param in self.block.params().items()}
        scaled_values = {
            name: scaled_argument(kinds[name], value, scale) for name, value in self.arguments().items()
        }
        # only what changes: an update marks a field as written (`model_fields_set`, which the
        # unread-parameter warning reads), and a default the use never wrote is not written
        update = {name: v for name, v in scaled_values.items() if v != getattr(self, name)}
        copy = self.model_copy(update=update)
        copy._scale = scale
        copy._cache = {}  # model_copy shares the private dict's values: never the unscaled instances
        return copy

    def input_names(self, count: int) -> list[str]:
        return list(self.block.definition.inputs)

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        return self.instance([x.shape for x in inputs]).cost

    def expand(self, inputs: Sequence[Shape]) -> list[LayerSpec]:
        inst = self.instance(inputs)
        if inst.output != len(inst.layers) - 1:  # the flat spelling ends with the output
            return [*inst.layers, _pass_through(inst.output)]
        return inst.layers

    def flat_size(self) -> int:
        """Layers after expansion, from the instance the plan made (1 per layer before it has)."""
        inst = next(iter(self._cache.values()), None)
        return self.repeat * (inst.size if inst else len(self.block.definition.layers)) + self.collect_route()

    def composition(self, inputs: Sequence[Shape]) -> tuple[list[LayerSpec], int]:
        inst = self.instance(inputs)
        return inst.layers, inst.output

    def instance(self, inputs: Sequence[Shape]) -> Instance:
        key = (*inputs, self.arguments_key())
        if key not in self._cache:
            shared = (self.block.name, *key)
            if shared not in self.library.instances:
                self.library.instances[shared] = self._instantiate(inputs)
            self._cache[key] = self.library.instances[shared]
        return self._cache[key]

    def _instantiate(self, inputs: Sequence[Shape]) -> Instance:
        block = self.block
        stack = _stack.get()
        if block.name in stack:
            raise ShapeError(f"block {block.name} uses itself ({' → '.join([*stack, block.name])})")
        if len(stack) >= MAX_DEPTH:
            raise ShapeError(f"blocks nest deeper than {MAX_DEPTH} levels")  # the error names the chain
        token = _stack.set((*stack, block.name))
        try:
            return self._build(inputs)
        finally:
            _stack.reset(token)

    def _build(self, inputs: Sequence[Shape]) -> Instance:
        block = self.block
        names: dict[str, Any] = {"in_channels": inputs[0][0] if inputs and inputs[0] else 0}
        named = zip(block.definition.inputs, inputs, strict=False)
        names |= {f"{CHANNELS}:{name}": shape[0] for name, shape in named if shape}  # channels(lateral)
        names |= {"copy": self._copy[0], "copies": self._copy[1]}
        if self._classes is not None:
            names["classes"] = self._classes
        names |= self.arguments()
        written = block.definition.layers
        layers, kept = self._kept(names)
        if not layers:
            raise self._error("every layer's `when` is false for these parameters", ())
        work.charge(len(written), len(layers), block.name, len(_stack.get()) > 1)
        refs = References(
            block.name,
            written,
            block.definition.inputs,
            kept,
            self._written_sources,
            lambda message, path, hint: self._error(message, path, hint),
        )
        layers = refs.renumbered(layers, kept)
        scope = Scope(
            tuple(zip(block.definition.inputs, inputs, strict=False)),
            lambda message, path, hint: self._inner_error(message, path, kept),
            what=f"the input of block {block.name}",
        )
        if len(inputs) != len(block.definition.inputs):
            raise ShapeError(
                f"block {block.name} takes {len(block.definition.inputs)} input(s), got {len(inputs)}"
            )
        try:
            infos = walk(layers, scope)
        except SpecError as e:  # located at the use by the walk around it
            raise ShapeError(f"{e.message}; {e.hint}" if e.hint else e.message) from None
        output = refs.last() if block.definition.output is None else self._output(layers, kept)
        total = LayerCost(
            infos[output].output,
            sum(i.cost.params for i in infos),
            sum(i.cost.macs for i in infos),
            sum(i.cost.dead_params for i in infos),
            sum(i.cost.produced for i in infos),  # every map the block's modules produce
            sum(i.cost.products for i in infos),
        )
        size = sum(layer.flat_size() for layer in layers)
        return Instance(layers, infos, output, size, total, tuple(kept))

    def _kept(self, names: Mapping[str, Any]) -> tuple[list[LayerSpec], list[int]]:
        """The layers whose `when` holds, substituted, validated and scaled; their positions."""
        kinds = {name: param.scale for name, param in self.block.params().items()}
        kept: list[int] = []  # positions in `written` of the layers that exist for these arguments
        layers: list[LayerSpec] = []
        for k, raw in enumerate(self.block.definition.layers):
            data = dict(raw)
            when = data.pop("when", True)
            if data.pop("when_removed", None) is not None and "when" not in raw:
                raise self._error(
                    "`when_removed` says what stands in when `when` removes the layer",
                    ("layers", k, "when_removed"),
                    "add a `when`, or drop `when_removed`",
                )
            try:
                if not _truth(substitute(when, names)):
                    continue
                data = substitute(data, names)
            except ExprError as e:
                raise self._error(str(e), ("layers", k, "when" if "when" in raw else None)) from None
            try:
                layer = self.library.layer(data)
            except ValidationError as e:
                raise self._invalid(e, k, data) from None
            if self._scale is not None:
                layer = scaled_part(layer, raw, self._scale, kinds, partial(self._scale_error, k))
            layer = layer.with_classes(self._classes)
            kept.append(k)
            layers.append(layer)
        return layers, kept

    def _written_sources(self, raw: Mapping[str, Any]) -> list[Ref]:
        """The inputs of a written layer, as its type reads `from` (a Shortcut's single `from`
        is added to the previous layer)."""
        written = raw.get("from", -1)
        if isinstance(written, list):
            return list(written)
        kind = self.library.models.get(str(raw.get("type"))) or _builtin(str(raw.get("type")))
        return [-1, written] if kind is not None and kind.arity[0] >= 2 else [written]

    def _scale_error(self, k: int, message: str, key: str) -> ShapeError:
        return self._error(message, ("layers", k, key))

    def _invalid(self, error: ValidationError, k: int, data: dict[str, Any]) -> ShapeError:
        """Pydantic's most telling error about layer k, in the words the loader uses."""
        problem = describe(error, data, library=self.library)
        return self._error(problem.message, ("layers", k, *problem.loc), problem.hint)

    def _output(self, layers: list[LayerSpec], kept: list[int]) -> int:
        ref = self.block.definition.output
        ids = {layer.id: n for n, layer in enumerate(layers) if layer.id}
        if isinstance(ref, str) and ref in ids:
            return ids[ref]
        if isinstance(ref, int) and -len(layers) <= ref < len(layers):
            return ref % len(layers)
        raise self._error(f"output {ref!r} is no layer of the block", ("output",))

    def _error(self, message: str, path: tuple[Any, ...], hint: str = "") -> ShapeError:
        if message.startswith(_NESTED):  # from a block inside this one: name the chain, keep its place
            text = f"{_NESTED}{self.block.name} → {message.removeprefix(_NESTED)}"
            return ShapeError(f"{text}; {hint}" if hint else text)
        where = self.block.locate(tuple(p for p in path if p is not None))
        key = _key(path)
        text = f"in block {self.block.name} ({where}): {key + ': ' if key else ''}{message}"
        return ShapeError(f"{text}; {hint}" if hint else text)

    def _inner_error(self, message: str, path: tuple[Any, ...], kept: list[int]) -> SpecError:
        if len(path) >= 2 and path[0] == "layers" and isinstance(path[1], int):
            path = ("layers", kept[path[1]], *path[2:])
        return SpecError(str(self._error(message, path)))


def least_layers(layers: Sequence[LayerSpec]) -> list[int]:
    """For each layer, a lower bound of the layers it expands to (darkforge.spec.work); none
    without block uses (the size the walk computes is then cheap and exact)."""
    if not any(isinstance(layer, BlockUse) for layer in layers):
        return []
    memo: dict[str, int] = {}
    return [_least_of(layer, memo) for layer in layers]


def _least_of(layer: LayerSpec, memo: dict[str, int]) -> int:
    """A lower bound of the layers `layer` (of a resolved network) expands to, from block
    definitions alone (nothing is instantiated): a use counts its own repeats times its
    definition's layers without `when`, block uses among them recursively, their repeats as 1 (a
    depth scale may lower them). Each definition is read once; other layers count exactly."""
    if not isinstance(layer, BlockUse):
        return layer.flat_size()
    return layer.repeat * _least(layer.block, layer.library, memo, ())


def _least(block: Block, library: Library, memo: dict[str, int], stack: tuple[str, ...]) -> int:
    if block.name in memo:
        return memo[block.name]
    if block.name in stack:  # a block using itself: the walk says so
        return 1
    total = 0
    for raw in block.definition.layers:
        if "when" in raw:
            continue
        kind = raw.get("type")
        inner = library.blocks.get(kind) if isinstance(kind, str) else None
        total += 1 if inner is None else _least(inner, library, memo, (*stack, block.name))
    memo[block.name] = max(total, 1)
    return memo[block.name]


_NESTED = "in block "  # how a block's errors start (nested ones chain: "in block A → B (where): ...")


def _truth(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ExprError(f"`when` must be true or false, got {value!r}")
    return value


def _builtin(name: str) -> type[LayerSpec] | None:
    return registry.get(name).spec if name in registry.names() else None


def _frozen(value: Any) -> Any:
    """A parameter's value as a cache key (a mapping is not hashable)."""
    return tuple(sorted((k, _frozen(v)) for k, v in value.items())) if isinstance(value, dict) else value


def _pass_through(index: int) -> LayerSpec:
    return Route(from_=index)


def _key(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        if part is None:
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
