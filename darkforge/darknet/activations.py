"""Darknet's activations as torch modules, by Darknet's name (the fork's src/activations.h and
activations.c), with its constants: leaky 0.1, selu 1.0507·1.6732, gelu's tanh form, mish with
softplus cut at ±20, and the channel-normalising ones over dim 1."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Lambda(nn.Module):
    """An elementwise function; `name` shows in the module's repr."""

    def __init__(self, name: str, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.name, self.fn = name, fn

    def extra_repr(self) -> str:
        return self.name

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)


def _softplus(x: Tensor) -> Tensor:  # softplus_activate(x, 20)
    return torch.where(x > 20, x, torch.where(x < -20, torch.exp(x), torch.log1p(torch.exp(x))))


def _stair(x: Tensor) -> Tensor:
    n = torch.floor(x)
    half = torch.floor(x / 2)
    return torch.where(torch.remainder(n, 2) == 0, half, x - n + half)


def _plse(x: Tensor) -> Tensor:
    return torch.where(x < -4, 0.01 * (x + 4), torch.where(x > 4, 0.01 * (x - 4) + 1, 0.125 * x + 0.5))


def _normalize(x: Tensor) -> Tensor:
    positive = F.relu(x)
    return positive / (1e-4 + positive.sum(1, keepdim=True))


def _normalize_softmax(x: Tensor, maxval: bool) -> Tensor:
    if maxval:
        x = x - x.amax(1, keepdim=True)
    e = torch.exp(x)
    return e / (1e-4 + e.sum(1, keepdim=True))


FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "linear": lambda x: x,
    "logistic": torch.sigmoid,
    "loggy": lambda x: 2 * torch.sigmoid(x) - 1,
    "relu": F.relu,
    "relu6": lambda x: x.clamp(0, 6),
    "elu": F.elu,
    "selu": lambda x: torch.where(x >= 0, 1.0507 * x, 1.0507 * 1.6732 * (torch.exp(x) - 1)),
    "gelu": lambda x: 0.5 * x * (1 + torch.tanh(0.797885 * x + 0.035677 * x * x * x)),
    "relie": lambda x: torch.where(x > 0, x, 0.01 * x),
    "plse": _plse,
    "hardtan": lambda x: x.clamp(-1, 1),
    "lhtan": lambda x: torch.where(x < 0, 0.001 * x, torch.where(x > 1, 0.001 * (x - 1) + 1, x)),
    "ramp": lambda x: F.relu(x) + 0.1 * x,
    "leaky": lambda x: F.leaky_relu(x, 0.1),
    "tanh": torch.tanh,
    "stair": _stair,
    "swish": lambda x: x * torch.sigmoid(x),
    "mish": lambda x: x * torch.tanh(_softplus(x)),
    "hard_mish": lambda x: torch.where(x > 0, x, torch.where(x > -2, x * x / 2 + x, torch.zeros_like(x))),
    "normalize_channels": _normalize,
    "normalize_channels_softmax": lambda x: _normalize_softmax(x, maxval=False),
    "normalize_channels_softmax_maxval": lambda x: _normalize_softmax(x, maxval=True),
}


def activation(name: str) -> nn.Module:
    """Darknet's activation `name` as a module."""
    if name == "linear":
        return nn.Identity()
    return Lambda(name, FUNCTIONS[name])
