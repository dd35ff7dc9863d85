"""darkforge's boxes in COCO's dictionaries: the ground truth as a pycocotools COCO object built in
memory, detections as COCO result dicts, and the result JSON `predict` writes.

COCO boxes are [x, y, width, height] in the image's pixels. Inside evaluation, image i is id i + 1
and class c is category c + 1 (pycocotools takes an id of 0 for "unmatched" in places, so every
id is kept positive); a result file takes the caller's own ids."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from pycocotools.coco import COCO
from torch import Tensor

from darkforge.files import write_text


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """pycocotools prints its progress; library code must not print."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def xywh(boxes: Tensor) -> list[list[float]]:
    """(K, 4+) xyxy -> COCO's [x, y, w, h] lists."""
    b = boxes[:, :4].double()
    return torch.cat([b[:, :2], b[:, 2:] - b[:, :2]], 1).tolist()


def ground_truth(truth: Sequence[Tensor], names: Sequence[str]) -> COCO:
    """A COCO object of the true boxes: `truth[i]` is image i's (M, 5) class, x1, y1, x2, y2.
    Every image is listed, a background one too (its detections are false positives)."""
    annotations: list[dict[str, Any]] = []
    for i, rows in enumerate(truth):
        for cls, box in zip(rows[:, 0].long().tolist(), xywh(rows[:, 1:5]), strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,  # pycocotools reads an id of 0 as "no match"
                    "image_id": i + 1,
                    "category_id": cls + 1,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    coco = COCO()
    coco.dataset = {
        "images": [{"id": i + 1} for i in range(len(truth))],
        "categories": [{"id": c + 1, "name": name} for c, name in enumerate(names)],
        "annotations": annotations,
    }
    with quiet():
        coco.createIndex()
    return coco


def results(
    detections: Sequence[Tensor],
    image_ids: Sequence[Any] | None = None,
    category_ids: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """COCO result dicts of per-image detections (K, 6) x1, y1, x2, y2, score, class. Ids default
    to the evaluation's (image i -> i + 1, class c -> c + 1); pass a dataset's own ids (e.g. a
    COCO json's image and category ids) to write a file other tools read."""
    out: list[dict[str, Any]] = []
    for i, dets in enumerate(detections):
        image = i + 1 if image_ids is None else image_ids[i]
        classes = dets[:, 5].long().tolist()
        for box, score, cls in zip(xywh(dets), dets[:, 4].tolist(), classes, strict=True):
            category = cls + 1 if category_ids is None else category_ids[cls]
            out.append({"image_id": image, "category_id": category, "bbox": box, "score": score})
    return out


def load_results(truth: COCO, found: list[dict[str, Any]]) -> COCO:
    """The detections as a COCO object over the same images (loadRes; it cannot take an empty list)."""
    with quiet():
        if found:
            return truth.loadRes(found)
        empty = COCO()
        empty.dataset = {**truth.dataset, "annotations": []}
        empty.createIndex()
        return empty


def write_results(
    path: str | os.PathLike[str],
    detections: Sequence[Tensor],
    image_ids: Sequence[Any],
    category_ids: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """Write COCO result JSON (a list of {image_id, category_id, bbox [x, y, w, h], score}),
    atomically; boxes rounded to 1/1000 pixel, scores to 5 digits. Without `category_ids` the
    category is the class index itself (a YOLO txt dataset's ids). Returns what it wrote."""
    if category_ids is None:
        top = max((int(d[:, 5].max()) for d in detections if len(d)), default=-1)
        category_ids = range(top + 1)
    found = results(detections, image_ids, category_ids)
    for row in found:
        row["bbox"] = [round(v, 3) for v in row["bbox"]]
        row["score"] = round(row["score"], 5)
    write_text(path, json.dumps(found) + "\n")
    return found
