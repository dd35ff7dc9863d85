"""Running a walked graph of layers: one module per layer, called on its sources in order, each
intermediate freed after its last reader. Network runs the whole file; Block runs a block's use.

A layer's module is its registered class (the type's name), or, for types outside the registry
(user blocks), the class its spec names; `repeat: N` is N copies in a Sequential ("0", "1", ...).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from torch import Tensor, nn

from darkforge.spec import registry
from darkforge.spec.base import LayerSpec, Operand, Shape
from darkforge.spec.graph import LayerInfo


def module_for(spec: LayerSpec, inputs: Sequence[Shape]) -> nn.Module:
    """The module of one layer (its copies in series when it repeats)."""
    if spec.repeat != 1:  # none (repeat: 0, an empty Sequential passes its input) or several
        copies, shapes = [], list(inputs)
        for k in range(spec.repeat):
            one = spec.copy_at(k)
            copies.append(module_for(one, shapes))
            shapes = [one.infer([Operand(shapes[0], "")]).output]
        return nn.Sequential(*copies)
    if spec.module is not None:
        path, name = spec.module.split(":")
        cls = getattr(importlib.import_module(path), name)
    else:
        cls = registry.get(spec.type).module_class()
    module: nn.Module = cls(spec, list(inputs))
    return module


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
) -> list[Tensor]:
    """Call every module on its sources; input k of the graph is index -(k + 1)."""
    outs: dict[int, Tensor] = {-(k + 1): x for k, x in enumerate(inputs)}
    for index, (module, reads) in enumerate(zip(modules, sources, strict=True)):
        outs[index] = module(*[outs[s] for s in reads])
        for i in free[index]:
            del outs[i]
    return [outs[i] for i in outputs]
