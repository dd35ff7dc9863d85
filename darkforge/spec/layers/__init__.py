"""The built-in layer types. Importing this package registers them (modules in darkforge.nn.layers)."""

from darkforge.spec import registry
from darkforge.spec.layers.channel import (
    ActivationLayer,
    BatchNormLayer,
    ChannelShuffle,
    DropPath,
    LayerNorm,
    LayerScale,
    Mul,
    Slice,
)
from darkforge.spec.layers.conv import Conv, ConvBnLeaky, ConvLayer, ResidualBlock, ResidualStage
from darkforge.spec.layers.graph import Route, Shortcut
from darkforge.spec.layers.head import Dropout, Flatten, Linear
from darkforge.spec.layers.numerics import Activation, BatchNorm, ConvNumerics
from darkforge.spec.layers.pool import AdaptiveAvgPool, AvgPool, GlobalAvgPool, MaxPool, Upsample

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
CHANNEL = (
    Mul,
    Slice,
    LayerNorm,
    LayerScale,
    DropPath,
    AdaptiveAvgPool,
    ChannelShuffle,
    BatchNormLayer,
    ActivationLayer,
)
for _spec in BUILTIN:
    registry.add(_spec, "darkforge.nn.layers")
for _channel in CHANNEL:
    registry.add(_channel, "darkforge.nn.channel")

__all__ = [
    "BUILTIN",
    "CHANNEL",
    "Activation",
    "ActivationLayer",
    "AdaptiveAvgPool",
    "AvgPool",
    "BatchNorm",
    "BatchNormLayer",
    "ChannelShuffle",
    "Conv",
    "ConvBnLeaky",
    "ConvLayer",
    "ConvNumerics",
    "DropPath",
    "Dropout",
    "Flatten",
    "GlobalAvgPool",
    "LayerNorm",
    "LayerScale",
    "Linear",
    "MaxPool",
    "Mul",
    "ResidualBlock",
    "ResidualStage",
    "Route",
    "Shortcut",
    "Slice",
    "Upsample",
]
