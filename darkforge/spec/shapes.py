"""Static shape, parameter and MAC inference on the spec alone (no torch).

`plan(spec)` resolves every `from` reference, runs each layer's shape rule and returns a Plan:
the per-layer output shapes and costs that `summary`, `draw` and `build` all read. Graph errors
name both layers involved and point at the layer's line in the file. `flatten(spec)` is the
network in Darknet's flat spelling: composite layers (stages, blocks) expanded into their parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from darkforge.errors import SpecError, UsageError, did_you_mean
from darkforge.spec.base import INPUT, LayerSpec, NetworkSpec, Operand, Ref, Shape
from darkforge.spec.blocks import least_layers
from darkforge.spec.graph import LayerInfo, OverBudget, Scope, label, repeated, resolve_outputs, walk
from darkforge.spec.layers.graph import Route
from darkforge.spec.work import counting, layer_limit

TOO_BIG = "make the network smaller (see `darkforge validate --max-layers`)"


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
    def products(self) -> int:
        """Of `macs`, attention's tensor products (no Conv/Linear weights: torchinfo misses them)."""
        return sum(info.cost.products for info in self.layers)

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

    @cached_property
    def _by_name(self) -> dict[str, int]:
        by_name = {info.name: info.index for info in self.layers}
        return by_name | {str(info.index): info.index for info in self.layers}

    def index_of(self, name: str | int, key: str = "features") -> int:
        """Which layer `name` is: its id, or its index as `summary` shows it (3 or "3"). An
        unknown one is a UsageError naming `key` (the option or argument that gave it)."""
        found = self._by_name.get(str(name))
        if found is None:
            names = [info.name for info in self.layers]
            hint = did_you_mean(str(name), names[:50]) or f"the layers: {', '.join(names[:20])}"
            raise UsageError(f"{key}: no layer {str(name)[:60]!r}", hint)
        return found

    def indices(self, names: Sequence[str | int], key: str = "features") -> tuple[int, ...]:
        """Layer indices of `names` (ids or indices), in the order given."""
        if not names:
            raise UsageError(f"{key}: name at least one layer", "e.g. features=['c3', 'c4', 'c5']")
        return tuple(self.index_of(name, key) for name in names)


def scope_of(spec: NetworkSpec) -> Scope:
    """The network's scope: one input, `input`; errors located in the network's file."""
    return Scope(
        (("input", spec.input.shape),), lambda message, path, hint: _error(spec, message, path, hint)
    )


def describe(spec: NetworkSpec, index: int) -> str:
    """'layers[4] (ResidualStage 'c3')' — how errors name a layer."""
    return label(spec.layers, index, scope_of(spec))


def plan(spec: NetworkSpec) -> Plan:
    """Infer every layer's output shape and cost; raise SpecError on the first graph error."""
    scope = scope_of(spec)
    try:
        with counting(least_layers(spec.layers)):  # blocks instantiating blocks: bounded by the layer limit
            infos = walk(spec.layers, scope)
    except OverBudget as e:
        raise _error(
            spec, str(e), e.path, "make the network smaller (see `darkforge validate --max-layers`)"
        ) from None
    _check_size(spec, infos)
    refs: list[Ref] = list(spec.outputs) if spec.outputs is not None else [-1]
    outputs = resolve_outputs(spec.layers, scope, refs, "outputs")
    if INPUT in outputs:
        raise _error(spec, "the network input cannot be an output", ("outputs",))
    return Plan(spec, tuple(infos), outputs)


def _check_size(spec: NetworkSpec, infos: Sequence[LayerInfo]) -> None:
    """The layers after expansion within the limit, before anything (a summary, a module, a flat
    spelling) is made per layer of it."""
    limit = layer_limit.get()
    sizes = [info.spec.flat_size() for info in infos]
    if limit is not None and sum(sizes) > limit:
        most = max(sizes)
        raise _error(
            spec,
            f"the network expands to {sum(sizes):,} layers ({most:,} from this one), "
            f"over the limit of {limit:,}",
            ("layers", sizes.index(most)),
            TOO_BIG,
        )


def _error(spec: NetworkSpec, message: str, path: tuple[Any, ...], hint: str = "") -> SpecError:
    source = spec._source
    if source is None:
        return SpecError(message, hint, path=path)
    error: SpecError = source.error(message, hint, path)
    return error


def flatten(spec: NetworkSpec) -> NetworkSpec:
    """Darknet's flat spelling: composite layers expanded (recursively), references renumbered;
    each composite's id goes to its last part."""
    return flatten_with_origins(spec)[0]


def flatten_with_origins(spec: NetworkSpec) -> tuple[NetworkSpec, list[int]]:
    """The flat spelling, and for each flat layer the index of the layer it was written in."""
    resolved = spec.resolved()
    plan(resolved)  # the whole graph is valid (and within the layer limit) before it is expanded
    flat = _Flattener(resolved.input.shape)
    last = flat.add(spec.layers, resolved.layers, {"input": INPUT}, top=True)
    outputs = spec.outputs
    if outputs is not None:
        outputs = [_renumber(r, last, len(flat.layers)) for r in outputs]
    result = spec.model_copy(update={"layers": flat.layers, "outputs": outputs})
    result._source = None  # positions refer to the staged file
    return result, flat.origins


class _Flattener:
    """Appends primitive layers to `layers`, keeping each one's output shape."""

    def __init__(self, input_shape: Shape) -> None:
        self.layers: list[LayerSpec] = []
        self.shapes: list[Shape] = []
        self.origins: list[int] = []  # the top-level layer each flat layer came from
        self._top = 0
        self.input_shape = input_shape

    def shape(self, index: int) -> Shape:
        return self.input_shape if index == INPUT else self.shapes[index]

    def add(
        self,
        written: Sequence[LayerSpec],
        resolved: Sequence[LayerSpec],
        names: dict[str, int],
        top: bool = False,
    ) -> list[int]:
        """Flatten one scope: `written` as the user wrote it (kept in the output), `resolved` with
        scales and classes applied (for shapes); `names` maps the scope's input names (and, as
        layers come, ids) to flat indices. Returns the flat index of each layer's output."""
        out: list[int] = []
        for k, (layer, concrete) in enumerate(zip(written, resolved, strict=True)):
            if top:
                self._top = k
            sources = [self._target(ref, k, out, names) for ref in layer.sources()]
            shapes = [self.shape(t) for t in sources]
            parts = concrete.expand(shapes) if concrete.repeat == 1 else _copies(concrete)
            if parts == [concrete]:
                self._append(layer, concrete, sources, top)
            else:
                inner = dict(zip(concrete.input_names(len(sources)), sources, strict=True))
                inner["input"] = sources[0]
                ends = self.add(parts, parts, inner)
                if top and layer.id:  # the composite's id names its last part
                    self.layers[ends[-1]] = self.layers[ends[-1]].model_copy(update={"id": layer.id})
            out.append(len(self.layers) - 1)
            if layer.id:
                names = names | {layer.id: out[-1]}
        return out

    def _target(self, ref: Ref, k: int, out: list[int], names: dict[str, int]) -> int:
        if isinstance(ref, str):
            return names[ref]
        position = k + ref if ref < 0 else ref
        return names["input"] if position < 0 else out[position]

    def _append(self, layer: LayerSpec, concrete: LayerSpec, sources: list[int], top: bool) -> None:
        here, written = len(self.layers), layer.sources()
        refs: list[Ref] = [_rewritten(w, t, here, top) for w, t in zip(written, sources, strict=True)]
        # a list stays a list; a single `from` after an implicit previous layer (Shortcut) stays single
        from_: Ref | list[Ref] = refs if isinstance(layer.from_, list) else refs[-1]
        update: dict[str, Any] = {"from_": from_}
        if not top:
            update["id"] = None  # ids inside blocks repeat from use to use
        if layer.collect:  # of one copy (more are expanded): its output is the copy's
            update["collect"] = False
        part = layer.model_copy(update=update)
        self.layers.append(part)
        self.origins.append(self._top)
        self.shapes.append(repeated(concrete, [Operand(self.shape(t), "") for t in sources]).output)


def _rewritten(written: Ref, target: int, here: int, top: bool) -> Ref:
    """A reference in the flat spelling: a top-level id as written, a top-level absolute index as
    the new absolute index, anything else relative (as Darknet writes most references)."""
    if top and isinstance(written, str) and written != "input":
        return written
    if top and isinstance(written, int) and written >= 0:
        return target
    return target - here


def _renumber(ref: Ref, last: list[int], end: int) -> Ref:
    if isinstance(ref, str):
        return ref
    return last[ref] if ref >= 0 else last[len(last) + ref] - end


def _copies(layer: LayerSpec) -> list[LayerSpec]:
    """A repeated layer as its copies in series; no copy (`repeat: 0`) as a pass-through; a
    collected repeat's copies then a Route concatenating every one of them."""
    if layer.repeat == 0:
        return [Route(from_="input")]
    copies = [layer.copy_at(k).model_copy(update={"from_": -1, "id": None}) for k in range(layer.repeat)]
    if layer.collect:
        return [*copies, Route(from_=list(range(-layer.repeat, 0)))]
    return copies
