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
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import Field, PrivateAttr, TypeAdapter, ValidationError, create_model

from darkforge.errors import SpecError
from darkforge.spec import registry
from darkforge.spec.base import (
    ID_PATTERN,
    LayerCost,
    LayerSpec,
    Operand,
    Ref,
    Scale,
    Shape,
    ShapeError,
    Strict,
)
from darkforge.spec.blockrefs import References
from darkforge.spec.blockscale import scaled_argument, scaled_part
from darkforge.spec.expr import ExprError, names_in, substitute
from darkforge.spec.graph import LayerInfo, Scope, walk
from darkforge.spec.layers.graph import Route
from darkforge.spec.messages import describe

BLOCK_NAME = r"^[A-Z][A-Za-z0-9_]*$"
# names expressions see besides the parameters: the input's channels, and which copy of a
# repeated use this is (`copy` from 0, of `copies`; 0 of 1 for a use that does not repeat)
RESERVED_NAMES = ("in_channels", "copy", "copies")
MAX_DEPTH = 16  # blocks inside blocks; deeper is a mistake (or a bomb)
_PARAM_TYPES: dict[str, Any] = {
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "mapping": dict[str, Any],
}
_stack: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("darkforge_blocks", default=())


ParamType = Literal["int", "float", "bool", "str", "mapping"]


class Param(Strict):
    """One parameter of a block: its type, default and limits."""

    type: ParamType
    default: int | float | bool | str | dict[str, Any] | None = Field(
        None, description="the value when a use leaves it out; `default: null` makes null allowed"
    )
    min: float | None = None
    max: float | None = None
    choices: list[int | float | str] | None = None
    description: str | None = None
    scale: Literal["width", "depth", "none"] | None = Field(
        None, description="under --scale: a channel count (width), a block count (depth), or kept (none)"
    )


class BlockDefinition(Strict):
    """What a `blocks:` entry holds (the layers stay plain data until a use instantiates them)."""

    description: str | None = None
    params: dict[
        Annotated[str, Field(pattern=ID_PATTERN)], Param | Literal["int", "float", "bool", "str", "mapping"]
    ] = Field(default_factory=dict)
    inputs: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(
        default_factory=lambda: ["input"], min_length=1, max_length=16
    )
    layers: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)
    output: Ref | None = Field(None, description="the layer whose output the block returns (default: last)")


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
        return {k: Param(type=v) if isinstance(v, str) else v for k, v in self.definition.params.items()}

    @cached_property
    def reads_copy(self) -> bool:
        """Whether any layer reads `copy` or `copies` (each copy of a repeat is then its own)."""
        return bool({"copy", "copies"} & names_in(self.definition.layers))

    def locate(self, path: tuple[object, ...]) -> str:
        for end in range(len(path), -1, -1):
            if path[:end] in self.positions:
                line, column = self.positions[path[:end]]
                return f"{self.file}:{line}:{column}"
        return self.where


@dataclass
class Library:
    """The blocks one file can use, and the layer union their layers are validated against."""

    blocks: dict[str, Block] = field(default_factory=dict)
    models: dict[str, type[BlockUse]] = field(default_factory=dict)
    adapter: TypeAdapter[Any] | None = None

    def layer(self, data: dict[str, Any]) -> LayerSpec:
        assert self.adapter is not None  # set by make_library
        return self.adapter.validate_python(data)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Instance:
    """A block instantiated for given input shapes: its kept layers, walked."""

    layers: list[LayerSpec]
    infos: list[LayerInfo]
    output: int
    kept: tuple[int, ...] = ()  # the written position of each layer (the others' `when` is false)


class BlockUse(LayerSpec):
    """A use of a user-defined block. Subclasses are made per block by `make_library`."""

    block: ClassVar[Block]
    library: ClassVar[Library]
    module: ClassVar[str | None] = "darkforge.nn.block:BlockModule"
    _scale: Scale | None = PrivateAttr(None)
    _copy: tuple[int, int] = PrivateAttr((0, 1))  # (which copy, of how many) in a repeat
    _cache: dict[tuple[Any, ...], Instance] = PrivateAttr(default_factory=dict)

    def arguments(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.block.definition.params}

    def arguments_key(self) -> tuple[Any, ...]:
        """What an instance depends on besides the input shapes (the copy only where the
        definition reads it: the copies of other blocks share one instance)."""
        values = tuple((k, _frozen(v)) for k, v in self.arguments().items())
        return (values, self._scale, self._copy if self.block.reads_copy else None)

    def copy_at(self, k: int) -> Self:
        one = self.model_copy(update={"repeat": 1})
        one._copy = (k, self.repeat)
        return one

    def scaled(self, scale: Scale) -> Self:
        """The use under `scale`: parameters declared `scale: width|depth` scaled (spec/blockscale.py),
        the block's layers scaled when instantiated."""
        kinds = {name: param.scale for name, param in self.block.params().items()}
        update = {
            name: scaled_argument(kinds[name], value, scale) for name, value in self.arguments().items()
        }
        copy = self.model_copy(update=update)
        copy._scale = scale
        copy._cache = {}  # model_copy shares the private dict's values: never the unscaled instances
        return copy

    def input_names(self, count: int) -> list[str]:
        return list(self.block.definition.inputs)

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        inst = self.instance([x.shape for x in inputs])
        cost = LayerCost(inst.infos[inst.output].output, maps=0)
        for info in inst.infos:
            cost = LayerCost(
                cost.output,
                cost.params + info.cost.params,
                cost.macs + info.cost.macs,
                cost.dead_params + info.cost.dead_params,
                cost.produced + info.cost.produced,
            )
        return cost

    def expand(self, inputs: Sequence[Shape]) -> list[LayerSpec]:
        inst = self.instance(inputs)
        if inst.output != len(inst.layers) - 1:  # the flat spelling ends with the output
            return [*inst.layers, _pass_through(inst.output)]
        return inst.layers

    def flat_size(self) -> int:
        """Layers after expansion, from the instance the plan made (1 per layer before it has)."""
        inst = next(iter(self._cache.values()), None)
        inner = sum(layer.flat_size() for layer in inst.layers) if inst else len(self.block.definition.layers)
        return self.repeat * inner

    def composition(self, inputs: Sequence[Shape]) -> tuple[list[LayerSpec], int]:
        inst = self.instance(inputs)
        return inst.layers, inst.output

    def instance(self, inputs: Sequence[Shape]) -> Instance:
        key = (*inputs, self.arguments_key())
        if key not in self._cache:
            self._cache[key] = self._instantiate(inputs)
        return self._cache[key]

    def _instantiate(self, inputs: Sequence[Shape]) -> Instance:
        block = self.block
        stack = _stack.get()
        if block.name in stack:
            raise ShapeError(f"block {block.name} uses itself ({' → '.join([*stack, block.name])})")
        if len(stack) >= MAX_DEPTH:
            raise ShapeError(f"blocks nest deeper than {MAX_DEPTH} levels ({' → '.join(stack)})")
        token = _stack.set((*stack, block.name))
        try:
            return self._build(inputs)
        finally:
            _stack.reset(token)

    def _build(self, inputs: Sequence[Shape]) -> Instance:
        block = self.block
        names: dict[str, Any] = {"in_channels": inputs[0][0] if inputs and inputs[0] else 0}
        names |= {"copy": self._copy[0], "copies": self._copy[1]} | self.arguments()
        written = block.definition.layers
        kinds = {name: param.scale for name, param in block.params().items()}
        kept: list[int] = []  # positions in `written` of the layers that exist for these arguments
        layers: list[LayerSpec] = []
        for k, raw in enumerate(written):
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
            kept.append(k)
            layers.append(layer)
        if not layers:
            raise self._error("every layer's `when` is false for these parameters", ())
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
        return Instance(layers, infos, output, tuple(kept))

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
        where = self.block.locate(tuple(p for p in path if p is not None))
        key = _key(path)
        text = f"in block {self.block.name} ({where}): {key + ': ' if key else ''}{message}"
        return ShapeError(f"{text}; {hint}" if hint else text)

    def _inner_error(self, message: str, path: tuple[Any, ...], kept: list[int]) -> SpecError:
        if len(path) >= 2 and path[0] == "layers" and isinstance(path[1], int):
            path = ("layers", kept[path[1]], *path[2:])
        return SpecError(str(self._error(message, path)))


def make_library(blocks: Mapping[str, Block]) -> Library:
    """Use models for the blocks, and the union (built-in types + blocks) their layers validate against."""
    library = Library(dict(blocks))
    for name, block in blocks.items():
        fields: dict[str, Any] = {"type": (Literal[name], name)}  # type: ignore[valid-type]
        for pname, param in block.params().items():
            fields[pname] = _field(param)
        arity = len(block.definition.inputs)
        model = create_model(
            name,
            __base__=BlockUse,
            __doc__=block.definition.description or f"User block {name} ({block.where}).",
            **fields,
        )
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
    nullable = "default" in param.model_fields_set and param.default is None
    if nullable:
        kind = kind | None
    default: Any = ... if param.default is None and not nullable else param.default
    if param.type != "float" and param.choices is None:
        limits["strict"] = True  # 64.0 is no channel count, "yes" no bool; 1 is a fine float
    return (kind, Field(default, description=param.description, validate_default=True, **limits))


def _frozen(value: Any) -> Any:
    """A parameter's value as a cache key (a mapping is not hashable)."""
    return tuple(sorted((k, _frozen(v)) for k, v in value.items())) if isinstance(value, dict) else value


def _truth(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ExprError(f"`when` must be true or false, got {value!r}")
    return value


def _builtin(name: str) -> type[LayerSpec] | None:
    return registry.get(name).spec if name in registry.names() else None


def _pass_through(index: int) -> LayerSpec:
    return Route(from_=index)


def _key(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        if part is None:
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
