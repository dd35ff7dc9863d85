"""DetectionLoss: its terms against their definitions, empty batches, gradients, and a real
optimisation of free head maps toward two boxes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import batched_nms, box_convert, box_iou

from darkforge.errors import DataError
from darkforge.training.detection.loss import DetectionLoss, decode_detect, dfl_loss

NC, REG_MAX = 3, 16
TARGETS = torch.tensor([[0, 1, 8.0, 10.0, 30.0, 40.0], [0, 2, 30.0, 20.0, 60.0, 50.0]])


def maps(batch: int = 1, size: int = 64, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(batch, 4 * REG_MAX + NC, size // s, size // s, generator=g) * 0.01).requires_grad_()
        for s in (8, 16, 32)
    ]


def test_dfl_is_the_cross_entropy_of_the_two_neighbouring_bins():
    logits = torch.randn(5, 4, REG_MAX)
    target = torch.tensor([0.0, 3.25, 7.5, 14.99]).repeat(5, 1)
    logp = logits.log_softmax(-1)
    left = target.long()
    w = left + 1 - target
    expected = -(
        logp.gather(-1, left[..., None])[..., 0] * w + logp.gather(-1, left[..., None] + 1)[..., 0] * (1 - w)
    )
    assert dfl_loss(logits, target) == pytest.approx(expected.mean(-1), rel=1e-5)
    # its minimum over bin logits is the split of mass between the two bins
    best = torch.full((1, 4, REG_MAX), -1e4)
    best[0, :, 3], best[0, :, 4] = torch.tensor(0.75).log(), torch.tensor(0.25).log()
    entropy = -(0.75 * torch.tensor(0.75).log() + 0.25 * torch.tensor(0.25).log())
    assert dfl_loss(best, torch.full((1, 4), 3.25)).item() == pytest.approx(entropy.item(), rel=1e-4)


def test_total_is_the_gained_parts_times_the_batch():
    loss = DetectionLoss(NC, strides=[8, 16, 32])
    targets = torch.cat([TARGETS, torch.tensor([[1, 0, 0.0, 0.0, 20.0, 20.0]])])
    total, parts = loss(maps(batch=2), targets, image_size=64)
    assert set(parts) == {"box", "cls", "dfl"}
    assert total.item() == pytest.approx(2 * sum(parts.values()), rel=1e-6)
    assert all(v > 0 for v in parts.values())


def test_a_batch_without_boxes_learns_background_only():
    raw = maps(batch=2)
    total, parts = DetectionLoss(NC)(raw, torch.zeros(0, 6), image_size=64)
    assert parts["box"] == 0 and parts["dfl"] == 0
    # every class logit is pushed toward 0 probability: BCE against zeros, summed (norm 1), × 0.5 × B
    flat = torch.cat([m.flatten(2) for m in raw], 2)[:, 4 * REG_MAX :]
    expected = F.binary_cross_entropy_with_logits(flat, torch.zeros_like(flat), reduction="sum") * 0.5
    assert parts["cls"] == pytest.approx(expected.item(), rel=1e-5)
    total.backward()
    assert raw[0].grad is not None and raw[0].grad[:, 4 * REG_MAX :].abs().sum() > 0
    assert raw[0].grad[:, : 4 * REG_MAX].abs().sum() == 0


def test_a_box_without_area_changes_nothing():
    point = torch.tensor([[0, 1, 20.0, 20.0, 20.0, 20.0]])
    total, parts = DetectionLoss(NC)(maps(), torch.cat([TARGETS, point]), image_size=64)
    _, alone = DetectionLoss(NC)(maps(), TARGETS, image_size=64)
    assert torch.isfinite(total) and parts == pytest.approx(alone)


def test_gradients_reach_box_and_class_channels():
    raw = maps()
    total, _ = DetectionLoss(NC)(raw, TARGETS, image_size=64)
    total.backward()
    for m in raw:
        assert torch.isfinite(m.grad).all()
    assert raw[0].grad[:, : 4 * REG_MAX].abs().sum() > 0  # the boxes' DFL bins learn
    assert raw[0].grad[:, 4 * REG_MAX :].abs().sum() > 0


def test_optimising_free_maps_finds_the_boxes_and_their_classes():
    raw = maps()
    loss = DetectionLoss(NC)
    opt = torch.optim.Adam(raw, lr=0.05)
    first = None
    for _ in range(200):
        total, _ = loss(raw, TARGETS, image_size=64)
        first = first if first is not None else total.item()
        opt.zero_grad()
        total.backward()
        opt.step()
    assert total.item() < first / 20
    decoded = decode_detect([m.detach() for m in raw], [8, 16, 32])[0]  # (4 + nc, 84)
    boxes = box_convert(decoded[:4].T, "cxcywh", "xyxy")
    scores, classes = decoded[4:].max(0)
    top2 = batched_nms(boxes, scores, classes, iou_threshold=0.7)[:2]  # the two best detections
    assert sorted(classes[top2].tolist()) == [1, 2]
    for a in top2:
        target = TARGETS[TARGETS[:, 1] == classes[a]][0, 2:]
        assert box_iou(boxes[a : a + 1], target[None]).item() > 0.9


def test_the_loss_of_a_detect_head_reads_its_attributes():
    class Head:  # what the Detect module exposes (DETECTION.md)
        nc, reg_max, stride = 5, 8, torch.tensor([8.0, 16.0])

    loss = DetectionLoss.for_head(Head(), box=1.0)
    assert (loss.nc, loss.reg_max, loss.strides) == (5, 8, [8.0, 16.0])
    assert loss.gains == {"box": 1.0, "cls": 0.5, "dfl": 1.5}


def test_half_precision_maps_give_a_float32_loss():
    raw = [m.detach().half().requires_grad_() for m in maps()]
    total, _ = DetectionLoss(NC)(raw, TARGETS, image_size=64)
    assert total.dtype == torch.float32
    total.backward()
    assert raw[0].grad.dtype == torch.float16 and torch.isfinite(raw[0].grad).all()


def test_maps_that_do_not_fit_the_loss_are_refused():
    loss = DetectionLoss(NC)
    with pytest.raises(DataError, match=r"level 0: a Detect map must be \(B, 67, H, W\)"):
        loss([torch.zeros(1, 66, 8, 8), *maps()[1:]], TARGETS, image_size=64)
    with pytest.raises(DataError, match="level 0: a 8×8 map at stride 8 does not cover the 128×128 input"):
        loss(maps(), TARGETS, image_size=128)
    with pytest.raises(DataError, match="3 strides, the head gave 2 maps"):
        loss(maps()[:2], TARGETS, image_size=64)
