"""Anchor points, the DFL box coding and decoding of Detect maps, padding of targets."""

from __future__ import annotations

import pytest
import torch

from darkforge.errors import DataError
from darkforge.training.detection.loss import (
    bbox2dist,
    decode_detect,
    dfl_expectation,
    dist2bbox,
    make_anchors,
    pad_targets,
)


def test_anchor_counts_and_cell_centres():
    points, stride = make_anchors([(8, 8), (4, 4), (2, 2)], [8, 16, 32])
    assert points.shape == (84, 2) and stride.shape == (84,)
    assert points[0].tolist() == [4.0, 4.0] and points[1].tolist() == [12.0, 4.0]  # row-major: x first
    assert points[8].tolist() == [4.0, 12.0]
    assert points[64].tolist() == [8.0, 8.0] and stride[64] == 16
    assert points[-1].tolist() == [48.0, 48.0] and stride[-1] == 32
    assert stride.tolist().count(8.0) == 64
    assert make_anchors([(80, 80), (40, 40), (20, 20)], [8, 16, 32])[0].shape == (8400, 2)


def test_box_coding_round_trips_and_clamps():
    points = torch.tensor([[4.0, 4.0], [10.0, 10.0]])
    boxes = torch.tensor([[1.0, 2.0, 7.0, 9.0], [0.0, 0.0, 40.0, 11.0]])
    dist = bbox2dist(points, boxes, reg_max=16)
    assert dist[0].tolist() == [3.0, 2.0, 3.0, 5.0]
    assert torch.allclose(dist2bbox(points, dist)[0], boxes[0])
    # the right side 30 bins away is clamped to just below the last bin (15 - 0.01)
    assert dist[1].tolist() == pytest.approx([10.0, 10.0, 14.99, 1.0])
    # a point outside its box codes distance 0, not a negative one
    assert bbox2dist(torch.tensor([[50.0, 50.0]]), boxes[:1], 16).min() == 0


def test_dfl_expectation():
    reg_max = 16
    uniform = torch.zeros(2, 4 * reg_max)
    assert dfl_expectation(uniform, reg_max).tolist() == [[7.5] * 4] * 2  # mean of 0..15
    peaked = torch.full((4, reg_max), -1e4)
    peaked[torch.arange(4), torch.tensor([0, 3, 9, 15])] = 0
    assert dfl_expectation(peaked.flatten()[None], reg_max).tolist() == [[0.0, 3.0, 9.0, 15.0]]
    half = torch.full((reg_max,), -1e4)
    half[[2, 3]] = 0  # equal mass on bins 2 and 3
    assert dfl_expectation(half.repeat(4)[None], reg_max)[0, 0] == pytest.approx(2.5)


def test_decode_detect_places_a_peaked_box():
    reg_max, nc = 16, 2
    maps = [torch.full((1, 4 * reg_max + nc, s, s), -1e4) for s in (8, 4, 2)]
    maps[0][0, :, :, :] = 0  # level 0 uniform (7.5 bins each side)
    # level 1, cell (row 2, col 1), anchor point (24, 40): l=1, t=2, r=3, b=0 bins of 16 px
    for side, bin_ in enumerate([1, 2, 3, 0]):
        maps[1][0, side * reg_max + bin_, 2, 1] = 0
    maps[1][0, 4 * reg_max + 1, 2, 1] = 2.0  # class 1 logit
    dec = decode_detect(maps, [8, 16, 32], reg_max)
    assert dec.shape == (1, 4 + nc, 84)
    a = 64 + 2 * 4 + 1
    # x1 = 24 - 16, y1 = 40 - 32, x2 = 24 + 48, y2 = 40 + 0
    assert dec[0, :4, a].tolist() == pytest.approx([40.0, 24.0, 64.0, 32.0])
    assert dec[0, 5, a] == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item())
    assert dec[0, :4, 0].tolist() == pytest.approx([4.0, 4.0, 120.0, 120.0])  # 15 bins × 8 px square


def test_pad_targets_groups_boxes_by_image():
    targets = torch.tensor([[2, 1, 0, 0, 5, 5], [0, 3, 1, 1, 2, 2], [2, 4, 6, 6, 9, 9], [2, 0, 1, 2, 3, 4.0]])
    gt = pad_targets(targets, batch=4)
    assert gt.boxes.shape == (4, 3, 4)
    assert gt.mask.tolist() == [[True, False, False], [False] * 3, [True] * 3, [False] * 3]
    assert gt.labels[2].tolist() == [1, 4, 0] and gt.labels[0, 0] == 3
    assert gt.boxes[2, 2].tolist() == [1, 2, 3, 4]
    empty = pad_targets(torch.zeros(0, 6), batch=2)
    assert empty.boxes.shape == (2, 0, 4) and empty.mask.shape == (2, 0)


def test_pad_targets_refuses_bad_rows():
    with pytest.raises(DataError, match=r"\(M, 6\) rows"):
        pad_targets(torch.zeros(3, 5), batch=1)
    with pytest.raises(DataError, match="image index 3 lies outside the batch of 2"):
        pad_targets(torch.tensor([[3, 0, 0, 0, 1, 1.0]]), batch=2)
