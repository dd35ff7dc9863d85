"""How a detector is measured and shown: NMS, COCO evaluation (pycocotools), result JSON, drawn
boxes and the run directory's detection reports (docs/detection.md, "Evaluation and reports")."""

from darkforge.training.detection.metrics.coco import results as coco_results
from darkforge.training.detection.metrics.coco import write_results
from darkforge.training.detection.metrics.draw import draw_detections
from darkforge.training.detection.metrics.evaluation import ClassMetrics, DetectionMetrics, evaluate
from darkforge.training.detection.metrics.plots import (
    DETECTION_COLUMNS,
    plot_labels,
    plot_pr_curves,
    plot_results,
    plot_val_predictions,
)
from darkforge.training.detection.metrics.postprocess import postprocess, targets_per_image, to_original
from darkforge.training.detection.metrics.report import report_dict, report_text, write_report

__all__ = [
    "DETECTION_COLUMNS",
    "ClassMetrics",
    "DetectionMetrics",
    "coco_results",
    "draw_detections",
    "evaluate",
    "plot_labels",
    "plot_pr_curves",
    "plot_results",
    "plot_val_predictions",
    "postprocess",
    "report_dict",
    "report_text",
    "targets_per_image",
    "to_original",
    "write_report",
    "write_results",
]
