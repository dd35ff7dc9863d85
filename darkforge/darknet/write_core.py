"""The core dialect's channel layers in the fork's sections: `Mul` is [scale_channels] or [sam],
`Slice` by groups is [route] with groups/group_id. A Slice by channel range, or a Mul whose gate is
not the layer before, has no Darknet spelling and is refused with the reason."""

from __future__ import annotations

from typing import Any

from darkforge.darknet.write_fork import fmt
from darkforge.spec.base import INPUT

Options = list[tuple[str, str]]


def write_mul(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    if len(sources) != 2:
        raise place.error(f"multiplies {len(sources)} inputs", "Darknet's [scale_channels] multiplies two")
    x, gate = sources
    if gate == INPUT or place.where[gate] != place.index - 1:
        raise place.error(
            "its gate is not the layer before",
            "Darknet's [scale_channels]/[sam] multiply `from` by the previous layer: put the gate last",
        )
    shape, gate_shape = place.shapes
    source = [("from", place.ref(layer.sources()[0], x))]
    if gate_shape == shape:
        return "sam", [*source, ("activation", "linear")]
    if gate_shape == (shape[0], 1, 1):
        return "scale_channels", [*source, ("activation", "linear")]
    if gate_shape == (1, *shape[1:]):
        return "scale_channels", [*source, ("scale_wh", "1"), ("activation", "linear")]
    raise place.error(
        f"a gate of shape {gate_shape} has no Darknet section", "use C×1×1, 1×H×W or the same shape"
    )


def write_slice(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    if layer.groups is None:
        raise place.error(
            "slices a channel range", "Darknet's [route] slices equal groups: use groups and group"
        )
    ref = place.ref(layer.sources()[0], sources[0])
    return "route", [("layers", ref), ("groups", fmt(layer.groups)), ("group_id", fmt(layer.group))]


CORE_WRITERS = {"Mul": write_mul, "Slice": write_slice}
CORE_MULTI_INPUT = {"Mul", "Slice"}
