"""The built-in layer types. Importing this package registers them; each spec names its module
(`module`: darkforge.nn.layers or darkforge.nn.channel)."""

from darkforge.spec import registry
from darkforge.spec.layers.attention import ATTENTION, C2PSA, Attention
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
from darkforge.spec.layers.csp import C2, C3, CSP, SPP, SPPF, C2f, C3k2, YoloBottleneck, ZeroPad
from darkforge.spec.layers.detect import HEADS, Classify, Detect
from darkforge.spec.layers.graph import Route, Shortcut
from darkforge.spec.layers.head import Dropout, Flatten, Linear
from darkforge.spec.layers.numerics import Activation, BatchNorm, ConvNumerics
from darkforge.spec.layers.pool import AdaptiveAvgPool, AvgPool, GlobalAvgPool, MaxPool, Upsample

# Each type names its module on its spec (`module`, as a block's use does): no routing here.
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
    registry.add(_spec, _spec.module or "")
for _csp in CSP:  # the YOLOv5/v8/11 blocks and heads (Ultralytics' layouts: docs/ultralytics.md)
    registry.add(_csp, "darkforge.nn.csp")
for _attention in ATTENTION:  # YOLO11's position self-attention and the C2PSA block of it
    registry.add(_attention, "darkforge.nn.attention")
for _head in HEADS:
    registry.add(_head, "darkforge.nn.detect")

__all__ = [
    "ATTENTION",
    "BUILTIN",
    "C2",
    "C2PSA",
    "C3",
    "CSP",
    "HEADS",
    "SPP",
    "SPPF",
    "Activation",
    "ActivationLayer",
    "AdaptiveAvgPool",
    "Attention",
    "AvgPool",
    "BatchNorm",
    "BatchNormLayer",
    "C2f",
    "C3k2",
    "ChannelShuffle",
    "Classify",
    "Conv",
    "ConvBnLeaky",
    "ConvLayer",
    "ConvNumerics",
    "Detect",
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
    "YoloBottleneck",
    "ZeroPad",
]
