"""Spec -> nn.Module: one loop over the plan, each layer's module looked up in the registry."""

from __future__ import annotations

import os
from typing import Any

from torch import Tensor, nn

from darkforge.errors import SpecError
from darkforge.nn.graph import module_for, run, schedule
from darkforge.spec.base import NetworkSpec
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
            module = module_for(info.spec, [plan.shape_of(s) for s in info.sources])
            try:
                self.layers[info.name] = module
            except KeyError as e:  # ModuleDict refuses names of its own attributes ("keys", ...)
                raise SpecError(
                    f"{describe(plan.spec, info.index)}: id {info.name!r} is reserved",
                    "choose another id",
                ) from e
        self._sources = [info.sources for info in plan.layers]
        self._outputs = plan.outputs
        # Free each intermediate after its last reader, so inference on big inputs stays lean.
        self._free = schedule(plan.layers, plan.outputs)

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        outs = run(list(self.layers.values()), self._sources, self._free, self._outputs, [x])
        return outs[0] if len(outs) == 1 else tuple(outs)


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
