"""The task-aligned assigner on hand-built cases (64 px input, strides 8/16/32: 84 anchors)."""

from __future__ import annotations

import pytest
import torch

from darkforge.training.detection.loss import TaskAlignedAssigner, make_anchors, pad_targets

POINTS, _ = make_anchors([(8, 8), (4, 4), (2, 2)], [8, 16, 32])
NC = 3


def index(x: float, y: float, stride: int = 8) -> int:
    """The anchor whose point is (x, y) at that stride."""
    offset = {8: 0, 16: 64, 32: 80}[stride]
    side = 64 // stride
    return offset + int(y // stride) * side + int(x // stride)


def predictions(batch: int = 1, box=(100.0, 100.0, 110.0, 110.0), score: float = 0.5):
    """Every anchor predicting the same box (by default one outside the image) with one score."""
    scores = torch.full((batch, 84, NC), score)
    boxes = torch.tensor(box).repeat(batch, 84, 1)
    return scores, boxes


def assign(scores, boxes, targets, batch=1, **kw):
    return TaskAlignedAssigner(**kw)(
        scores, boxes, POINTS, pad_targets(torch.tensor(targets).reshape(-1, 6), batch)
    )


def test_anchors_inside_a_box_are_assigned_it_with_normalised_scores():
    scores, boxes = predictions()
    gt = [0.0, 0.0, 16.0, 16.0]
    inside = [index(4, 4), index(12, 4), index(4, 12), index(12, 12), index(8, 8, 16)]
    # their predictions overlap the box by IoU 1, 0.5625, 0.25, ... (boxes shrinking from (0, 0))
    for side, a in zip([16.0, 12.0, 8.0, 4.0, 2.0], inside, strict=True):
        boxes[0, a] = torch.tensor([0.0, 0.0, side, side])
    boxes[0, index(20, 4)] = torch.tensor(gt)  # outside the box: never a candidate, however good
    got = assign(scores, boxes, [[0, 2, *gt]])
    assert sorted(torch.nonzero(got.foreground[0]).flatten().tolist()) == sorted(inside)
    assert got.labels[0, inside].tolist() == [2] * 5
    assert got.boxes[0, inside[0]].tolist() == gt and got.gt_index[0, inside].tolist() == [0] * 5
    iou = torch.tensor([1.0, 0.5625, 0.25, 0.0625, 2 * 2 / 256])
    t = 0.5**0.5 * iou**6
    expected = t / t.max() * iou.max()  # TOOD's t-hat: the box's best anchor scores its best IoU
    assert got.scores[0, inside, 2] == pytest.approx(expected, rel=1e-5)
    assert got.scores[0, inside][:, :2].abs().sum() == 0 and got.scores[0, ~got.foreground[0]].sum() == 0


def test_an_anchor_inside_two_boxes_gets_the_one_it_overlaps_most():
    scores, boxes = predictions()
    box_a, box_b = [0.0, 0.0, 32.0, 32.0], [8.0, 0.0, 40.0, 32.0]
    shared = index(20, 12)  # inside both
    boxes[0, shared] = torch.tensor([9.0, 0.0, 40.0, 31.0])  # closer to b
    boxes[0, index(12, 12)] = torch.tensor(box_a)  # inside both too, predicting a exactly
    got = assign(scores, boxes, [[0, 0, *box_a], [0, 1, *box_b]])
    assert got.gt_index[0, shared] == 1 and got.labels[0, shared] == 1
    assert got.boxes[0, shared].tolist() == box_b
    assert got.gt_index[0, index(12, 12)] == 0 and got.labels[0, index(12, 12)] == 0
    assert got.scores[0, index(12, 12)].tolist() == pytest.approx([1.0, 0.0, 0.0])


def test_no_boxes_means_all_background():
    scores, boxes = predictions(batch=2)
    for targets in ([], [[1, 0, 0.0, 0.0, 30.0, 30.0]]):  # none at all; none in image 0
        got = assign(scores, boxes.clone(), targets, batch=2)
        assert not got.foreground[0].any() and got.scores[0].sum() == 0
        assert got.scores.shape == (2, 84, NC) and got.boxes.shape == (2, 84, 4)


def test_topk_limits_the_positives_to_the_best_aligned():
    scores, boxes = predictions()
    gt = [0.0, 0.0, 64.0, 64.0]  # every anchor point is inside
    boxes[:] = torch.tensor([0.0, 0.0, 32.0, 32.0])  # IoU 0.25 each
    best = [index(4, 4), index(52, 20), index(24, 24, 16), index(48, 48, 32)]
    for k, a in enumerate(best):
        boxes[0, a] = torch.tensor([0.0, 0.0, 64.0 - k, 64.0])
    assert assign(scores, boxes, [[0, 1, *gt]], topk=10).foreground.sum() == 10
    got = assign(scores, boxes, [[0, 1, *gt]], topk=3)
    assert sorted(torch.nonzero(got.foreground[0]).flatten().tolist()) == sorted(best[:3])


def test_the_class_score_of_the_boxs_class_weighs_in():
    scores, boxes = predictions()
    gt = [0.0, 0.0, 16.0, 16.0]
    a, b = index(4, 4), index(12, 12)
    boxes[0, [a, b]] = torch.tensor(gt)
    scores[0, a] = torch.tensor([0.9, 0.1, 0.1])  # confident, but of another class
    scores[0, b] = torch.tensor([0.1, 0.3, 0.1])
    got = assign(scores, boxes, [[0, 1, *gt]], topk=1)
    assert torch.nonzero(got.foreground[0]).flatten().tolist() == [b]


def test_a_batch_assigns_each_image_its_own_boxes():
    scores, boxes = predictions(batch=2)
    boxes[1, index(12, 12)] = torch.tensor([0.0, 0.0, 16.0, 16.0])
    got = assign(scores, boxes, [[1, 2, 0.0, 0.0, 16.0, 16.0]], batch=2, topk=1)
    assert not got.foreground[0].any()
    assert torch.nonzero(got.foreground[1]).flatten().tolist() == [index(12, 12)]


def test_assigning_a_padded_batch_equals_assigning_each_image_alone():
    g = torch.Generator().manual_seed(1)
    scores = torch.rand(3, 84, NC, generator=g)
    centres = torch.rand(3, 84, 2, generator=g) * 64
    sides = torch.rand(3, 84, 2, generator=g) * 30 + 4
    boxes = torch.cat([centres - sides / 2, centres + sides / 2], -1)
    rows = []
    for image, n in enumerate([1, 4, 2]):  # images padded to 4 boxes
        xy = torch.rand(n, 2, generator=g) * 40
        wh = torch.rand(n, 2, generator=g) * 20 + 6
        cls = torch.randint(0, NC, (n, 1), generator=g).float()
        rows.append(torch.cat([torch.full((n, 1), float(image)), cls, xy, xy + wh], 1))
    targets = torch.cat(rows)
    batched = assign(scores, boxes, targets.tolist(), batch=3)
    assert batched.foreground.sum() > 10
    for image, own in enumerate(rows):
        alone = assign(
            scores[image : image + 1], boxes[image : image + 1], [[0, *r[1:].tolist()] for r in own]
        )
        assert torch.equal(batched.foreground[image], alone.foreground[0])
        assert torch.equal(batched.labels[image], alone.labels[0])
        assert torch.equal(batched.boxes[image], alone.boxes[0])
        assert torch.allclose(batched.scores[image], alone.scores[0])
