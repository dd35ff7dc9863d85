"""Activations by their YAML name (Darknet's names where Darknet has them)."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn


class Ramp(nn.Module):
    """Darknet's `ramp`: x·(x > 0) + 0.1·x (strided.cfg, vgg-16.cfg)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x) + 0.1 * x


ACTIVATIONS: dict[str, Callable[[float], nn.Module]] = {
    "leaky": lambda slope: nn.LeakyReLU(slope, inplace=True),
    "relu": lambda _: nn.ReLU(inplace=True),
    "relu6": lambda _: nn.ReLU6(inplace=True),
    "silu": lambda _: nn.SiLU(inplace=True),
    "mish": lambda _: nn.Mish(inplace=True),
    "logistic": lambda _: nn.Sigmoid(),
    "tanh": lambda _: nn.Tanh(),
    "elu": lambda _: nn.ELU(inplace=True),
    "gelu": lambda _: nn.GELU(),
    "hardswish": lambda _: nn.Hardswish(inplace=True),
    "ramp": lambda _: Ramp(),
    "linear": lambda _: nn.Identity(),
}
