"""A YoloLoss from a network's [yolo] layers: what the cfg says is used, what it cannot honour
is refused with one line."""

from __future__ import annotations

import pytest
import torch
from conftest import SHARED

import darkforge
from darkforge.darknet import layers as specs
from darkforge.errors import SpecError
from darkforge.training.detection.loss import yolo_loss_from_layers

ANCHORS = [(10, 14), (23, 27), (37, 58), (81, 82), (135, 169), (344, 319)]


def heads(**changes) -> list[specs.Yolo]:
    common = {"classes": 3, "num": 6, "anchors": ANCHORS}
    return [
        specs.Yolo(mask=[3, 4, 5], ignore_thresh=0.7, **common),
        specs.Yolo(mask=[0, 1, 2], ignore_thresh=0.5, scale_x_y=1.1, **{**common, **changes}),
    ]


def test_the_layers_settings_reach_the_loss():
    loss = yolo_loss_from_layers(heads())
    assert loss.heads.nc == 3 and loss.heads.masks == ((3, 4, 5), (0, 1, 2))
    assert loss.heads.anchors[2] == (37.0, 58.0)
    assert loss.ignore_thresh == (0.7, 0.5) and loss.heads.scale_x_y == (1.0, 1.1)
    raw = [torch.zeros(1, 24, 2, 2), torch.zeros(1, 24, 4, 4)]
    assert loss.decode(raw, 64).shape == (1, 7, 60)


def test_a_mask_left_out_means_every_anchor():
    one = specs.Yolo(classes=2, num=3, anchors=ANCHORS[:3])
    assert yolo_loss_from_layers([one]).heads.masks == ((0, 1, 2),)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"classes": 4}, "yolo layer 1: classes, anchors and new_coords must equal those of the first"),
        ({"truth_thresh": 0.9}, "yolo layer 1: truth_thresh 0.9 .* is not supported; set truth_thresh=1"),
        ({"loss": {"iou_normalizer": 0.07}}, "yolo layer 1: `iou_normalizer=0.07` changes Darknet's loss"),
        ({"loss": {"iou_loss": "giou"}}, "yolo layer 1: `iou_loss=giou` changes Darknet's loss"),
        ({"decode": True}, "yolo layer 1: `decode` outputs decoded boxes; .*; set decode: false to train"),
    ],
)
def test_what_the_loss_cannot_honour_is_refused(changes, message):
    with pytest.raises(SpecError, match=message):
        yolo_loss_from_layers(heads(**changes))


def test_settings_outside_training_and_ciou_pass():
    loss = yolo_loss_from_layers(heads(loss={"iou_loss": "ciou", "nms_kind": "greedynms", "beta_nms": 0.6}))
    assert len(loss.heads.masks) == 2


def test_other_heads_and_missing_anchors_are_refused():
    gaussian = specs.GaussianYolo(classes=3, num=6, anchors=ANCHORS, mask=[0, 1, 2])
    with pytest.raises(SpecError, match="yolo layer 0: a GaussianYolo head has no loss here"):
        yolo_loss_from_layers([gaussian])
    with pytest.raises(SpecError, match="yolo layer 0: no anchors"):
        yolo_loss_from_layers([specs.Yolo(classes=3, num=1)])
    with pytest.raises(SpecError, match="no yolo layer to train"):
        yolo_loss_from_layers([])


@pytest.mark.skipif(not (SHARED / "darknet-cfg" / "yolov3.cfg").exists(), reason="needs ../shared")
def test_yolov3_cfg_heads():
    spec = darkforge.load_spec(SHARED / "darknet-cfg" / "yolov3.cfg").resolved()
    loss = yolo_loss_from_layers([layer for layer in spec.layers if isinstance(layer, specs.Yolo)])
    assert loss.heads.masks == ((6, 7, 8), (3, 4, 5), (0, 1, 2)) and loss.heads.nc == 80
    assert loss.heads.anchors[8] == (373.0, 326.0) and loss.ignore_thresh == (0.7, 0.7, 0.7)
