"""Spec -> nn.Module: one loop over the plan, each layer's module looked up in the registry."""

from __future__ import annotations

import os
from typing import Any

from torch import Tensor, nn

from darkforge.errors import SpecError
from darkforge.spec import registry
from darkforge.spec.base import INPUT, NetworkSpec
from darkforge.spec.load import load_spec
from darkforge.spec.shapes import Plan, describe, plan


class Network(nn.Module):
    """The compiled graph. `layers` holds one module per YAML layer, named by its id or index,
    registered in forward order, so weights copy in order between equivalent networks."""

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.spec = plan.spec
        self.plan = plan
        self.layers = nn.ModuleDict()
        for info in plan.layers:
            module_class = registry.get(info.spec.type).module_class()
            try:
                self.layers[info.name] = module_class(info.spec, [plan.shape_of(s) for s in info.sources])
            except KeyError as e:  # ModuleDict refuses names of its own attributes ("keys", ...)
                raise SpecError(
                    f"{describe(plan.spec, info.index)}: id {info.name!r} is reserved",
                    "choose another id",
                ) from e
        self._sources = [info.sources for info in plan.layers]
        self._outputs = plan.outputs
        # Free each intermediate after its last reader, so inference on big inputs stays lean.
        last_use = {i: i + 1 for i in range(len(plan.layers))}
        for info in plan.layers:
            for s in info.sources:
                if s != INPUT:
                    last_use[s] = max(last_use[s], info.index)
        for o in plan.outputs:
            last_use[o] = len(plan.layers)
        self._free: list[list[int]] = [[] for _ in plan.layers]
        for i, when in last_use.items():
            if when < len(plan.layers):
                self._free[when].append(i)

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        outs: dict[int, Tensor] = {INPUT: x}
        for index, (module, sources) in enumerate(zip(self.layers.values(), self._sources, strict=True)):
            outs[index] = module(*[outs[s] for s in sources])
            for i in self._free[index]:
                del outs[i]
        if len(self._outputs) == 1:
            return outs[self._outputs[0]]
        return tuple(outs[i] for i in self._outputs)


def build(
    arch: str | os.PathLike[str] | NetworkSpec,
    scale: str | None = None,
    input_size: int | None = None,
    classes: int | None = None,
) -> Network:
    """Compile an architecture (a path or a loaded spec) into a Network."""
    spec = arch if isinstance(arch, NetworkSpec) else load_spec(arch)
    return Network(plan(spec.resolved(scale, input_size, classes)))


def forward_order_copy(source: nn.Module, target: nn.Module) -> None:
    """Copy parameters and buffers in registration order between networks of equal structure."""
    src, dst = source.state_dict(), target.state_dict()
    if len(src) != len(dst):
        raise ValueError(f"different structures: {len(src)} tensors vs {len(dst)}")
    mapped: dict[str, Any] = {}
    for (name, value), (target_name, slot) in zip(src.items(), dst.items(), strict=True):
        if value.shape != slot.shape:
            raise ValueError(f"{name} {tuple(value.shape)} does not fit {target_name} {tuple(slot.shape)}")
        mapped[target_name] = value
    target.load_state_dict(mapped)
