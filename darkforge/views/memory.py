"""Memory from the static plan: each layer's activation size, and totals a budget can use.

Sizes are fp32 bytes for one image. A composite layer (a stage of residual blocks, a user block,
repeated or nested) counts every map its parts produce, not only its output: that is what a
forward pass allocates and what training keeps for the backward pass. The counts come from the
plan's own walk (`LayerCost.produced`), the walk `build` makes its modules from.

The training estimate per batch: weights, gradients and one optimizer buffer (SGD momentum; Adam
keeps two) = 3 × parameter bytes, plus the batch × SAVED_FACTOR × the activations of one image:
autograd keeps about two tensors per produced map (a conv's input for its weight gradient, batch
norm's input and the activation's input); measured on darknet53-flat it keeps 1.8× (tests compare
the estimate with torch's saved tensors).
"""

from __future__ import annotations

from darkforge.spec.shapes import Plan

BYTES = 4  # fp32
SAVED_FACTOR = 2  # tensors autograd keeps per produced map (see above)
OPTIMIZER_COPIES = 3  # weights, gradients, momentum


def layer_activations(p: Plan) -> list[int]:
    """Bytes of every map each layer produces for one image (composites: all their parts)."""
    return [info.cost.produced * BYTES for info in p.layers]


def totals(p: Plan, batch: int, activations: list[int] | None = None) -> dict[str, int]:
    """Parameter, activation (one image) and estimated training bytes (one batch of `batch`)."""
    acts = sum(activations if activations is not None else layer_activations(p))
    params = p.params * BYTES
    return {
        "param_bytes": params,
        "activation_bytes": acts,
        "train_batch": batch,
        "train_bytes": OPTIMIZER_COPIES * params + batch * SAVED_FACTOR * acts,
    }


def fmt_bytes(n: float) -> str:
    """1,536 -> '1.5 KiB' (torchinfo 1.8 prints `Units.GIGABYTES` on Python 3.11: we format our own)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def totals_lines(p: Plan, batch: int, activations: list[int]) -> list[str]:
    t = totals(p, batch, activations)
    return [
        f"memory   params {fmt_bytes(t['param_bytes'])}, activations {fmt_bytes(t['activation_bytes'])} "
        f"per image (fp32); training ≈ {fmt_bytes(t['train_bytes'])} per batch of {batch}",
    ]
