"""The end of a detection run: the final model on val, its reports and pictures, then
finished.json (written last, as for classification: a run killed while finishing is completed by
`--resume`, never taken for complete)."""

from __future__ import annotations

import json
from typing import Any

import torch

from darkforge.training.detection.fit import DetectionTrainer, truth_of, validate
from darkforge.training.detection.metrics import (
    plot_labels,
    plot_pr_curves,
    plot_results,
    plot_val_predictions,
    write_report,
)
from darkforge.training.finish import RECORD, WEIGHTS

REPORTS = ["report.txt", "report.json", "results.png", "pr_curve.png", "val_predictions.png", "labels.png"]


def finish(t: DetectionTrainer) -> dict[str, Any]:
    if t.last_metrics is None:  # a resume of a complete run that lost its reports
        validate(t)
    metrics = t.last_metrics
    assert metrics is not None
    extra = {
        "task": "detect",
        "best_picked_on": "validation split",
        "best": t.best,
        "best_epoch": t.best_epoch,
        "final_epoch": len(t.history),
        "stopped_early": t.stopped,
        "val_images": len(t.val_split),
    }
    write_report(t.run.path, metrics, **extra)
    plot_results(t.history, t.run.file("results.png"))
    plot_pr_curves(metrics, t.run.file("pr_curve.png"))
    sample = torch.randperm(len(t.val_split), generator=torch.Generator().manual_seed(0))[:16]
    images = t.val_split.gather(sample).cpu()
    truth = truth_of(t.val_split)
    plot_val_predictions(
        images,
        [t.last_predictions[i] for i in sample.tolist()],
        [truth[i] for i in sample.tolist()],
        t.data.names,
        t.run.file("val_predictions.png"),
    )
    plot_labels(truth_of(t.train_split), t.data.names, t.run.file("labels.png"))
    record = {"final_epoch": t.recipe.epochs, "epochs_trained": len(t.history), "files": REPORTS + WEIGHTS}
    t.run.write_text(RECORD, json.dumps(record, indent=2) + "\n")
    summary: dict[str, Any] = json.loads(t.run.file("report.json").read_text())
    return summary
