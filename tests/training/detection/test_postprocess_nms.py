"""postprocess: decoded head output -> per-image detections; to_original: back through the letterbox."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import box_iou

from darkforge.training.detection.metrics.postprocess import postprocess, targets_per_image, to_original


def decoded(
    anchors: list[tuple[float, float, float, float, int, float]], nc: int = 3, rest: float = 0.01
) -> torch.Tensor:
    """(1, 4 + nc, A) from rows (cx, cy, w, h, class, probability); other classes get `rest`."""
    out = torch.full((1, 4 + nc, len(anchors)), rest)
    for a, (cx, cy, w, h, cls, p) in enumerate(anchors):
        out[0, :4, a] = torch.tensor([cx, cy, w, h])
        out[0, 4 + cls, a] = p
    return out


def test_boxes_come_out_xyxy_with_score_and_class_best_first():
    (dets,) = postprocess(decoded([(20, 30, 10, 20, 2, 0.6), (50, 50, 8, 8, 0, 0.9)]))
    torch.testing.assert_close(dets, torch.tensor([[46, 46, 54, 54, 0.9, 0], [15, 20, 25, 40, 0.6, 2]]))
    assert dets.dtype == torch.float32


def test_nms_is_per_class_unless_agnostic():
    # two boxes overlapping at IoU 0.81 (> 0.7) of different classes, and a third of the first's class
    rows = [(50, 50, 20, 20, 0, 0.9), (51, 50, 20, 20, 1, 0.8), (52, 50, 20, 20, 0, 0.7)]
    (aware,) = postprocess(decoded(rows))
    torch.testing.assert_close(aware[:, 4:], torch.tensor([[0.9, 0], [0.8, 1]]))
    (agnostic,) = postprocess(decoded(rows), agnostic=True)
    torch.testing.assert_close(agnostic[:, 4:], torch.tensor([[0.9, 0]]))
    (loose,) = postprocess(decoded(rows), iou=0.95)  # nothing overlaps that much
    assert len(loose) == 3


def test_conf_and_max_det_cut():
    rows = [(10 + 30 * i, 10, 8, 8, 0, 0.1 * (i + 1)) for i in range(6)]  # disjoint boxes
    (dets,) = postprocess(decoded(rows), conf=0.25)
    assert dets[:, 4].tolist() == pytest.approx([0.6, 0.5, 0.4, 0.3])
    (dets,) = postprocess(decoded(rows), max_det=2)
    assert dets[:, 4].tolist() == pytest.approx([0.6, 0.5])


def test_each_image_of_a_batch_apart_and_an_empty_one():
    batch = torch.cat([decoded([(20, 20, 8, 8, 1, 0.9)]), decoded([(20, 20, 8, 8, 1, 0.0005)], rest=0.0)])
    first, second = postprocess(batch)
    assert first.shape == (1, 6) and second.shape == (0, 6)


def greedy_nms(boxes, scores, classes, iou):
    """The textbook algorithm, one class at a time, as the reference."""
    keep = []
    for c in classes.unique():
        idx = (classes == c).nonzero().flatten()
        idx = idx[scores[idx].argsort(descending=True)]
        while len(idx):
            keep.append(int(idx[0]))
            overlap = box_iou(boxes[idx[:1]], boxes[idx[1:]])[0]
            idx = idx[1:][overlap <= iou]
    return sorted(keep, key=lambda i: -float(scores[i]))


def test_equals_textbook_nms_on_random_boxes():
    g = torch.Generator().manual_seed(0)
    out = torch.rand(1, 4 + 4, 400, generator=g)
    out[0, :2] *= 64  # centres in a 64-pixel input, sizes 10-40 px: many overlaps
    out[0, 2:4] = 10 + out[0, 2:4] * 30
    (dets,) = postprocess(out, conf=0.3, iou=0.5, max_det=400)
    scores, classes = out[0, 4:].max(0)
    boxes = torch.cat([out[0, :2] - out[0, 2:4] / 2, out[0, :2] + out[0, 2:4] / 2]).T
    kept = (scores > 0.3).nonzero().flatten()
    reference = kept[greedy_nms(boxes[kept], scores[kept], classes[kept], 0.5)]
    assert len(dets) == 278 and len(kept) == 396  # 118 boxes suppressed
    assert dets[:, 4].tolist() == scores[reference].tolist()
    assert torch.allclose(dets[:, :4], boxes[reference], atol=1e-5)
    assert dets[:, 5].tolist() == classes[reference].float().tolist()


def test_to_original_undoes_the_letterbox_and_clips():
    # a 100x50 (w x h) image letterboxed into 64x64: scale .64, 64x32 pasted at pad (0, 16)
    original = torch.tensor([[10.0, 5.0, 90.0, 45.0, 0.8, 3.0], [-5.0, 0.0, 120.0, 50.0, 0.5, 1.0]])
    letterboxed = original.clone()
    letterboxed[:, :4] = original[:, :4] * 0.64 + torch.tensor([0, 16, 0, 16])
    back = to_original(letterboxed, 0.64, (0, 16), (50, 100))
    assert back[0].tolist() == pytest.approx([10, 5, 90, 45, 0.8, 3])
    assert back[1].tolist() == pytest.approx([0, 0, 100, 50, 0.5, 1])  # clipped to the image
    assert letterboxed[0, 0] == pytest.approx(6.4)  # the input is left as it was


def test_batch_targets_split_per_image_with_background_ones():
    targets = torch.tensor([[2.0, 1, 0, 0, 5, 5], [0, 3, 1, 1, 4, 4], [2, 0, 2, 2, 9, 9]])
    first, second, third = targets_per_image(targets, 3)
    assert first.tolist() == [[3, 1, 1, 4, 4]] and second.shape == (0, 5)
    assert third.tolist() == [[1, 0, 0, 5, 5], [0, 2, 2, 9, 9]]
