"""A detector measured on one split of a detection set, in the original images' pixels: what
`darkforge eval` runs for a detector (docs/detection.md, "eval, predict, export").

Training validates in letterboxed input pixels (fit.validate); here predictions and true boxes are
both mapped back through each image's letterbox first, as COCO's own evaluation of a result file
would see them. The two agree except where a box overhangs an image into its padding.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from darkforge.errors import DataError, UsageError
from darkforge.training.data.datasets import default_budget
from darkforge.training.detection.data import DetectionBatches, DetectionSplit, read_detection_labels
from darkforge.training.detection.data.split import letterboxed_targets
from darkforge.training.detection.data.store import place_pixels
from darkforge.training.detection.head import Head
from darkforge.training.detection.metrics import DetectionMetrics, evaluate, postprocess
from darkforge.training.detection.predict import decoded_of

# COCO's evaluation settings (as training validates): every box above 0.001, NMS at IoU 0.7
CONF, IOU, MAX_DET = 0.001, 0.7, 300
SPLITS = ("val", "test", "train")


def load_split(
    source: str | os.PathLike[str], size: int, split: str | None = None, cache: str = "auto"
) -> tuple[list[str], str, DetectionSplit]:
    """(names, the split's name, the split letterboxed to size×size) of a data.yaml or COCO json;
    `split` None: val, else test, else (the set has neither) refused. Only that split is decoded."""
    names, labels = read_detection_labels(source)
    if split is None:
        split = next((s for s in ("val", "test") if s in labels), None)
        if split is None:
            raise DataError(
                f"{source}: no val or test split to evaluate on", "add `val:` to it, or give --split train"
            )
    if split not in labels:
        raise UsageError(
            f"--split {split}: {source} has no {split} split", f"it has {', '.join(sorted(labels))}"
        )
    chosen = labels[split]
    root = Path(os.path.commonpath([str(f.parent) for f in chosen.files]))
    pixels, _ = place_pixels(
        root, {split: chosen}, size, cache, default_budget(), min(4, os.cpu_count() or 1)
    )
    boxes, scale, pad = letterboxed_targets(chosen, size)
    return (
        names,
        split,
        DetectionSplit(
            pixels[split],
            boxes,
            chosen.classes,
            chosen.offsets,
            chosen.sizes,
            scale,
            pad,
            chosen.files,  # type: ignore[arg-type]
        ),
    )


def original_truth(split: DetectionSplit) -> list[Tensor]:
    """Per image (M, 5): class, x1, y1, x2, y2 in the original image's pixels."""
    boxes = split.original_boxes()
    rows = torch.cat([split.classes[:, None].float(), boxes], 1)
    return [rows[split.offsets[i] : split.offsets[i + 1]] for i in range(len(split))]


def predict_split(
    model: nn.Module, head: Head, split: DetectionSplit, conf: float = CONF, iou: float = IOU,
    max_det: int = MAX_DET, batch: int = 64,
) -> tuple[list[Tensor], list[Tensor]]:  # fmt: skip
    """Every image's detections (K, 6) in its original pixels, after class-aware NMS and after
    class-agnostic NMS (what class-agnostic numbers score), from one forward pass."""
    device = next(model.parameters()).device
    model.eval()
    found: list[Tensor] = []
    anyclass: list[Tensor] = []
    for x, _ in DetectionBatches(split, batch, device=device).epoch(0, mosaic=False):
        decoded = decoded_of(model, head, x)
        found += [d.cpu() for d in postprocess(decoded, conf, iou, max_det)]
        anyclass += [d.cpu() for d in postprocess(decoded, conf, iou, max_det, agnostic=True)]

    def original(dets: list[Tensor]) -> list[Tensor]:
        return [torch.cat([split.to_original(d[:, :4], i), d[:, 4:]], 1) for i, d in enumerate(dets)]

    return original(found), original(anyclass)


def evaluate_split(
    model: nn.Module, head: Head, split: DetectionSplit, names: list[str]
) -> tuple[DetectionMetrics, list[Tensor]]:
    """COCO metrics (pycocotools) of `model` on `split`, and the detections they count."""
    found, anyclass = predict_split(model, head, split)
    return evaluate(found, original_truth(split), names, anyclass=anyclass), found
