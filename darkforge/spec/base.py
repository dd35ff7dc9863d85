"""Pydantic models of the YAML dialect: the network file and the base every layer spec shares.

No torch import here, so `validate`, `schema` and `summary` answer from these models and the
shape rules alone (import-linter checks it). The concrete layer types live in
`darkforge/spec/layers/`; the union of them is assembled by the registry, so plugin layers join it
when they register.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial, reduce
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, Self, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from darkforge.errors import UsageError
from darkforge.spec.reserved import reserved

Shape = tuple[int, ...]  # a tensor's shape without the batch: (C, H, W) for maps, (N,) for vectors
ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# A reference to an earlier layer: negative = relative (-1 is the previous layer), non-negative =
# absolute index into `layers`, a string = a layer's `id` ("input" is the network input).
Ref = int | Annotated[str, Field(pattern=ID_PATTERN, max_length=200)]
INPUT = -1  # resolved index of the network input


class Strict(BaseModel):
    """Unknown keys are errors, models are immutable, `from` is accepted as a key, and numbers
    are numbers: `filters: '64'` (a string) and `filters: 24.0` (a float, computed in a block) are
    refused, never coerced, as are `true` for a count and `1` for a switch (`exact_scalar`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    @model_validator(mode="before")
    @classmethod
    def _exact_scalars(cls, data: Any) -> Any:
        # a model validator, not a field one: pydantic allows none on the `type` discriminator
        if not isinstance(data, dict):
            return data
        errors = []
        for name, field in cls.model_fields.items():
            key = field.alias or name
            if name == "type" or (key not in data and name not in data):
                continue
            value = data[key] if key in data else data[name]
            problem = exact_scalar(value, _kinds(cls, name))
            if problem:
                errors.append(
                    InitErrorDetails(
                        type=PydanticCustomError("exact_number", problem), loc=(key,), input=value
                    )
                )
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return data


_KINDS: dict[tuple[type, str], frozenset[type]] = {}


def _kinds(model: type[BaseModel], name: str) -> frozenset[type]:
    """The scalar types a field accepts (int, float, bool, str; Literal values by their type)."""
    key = (model, name)
    if key not in _KINDS:
        _KINDS[key] = frozenset(_scalars(model.model_fields[name].annotation))
    return _KINDS[key]


def _scalars(annotation: Any) -> set[type]:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return {type(a) for a in args}
    if origin is Annotated:
        return _scalars(args[0])
    if origin in (Union, UnionType):
        return set().union(*(_scalars(a) for a in args))
    if annotation in (int, float, bool, str):
        return {annotation}
    return {object} if annotation is Any else set()


def exact_scalar(value: Any, kinds: frozenset[type]) -> str:
    """What pydantic would coerce, said ('' if nothing): a string for a number, a float for a
    whole number, a bool for a number or a number for a bool. `kinds`: the field's scalar types."""
    if object in kinds or not kinds:
        return ""
    numbers = {int, float} & kinds
    if isinstance(value, str) and str not in kinds and numbers:
        return f"{value!r} is a string, not a number: write it without quotes"
    if isinstance(value, bool):
        return f"{value} is not a number" if bool not in kinds and numbers else ""
    if isinstance(value, float) and numbers == {int}:
        return f"{value!r} is not a whole number (computed in a block? use // or int())"
    if isinstance(value, int) and bool in kinds and not numbers:
        return f"{value} is not true or false"
    return ""


class ShapeError(ValueError):
    """Raised by a shape rule; the graph walker adds which layers were involved."""


@dataclass(frozen=True)
class Operand:
    """One input of a layer, as the shape rule sees it (a shape, not a torch.Tensor)."""

    shape: Shape
    name: str  # how errors name its producer: "layers[4] 'c3'" or "the input"


@dataclass(frozen=True)
class LayerCost:
    """What a layer produces and what it costs (the result of a shape rule)."""

    output: Shape
    params: int = 0
    macs: int = 0  # multiply-accumulates of convolutions and fully connected layers
    dead_params: int = 0  # weights whose kernel taps only ever cover zero padding
    # Elements of every map the layer's modules produce (one image): None = one map, its output.
    # Composites count their parts (a stage of 8 blocks, 25 maps), so summary's memory is the sum
    # over the same walk that builds the network (tests hook every module of the built network).
    maps: int | None = None
    # of `macs`, those of tensor products that are no Conv/Linear weights (attention's qᵀ·k and
    # v·attentionᵀ): torch's FlopCounterMode counts them, torchinfo's conv+fc rows do not
    products: int = 0

    @property
    def produced(self) -> int:
        return prod(self.output) if self.maps is None else self.maps

    def __add__(self, other: LayerCost) -> LayerCost:
        """`self` then `other` in series: costs and produced maps add, the output is other's."""
        return LayerCost(
            other.output,
            self.params + other.params,
            self.macs + other.macs,
            self.dead_params + other.dead_params,
            self.produced + other.produced,
            self.products + other.products,
        )


class Scale(Strict):
    """A width/depth multiplier pair, picked with `--scale`; optionally Ultralytics' channel rule
    (a cap, then rounding up) and per-scale settings of one layer type (YOLO11's `c3k` at m/l/x)."""

    width: float = Field(1.0, gt=0, le=8, description="multiplies the channels of every conv layer")
    depth: float = Field(1.0, gt=0, le=8, description="multiplies the block count of every stage")
    divisor: int = Field(8, ge=1, le=64, description="scaled channels are rounded to a multiple")
    max_channels: int | None = Field(
        None, ge=1, le=65536, description="channels are capped here before `width` multiplies them"
    )
    round: Literal["nearest", "up"] = Field(
        "nearest", description="to the nearest multiple of `divisor` (timm), or up to one (Ultralytics)"
    )
    set: dict[Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9_]*$")], dict[str, Any]] = Field(
        default_factory=dict,
        description="at this scale, these fields of every top-level layer of a type: {C3k2: {c3k: true}}",
    )

    def channels(self, filters: int) -> int:
        capped = filters if self.max_channels is None else min(filters, self.max_channels)
        if self.width == 1 and capped == filters:
            return filters
        if self.round == "up":  # Ultralytics' make_divisible: ceil(min(c, max) · width / 8) · 8
            return max(self.divisor, math.ceil(capped * self.width / self.divisor) * self.divisor)
        # timm's make_divisible without its 10% round-up: the nearest multiple, at least one multiple.
        return max(self.divisor, int(capped * self.width / self.divisor + 0.5) * self.divisor)

    def blocks(self, count: int) -> int:
        return count if self.depth == 1 else max(1, round(count * self.depth))

    def __hash__(self) -> int:  # instances of blocks are cached by their scale; `set` is a dict
        return hash((self.width, self.depth, self.divisor, self.max_channels, self.round, repr(self.set)))


class LayerSpec(Strict):
    """Fields every layer has. Subclasses add `type: Literal[...]` and their shape rule."""

    type: str
    from_: Ref | list[Ref] = Field(
        -1,
        alias="from",
        description="input layer(s): -1 the previous layer, a non-negative index, an id, or a list",
    )
    id: str | None = Field(
        None, pattern=ID_PATTERN, max_length=200, description="a name for references, outputs and the module"
    )
    repeat: int = Field(
        1,
        ge=0,
        le=1000,
        description="the layer this many times in series (depth scales multiply it); 0: left out, "
        "its input passes through",
    )
    # YOLOv8's C2f concatenates every block's output, not only the last one's
    collect: bool = Field(
        False,
        description="with `repeat`: the output is every copy's output concatenated along channels, "
        "first copy first",
    )
    # Ultralytics' C3 and C2PSA hold their blocks in an nn.Sequential even at one block (`m.0`)
    numbered: bool = Field(
        False, description="with `repeat`: the copies are numbered (`m.0`…) even when there is one"
    )
    _id_free = field_validator("id")(lambda value: _not_reserved(value))  # darkforge.spec.reserved
    # How many inputs the layer takes: (minimum, maximum or None for any number).
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    # "package.module:Class" of a built-in type's module, read once when the type is registered
    # (spec.layers), never from a spec instance: no name in a data file chooses code (nn.graph)
    module: ClassVar[str | None] = None

    def sources(self) -> list[Ref]:
        return list(self.from_) if isinstance(self.from_, list) else [self.from_]

    def copy_at(self, k: int) -> LayerSpec:
        """Copy k (from 0) of a repeated layer, as one layer; user blocks tell each copy its index
        (`${copy}` in their definition)."""
        return self.model_copy(update={"repeat": 1, "collect": False, "numbered": False})

    @property
    def in_copies(self) -> bool:
        """Whether the layer's module is a container of numbered copies (`m.0`, `m.1`…): it
        repeats (or is left out), collects, or says `numbered: true`; else it is one module."""
        return self.repeat != 1 or self.collect or self.numbered

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        """Output shape, parameters and MACs for these inputs; raise ShapeError if they don't fit."""
        raise NotImplementedError

    def scaled(self, scale: Scale) -> Self:
        return self

    def with_classes(self, classes: int | None) -> Self:
        return self

    def expand(self, inputs: Sequence[Shape]) -> list[LayerSpec]:
        """The same layer in Darknet's flat spelling: composite layers return their parts, which
        read each other by relative `from` and the composite's inputs by name (`input` is the
        first); a part whose `from` is the default -1 at the start reads `input`."""
        return [self]

    def composition(self, inputs: Sequence[Shape]) -> tuple[list[LayerSpec], int] | None:
        """The layers this one is made of, one level down (composites among them stay whole), and
        which of them it returns; None for a layer made of no others. Views draw from it."""
        return None

    def input_names(self, count: int) -> list[str]:
        """How the parts of `expand` name this layer's inputs: `input`, then `input1`, `input2`…"""
        return ["input", *(f"input{k}" for k in range(1, count))]

    def flat_size(self) -> int:
        """len(self.expand(...)), without building the parts (darkforge.spec.budget counts it)."""
        return self.repeat + self.collect_route()

    def collect_route(self) -> int:
        """1 where the flat spelling ends the copies with a Route over all of them (`collect`)."""
        return int(self.collect and self.repeat > 1)

    def note(self, inputs: Sequence[Shape], network_input: Shape) -> str:
        """One line `summary` prints under its table for this layer (a head's strides and
        classes), "" for none."""
        return ""


class InputSpec(Strict):
    channels: int = Field(3, ge=1, le=4096)
    size: int | None = Field(None, ge=1, le=16384, description="square inputs: height = width")
    height: int | None = Field(None, ge=1, le=16384)
    width: int | None = Field(None, ge=1, le=16384)

    @model_validator(mode="after")
    def _one_size(self) -> Self:
        if self.size is None and (self.height is None or self.width is None):
            raise ValueError("give `size`, or both `height` and `width`")
        if self.size is not None and (self.height is not None or self.width is not None):
            raise ValueError("give either `size` or `height`/`width`, not both")
        return self

    @property
    def shape(self) -> Shape:
        height = self.size if self.size is not None else self.height
        width = self.size if self.size is not None else self.width
        assert height is not None and width is not None  # guaranteed by _one_size
        return (self.channels, height, width)


class NetworkSpec(Strict):
    """One network file. `layers` is narrowed to the registered union by `network_model()`."""

    version: Literal[1] = Field(1, description="dialect version; old files keep loading")
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    input: InputSpec
    classes: int | None = Field(None, ge=1, le=1_000_000, description="width of a Linear layer with no `out`")
    layers: list[LayerSpec] = Field(min_length=1, max_length=10_000)
    outputs: list[Ref] | None = Field(
        None, min_length=1, description="layers whose outputs the network returns (default: last)"
    )
    scales: dict[Annotated[str, Field(pattern=ID_PATTERN)], Scale] = Field(default_factory=dict)
    scale: str | None = Field(
        None,
        max_length=200,
        description="the scale built when none is picked (e.g. n: yolov8.yaml is YOLOv8n)",
    )
    plugins: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, description="plugins the file needs (never imported by the file: install them, or --plugin)"
    )
    include: list[str] | None = Field(
        None, description="block libraries to use (paths relative to this file, or a shipped one by name)"
    )
    defaults: dict[str, dict[str, Any]] | None = Field(
        None,
        description="fields every layer of a type written in this file takes unless it writes them, "
        "e.g. {Conv: {activation: silu}}",
    )
    blocks: dict[str, Any] | None = Field(
        None, description="named, parametrised sub-graphs used like layer types (docs/architecture.md)"
    )
    train: dict[str, Any] | None = Field(
        None, description="the training recipe (see docs/training.md); flags override it"
    )
    _source: Any = PrivateAttr(None)  # darkforge.spec.load.SourceMap: file name and YAML positions
    # Readers of formats with their own scale rule (Ultralytics') set it: scale name -> the spec
    # read again at that scale; such a spec lists no `scales` of darkforge's kind.
    _rescale: Any = PrivateAttr(None)
    _converted_from: str | None = PrivateAttr(None)  # the format a reader translated, e.g. "ultralytics"
    _scale_names: tuple[str, ...] = PrivateAttr(())  # the scales `_rescale` knows
    # classes -> the layers validated again, for a file whose layers read `${classes}`
    # (darkforge.spec.toplevel); None when none does
    _relayer: Any = PrivateAttr(None)
    _computed: dict[int, frozenset[str]] = PrivateAttr(default_factory=dict)  # layer -> computed keys

    @model_validator(mode="after")
    def _default_scale_exists(self) -> Self:
        if self.scale is not None and self.scale not in self.scales:
            known = ", ".join(self.scales) or "none"
            raise ValueError(f"`scale: {self.scale}` names none of the file's scales ({known})")
        return self

    def scale_names(self) -> list[str]:
        """The scales `resolved` accepts: the file's `scales:`, or those of its reader's rule."""
        return list(self.scales) or list(self._scale_names)

    def resolved(
        self,
        scale: str | None = None,
        input_size: int | None = None,
        classes: int | None = None,
    ) -> Self:
        """The concrete network: a scale applied (the file's `scale:` when none is given), the
        input size and class count overridden."""
        scale = scale if scale is not None else self.scale
        if scale is not None and self._rescale is not None:
            # read again at that scale, keeping this spec's input and class count
            rescaled: Self = self._rescale(scale).model_copy(update={"input": self.input})
            return rescaled.resolved(None, input_size, classes if classes is not None else self.classes)
        count = classes if classes is not None else self.classes
        relayered = self._relayer is not None and count != self.classes and count is not None
        layers = self._relayer(count) if relayered else list(self.layers)
        if scale is not None:
            if scale not in self.scales:
                known = ", ".join(self.scales) or "none"
                raise UsageError(f"{self.name} has no scale {scale!r}", f"its scales: {known}")
            settings = self.scales[scale].set
            if settings:
                layers = self._set(layers, settings, scale)
            layers = [self._scaled(k, layer, self.scales[scale]) for k, layer in enumerate(layers)]
        layers = [layer.with_classes(count) for layer in layers]
        inputs = self.input
        if input_size is not None:
            inputs = InputSpec(channels=self.input.channels, size=input_size)
        update = {"layers": layers, "input": inputs, "classes": count, "scale": None}  # applied once
        copy = self.model_copy(update=update)
        copy._source, copy._computed = self._source, self._computed
        if self._relayer is not None:  # another class count later: these layers, at this scale
            copy._relayer = self._relayer if scale is None else partial(_layers_at, self, scale)
        return copy

    def _scaled(self, index: int, layer: LayerSpec, scale: Scale) -> LayerSpec:
        """Layer `index` under `scale`; a field computed from `classes` is a class count's
        consequence, not a width: kept as computed, as inside blocks (spec/blockscale.py)."""
        whole = scaled(layer, scale)
        keys = self._computed.get(index)
        if not keys:
            return whole
        kept = {n: getattr(layer, n) for n, f in type(layer).model_fields.items() if (f.alias or n) in keys}
        return whole.model_copy(update=kept)

    def _set(
        self, layers: list[LayerSpec], settings: dict[str, dict[str, Any]], scale: str
    ) -> list[LayerSpec]:
        """`layers` with a scale's `set:` written into every layer of each type it names."""
        for kind in settings:
            if all(layer.type != kind for layer in layers):
                raise self._error(
                    f"scale {scale!r} sets fields of {kind}, but no layer is a {kind}",
                    "name a type the top-level layers use",
                    ("scales", scale, "set", kind),
                )
        result = []
        for index, layer in enumerate(layers):
            values = settings.get(layer.type)
            if values:
                data = {**layer.model_dump(by_alias=True, exclude_unset=True), **values}
                try:
                    layer = type(layer).model_validate(data)
                except ValidationError as e:
                    first = e.errors()[0]
                    where = ".".join(str(p) for p in first["loc"]) or layer.type
                    raise self._error(
                        f"scale {scale!r} sets {layer.type}.{where} of layers[{index}]: {first['msg']}",
                        "",
                        ("scales", scale, "set", layer.type),
                    ) from None
            result.append(layer)
        return result

    def _error(self, message: str, hint: str, path: tuple[object, ...]) -> Exception:
        if self._source is not None:
            return self._source.error(message, hint, path)  # type: ignore[no-any-return]
        return UsageError(message, hint)


def _layers_at(spec: NetworkSpec, scale: str, classes: int) -> list[LayerSpec]:
    return spec.resolved(scale, classes=classes).layers


def scaled(layer: LayerSpec, scale: Scale) -> LayerSpec:
    layer = layer.scaled(scale)
    if layer.repeat > 1:  # depth scales act on repeat counts, as on stages' block counts
        layer = layer.model_copy(update={"repeat": scale.blocks(layer.repeat)})
    return layer


def _not_reserved(value: str | None) -> str | None:
    if value is not None and reserved(value):
        raise ValueError(f"id {value!r} is reserved (a name torch's modules use); choose another")
    return value


def prod(shape: Sequence[int]) -> int:
    return reduce(lambda a, b: a * b, shape, 1)


def fmt_shape(shape: Shape) -> str:
    return "×".join(str(d) for d in shape)


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ShapeError(message)


__all__ = [
    "INPUT",
    "InputSpec",
    "LayerCost",
    "LayerSpec",
    "NetworkSpec",
    "Operand",
    "Ref",
    "Scale",
    "Shape",
    "ShapeError",
    "Strict",
    "fmt_shape",
    "prod",
    "require",
    "scaled",
]
