"""COCO evaluation of detections by pycocotools' COCOeval (the reference implementation; nothing
here matches boxes or integrates curves by hand).

- mAP@[.5:.95], mAP@.5 and per-class AP are COCOeval's `eval['precision']` (IoU thresholds .5:.05:.95,
  101 recall points, area "all", `max_dets` detections per image and class), averaged over the
  classes that have true boxes, exactly as COCOeval's summarize() does.
- Class-agnostic mAP@.5 is a second COCOeval pass with `useCats = 0` (a box only has to be found).
- Precision and recall are read at one confidence for all classes: the one (on a grid of 1001, 0 to
  1) that maximises the mean over classes of F1 at IoU .5 (Ultralytics reports P and R this way).
  They are counted from COCOeval's own per-image matches (`evalImgs`: dtMatches, dtIgnore, gtIgnore),
  the same matches its AP integrates. A class without detections above that confidence has
  precision 0. Classes without true boxes have no AP, precision or recall (NaN) and are left out
  of every mean, as COCOeval leaves them out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from pycocotools.cocoeval import COCOeval
from torch import Tensor

from darkforge.errors import DataError
from darkforge.training.detection.metrics.coco import ground_truth, load_results, quiet, results

ALL_AREAS = [0**2, 1e5**2]  # COCOeval's "all" range; the small/medium/large ones are not computed
RECALL_POINTS = torch.linspace(0, 1, 101, dtype=torch.float64)  # COCOeval's recThrs
CONFIDENCES = np.linspace(0, 1, 1001)  # where precision and recall may be read


@dataclass
class ClassMetrics:
    instances: int  # true boxes of the class
    ap: float  # AP@[.5:.95]; NaN without true boxes
    ap50: float
    precision: float  # at DetectionMetrics.confidence, IoU .5
    recall: float


@dataclass
class DetectionMetrics:
    map: float  # mAP@[.5:.95]
    map50: float
    map50_agnostic: float  # classes ignored: every true box needs a box, of any class
    map_agnostic: float  # the same at IoU .5:.95
    precision: float  # mean over classes at `confidence`, IoU .5
    recall: float
    f1: float  # the mean F1 that picked `confidence`
    confidence: float
    classes: dict[str, ClassMetrics]
    pr_curves: Tensor  # (classes, 101) precision at IoU .5 at RECALL_POINTS; NaN rows: no true boxes
    images: int
    detections: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes None; the curves are left out (pr_curve.png draws them)."""
        data = asdict(self)
        del data["pr_curves"]
        return {key: _no_nan(value) for key, value in data.items()}


def evaluate(
    predictions: Sequence[Tensor],
    truth: Sequence[Tensor],
    names: Sequence[str],
    max_dets: int = 100,
    anyclass: Sequence[Tensor] | None = None,
) -> DetectionMetrics:
    """COCO metrics of `predictions[i]` (K, 6: x1, y1, x2, y2, score, class) against `truth[i]`
    (M, 5: class, x1, y1, x2, y2), image by image, both in the same (original) pixels. The
    class-agnostic pass scores `anyclass` when given (the detections of a class-agnostic NMS: one
    box per object found, whatever it is named), else the same predictions."""
    if len(predictions) != len(truth):
        raise ValueError(f"{len(predictions)} images of predictions for {len(truth)} of ground truth")
    coco_truth = ground_truth(truth, names)
    instances = np.bincount(
        [a["category_id"] - 1 for a in coco_truth.dataset["annotations"]], minlength=len(names)
    )
    if not instances.sum():
        raise DataError("no true boxes to evaluate against", "label boxes in the validation images")
    found = load_results(coco_truth, results(predictions))
    aware = _run(coco_truth, found, max_dets, use_cats=True)
    blind = found if anyclass is None else load_results(coco_truth, results(anyclass))
    agnostic = _run(coco_truth, blind, max_dets, use_cats=False)
    precision = torch.from_numpy(aware.eval["precision"][:, :, :, 0, 0])  # (T=10, R=101, K)
    precision[precision < 0] = math.nan  # -1: a class without true boxes
    point, p, r = _operating_point(aware, len(names))
    classes = {
        name: ClassMetrics(
            instances=int(instances[k]),
            ap=float(precision[:, :, k].mean()),
            ap50=float(precision[0, :, k].mean()),
            precision=float(p[k]),
            recall=float(r[k]),
        )
        for k, name in enumerate(names)
    }
    f1 = 2 * p * r / np.maximum(p + r, 1e-12)
    return DetectionMetrics(
        map=float(precision.nanmean()),
        map50=float(precision[0].nanmean()),
        map50_agnostic=float(agnostic.eval["precision"][0, :, 0, 0, 0].mean()),
        map_agnostic=float(agnostic.eval["precision"][:, :, 0, 0, 0].mean()),
        precision=float(np.nanmean(p)),
        recall=float(np.nanmean(r)),
        f1=float(np.nanmean(f1)),
        confidence=float(CONFIDENCES[point]),
        classes=classes,
        pr_curves=precision[0].T.contiguous(),
        images=len(truth),
        detections=sum(len(d) for d in predictions),
    )


def _run(truth: object, found: object, max_dets: int, use_cats: bool) -> COCOeval:
    ev = COCOeval(truth, found, "bbox")
    ev.params.areaRng, ev.params.areaRngLbl = [ALL_AREAS], ["all"]
    ev.params.maxDets = [max_dets]
    ev.params.useCats = int(use_cats)
    with quiet():
        ev.evaluate()
        ev.accumulate()
    return ev


def _operating_point(ev: COCOeval, classes: int) -> tuple[int, np.ndarray, np.ndarray]:
    """The confidence index maximising mean F1 at IoU .5 (the highest such confidence on a tie),
    and per-class precision and recall there; NaN for classes without true boxes."""
    images = len(ev.params.imgIds)
    p = np.full((classes, len(CONFIDENCES)), math.nan)
    r = np.full_like(p, math.nan)
    for k in range(classes):
        # evalImgs is ordered class, area range (one here), image
        rows = [e for e in ev.evalImgs[k * images : (k + 1) * images] if e is not None]
        true = sum(int((e["gtIgnore"] == 0).sum()) for e in rows)
        if not true:
            continue
        scores = np.concatenate([e["dtScores"] for e in rows])
        hit = np.concatenate([e["dtMatches"][0] > 0 for e in rows])  # the matched true box's id, 0: none
        kept = np.concatenate([e["dtIgnore"][0] == 0 for e in rows])
        scores, hit = scores[kept], hit[kept]
        order = np.argsort(-scores, kind="mergesort")
        hits = np.concatenate([[0], np.cumsum(hit[order])])  # true positives among the n best
        n = np.searchsorted(-scores[order], -CONFIDENCES, side="right")  # detections scoring >= c
        p[k] = np.where(n > 0, hits[n] / np.maximum(n, 1), 0.0)
        r[k] = hits[n] / true
    f1 = np.nanmean(2 * p * r / np.maximum(p + r, 1e-12), axis=0)  # (confidences,)
    point = len(f1) - 1 - int(np.argmax(f1[::-1]))
    return point, p[:, point], r[:, point]


def _no_nan(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    return value
