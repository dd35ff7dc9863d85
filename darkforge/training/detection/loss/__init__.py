"""Assignment and losses of detection heads (docs/detection.md, "Losses and assignment").

- anchor-free `Detect` heads: task-aligned assignment (assign), BCE + CIoU + DFL (detect_loss);
  anchors and the DFL box coding (anchors), decoding raw maps (decode);
- Darknet's anchor-based `[yolo]` heads: YOLOv3 matching, objectness/class BCE and CIoU
  (yolo_loss), their box geometry and decoding (yolo_heads), built from the layers (yolo_layers).
"""

from darkforge.training.detection.loss.anchors import bbox2dist, dfl_expectation, dist2bbox, make_anchors
from darkforge.training.detection.loss.assign import Assignment, TaskAlignedAssigner
from darkforge.training.detection.loss.decode import decode_detect, flatten_levels
from darkforge.training.detection.loss.detect_loss import DetectionLoss, dfl_loss
from darkforge.training.detection.loss.targets import PaddedTargets, pad_targets
from darkforge.training.detection.loss.yolo_heads import YoloHeads
from darkforge.training.detection.loss.yolo_layers import yolo_loss_from_layers
from darkforge.training.detection.loss.yolo_loss import YoloLoss

__all__ = [
    "Assignment",
    "DetectionLoss",
    "PaddedTargets",
    "TaskAlignedAssigner",
    "YoloHeads",
    "YoloLoss",
    "bbox2dist",
    "decode_detect",
    "dfl_expectation",
    "dfl_loss",
    "dist2bbox",
    "flatten_levels",
    "make_anchors",
    "pad_targets",
    "yolo_loss_from_layers",
]
