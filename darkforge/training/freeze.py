"""`freeze`: layers whose weights stay fixed while the rest trains (fine-tuning a backbone; Darknet's
`stopbackward`). A frozen layer's parameters leave the optimizer (so neither a step nor weight
decay touches them) and its batch norm stays in eval mode (its running statistics stay too), so
its tensors are bit-identical after training."""

from __future__ import annotations

from torch import nn

from darkforge.errors import UsageError
from darkforge.spec.shapes import Plan

Freeze = int | str | list[int | str] | None


def frozen_layers(plan: Plan, freeze: Freeze) -> list[str]:
    """Module names (under `layers`) of the frozen layers: a count of leading layers, every layer up
    to and including an id, or a list of ids/indices."""
    if freeze is None:
        return []
    names = [info.name for info in plan.layers]

    if isinstance(freeze, int):
        if not 0 < freeze < len(names):
            raise UsageError(
                f"freeze: {freeze} leading layers of {len(names)}",
                f"freeze between 1 and {len(names) - 1} layers: something must train",
            )
        chosen = list(range(freeze))
    elif isinstance(freeze, str):
        chosen = list(range(plan.index_of(freeze, "freeze") + 1))
    else:
        chosen = sorted({plan.index_of(ref, "freeze") for ref in freeze})
    frozen = [names[i] for i in chosen]
    if len(frozen) == len(names):
        raise UsageError("freeze: every layer is frozen", "leave at least the head to train")
    return frozen


def freeze(model: nn.Module, layers: list[str]) -> int:
    """Stop gradients of `layers` (model.layers[name]); returns the number of frozen parameters."""
    count = 0
    for name in layers:
        for p in model.layers[name].parameters():  # type: ignore[index,union-attr]
            p.requires_grad_(False)
            count += p.numel()
    return count


def keep_eval(model: nn.Module, layers: list[str]) -> None:
    """After `model.train()`: the frozen layers' batch norm (and dropout) stay in eval mode."""
    for name in layers:
        model.layers[name].eval()  # type: ignore[index,union-attr]
