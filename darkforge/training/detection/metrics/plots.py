"""The run directory's detection pictures: PR curves, validation images with boxes, the label
distribution and the training curves. Each draws on a Figure of its own (no pyplot) and is
written atomically, as the classification reports are (training/report.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from darkforge.training.detection.metrics.draw import TRUTH_COLOUR, colour
from darkforge.training.detection.metrics.evaluation import RECALL_POINTS, DetectionMetrics
from darkforge.training.report import _figure, _save

# metrics.csv columns of a detection run, in order; results.png draws those present
DETECTION_COLUMNS = [
    "epoch",
    "train_box",
    "train_cls",
    "train_dfl",
    "val_box",
    "val_cls",
    "val_dfl",
    "precision",
    "recall",
    "map50",
    "map50_95",
    "lr",
]


def plot_pr_curves(metrics: DetectionMetrics, path: Path) -> Path:
    """Precision against recall at IoU .5 per class (COCOeval's interpolated curves), the class
    mean in bold; the legend gives each class's AP50."""
    fig = _figure(figsize=(7, 5.5))
    ax = fig.subplots()
    recall = RECALL_POINTS.numpy()
    curves = metrics.pr_curves
    few = len(curves) <= 20  # a legend of 80 classes hides the plot
    for k, (name, row) in enumerate(metrics.classes.items()):
        if row.instances:
            label = f"{name} {row.ap50:.3f}" if few else None
            ax.plot(recall, curves[k].numpy(), color=colour(k), linewidth=1, label=label)
    present = curves[~curves.isnan().any(1)]
    ax.plot(
        recall, present.mean(0).numpy(), color="black", linewidth=2.5, label=f"all {metrics.map50:.3f} mAP@.5"
    )
    ax.set(
        xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="precision-recall (IoU 0.5)"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(1.01, 0))
    return _save(fig, path)


def plot_val_predictions(
    images: Tensor,
    predictions: Sequence[Tensor],
    truth: Sequence[Tensor],
    names: Sequence[str],
    path: Path,
    count: int = 16,
    conf: float = 0.25,
) -> Path:
    """A grid of validation images (N, 3, H, W) uint8 with their true boxes (white, dashed) and
    predicted ones scoring at least `conf` (class colour, "name score"); boxes in the images' pixels."""
    from matplotlib.patches import Rectangle

    count = min(count, len(images))
    cols = min(4, count) or 1
    rows = max(1, -(-count // cols))
    fig = _figure(figsize=(cols * 2.6, rows * 2.6 + 0.3), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= count:
            continue
        ax.imshow(images[k].permute(1, 2, 0).cpu().numpy())
        for _, x1, y1, x2, y2 in truth[k].tolist():
            for ec, lw, ls in (("black", 2.2, "-"), (TRUTH_COLOUR, 1.2, "--")):  # reads on any background
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=ec, lw=lw, ls=ls))
        for x1, y1, x2, y2, score, cls in predictions[k][predictions[k][:, 4] >= conf].tolist():
            c = colour(int(cls))
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=c, lw=1.5))
            ax.text(x1, y1, f"{names[int(cls)]} {score:.2f}", fontsize=6, color="white", va="bottom",
                    bbox={"facecolor": c, "edgecolor": "none", "pad": 0.8, "alpha": 0.85})  # fmt: skip
    fig.suptitle(f"validation: predicted (score >= {conf:g}), true: dashed white", fontsize=10)
    return _save(fig, path)


def plot_labels(truth: Sequence[Tensor], names: Sequence[str], path: Path) -> Path:
    """The label distribution: boxes per class, and box width against height (pixels)."""
    rows = torch.cat([t.reshape(-1, 5).cpu() for t in truth]) if truth else torch.zeros(0, 5)
    classes = rows[:, 0].long()
    counts = torch.bincount(classes, minlength=len(names))[: len(names)]
    fig = _figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2, width_ratios=[1.4, 1])
    bars = left.bar(range(len(names)), counts.tolist(), color=[colour(k) for k in range(len(names))])
    if len(names) <= 30:
        left.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        left.bar_label(bars, fontsize=7)
    left.set(ylabel="boxes", title=f"boxes per class ({len(rows)} in {len(truth)} images)")
    w, h = rows[:, 3] - rows[:, 1], rows[:, 4] - rows[:, 2]
    right.scatter(w.numpy(), h.numpy(), s=8, alpha=0.4, c=[colour(int(c)) for c in classes], linewidths=0)
    right.set(xlabel="width (px)", ylabel="height (px)", title="box sizes")
    right.set_aspect("equal", adjustable="datalim")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return _save(fig, path)


LOSS_TITLES = {"box": "box loss", "cls": "class loss", "dfl": "DFL loss", "obj": "objectness loss"}


def plot_results(history: Sequence[dict[str, Any]], path: Path) -> Path:
    """Training curves of a detection run from its metrics rows (DETECTION_COLUMNS): the head's
    three losses (train and val: box, cls, dfl for Detect; box, obj, cls for [yolo]), the
    learning rate, precision, recall, mAP@.5 and mAP@[.5:.95]."""
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    fig = _figure(figsize=(14, 6))
    axes = fig.subplots(2, 4)
    parts = [k.removeprefix("train_") for k in (history[0] if history else {}) if k.startswith("train_")]
    losses = [
        (LOSS_TITLES.get(p, f"{p} loss"), [f"train_{p}", f"val_{p}"]) for p in parts or ["box", "cls", "dfl"]
    ]
    panels = [
        *(losses + [("", [])] * 3)[:3],
        ("learning rate", ["lr"]),
        ("precision", ["precision"]),
        ("recall", ["recall"]),
        ("mAP@.5", ["map50"]),
        ("mAP@[.5:.95]", ["map50_95"]),
    ]
    for ax, (title, keys) in zip(axes.flat, panels, strict=True):
        for key in keys:
            points = [
                (e, row[key]) for e, row in zip(epochs, history, strict=True) if row.get(key) is not None
            ]
            if points:
                x, y = zip(*points, strict=True)
                ax.plot(x, y, "-o", markersize=3, label=key.split("_")[0] if len(keys) > 1 else None)
        ax.set(title=title, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
        ax.grid(alpha=0.3)
        if len(keys) > 1 and ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
