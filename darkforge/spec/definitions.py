"""What a `blocks:` entry holds, as the file writes it: the parameters (type, default, limits) and
the layers, which stay plain data until a use instantiates them (darkforge.spec.blocks)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from darkforge.spec.base import ID_PATTERN, Ref, Strict
from darkforge.spec.expr import MAX_MAGNITUDE as LIMIT  # a limit past what expressions compute is no limit

ParamType = Literal["int", "float", "bool", "str", "mapping"]


class Param(Strict):
    """One parameter of a block: its type, default and limits."""

    type: ParamType
    # bool first: `true` stays a bool; `default: null` (written) lets a use leave it null
    default: bool | int | float | str | dict[str, Any] | None = None
    min: float | None = Field(None, allow_inf_nan=False, ge=-LIMIT, le=LIMIT)
    max: float | None = Field(None, allow_inf_nan=False, ge=-LIMIT, le=LIMIT)
    choices: list[bool | int | float | str] | None = Field(None, min_length=1, max_length=1000)
    description: str | None = None
    scale: Literal["width", "depth", "none"] | None = Field(
        None, description="under --scale: a channel count (width), a block count (depth), or kept (none)"
    )

    @property
    def nullable(self) -> bool:
        """`default: null` was written: null is the default, and a use may pass it."""
        return "default" in self.model_fields_set and self.default is None

    @model_validator(mode="after")
    def _limits_fit_the_type(self) -> Self:
        """Limits the use's field can be built with: finite, ordered, of the parameter's type."""
        if self.type in ("bool", "str", "mapping") and (self.min is not None or self.max is not None):
            raise ValueError(f"a {self.type} parameter has no `min`/`max`")
        if self.type == "int" and any(v is not None and v != int(v) for v in (self.min, self.max)):
            raise ValueError("the `min`/`max` of an int parameter are integers")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"`min` {self.min:g} is above `max` {self.max:g}")
        for choice in self.choices or ():
            self._check_value(choice, "choice")
        if self.default is not None:
            self._check_value(self.default, "default")
            if self.choices is not None and self.default not in self.choices:
                raise ValueError(f"default {_short(self.default)} is none of the choices")
            low, high = self.min, self.max
            if (low is not None and self.default < low) or (high is not None and self.default > high):  # type: ignore[operator]
                raise ValueError(f"default {_short(self.default)} lies outside `min`..`max`")
        return self

    def _check_value(self, value: object, what: str) -> None:
        kinds = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "mapping": (dict,)}[
            self.type
        ]
        if (isinstance(value, bool) and self.type != "bool") or not isinstance(value, kinds):
            raise ValueError(f"{what} {_short(value)} is no {self.type}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{what} {_short(value)} is not a finite number")


class BlockDefinition(Strict):
    """What a `blocks:` entry holds (the layers stay plain data until a use instantiates them)."""

    description: str | None = None
    params: dict[Annotated[str, Field(pattern=ID_PATTERN)], Param] = Field(default_factory=dict)
    inputs: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(
        default_factory=lambda: ["input"], min_length=1, max_length=16
    )
    layers: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)
    output: Ref | None = Field(None, description="the layer whose output the block returns (default: last)")
    shadows: bool = Field(
        False,
        description="the block takes the name of a built-in layer type and stands for it in the files "
        "that use it (the shipped library's C2f spells the built-in C2f)",
    )

    @field_validator("params", mode="before")
    @classmethod
    def _short_params(cls, value: Any) -> Any:
        """`width: int` is short for `width: {type: int}` (one model: errors name no union)."""
        if isinstance(value, dict):
            return {k: {"type": v} if isinstance(v, str) else v for k, v in value.items()}
        return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"
