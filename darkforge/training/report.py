"""Metrics and pictures of a finished run: per-class report, confusion matrix, curves, predictions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from darkforge.files import replacing


def confusion(labels: Tensor, predictions: Tensor, classes: int) -> Tensor:
    """(classes, classes) counts: row = true class, column = predicted class."""
    index = labels.long().cpu() * classes + predictions.long().cpu()
    return torch.bincount(index, minlength=classes * classes).view(classes, classes)


def class_report(matrix: Tensor, names: Sequence[str]) -> dict[str, Any]:
    """Precision, recall, F1 and support per class, with macro and weighted averages (as sklearn)."""
    m = matrix.double()
    tp = m.diag()
    support = m.sum(1)
    predicted = m.sum(0)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
    f1 = torch.where(
        precision + recall > 0,
        2 * precision * recall / (precision + recall).clamp(min=1e-12),
        torch.zeros_like(tp),
    )
    total = support.sum().item()
    rows = {
        name: {"precision": p, "recall": r, "f1": f, "support": int(s)}
        for name, p, r, f, s in zip(
            names, precision.tolist(), recall.tolist(), f1.tolist(), support.tolist(), strict=True
        )
    }
    weights = support / max(total, 1)
    return {
        "accuracy": tp.sum().item() / max(total, 1),
        "classes": rows,
        "macro avg": {
            "precision": precision.mean().item(),
            "recall": recall.mean().item(),
            "f1": f1.mean().item(),
            "support": int(total),
        },
        "weighted avg": {
            "precision": (precision * weights).sum().item(),
            "recall": (recall * weights).sum().item(),
            "f1": (f1 * weights).sum().item(),
            "support": int(total),
        },
    }


def report_text(report: dict[str, Any]) -> str:
    """sklearn's classification_report layout."""
    width = max(12, *(len(n) for n in report["classes"]))

    def line(name: str, row: dict[str, Any]) -> str:
        scores = f"{row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:8.4f}"
        return f"{name:>{width}}  {scores}  {row['support']:7d}"

    total = report["macro avg"]["support"]
    lines = [f"{'':>{width}}  precision  recall  f1-score  support", ""]
    lines += [line(name, row) for name, row in report["classes"].items()]
    lines += ["", f"{'accuracy':>{width}}  {'':9}  {'':6}  {report['accuracy']:8.4f}  {total:7d}"]
    lines += [line(name, report[name]) for name in ("macro avg", "weighted avg")]
    return "\n".join(lines) + "\n"


def _figure(**kwargs: Any) -> Any:
    """A matplotlib Figure of its own (no pyplot): the caller's backend and figures are untouched.
    matplotlib is imported here, on use: it costs a second and only reports need it."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(fig: Any, path: Path) -> Path:
    with replacing(path) as temp:
        fig.savefig(temp, dpi=110, bbox_inches="tight")
    return path


def plot_results(history: Sequence[dict[str, Any]], path: Path) -> Path:
    """Loss, accuracy and the learning rate per epoch (whole-epoch ticks: no 1.5 epochs)."""
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    fig = _figure(figsize=(14, 4))
    left, middle, right = fig.subplots(1, 3)
    for split, style in (("train", "-o"), ("test", "-s"), ("val", "-^")):
        if history and history[0].get(f"{split}_loss") is not None:
            left.plot(epochs, [r[f"{split}_loss"] for r in history], style, label=split, markersize=3)
            middle.plot(epochs, [100 * r[f"{split}_acc"] for r in history], style, label=split, markersize=3)
    right.plot(epochs, [r["lr"] for r in history], "-o", color="tab:purple", markersize=3, label="lr")
    left.set(title="loss", xlabel="epoch")
    middle.set(title="accuracy (%)", xlabel="epoch")
    right.set(title="learning rate (epoch mean)", xlabel="epoch")
    for ax in (left, middle, right):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, path)


def plot_confusion(matrix: Tensor, names: Sequence[str], path: Path) -> Path:
    n = len(names)
    size = max(5, 0.55 * n + 2)
    fig = _figure(figsize=(size, size * 0.9))
    ax = fig.subplots()
    rates = matrix.double() / matrix.sum(1, keepdim=True).clamp(min=1)
    image = ax.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    if n <= 30:
        ax.set_xticks(range(n), names, rotation=45, ha="right")
        ax.set_yticks(range(n), names)
        for i in range(n):
            for j in range(n):
                count = int(matrix[i, j])
                if count:
                    ax.text(
                        j,
                        i,
                        str(count),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black",
                    )
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (counts; colour = row share)")
    return _save(fig, path)


def plot_predictions(
    images: Tensor, labels: Tensor, predictions: Tensor, names: Sequence[str], path: Path, count: int = 32
) -> Path:
    """A grid of test images with true and predicted labels; wrong ones in red."""
    count = min(count, len(images))
    cols = 8
    rows = -(-count // cols)
    fig = _figure(figsize=(cols * 1.6, rows * 1.9))
    axes = fig.subplots(rows, cols)
    for k, ax in enumerate(axes.flat if hasattr(axes, "flat") else [axes]):
        ax.axis("off")
        if k >= count:
            continue
        image = images[k].permute(1, 2, 0).cpu().numpy()
        ax.imshow(
            image.squeeze() if image.shape[2] == 1 else image, cmap="gray" if image.shape[2] == 1 else None
        )
        right = bool(labels[k] == predictions[k])
        ax.set_title(
            f"{names[int(predictions[k])]}\n(true: {names[int(labels[k])]})"
            if not right
            else names[int(predictions[k])],
            fontsize=8,
            color="black" if right else "red",
        )
    fig.suptitle("test predictions (red: wrong, with the true label)", fontsize=10)
    return _save(fig, path)
