"""Static shape, parameter and MAC inference on the spec alone (no torch).

`plan(spec)` resolves every `from` reference, runs each layer's shape rule and returns a Plan:
the per-layer output shapes and costs that `summary`, `draw` and `build` all read. Graph errors
name both layers involved and point at the layer's line in the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from darkforge.errors import SpecError, did_you_mean
from darkforge.spec.base import INPUT, LayerCost, LayerSpec, NetworkSpec, Operand, Ref, Shape, ShapeError


@dataclass(frozen=True)
class LayerInfo:
    index: int
    spec: LayerSpec
    sources: tuple[int, ...]  # absolute indices of the inputs; INPUT (-1) is the network input
    cost: LayerCost

    @property
    def name(self) -> str:
        """How the module is named (and how errors name the layer): its id, else its index."""
        return self.spec.id or str(self.index)

    @property
    def output(self) -> Shape:
        return self.cost.output


@dataclass(frozen=True)
class Plan:
    spec: NetworkSpec
    layers: tuple[LayerInfo, ...]
    outputs: tuple[int, ...]  # absolute indices of the layers the network returns

    @property
    def input(self) -> Shape:
        return self.spec.input.shape

    @property
    def params(self) -> int:
        return sum(info.cost.params for info in self.layers)

    @property
    def macs(self) -> int:
        return sum(info.cost.macs for info in self.layers)

    @property
    def bflops(self) -> float:
        """Darknet's convention: 2 × (conv + connected) MACs / 1e9."""
        return 2 * self.macs / 1e9

    @property
    def dead_params(self) -> int:
        return sum(info.cost.dead_params for info in self.layers)

    def shape_of(self, index: int) -> Shape:
        return self.input if index == INPUT else self.layers[index].output

    @property
    def output_shapes(self) -> list[Shape]:
        return [self.shape_of(i) for i in self.outputs]


def describe(spec: NetworkSpec, index: int) -> str:
    """'layers[4] (ResidualStage 'c3')' — how errors name a layer."""
    if index == INPUT:
        return "the input"
    layer = spec.layers[index]
    label = f"{layer.type} {layer.id!r}" if layer.id else layer.type
    return f"layers[{index}] ({label})"


def plan(spec: NetworkSpec) -> Plan:
    """Infer every layer's output shape and cost; raise SpecError on the first graph error."""
    ids: dict[str, int] = {"input": INPUT}
    later_ids = {layer.id: i for i, layer in enumerate(spec.layers) if layer.id}
    infos: list[LayerInfo] = []
    for index, layer in enumerate(spec.layers):
        sources = tuple(
            _resolve(spec, ref, index, ids, later_ids, ("layers", index, "from")) for ref in layer.sources()
        )
        low, high = layer.arity
        if len(sources) < low or (high is not None and len(sources) > high):
            count = f"{low}" if low == high else f"at least {low}" if high is None else f"{low}–{high}"
            raise _error(spec, f"takes {count} input(s), got {len(sources)}", ("layers", index, "from"))
        if layer.id in ids:
            raise _error(spec, f"id {layer.id!r} is used twice", ("layers", index, "id"))
        inputs = [
            Operand(infos[s].output if s != INPUT else spec.input.shape, describe(spec, s)) for s in sources
        ]
        try:
            cost = layer.infer(inputs)
        except ShapeError as e:
            raise _error(spec, str(e), ("layers", index)) from None
        infos.append(LayerInfo(index, layer, sources, cost))
        if layer.id:
            ids[layer.id] = index
    end = len(spec.layers)
    refs: list[Ref] = list(spec.outputs) if spec.outputs is not None else [-1]
    outputs = tuple(_resolve(spec, ref, end, ids, later_ids, ("outputs", k)) for k, ref in enumerate(refs))
    if INPUT in outputs:
        raise _error(spec, "the network input cannot be an output", ("outputs",))
    return Plan(spec, tuple(infos), outputs)


def _resolve(
    spec: NetworkSpec,
    ref: Ref,
    index: int,
    ids: dict[str, int],
    later_ids: dict[str, int],
    path: tuple[Any, ...],
) -> int:
    who = describe(spec, index) if index < len(spec.layers) else "`outputs`"
    if isinstance(ref, str):
        if ref in ids:
            return ids[ref]
        if ref in later_ids:
            later = describe(spec, later_ids[ref])
            raise _error(
                spec,
                f"{who} refers forward to {later}",
                path,
                "a layer can only use earlier layers",
            )
        raise _error(spec, f"no layer has id {ref!r}", path, did_you_mean(ref, ids))
    target = index + ref if ref < 0 else ref
    if target < INPUT:
        raise _error(spec, f"{who}: from {ref} points before the input", path, "use a smaller offset")
    if target >= index:
        what = f"layers[{target}]" if target >= len(spec.layers) else describe(spec, target)
        kind = "itself" if target == index else f"{what}, which comes later"
        raise _error(spec, f"{who} refers to {kind}", path, "a layer can only use earlier layers")
    return target


def _error(spec: NetworkSpec, message: str, path: tuple[Any, ...], hint: str = "") -> SpecError:
    source = spec._source
    if source is None:
        return SpecError(message, hint, path=path)
    error: SpecError = source.error(message, hint, path)
    return error


def flatten(spec: NetworkSpec) -> NetworkSpec:
    """Darknet's flat spelling: composite layers expanded, references renumbered."""
    shapes = plan(spec.resolved())  # shapes only; the layers keep their unresolved fields
    last: list[int] = []  # new index of each old layer's output
    layers: list[LayerSpec] = []
    for info, layer in zip(shapes.layers, spec.layers, strict=True):
        parts = layer.expand([shapes.shape_of(s) for s in info.sources])
        start = len(layers)
        for k, part in enumerate(parts):
            update: dict[str, Any] = {}
            if k == 0:  # the expansion's first part takes the original inputs
                written = layer.from_
                update["from_"] = (
                    [_renumber(r, info.index, start, last) for r in written]
                    if isinstance(written, list)
                    else _renumber(written, info.index, start, last)
                )
            if k == len(parts) - 1:
                update["id"] = layer.id
            layers.append(part.model_copy(update=update) if update else part)
        last.append(len(layers) - 1)
    outputs = spec.outputs
    if outputs is not None:
        outputs = [_renumber(r, len(last), len(layers), last) for r in outputs]
    flat = spec.model_copy(update={"layers": layers, "outputs": outputs})
    flat._source = None  # positions refer to the staged file
    return flat


def _renumber(ref: Ref, old_index: int, new_index: int, last: list[int]) -> Ref:
    if isinstance(ref, str):
        return ref
    target = old_index + ref if ref < 0 else ref
    new_target = INPUT if target == INPUT else last[target]
    return new_target - new_index if ref < 0 else new_target
