"""Activation modules by name: one per function of the table in darkforge/spec/activations.py,
its aliases (Darknet's names) mapping to the same module."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from darkforge.spec.activations import ALIASES, FUNCTIONS, canonical


class Ramp(nn.Module):
    """Darknet's `ramp`: x·(x > 0) + 0.1·x (strided.cfg, vgg-16.cfg)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x) + 0.1 * x


# (slope, inplace) -> module. In place only where the input is the layer's own fresh tensor (after
# a conv, a norm, an add); the Activation layer's input may be read by other layers.
_MODULES: dict[str, Callable[[float, bool], nn.Module]] = {
    "linear": lambda _, __: nn.Identity(),
    "relu": lambda _, inplace: nn.ReLU(inplace),
    "relu6": lambda _, inplace: nn.ReLU6(inplace),
    "leaky": lambda slope, inplace: nn.LeakyReLU(slope, inplace),
    "elu": lambda _, inplace: nn.ELU(inplace=inplace),
    "sigmoid": lambda _, __: nn.Sigmoid(),
    "tanh": lambda _, __: nn.Tanh(),
    "silu": lambda _, inplace: nn.SiLU(inplace),
    "mish": lambda _, inplace: nn.Mish(inplace),
    "gelu": lambda _, __: nn.GELU(),
    "gelu_tanh": lambda _, __: nn.GELU(approximate="tanh"),
    "hardswish": lambda _, inplace: nn.Hardswish(inplace),
    "hardsigmoid": lambda _, inplace: nn.Hardsigmoid(inplace),
    "hardtanh": lambda _, inplace: nn.Hardtanh(inplace=inplace),
    "ramp": lambda _, __: Ramp(),
}
assert set(_MODULES) == set(FUNCTIONS), "a module for every function of the table"


def activation(name: str, slope: float = 0.01, inplace: bool = False) -> nn.Module:
    """The module of activation `name` (any spelling of the table); `slope` for leaky."""
    return _MODULES[canonical(name)](slope, inplace)


def _in_place(name: str) -> Callable[[float], nn.Module]:
    return lambda slope: activation(name, slope, inplace=True)


# every name, aliases included, in place (for layers whose input is their own fresh tensor):
# ACTIVATIONS[name](slope) -> module
ACTIVATIONS: dict[str, Callable[[float], nn.Module]] = {
    name: _in_place(name) for name in [*FUNCTIONS, *ALIASES]
}
