"""A YoloLoss from the network's own [yolo] layers: anchors, masks, classes, ignore_thresh,
scale_x_y and new_coords as the cfg gives them; a setting that would change the loss and that
this loss does not implement is refused, never ignored."""

from __future__ import annotations

from collections.abc import Sequence

from darkforge.darknet.layers import Yolo
from darkforge.errors import SpecError
from darkforge.training.detection.loss.yolo_loss import YoloLoss

# The fork's [yolo] keys that only concern NMS, tracking or printing, not training.
NOT_LOSS = {
    "beta_nms", "nms_kind", "show_details", "counters_per_class", "track_history_size", "sim_thresh",
    "dets_for_track", "dets_for_show", "track_ciou_norm", "embedding_layer",
}  # fmt: skip


def yolo_loss_from_layers(layers: Sequence[Yolo], **gains: float) -> YoloLoss:
    """The [yolo] layers of one network, in output order -> the YoloLoss of their raw maps;
    `gains` (box, obj, cls) replace YoloLoss's defaults."""
    if not layers:
        raise SpecError("no yolo layer to train", hint="a Darknet detector ends in [yolo] layers")
    first = layers[0]
    for i, layer in enumerate(layers):
        _check(i, layer, first)
    num = first.num
    return YoloLoss(
        first.classes,
        first.anchors or [],
        [layer.mask if layer.mask is not None else list(range(num)) for layer in layers],
        ignore_thresh=[layer.ignore_thresh for layer in layers],
        scale_x_y=[layer.scale_x_y for layer in layers],
        new_coords=first.new_coords,
        **gains,
    )


def _check(i: int, layer: Yolo, first: Yolo) -> None:
    where = f"yolo layer {i}"
    if type(layer) is not Yolo:
        raise SpecError(f"{where}: a {layer.type} head has no loss here", hint="use [yolo] heads")
    if layer.decode:
        raise SpecError(f"{where}: `decode` outputs decoded boxes; the loss needs the raw map",
                        hint="set decode: false to train")  # fmt: skip
    if layer.anchors is None:
        raise SpecError(f"{where}: no anchors", hint="give `anchors` (w, h pairs in input pixels)")
    if (layer.classes, layer.anchors, layer.new_coords) != (first.classes, first.anchors, first.new_coords):
        raise SpecError(f"{where}: classes, anchors and new_coords must equal those of the first yolo layer")
    if layer.truth_thresh < 1:
        raise SpecError(
            f"{where}: truth_thresh {layer.truth_thresh:g} (extra anchors per box) is not supported",
            hint="set truth_thresh=1 (YOLOv3's one anchor per box)",
        )
    for key, value in layer.loss.items():
        if key in NOT_LOSS or (key == "iou_loss" and value == "ciou"):
            continue
        raise SpecError(
            f"{where}: `{key}={value}` changes Darknet's loss, and darkforge's YoloLoss (CIoU, BCE, "
            "YOLOv3 matching) does not implement it",
            hint="remove the key to train with darkforge's YoloLoss",
        )
