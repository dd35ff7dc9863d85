"""The one table of activation functions every layer type names (`activation:` of Conv,
Shortcut, Linear, the Activation layer, and the Darknet reader's mapping), torch-free.

Names are the standard ones (torch's functions); Darknet's names are aliases that compute the
same function (`logistic` is `sigmoid`, `swish` is `silu`). One name, one function: `gelu` is
the exact x·Φ(x) (torch's GELU()), `gelu_tanh` its tanh approximation, which is what Darknet's
`gelu` computes — so a .cfg's `gelu` reads as `gelu_tanh` (DARKNET below). nn/activations.py
holds the modules, a test checks it covers every name here.
"""

from __future__ import annotations

from typing import Literal, get_args

# canonical name -> what it computes (docs/layers.md shows it)
FUNCTIONS: dict[str, str] = {
    "linear": "x (no activation)",
    "relu": "max(0, x)",
    "relu6": "min(max(0, x), 6)",
    "leaky": "x if x > 0 else slope·x (`slope`)",
    "elu": "x if x > 0 else exp(x) − 1",
    "sigmoid": "1 / (1 + exp(−x))",
    "tanh": "tanh(x)",
    "silu": "x·sigmoid(x)",
    "mish": "x·tanh(softplus(x))",
    "gelu": "x·Φ(x), exact (erf): torch's GELU()",
    "gelu_tanh": "the tanh approximation of gelu: torch's GELU('tanh'), Darknet's `gelu`",
    "hardswish": "x·relu6(x + 3) / 6 (MobileNetV3)",
    "hardsigmoid": "relu6(x + 3) / 6 (MobileNetV3's squeeze-excitation gate)",
    "hardtanh": "clamp(x, −1, 1)",
    "ramp": "relu(x) + 0.1·x (Darknet's ramp)",
}

# other spellings of the same function (Darknet's names first)
ALIASES: dict[str, str] = {
    "logistic": "sigmoid",
    "swish": "silu",
    "hardtan": "hardtanh",
    "identity": "linear",
}

# Darknet's activation names -> this table's (what Darknet computes, activations.c): the .cfg
# reader and writer translate through it; Darknet names missing here (selu with its rounded
# constants, stair, plse, ...) are Darknet's own functions, not this table's.
DARKNET: dict[str, str] = {
    "linear": "linear",
    "relu": "relu",
    "relu6": "relu6",
    "leaky": "leaky",
    "elu": "elu",
    "logistic": "sigmoid",
    "tanh": "tanh",
    "swish": "silu",
    "mish": "mish",
    "gelu": "gelu_tanh",
    "hardtan": "hardtanh",
    "ramp": "ramp",
}

Activation = Literal[
    "linear",
    "relu",
    "relu6",
    "leaky",
    "elu",
    "sigmoid",
    "tanh",
    "silu",
    "mish",
    "gelu",
    "gelu_tanh",
    "hardswish",
    "hardsigmoid",
    "hardtanh",
    "ramp",
    "logistic",
    "swish",
    "hardtan",
    "identity",
]
NAMES: tuple[str, ...] = get_args(Activation)
assert set(NAMES) == set(FUNCTIONS) | set(ALIASES), "Activation lists every name of the table"


def canonical(name: str) -> str:
    """The table's name of `name` ('logistic' -> 'sigmoid'); KeyError for no activation."""
    if name in FUNCTIONS:
        return name
    return ALIASES[name]
