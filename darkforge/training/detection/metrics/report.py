"""report.json and report.txt of a detection run: per-class AP@.5, AP@[.5:.95], precision and
recall, and the totals, from one DetectionMetrics."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from darkforge.files import write_text
from darkforge.training.detection.metrics.evaluation import DetectionMetrics


def report_dict(metrics: DetectionMetrics, **extra: Any) -> dict[str, Any]:
    """The JSON report: the metrics (NaN as null) and whatever the caller adds (best epoch, ...)."""
    data = metrics.to_dict()
    data["evaluator"] = "pycocotools COCOeval (bbox, area all)"
    data["precision_recall_at"] = "the confidence maximising the class-mean F1 at IoU 0.5"
    return {**data, **extra}


def report_text(metrics: DetectionMetrics) -> str:
    """A table, one row per class and one for all (the classes with true boxes), as Ultralytics'
    validation prints it: instances, P, R, mAP@.5, mAP@[.5:.95]."""
    width = max(12, *(len(n) for n in metrics.classes))
    head = f"{'class':>{width}}  {'instances':>9}  {'P':>6}  {'R':>6}  {'mAP50':>6}  {'mAP50-95':>8}"

    def line(name: str, instances: int, p: float, r: float, ap50: float, ap: float) -> str:
        scores = "  ".join(_cell(v, n) for v, n in ((p, 6), (r, 6), (ap50, 6), (ap, 8)))
        return f"{name:>{width}}  {instances:9d}  {scores}"

    total = sum(row.instances for row in metrics.classes.values())
    lines = [head, line("all", total, metrics.precision, metrics.recall, metrics.map50, metrics.map), ""]
    lines += [
        line(name, row.instances, row.precision, row.recall, row.ap50, row.ap)
        for name, row in metrics.classes.items()
    ]
    lines += [
        "",
        f"class-agnostic mAP50 {metrics.map50_agnostic:.4f}, mAP50-95 {metrics.map_agnostic:.4f}",
        f"P and R at confidence {metrics.confidence:.3f} (best mean F1 {metrics.f1:.4f})",
        f"{metrics.images} images, {metrics.detections} detections; evaluated by pycocotools COCOeval",
    ]
    return "\n".join(lines) + "\n"


def write_report(folder: Path, metrics: DetectionMetrics, **extra: Any) -> tuple[Path, Path]:
    """report.json and report.txt in `folder`, each written atomically."""
    paths = folder / "report.json", folder / "report.txt"
    write_text(paths[0], json.dumps(report_dict(metrics, **extra), indent=2) + "\n")
    write_text(paths[1], report_text(metrics))
    return paths


def _cell(value: float, width: int) -> str:
    return f"{'-':>{width}}" if math.isnan(value) else f"{value:{width}.4f}"
