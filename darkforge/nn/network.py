"""Plan -> nn.Module: one loop over the plan, each layer's module looked up in the registry.
`darkforge.build` (darkforge.weights.transfer) compiles a file into one."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from darkforge.errors import SpecError
from darkforge.nn.graph import checks_for, module_for, run, schedule
from darkforge.spec.base import ShapeError
from darkforge.spec.shapes import Plan, describe


class Network(nn.Module):
    """The compiled graph. `layers` holds one module per YAML layer, named by its id or index,
    registered in forward order, so weights copy in order between equivalent networks.

    With `taps` (layer indices) it is a feature extractor, as timm's `features_only`: forward
    returns the list of those layers' maps, and the layers after the last tap are not built."""

    def __init__(self, plan: Plan, taps: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.spec = plan.spec
        self.plan = plan
        self.taps = taps
        self.layers = nn.ModuleDict()
        kept = plan.layers if taps is None else plan.layers[: max(taps) + 1]
        for info in kept:
            # ids ModuleDict would refuse ("keys", "training") were refused on reading (spec.reserved)
            module = module_for(info.spec, [plan.shape_of(s) for s in info.sources])
            tie = getattr(module, "tie", None)
            if callable(tie):  # a layer that uses an earlier layer's weights (Darknet's share_index)
                tie(list(self.layers.values()))
            self.layers[info.name] = module
        for info in kept:  # heads that need the plan's input (Detect's strides)
            for module in self.layers[info.name].modules():
                bind = getattr(module, "bind_input", None)
                if callable(bind):
                    try:
                        bind(plan.input)
                    except ShapeError as e:
                        raise SpecError(f"{describe(plan.spec, info.index)}: {e}") from None
        self._sources = [info.sources for info in kept]
        self._outputs = plan.outputs if taps is None else taps
        # Free each intermediate after its last reader, so inference on big inputs stays lean.
        self._free = schedule(kept, self._outputs)
        self._checks = checks_for(kept)  # plugin layers: their forward against their shape rule

    @property
    def feature_shapes(self) -> list[tuple[int, ...]]:
        """The shapes (without the batch) forward returns for each tap: the plan's, as `summary`'s."""
        return [tuple(self.plan.shape_of(i)) for i in self.taps or ()]

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...] | list[Tensor]:
        outs = run(list(self.layers.values()), self._sources, self._free, self._outputs, [x], self._checks)
        if self.taps is not None:
            return outs
        return outs[0] if len(outs) == 1 else tuple(outs)


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
