"""Scoring a model on a split: logits batch by batch (with flip test-time augmentation), mean
loss, accuracy and the predicted classes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from darkforge.training.data.batches import Batches


@torch.no_grad()
def logits_of(
    model: nn.Module, batches: Batches, tta_flip: bool, autocast: Callable[[], Any] = contextlib.nullcontext
) -> Iterator[tuple[Tensor, Tensor]]:
    """Logits and labels, batch by batch, in eval mode; with `tta_flip` the mirror image is
    as likely as the image itself, so their logits are averaged."""
    model.eval()
    for x, y in batches.epoch(0):
        with autocast():
            logits = model(x).float()
            if tta_flip:
                logits = (logits + model(x.flip(3)).float()) / 2
        yield logits, y


def score(batches: Iterator[tuple[Tensor, Tensor]]) -> tuple[float, float, Tensor]:
    """Mean loss, accuracy and predicted classes."""
    loss_sum, correct, preds = totals(batches)
    return loss_sum / len(preds), correct / len(preds), preds


def totals(batches: Iterator[tuple[Tensor, Tensor]]) -> tuple[float, int, Tensor]:
    """Summed loss, number correct and predicted classes (on the CPU)."""
    loss_sum, correct, preds = 0.0, 0, []
    for logits, y in batches:
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        preds.append(logits.argmax(1))
        correct += int((preds[-1] == y).sum())
    return loss_sum, correct, torch.cat(preds).cpu() if preds else torch.zeros(0, dtype=torch.long)
