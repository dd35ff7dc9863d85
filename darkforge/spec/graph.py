"""Walking a list of layers: resolve every `from`, check arities and ids, run the shape rules.

One walker serves the network (whose one input is `input`) and every block (whose inputs are named
in its definition): `walk` returns each layer's sources and cost; the caller says how errors are
located (`Scope.error`) and how layers are named in them (`Scope.label`). Input k of a scope has the
index -(k + 1), so the network input is -1 (INPUT).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from darkforge.errors import SpecError, did_you_mean
from darkforge.spec.base import INPUT, LayerCost, LayerSpec, Operand, Ref, Shape, ShapeError, fmt_shape
from darkforge.spec.registry import foreign


@dataclass(frozen=True)
class LayerInfo:
    index: int
    spec: LayerSpec
    sources: tuple[int, ...]  # absolute indices of the inputs; input k of the scope is -(k + 1)
    cost: LayerCost

    @property
    def name(self) -> str:
        """How the module is named (and how errors name the layer): its id, else its index."""
        return self.spec.id or str(self.index)

    @property
    def output(self) -> Shape:
        return self.cost.output


class OverBudget(ShapeError):
    """Planning would do more work than the layer budget allows (user blocks instantiating
    blocks...). Walks pass it up unchanged, each setting `path` to its layer, so the network's
    walk leaves the top-level layer that grew too large; `plan` locates it there."""

    path: tuple[Any, ...] = ()


ErrorAt = Callable[[str, tuple[Any, ...], str], SpecError]  # (message, key path, hint) -> located error


@dataclass(frozen=True)
class Scope:
    """The inputs a list of layers can read, and how its errors read."""

    inputs: tuple[tuple[str, Shape], ...]  # (name, shape) of each input, in order
    error: ErrorAt
    what: str = "the input"  # how errors name input 0

    def input_index(self, name: str) -> int | None:
        names = [n for n, _ in self.inputs]
        return -(names.index(name) + 1) if name in names else None

    def input_shape(self, index: int) -> Shape:
        return self.inputs[-index - 1][1]

    def input_label(self, index: int) -> str:
        return self.what if index == INPUT else f"input {self.inputs[-index - 1][0]!r}"


def label(layers: Sequence[LayerSpec], index: int, scope: Scope) -> str:
    """'layers[4] (ResidualStage 'c3')' — how errors name a layer."""
    if index < 0:
        return scope.input_label(index)
    layer = layers[index]
    name = f"{layer.type} {layer.id!r}" if layer.id else layer.type
    return f"layers[{index}] ({name})"


def walk(layers: Sequence[LayerSpec], scope: Scope) -> list[LayerInfo]:
    """Infer every layer's output shape and cost; raise SpecError on the first graph error."""
    ids: dict[str, int] = {name: -(k + 1) for k, (name, _) in enumerate(scope.inputs)}
    later_ids = {layer.id: i for i, layer in enumerate(layers) if layer.id}
    infos: list[LayerInfo] = []
    for index, layer in enumerate(layers):
        path = ("layers", index, "from")
        sources = tuple(resolve(layers, scope, ref, index, ids, later_ids, path) for ref in layer.sources())
        low, high = layer.arity
        if len(sources) < low or (high is not None and len(sources) > high):
            count = f"{low}" if low == high else f"at least {low}" if high is None else f"{low}–{high}"
            raise scope.error(f"takes {count} input(s), got {len(sources)}", path, "")
        if layer.repeat != 1 and len(sources) != 1:
            raise scope.error("`repeat` needs a layer with one input", ("layers", index, "repeat"), "")
        if layer.collect and layer.repeat == 0:
            raise scope.error(
                "`collect: true` with `repeat: 0`: there is no copy whose output to concatenate",
                ("layers", index, "collect"),
                "repeat the layer at least once, or drop `collect`",
            )
        if layer.id in ids:
            raise scope.error(f"id {layer.id!r} is used twice", ("layers", index, "id"), "")
        inputs = [
            Operand(infos[s].output if s >= 0 else scope.input_shape(s), label(layers, s, scope))
            for s in sources
        ]
        try:
            cost = repeated(layer, inputs)
        except OverBudget as e:
            e.path = ("layers", index)
            raise
        except ShapeError as e:
            raise scope.error(str(e), ("layers", index), "") from None
        except ValueError as e:  # a plugin's rule (or pydantic inside one) refusing its inputs
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise scope.error(f"its shape rule refused its inputs: {first}", ("layers", index), "") from None
        infos.append(LayerInfo(index, layer, sources, cost))
        if layer.id:
            ids[layer.id] = index
    return infos


def repeated(layer: LayerSpec, inputs: Sequence[Operand]) -> LayerCost:
    """The cost of `layer` applied `repeat` times in series (each copy reads the one before);
    no copy at all (`repeat: 0`) passes the input through. With `collect` the output is every
    copy's output concatenated along channels (first copy first), one map more."""
    if layer.repeat == 1:
        return rule(layer, inputs)
    cost = LayerCost(inputs[0].shape, maps=0)
    outputs: list[Shape] = []
    for k in range(layer.repeat):
        cost = cost + rule(layer.copy_at(k), [Operand(cost.output, inputs[0].name)])
        outputs.append(cost.output)
    return collected(cost, outputs) if layer.collect else cost


def collected(cost: LayerCost, outputs: Sequence[Shape]) -> LayerCost:
    """`cost` of copies in series, its output the concatenation of the copies' `outputs` (C, ...)."""
    first = outputs[0]
    for k, shape in enumerate(outputs[1:], 1):
        if len(shape) != len(first) or shape[1:] != first[1:]:
            raise ShapeError(
                f"`collect` concatenates along channels, but copy {k} outputs {fmt_shape(shape)} "
                f"and copy 0 {fmt_shape(first)}: every copy must keep the size (no stride)"
            )
    output = (sum(shape[0] for shape in outputs), *first[1:])
    return cost + LayerCost(output)  # the concatenation is a map of its own


def rule(layer: LayerSpec, inputs: Sequence[Operand]) -> LayerCost:
    """`layer.infer(inputs)`; a plugin's rule that fails or returns what is no cost is blamed on
    the plugin by name (its ShapeError/ValueError refusals stay refusals of the file)."""
    plugin = foreign(type(layer))
    if not plugin:
        return layer.infer(inputs)
    try:
        cost = layer.infer(inputs)
    except (ValueError, MemoryError, RecursionError):
        raise
    except (Exception, SystemExit) as e:  # a plugin that exits is a plugin that failed
        raise ShapeError(
            f"plugin {plugin!r}: the shape rule of {layer.type} failed ({why(e)}){BLAME}"
        ) from None
    if isinstance(cost, LayerCost) and isinstance(cost.output, list):
        cost = LayerCost(tuple(cost.output), cost.params, cost.macs, cost.dead_params)
    problem = _bad_cost(cost)
    if problem:
        raise ShapeError(f"plugin {plugin!r}: the shape rule of {layer.type} returned {problem}{BLAME}")
    return cost


BLAME = "; a fault of the plugin: report it to its author"


def why(e: BaseException) -> str:
    """'KeyError: oops' — an exception in a few words, for one line."""
    text = (str(e).strip().splitlines() or [""])[0][:120]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _bad_cost(cost: object) -> str:
    if not isinstance(cost, LayerCost):
        return f"a {type(cost).__name__}, not a LayerCost"
    shape = cost.output
    if not isinstance(shape, tuple) or not 1 <= len(shape) <= 8:
        return f"output {str(shape)[:60]}, not a shape (a tuple of 1 to 8 sizes)"
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape):
        return f"output shape {str(shape)[:60]}: sizes are whole numbers ≥ 1"
    counts = {"params": cost.params, "macs": cost.macs, "dead_params": cost.dead_params}
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return f"{name} {str(value)[:30]}: counts are whole numbers ≥ 0"
    return ""


def resolve(
    layers: Sequence[LayerSpec],
    scope: Scope,
    ref: Ref,
    index: int,
    ids: dict[str, int],
    later_ids: dict[str, int],
    path: tuple[Any, ...],
) -> int:
    """The absolute index `ref` (written in layer `index`, or in `outputs` when index = len) means."""
    who = label(layers, index, scope) if index < len(layers) else "`outputs`"
    if isinstance(ref, str):
        if ref in ids:
            return ids[ref]
        if ref in later_ids:
            later = label(layers, later_ids[ref], scope)
            raise scope.error(f"{who} refers forward to {later}", path, "a layer can only use earlier layers")
        raise scope.error(f"no layer has id {ref!r}", path, did_you_mean(ref, ids))
    target = index + ref if ref < 0 else ref
    if target < INPUT:
        raise scope.error(f"{who}: from {ref} points before the input", path, "use a smaller offset")
    if target >= index:
        what = f"layers[{target}]" if target >= len(layers) else label(layers, target, scope)
        kind = "itself" if target == index else f"{what}, which comes later"
        raise scope.error(f"{who} refers to {kind}", path, "a layer can only use earlier layers")
    return target


def resolve_outputs(
    layers: Sequence[LayerSpec], scope: Scope, refs: Sequence[Ref], key: str
) -> tuple[int, ...]:
    """The absolute indices of output references (`outputs` of a network, `output` of a block)."""
    ids: dict[str, int] = {name: -(k + 1) for k, (name, _) in enumerate(scope.inputs)}
    ids |= {layer.id: i for i, layer in enumerate(layers) if layer.id}
    end = len(layers)
    return tuple(resolve(layers, scope, ref, end, ids, {}, (key, k)) for k, ref in enumerate(refs))
