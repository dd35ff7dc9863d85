"""What every section writer shares (darkforge/darknet/sections/*.py): Darknet's spelling of values
and activations, and the `from` refs of a layer that also reads the previous one."""

from __future__ import annotations

import math
from typing import Any

from darkforge.darknet.cfgtext import ACTIVATIONS
from darkforge.errors import SpecError
from darkforge.spec.base import INPUT

Options = list[tuple[str, str]]
DARKNET_NAMES = {ours: theirs for theirs, ours in ACTIVATIONS.items()}


def fmt(value: Any) -> str:
    """A value as Darknet's atoi/atof read it: 1/0 for flags, comma lists, 10 rather than 10.0."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return ",".join(fmt(v) for v in value)
    return str(value)


def strides(layer: Any) -> Options:
    sy, sx = layer.strides
    return [("stride", fmt(sx))] if sx == sy else [("stride_x", fmt(sx)), ("stride_y", fmt(sy))]


def darknet_activation(place: Any, activation: str, slope: float) -> str:
    """A core activation's Darknet name (leaky only at Darknet's slope 0.1)."""
    if activation not in DARKNET_NAMES:
        raise place.error(
            f"Darknet has no activation {activation!r}", "use one of: " + ", ".join(DARKNET_NAMES)
        )
    if activation == "leaky" and not math.isclose(slope, 0.1):
        raise place.error(f"Darknet's leaky has slope 0.1, not {slope}")
    return DARKNET_NAMES[activation]


def previous_and_from(place: Any, layer: Any, sources: list[int]) -> list[str]:
    """The `from` refs of a layer that also reads the previous layer (its first source)."""
    if sources[0] == INPUT or place.where[sources[0]] != place.index - 1:
        raise SpecError(f"{place.name}: its first input must be the previous layer", "Darknet reads that one")
    written = layer.sources()
    return [place.ref(w, t) for w, t in zip(written[1:], sources[1:], strict=True)]
