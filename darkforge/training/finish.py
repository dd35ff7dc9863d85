"""The end of a run: the final reports and plots, and the record of them.

`finished.json` is written last and names the epoch the reports describe, so a run killed (or out
of disk) while finishing is not taken for complete: `--resume` sees what is missing or stale and
writes it (`missing`), instead of answering "already complete" forever.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from darkforge.training import distributed, report
from darkforge.training.loop import Trainer, evaluate
from darkforge.training.rundir import RunDir
from darkforge.weights import checkpoint

RECORD = "finished.json"
REPORTS = ["report.txt", "report.json", "results.png", "confusion_matrix.png", "predictions.png"]
WEIGHTS = ["weights/best.pt", "weights/best.safetensors"]


def missing(run: RunDir, epochs: int, reports: Sequence[str] = REPORTS) -> list[str]:
    """The final files a complete run of `epochs` epochs lacks (all reports when they describe
    another epoch, e.g. before --epochs extended the run); `reports`: the task's."""
    absent = [name for name in WEIGHTS if not run.file(name).is_file()]
    try:
        record = json.loads(run.file(RECORD).read_text())
        current = isinstance(record, dict) and record.get("final_epoch") == epochs
    except (OSError, ValueError):
        current = False
    if not current:
        return [*absent, *reports]
    return [*absent, *(name for name in reports if not run.file(name).is_file())]


def restore_best(t: Trainer) -> str:
    """best.pt and best.safetensors hold the same weights: rewrite whichever is missing from the
    other; with both gone (deleted by hand), the final weights stand in, and the caller says so."""
    best, tensors = t.run.best, t.run.best.with_suffix(".safetensors")
    model: nn.Module
    if best.is_file() or tensors.is_file():
        model, _, _ = checkpoint.load_model(best if best.is_file() else tensors)
        source = "its twin"
    else:
        model, source = (
            t.eval_model,
            f"the final weights (epoch {len(t.history)}): the best epoch's were deleted",
        )
    if not tensors.is_file():
        checkpoint.save_safetensors(tensors, model, t.info)
    if not best.is_file():
        checkpoint.save(best, model, t.info)
    return source


def finish(t: Trainer) -> dict[str, Any]:
    """The final model on the test set: report.txt/json, results.png, confusion_matrix.png,
    predictions.png, then finished.json."""
    predictions = t.test_predictions  # the final model's, from its last epoch
    if predictions is None:
        _, _, predictions = evaluate(t, t.data.test)  # every rank takes part; rank 0 writes
    labels = t.data.test.labels.cpu()
    matrix = report.confusion(labels, predictions, len(t.data.classes))
    summary = report.class_report(matrix, t.data.classes)
    summary["best_picked_on"] = "validation split" if t.val_split is not None else "test set"
    # the two splits apart: `accuracy` and the classes above are the final model on test, once
    final = t.history[-1] if t.history else {}
    summary["test"] = {"images": len(labels), "accuracy": summary["accuracy"]}
    if t.val_split is not None:
        summary["val"] = {"images": len(t.val_split), "final_accuracy": final.get("val_acc"), "best": t.best}
    summary["best"] = t.best
    summary["best_epoch"] = t.best_epoch
    summary["final_epoch"] = len(t.history)
    summary["stopped_early"] = t.stopped
    if not distributed.is_main():
        return summary
    t.run.write_text("report.txt", report.report_text(summary))
    t.run.write_text("report.json", json.dumps(summary, indent=2) + "\n")
    report.plot_results(t.history, t.run.file("results.png"))
    report.plot_confusion(matrix, t.data.classes, t.run.file("confusion_matrix.png"))
    sample = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[:32]  # every class
    images = t.data.test.images[sample.to(t.device)].cpu()
    report.plot_predictions(
        images, labels[sample], predictions[sample], t.data.classes, t.run.file("predictions.png")
    )
    record = {"final_epoch": t.recipe.epochs, "epochs_trained": len(t.history), "files": REPORTS + WEIGHTS}
    t.run.write_text(RECORD, json.dumps(record, indent=2) + "\n")
    return summary
