"""The optimizer and the learning-rate schedule of a recipe."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from darkforge.training.recipe import Recipe


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv/linear weights only: never on batch-norm scales or biases. Frozen
    parameters (requires_grad False) stay out: no step and no decay may move them."""
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.ndim > 1]
    rest = [p for p in trained if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    groups = param_groups(model, recipe.weight_decay)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov and recipe.momentum > 0
        )
    optimizer = torch.optim.AdamW if recipe.optimizer == "adamw" else torch.optim.Adam
    return optimizer(groups, lr=recipe.lr)


def lr_factor(recipe: Recipe, step: int, total: int) -> float:
    """Multiplier of the peak lr at `step` of `total` optimizer steps."""
    warm = int(recipe.warmup * total)
    if recipe.schedule == "constant":
        return min(1.0, (step + 1) / warm) if warm else 1.0
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    if recipe.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    return max(0.0, 1 - progress)  # onecycle: linear decay to zero
