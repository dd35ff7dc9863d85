"""Detection data: data.yaml and COCO json readers, label checks, letterboxed uint8 pixels with
boxes beside them (ram/disk/none, as classification), and batched box augmentation."""

from darkforge.training.detection.data.augment import BoxAugment, augment
from darkforge.training.detection.data.batches import DetectionBatches
from darkforge.training.detection.data.labels import Labels
from darkforge.training.detection.data.load import (
    DetectionData,
    is_detection_source,
    load_detection_data,
    read_detection_labels,
)
from darkforge.training.detection.data.split import DetectionSplit

__all__ = [
    "BoxAugment",
    "DetectionBatches",
    "DetectionData",
    "DetectionSplit",
    "Labels",
    "augment",
    "is_detection_source",
    "load_detection_data",
    "read_detection_labels",
]
