"""COCO evaluation against pycocotools' COCOeval run directly, and against cases worked out by hand."""

from __future__ import annotations

import contextlib
import io
import json
import math
import tarfile

import pytest
import torch
from conftest import SHARED
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from darkforge.errors import DataError
from darkforge.training.detection.metrics.coco import write_results
from darkforge.training.detection.metrics.evaluation import evaluate

NAMES = ["cat", "dog", "ship"]


def boxes(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, len(rows[0]) if rows else 5)


def scene(images: int = 6, seed: int = 0) -> list[torch.Tensor]:
    """Per image 1-3 true boxes (class, x1, y1, x2, y2), 20-40 px, in a 200x200 image."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(images):
        n = int(torch.randint(1, 4, (), generator=g))
        xy = torch.rand(n, 2, generator=g) * 150
        wh = 20 + torch.rand(n, 2, generator=g) * 20
        cls = torch.randint(0, 2, (n, 1), generator=g).float()  # classes 0 and 1; "ship" has none
        out.append(torch.cat([cls, xy, xy + wh], 1))
    return out


def as_predictions(truth: list[torch.Tensor], dx: float = 0.0, score: float = 0.9) -> list[torch.Tensor]:
    out = []
    for t in truth:
        b = t[:, 1:5] + torch.tensor([dx, 0, dx, 0])
        out.append(torch.cat([b, torch.full((len(t), 1), score), t[:, :1]], 1))
    return out


def test_perfect_predictions_score_one(capsys):
    truth = scene()
    m = evaluate(as_predictions(truth), truth, NAMES)
    assert capsys.readouterr().out == ""  # pycocotools' progress lines are swallowed
    assert (m.map, m.map50, m.map50_agnostic) == (1.0, 1.0, 1.0)
    assert (m.precision, m.recall) == (1.0, 1.0)
    assert m.classes["cat"].ap == 1.0 and m.classes["dog"].ap50 == 1.0
    # a class without true boxes has no AP (COCOeval's -1), and is left out of the means
    assert math.isnan(m.classes["ship"].ap) and m.classes["ship"].instances == 0
    assert m.to_dict()["classes"]["ship"]["ap"] is None
    assert m.images == 6 and m.detections == sum(len(t) for t in truth)


@pytest.mark.parametrize(
    ("dx", "iou", "expected"),
    [
        (4.6, 15.4 / 24.6, 0.3),  # IoU .626: a match at .50, .55, .60 -> 3 of 10 thresholds
        (5.4, 14.6 / 25.4, 0.2),  # IoU .575: at .50 and .55
        (7.0, 13 / 27, 0.0),  # IoU .48: no threshold
    ],
)
def test_boxes_shifted_equally_drop_map_by_the_thresholds_they_miss(dx, iou, expected):
    truth = [boxes([[0, 10, 10, 30, 30], [1, 100, 50, 120, 70]]), boxes([[0, 40, 40, 60, 60]])]
    m = evaluate(as_predictions(truth, dx), truth, NAMES)
    assert m.map == pytest.approx(expected, abs=1e-12)
    assert m.map50 == (1.0 if iou >= 0.5 else 0.0)


def test_a_class_with_no_predictions_gets_ap_zero():
    truth = scene()
    predictions = [p[p[:, 5] == 0] for p in as_predictions(truth)]  # only the cats found
    m = evaluate(predictions, truth, NAMES)
    assert m.classes["dog"].ap == 0.0 and m.classes["dog"].recall == 0.0
    assert m.classes["dog"].precision == 0.0 and m.classes["cat"].ap == 1.0
    assert m.map == pytest.approx(0.5)  # mean over cat and dog; ship has no true boxes


def test_no_predictions_at_all_score_zero():
    truth = scene()
    m = evaluate([torch.zeros(0, 6) for _ in truth], truth, NAMES)
    assert (m.map, m.map50, m.map50_agnostic, m.precision, m.recall) == (0, 0, 0, 0, 0)


def test_swapped_classes_are_found_class_agnostically_only():
    truth = scene()
    swapped = as_predictions(truth)
    for p in swapped:
        p[:, 5] = 1 - p[:, 5]
    m = evaluate(swapped, truth, NAMES)
    assert (m.map50, m.map50_agnostic) == (0.0, 1.0)


def test_precision_and_recall_at_the_best_f1_confidence():
    # 4 cats; 3 found (scores .9 .8 .75), false boxes at .6 and .5, the 4th cat at .25: the best
    # F1 keeps the first three (P 1, R 3/4: F1 .857; all five: P 4/6, R 1, F1 .8) and is read at
    # the highest confidence that keeps them (.75; scores exact in float32)
    truth = [boxes([[0, 0, 0, 10, 10], [0, 20, 0, 30, 10], [0, 40, 0, 50, 10], [0, 60, 0, 70, 10]])]
    found = boxes(
        [
            [0, 0, 10, 10, 0.9, 0],
            [20, 0, 30, 10, 0.8, 0],
            [40, 0, 50, 10, 0.75, 0],
            [80, 80, 90, 90, 0.6, 0],
            [80, 0, 90, 10, 0.5, 0],
            [60, 0, 70, 10, 0.25, 0],
        ]
    )
    m = evaluate([found], truth, NAMES)
    assert (m.precision, m.recall, m.confidence) == (1.0, 0.75, 0.75)
    assert m.f1 == pytest.approx(2 * 0.75 / 1.75)


def _cocoeval(truth, predictions, use_cats=1):
    """COCOeval with its defaults on COCO dicts built here, independently of darkforge's (other ids)."""

    def xywh(b):
        return [b[0], b[1], b[2] - b[0], b[3] - b[1]]

    anns = []
    for i, t in enumerate(truth):
        for r in t.tolist():
            box = xywh(r[1:])
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": 100 + i,
                    "category_id": 10 * (int(r[0]) + 1),
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    found = [
        {"image_id": 100 + i, "category_id": 10 * (int(r[5]) + 1), "bbox": xywh(r[:4]), "score": r[4]}
        for i, p in enumerate(predictions)
        for r in p.tolist()
    ]
    gt = COCO()
    gt.dataset = {
        "images": [{"id": 100 + i} for i in range(len(truth))],
        "categories": [{"id": 10 * (c + 1)} for c in range(len(NAMES))],
        "annotations": anns,
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(found), "bbox")
        ev.params.useCats = use_cats
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def test_equals_cocoeval_on_noisy_predictions():
    truth = scene(images=20, seed=3)
    g = torch.Generator().manual_seed(4)
    predictions = []
    for p in as_predictions(truth):
        p[:, :4] += torch.randn(len(p), 4, generator=g) * 3  # IoUs spread over the thresholds
        p[:, 4] = torch.rand(len(p), generator=g)
        p[:, 5] = torch.where(torch.rand(len(p), generator=g) < 0.2, 1 - p[:, 5], p[:, 5])
        junk = torch.rand(3, 6, generator=g) * torch.tensor([150, 150, 0, 0, 1, 0])
        junk[:, 2:4] = junk[:, :2] + 25
        predictions.append(torch.cat([p, junk]))
    m = evaluate(predictions, truth, NAMES)
    reference = _cocoeval(truth, predictions)
    assert m.map == pytest.approx(reference.stats[0], abs=1e-12)
    assert m.map50 == pytest.approx(reference.stats[1], abs=1e-12)
    assert 0.1 < m.map < m.map50 < m.map50_agnostic < 0.9  # a real spread, not a degenerate case
    precision = reference.eval["precision"][:, :, :, 0, 2]  # area all, 100 detections
    for k, name in enumerate(NAMES[:2]):
        assert m.classes[name].ap == pytest.approx(precision[:, :, k].mean(), abs=1e-12)
        assert m.classes[name].ap50 == pytest.approx(precision[0, :, k].mean(), abs=1e-12)
    assert m.pr_curves[0].tolist() == pytest.approx(precision[0, :, 0].tolist(), abs=1e-12)
    assert m.map50_agnostic == pytest.approx(_cocoeval(truth, predictions, use_cats=0).stats[1], abs=1e-12)


def test_background_images_count_their_false_positives():
    truth = [boxes([[0, 0, 0, 10, 10]]), torch.zeros(0, 5)]
    found = [boxes([[0, 0, 10, 10, 0.5, 0]]), boxes([[0, 0, 10, 10, 0.9, 0]])]
    m = evaluate(found, truth, NAMES)
    assert m.map50 == pytest.approx(_cocoeval(truth, found).stats[1])
    assert m.map50 == pytest.approx(0.5, abs=0.01)  # the false box outranks the true one


def test_no_true_boxes_at_all_is_a_data_error():
    with pytest.raises(DataError, match="no true boxes"):
        evaluate([torch.zeros(0, 6)], [torch.zeros(0, 5)], NAMES)


def test_result_json_is_coco_xywh_in_the_callers_ids(tmp_path):
    dets = [boxes([[10, 20, 40, 60, 0.987654321, 2]]), torch.zeros(0, 6)]
    path = tmp_path / "predictions.json"
    write_results(path, dets, image_ids=[7, 9])
    assert json.loads(path.read_text()) == [
        {"image_id": 7, "category_id": 2, "bbox": [10.0, 20.0, 30.0, 40.0], "score": 0.98765}
    ]
    write_results(path, dets, image_ids=["a", "b"], category_ids=[1, 3, 18])  # a COCO json's ids
    (row,) = json.loads(path.read_text())
    assert (row["image_id"], row["category_id"]) == ("a", 18)
    gt = COCO()  # what other tools do with the file: pycocotools reads it
    gt.dataset = {"images": [{"id": "a"}], "categories": [{"id": 18}], "annotations": []}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        assert gt.loadRes(str(path)).loadAnns(1)[0]["area"] == pytest.approx(1200)


CIFAR_DET = SHARED / "datasets" / "cifar-det-64.tar.gz"


def cifar_det_val(archive):
    """The shared set's val labels, read straight from the archive: YOLO txt rows per image, and
    the COCO json of the same boxes."""
    labels, coco = {}, None
    with tarfile.open(archive) as tar:
        for member in tar:
            name = member.name
            if name.startswith("cifar-det-64/val/labels/") and name.endswith(".txt"):
                labels[name.rsplit("/", 1)[1][:-4]] = tar.extractfile(member).read().decode()
            elif name == "cifar-det-64/val/annotations.json":
                coco = json.loads(tar.extractfile(member).read())
    return labels, coco


@pytest.mark.skipif(not CIFAR_DET.is_file(), reason="../shared/datasets/cifar-det-64.tar.gz is not here")
def test_equals_cocoeval_on_the_shared_sets_own_coco_json(tmp_path):
    labels, coco = cifar_det_val(CIFAR_DET)
    names = [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])]
    stems = sorted(labels)
    truth = []  # from the YOLO txt: class cx cy w h, normalised to the 64-pixel canvas
    for stem in stems:
        rows = torch.tensor(
            [[float(v) for v in line.split()] for line in labels[stem].splitlines() if line.strip()]
        )
        c, cx, cy, w, h = rows.reshape(-1, 5).T
        truth.append(
            torch.stack([c, (cx - w / 2) * 64, (cy - h / 2) * 64, (cx + w / 2) * 64, (cy + h / 2) * 64], 1)
        )
    g = torch.Generator().manual_seed(0)
    predictions = []
    for t in truth:  # jittered, one in four misnamed, scores at random
        p = torch.cat(
            [t[:, 1:5] + torch.randn(len(t), 4, generator=g), torch.rand(len(t), 1, generator=g), t[:, :1]], 1
        )
        p[:, 5] = torch.where(torch.rand(len(t), generator=g) < 0.25, (p[:, 5] + 1) % 10, p[:, 5])
        predictions.append(p)
    m = evaluate(predictions, truth, names)
    # the reference: COCOeval with its defaults on the file's own COCO json and a result file in its ids
    ids = {im["file_name"].rsplit("/", 1)[1][:-4]: im["id"] for im in coco["images"]}
    path = tmp_path / "predictions.json"
    write_results(path, predictions, [ids[s] for s in stems], [c["id"] for c in coco["categories"]])
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = coco
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(str(path)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert len(truth) == 1000 and sum(len(t) for t in truth) == 1944
    assert 0.3 < m.map < 0.9
    assert m.map == pytest.approx(
        ev.stats[0], abs=1e-9
    )  # 0.4227: the file rounds to 1/1000 px, no match moves
    assert m.map50 == pytest.approx(ev.stats[1], abs=1e-9)


def test_class_agnostic_numbers_score_the_class_agnostic_detections():
    """Class-aware NMS keeps one box per class on an object; scored without classes, the
    duplicates are false positives. Class-agnostic mAP scores agnostic NMS's boxes instead."""
    truth = [boxes([[0, 10, 10, 50, 50]]), boxes([[1, 100, 100, 140, 140]])]
    aware = [
        boxes([[10, 10, 50, 50, 0.9, 0], [10, 10, 50, 50, 0.8, 1]]),  # the object, and a second name for it
        boxes([[100, 100, 140, 140, 0.5, 1]]),
    ]
    blind = [boxes([[10, 10, 50, 50, 0.9, 0]]), boxes([[100, 100, 140, 140, 0.5, 1]])]
    duplicated = evaluate(aware, truth, NAMES)
    assert duplicated.map50_agnostic < 1.0  # the 0.8 duplicate outranks the second object
    m = evaluate(aware, truth, NAMES, anyclass=blind)
    assert (m.map50_agnostic, m.map_agnostic) == (1.0, 1.0) and m.map50 == duplicated.map50
