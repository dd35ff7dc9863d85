"""The built-in layer types. Importing this package registers them (modules in darkforge.nn.layers)."""

from darkforge.spec import registry
from darkforge.spec.layers.conv import Conv, ConvBnLeaky, ConvLayer, ResidualBlock, ResidualStage
from darkforge.spec.layers.graph import Route, Shortcut
from darkforge.spec.layers.head import Dropout, Flatten, Linear
from darkforge.spec.layers.numerics import Activation, BatchNorm, ConvNumerics
from darkforge.spec.layers.pool import AvgPool, GlobalAvgPool, MaxPool, Upsample

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
    registry.add(_spec, "darkforge.nn.layers")

__all__ = [
    "BUILTIN",
    "Activation",
    "AvgPool",
    "BatchNorm",
    "Conv",
    "ConvBnLeaky",
    "ConvLayer",
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
