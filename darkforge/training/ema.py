"""An exponential moving average of the weights for evaluation, with timm's decay warm-up
(ModelEmaV3): decay_t = min(decay, 1 - (1 + t) ** -2/3), so the average starts close to the
weights and a short run is not evaluated on a blend dominated by its random start."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

WARMUP_POWER = 2 / 3  # timm's default; decay reaches 0.999 after ~31,000 steps, 0.99 after ~1,000


def decay_at(decay: float, step: int, warmup: bool) -> float:
    """The decay used for update number `step` (0-based)."""
    if not warmup:
        return decay
    return min(decay, 1 - (1 + step) ** -WARMUP_POWER)


def horizon(decay: float) -> float:
    """Steps an EMA averages over, about: 1 / (1 - decay)."""
    return 1 / (1 - decay)


def make_ema(model: nn.Module, decay: float, warmup: bool) -> torch.optim.swa_utils.AveragedModel:
    return torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=_update(decay, warmup), use_buffers=True)


Update = Callable[[Sequence[Tensor], Sequence[Tensor], Any], None]


def _update(decay: float, warmup: bool) -> Update:
    @torch.no_grad()
    def update(averaged: Sequence[Tensor], current: Sequence[Tensor], count: Any) -> None:
        # `count` updates came before this one (AveragedModel copies the weights on the first)
        d = decay_at(decay, int(count), warmup)
        floats = [(a, c) for a, c in zip(averaged, current, strict=True) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1 - d)
        for a, c in zip(averaged, current, strict=True):
            if not a.is_floating_point():  # counters (num_batches_tracked): the model's
                a.copy_(c)

    return update
