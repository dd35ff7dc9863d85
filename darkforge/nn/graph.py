"""Running a walked graph of layers: one module per layer, called on its sources in order, each
intermediate freed after its last reader. Network runs the whole file; BlockModule runs a block's use.

What module a layer builds is fixed by darkforge, never by the file: a user block's use builds a
BlockModule (by its spec class), every other layer the class registered for its spec class. No name
from a file or checkpoint reaches an import. `repeat: N` is N copies in a Sequential ("0", "1", ...);
with `collect: true` in a Collected (the same names), which concatenates every copy's output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from darkforge.errors import DarkforgeError, SpecError
from darkforge.spec import registry
from darkforge.spec.base import LayerSpec, Operand, Shape, fmt_shape
from darkforge.spec.blocks import BlockUse
from darkforge.spec.graph import BLAME, LayerInfo, why
from darkforge.spec.registry import foreign


def module_for(spec: LayerSpec, inputs: Sequence[Shape]) -> nn.Module:
    """The module of one layer (its copies in series when it repeats)."""
    # none (repeat: 0, an empty Sequential passes its input), several, collected or `numbered`
    # (keys `m.0.cv1…` even of one copy, as Ultralytics' nn.Sequential has them)
    if spec.in_copies:
        copies, shapes = [], list(inputs)
        for k in range(spec.repeat):
            one = spec.copy_at(k)
            copies.append(module_for(one, shapes))
            shapes = [one.infer([Operand(shapes[0], "")]).output]
        return Collected(*copies) if spec.collect else nn.Sequential(*copies)
    if isinstance(spec, BlockUse):
        return BlockModule(spec, inputs)
    layer_type = registry.get(spec.type)
    if not isinstance(spec, layer_type.spec):  # a spec class the registry does not know builds nothing
        raise SpecError(f"layer type {spec.type!r} is not registered by {type(spec).__name__}")
    if not layer_type.plugin:
        module: nn.Module = layer_type.module_class()(spec, list(inputs))
        return module
    try:
        built = layer_type.module_class()(spec, list(inputs))
    except (DarkforgeError, MemoryError):
        raise
    except (Exception, SystemExit) as e:
        raise SpecError(
            f"plugin {layer_type.plugin!r}: building its {spec.type} module failed ({why(e)}){BLAME}"
        ) from None
    if not isinstance(built, nn.Module):
        raise SpecError(f"plugin {layer_type.plugin!r}: its {spec.type} class is no torch.nn.Module{BLAME}")
    return built


class Collected(nn.Sequential):
    """Copies in series, returning every copy's output concatenated along channels, first copy
    first (`collect: true`; YOLOv8's C2f): cat([y0, y1, ...], 1), y0 = copy0(x), y1 = copy1(y0)."""

    def forward(self, x: Tensor) -> Tensor:
        outputs = []
        for copy in self:
            x = copy(x)
            outputs.append(x)
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, 1)  # one copy: no new map


@dataclass(frozen=True)
class Check:
    """What a plugin's layer must return: the shape its rule promised (batch excluded)."""

    plugin: str
    what: str  # "layers[0] (Odd)"
    shape: Shape


def checks_for(infos: Sequence[LayerInfo]) -> dict[int, Check]:
    """The plugin layers among `infos`, checked as they run (their forward is not darkforge's)."""
    found = {}
    for info in infos:
        plugin = foreign(type(info.spec))
        if plugin:
            found[info.index] = Check(plugin, f"layers[{info.index}] ({info.spec.type})", info.output)
    return found


def _checked(module: nn.Module, args: list[Tensor], check: Check) -> Tensor:
    try:
        out = module(*args)
    except (DarkforgeError, MemoryError):
        raise
    except (Exception, SystemExit) as e:
        if "out of memory" in str(e):
            raise
        raise SpecError(
            f"plugin {check.plugin!r}: the forward of {check.what} failed ({why(e)}){BLAME}"
        ) from None
    shape = tuple(out.shape[1:]) if isinstance(out, Tensor) else None
    if shape != check.shape:
        got = fmt_shape(shape) if shape is not None else f"a {type(out).__name__}"
        raise SpecError(
            f"plugin {check.plugin!r}: {check.what} returned {got} where its shape rule says "
            f"{fmt_shape(check.shape)}{BLAME}"
        )
    return out


class BlockModule(nn.Module):
    """The module of a user block's use: the block's layers, named by their ids (or positions), run
    as a graph of their own. With the use's id `stage3` and `repeat: 4`, module names read
    `stage3.2.conv1`: the checkpoint keys follow the structure."""

    def __init__(self, spec: BlockUse, inputs: Sequence[Shape]) -> None:
        super().__init__()
        inst = spec.instance(inputs)
        shapes = {-(k + 1): shape for k, shape in enumerate(inputs)}
        shapes |= {info.index: info.output for info in inst.infos}
        for info in inst.infos:
            try:
                self.add_module(info.name, module_for(info.spec, [shapes[s] for s in info.sources]))
            except KeyError:  # an attribute of nn.Module ("forward", "training", ...)
                raise SpecError(
                    f"block {spec.block.name}: id {info.name!r} is reserved (an attribute of torch modules)",
                    "choose another id",
                ) from None
        self._sources = [info.sources for info in inst.infos]
        self._outputs = (inst.output,)
        self._free = schedule(inst.infos, self._outputs)
        self._checks = checks_for(inst.infos)

    def forward(self, *inputs: Tensor) -> Tensor:
        return run(list(self.children()), self._sources, self._free, self._outputs, inputs, self._checks)[0]


def schedule(infos: Sequence[LayerInfo], outputs: Sequence[int]) -> list[list[int]]:
    """For each layer, the outputs that can be freed after it runs (read by no later layer)."""
    last_use = {i: i + 1 for i in range(len(infos))}
    for info in infos:
        for s in info.sources:
            if s >= 0:
                last_use[s] = max(last_use[s], info.index)
    for o in outputs:
        last_use[o] = len(infos)
    free: list[list[int]] = [[] for _ in infos]
    for i, when in last_use.items():
        if when < len(infos):
            free[when].append(i)
    return free


def run(
    modules: Sequence[nn.Module],
    sources: Sequence[tuple[int, ...]],
    free: Sequence[list[int]],
    outputs: Sequence[int],
    inputs: Sequence[Tensor],
    checks: Mapping[int, Check] | None = None,
) -> list[Tensor]:
    """Call every module on its sources; input k of the graph is index -(k + 1). Layers in
    `checks` (plugins') are checked against their shape rule as they run."""
    outs: dict[int, Tensor] = {-(k + 1): x for k, x in enumerate(inputs)}
    for index, (module, reads) in enumerate(zip(modules, sources, strict=True)):
        if checks and index in checks:
            outs[index] = _checked(module, [outs[s] for s in reads], checks[index])
        else:
            outs[index] = module(*[outs[s] for s in reads])
        for i in free[index]:
            del outs[i]
    return [outs[i] for i in outputs]
