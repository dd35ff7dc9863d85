"""YoloLoss for Darknet's [yolo] heads: YOLOv3 matching, the ignore rule, decoding against
Darknet's own layer, and a real optimisation of free head maps toward two boxes."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import batched_nms, box_convert, box_iou

from darkforge.darknet import layers as specs
from darkforge.darknet.modules import Yolo as DarknetYolo
from darkforge.errors import DataError
from darkforge.training.detection.loss import YoloLoss

NC = 3
# yolov3-tiny.cfg's anchors and masks: head 0 (stride 32 at 64 px, 2×2) the big three, head 1 (4×4)
ANCHORS = [(10, 14), (23, 27), (37, 58), (81, 82), (135, 169), (344, 319)]
MASKS = [[3, 4, 5], [0, 1, 2]]
TARGETS = torch.tensor([[0, 1, 8.0, 10.0, 30.0, 40.0], [0, 2, 30.0, 20.0, 60.0, 50.0]])


def zero_maps(batch: int = 1) -> list[torch.Tensor]:
    return [torch.zeros(batch, 3 * (5 + NC), s, s, requires_grad=True) for s in (2, 4)]


def per_anchor(grad: torch.Tensor) -> torch.Tensor:
    """(B, 3·(5 + nc), H, W) -> (B, 3, 5 + nc, H, W)."""
    return grad.view(grad.shape[0], 3, 5 + NC, *grad.shape[2:])


def test_a_box_trains_the_best_shaped_anchor_in_the_cell_of_its_centre():
    raw = zero_maps()
    # 30×60 centred at (24, 40): best shape (37, 58) = anchor 2, head 1 (stride 16), row 2, col 1
    box = torch.tensor([[0, 1, 9.0, 10.0, 39.0, 70.0]])
    total, parts = YoloLoss(NC, ANCHORS, MASKS)(raw, box, image_size=64)
    total.backward()
    g1 = per_anchor(raw[1].grad)[0]
    obj = g1[:, 4]
    assert obj[2, 2, 1] < 0  # the matched prediction: objectness pushed up
    assert (obj > 0).sum() == 3 * 16 - 1  # every other (none overlaps the box by > 0.7 at tw = 0)
    others = torch.ones(3, 4, 4, dtype=torch.bool)
    others[2, 2, 1] = False
    assert g1[:, :4].abs().sum(1)[others].sum() == 0 and g1[2, :4, 2, 1].abs().sum() > 0  # box
    assert g1[:, 5:].abs().sum(1)[others].sum() == 0  # classes learn only at the match
    assert g1[2, 5 + 1, 2, 1] < 0 and g1[2, 5, 2, 1] > 0 and g1[2, 5 + 2, 2, 1] > 0
    g0 = per_anchor(raw[0].grad)[0]
    assert (g0[:, 4] > 0).all() and g0[:, :4].abs().sum() == 0  # head 0: background only
    assert set(parts) == {"box", "obj", "cls"} and total.item() == pytest.approx(
        sum(parts.values()), rel=1e-6
    )


def test_a_large_box_goes_to_the_coarse_head():
    raw = zero_maps()
    box = torch.tensor([[0, 0, 0.0, 0.0, 60.0, 64.0]])  # 60×64: best shape (81, 82) = anchor 3, head 0
    YoloLoss(NC, ANCHORS, MASKS)(raw, box, image_size=64)[0].backward()
    obj0 = per_anchor(raw[0].grad)[0, :, 4]
    assert obj0[0, 1, 0] < 0 and (obj0 < 0).sum() == 1  # centre (30, 32): row 1, col 0 of the 2×2 map
    assert (per_anchor(raw[1].grad)[0, :, 4] >= 0).all()


def test_predictions_overlapping_a_box_by_more_than_ignore_thresh_learn_no_objectness():
    raw = zero_maps()
    with torch.no_grad():  # head 0, anchor 0 (81×82), cell (0, 0): decoded box = the box exactly
        m = per_anchor(raw[0])
        m[0, 0, 2, 0, 0], m[0, 0, 3, 0, 0] = math.log(30 / 81), math.log(60 / 82)
    box = torch.tensor([[0, 1, 1.0, -14.0, 31.0, 46.0]])  # 30×60 centred at (16, 16)
    for thresh, ignored in ((0.7, True), (1.0, False)):
        raw[0].grad = None
        YoloLoss(NC, ANCHORS, MASKS, ignore_thresh=thresh)(raw, box, image_size=64)[0].backward()
        obj = per_anchor(raw[0].grad)[0, :, 4]
        assert bool(obj[0, 0, 0] == 0) is ignored
        assert (obj.flatten()[1:] > 0).all()


def test_a_batch_without_boxes_learns_background_objectness_only():
    raw = zero_maps(batch=2)
    total, parts = YoloLoss(NC, ANCHORS, MASKS)(raw, torch.zeros(0, 6), image_size=64)
    assert parts["box"] == 0 and parts["cls"] == 0
    assert parts["obj"] == pytest.approx(2 * math.log(2), rel=1e-5)  # BCE(0.5, 0) per head, two heads
    total.backward()
    assert (per_anchor(raw[0].grad)[:, :, 4] > 0).all()


def test_a_box_without_area_is_not_matched():
    raw = zero_maps()
    point = torch.tensor([[0, 1, 20.0, 20.0, 20.0, 20.0], [0, 2, 5.0, 5.0, 5.0, 30.0]])
    total, parts = YoloLoss(NC, ANCHORS, MASKS)(raw, torch.cat([TARGETS, point]), image_size=64)
    _, alone = YoloLoss(NC, ANCHORS, MASKS)(raw, TARGETS, image_size=64)
    assert torch.isfinite(total) and parts == pytest.approx(alone)


def test_the_wrong_number_of_maps_is_refused():
    with pytest.raises(DataError, match="the loss has 2 yolo heads, the network gave 1 maps"):
        YoloLoss(NC, ANCHORS, MASKS)(zero_maps()[:1], TARGETS, image_size=64)
    with pytest.raises(
        DataError, match=r"yolo head 1: the map must have 3 anchors × \(5 \+ 3 classes\) = 24"
    ):
        YoloLoss(NC, ANCHORS, MASKS)([zero_maps()[0], torch.zeros(1, 25, 4, 4)], TARGETS, image_size=64)


@pytest.mark.parametrize("scale_x_y, new_coords", [(1.0, False), (1.05, False), (2.0, True)])
def test_decode_agrees_with_darknets_yolo_layer(scale_x_y, new_coords):
    g = torch.Generator().manual_seed(0)
    raw = [torch.randn(2, 3 * (5 + NC), s, s, generator=g) for s in (2, 4)]
    if new_coords:
        raw = [r.sigmoid() for r in raw]
    loss = YoloLoss(NC, ANCHORS, MASKS, scale_x_y=scale_x_y, new_coords=new_coords)
    decoded = loss.decode(raw, image_size=64)
    assert decoded.shape == (2, 4 + NC, 3 * 4 + 3 * 16)
    start = 0
    for r, mask in zip(raw, MASKS, strict=True):
        spec = specs.Yolo(classes=NC, num=6, mask=mask, anchors=ANCHORS, decode=True,
                          scale_x_y=scale_x_y, new_coords=new_coords)  # fmt: skip
        dark = per_anchor(DarknetYolo(spec, [tuple(r.shape[1:])])(r))  # (B, 3, 5 + nc, H, W)
        s = r.shape[-1]
        stride = 64 / s
        ours = decoded[:, :, start : start + 3 * s * s].reshape(2, 4 + NC, 3, s, s).transpose(1, 2)
        cols = torch.arange(s).view(1, 1, 1, s)
        rows = torch.arange(s).view(1, 1, s, 1)
        assert torch.allclose(ours[:, :, 0], (dark[:, :, 0] + cols) * stride, atol=1e-4)
        assert torch.allclose(ours[:, :, 1], (dark[:, :, 1] + rows) * stride, atol=1e-4)
        aw = torch.tensor([ANCHORS[m][0] for m in mask], dtype=torch.float32).view(1, 3, 1, 1)
        w = aw * (4 * dark[:, :, 2] ** 2 if new_coords else dark[:, :, 2].exp())
        assert torch.allclose(ours[:, :, 2], w, rtol=1e-5)
        assert torch.allclose(ours[:, :, 4:], dark[:, :, 5:] * dark[:, :, 4:5], atol=1e-6)
        start += 3 * s * s


@pytest.mark.parametrize("new_coords", [False, True])
def test_optimising_free_maps_finds_the_boxes_and_their_classes(new_coords):
    g = torch.Generator().manual_seed(0)
    free = [(torch.randn(1, 3 * (5 + NC), s, s, generator=g) * 0.01).requires_grad_() for s in (2, 4)]
    # new_coords heads read a logistic conv output: the free tensor goes through one
    as_maps = (lambda: [f.sigmoid() for f in free]) if new_coords else (lambda: free)
    loss = YoloLoss(NC, ANCHORS, MASKS, new_coords=new_coords)
    opt = torch.optim.Adam(free, lr=0.05)
    first = None
    for _ in range(200):
        total, _ = loss(as_maps(), TARGETS, image_size=64)
        first = first if first is not None else total.item()
        opt.zero_grad()
        total.backward()
        opt.step()
    assert total.item() < first / 10
    with torch.no_grad():
        decoded = loss.decode(as_maps(), image_size=64)[0]
    boxes = box_convert(decoded[:4].T, "cxcywh", "xyxy")
    scores, classes = decoded[4:].max(0)
    top2 = batched_nms(boxes, scores, classes, iou_threshold=0.7)[:2]
    assert sorted(classes[top2].tolist()) == [1, 2]
    for a in top2:
        target = TARGETS[TARGETS[:, 1] == classes[a]][0, 2:]
        assert box_iou(boxes[a : a + 1], target[None]).item() > 0.9
