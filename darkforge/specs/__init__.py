"""The built-in layer types. Importing this package registers them (modules in darkforge.layers)."""

from darkforge import registry
from darkforge.specs.conv import (
    Activation,
    BatchNorm,
    Conv,
    ConvBnLeaky,
    ConvNumerics,
    ResidualBlock,
    ResidualStage,
)
from darkforge.specs.graph import Route, Shortcut
from darkforge.specs.head import Dropout, Flatten, Linear
from darkforge.specs.pool import AvgPool, GlobalAvgPool, MaxPool, Upsample

BUILTIN = (
    ConvBnLeaky,
    Conv,
    ResidualBlock,
    ResidualStage,
    Shortcut,
    Route,
    Upsample,
    MaxPool,
    AvgPool,
    GlobalAvgPool,
    Linear,
    Dropout,
    Flatten,
)
for _spec in BUILTIN:
    registry.add(_spec, "darkforge.layers")

__all__ = [
    "BUILTIN",
    "Activation",
    "AvgPool",
    "BatchNorm",
    "Conv",
    "ConvBnLeaky",
    "ConvNumerics",
    "Dropout",
    "Flatten",
    "GlobalAvgPool",
    "Linear",
    "MaxPool",
    "ResidualBlock",
    "ResidualStage",
    "Route",
    "Shortcut",
    "Upsample",
]

from darkforge.specs import darknet  # noqa: E402,F401  (Darknet's own layer types register on import)
