"""The detection heads, read by a table of keys: [yolo], [Gaussian_yolo], [region], [detection]
(parser.c's parse_yolo, parse_gaussian_yolo, parse_region, parse_detection). They mark outputs;
their loss settings are carried for the round trip."""

from __future__ import annotations

from typing import Any

from darkforge.darknet import layers as dn
from darkforge.darknet.cfgtext import Section
from darkforge.darknet.keyed import Keyed, Keys, keyed_section

MODULES = "darkforge.darknet.modules"
# [yolo]/[Gaussian_yolo] keys of the fork that shape the loss, NMS or tracking, never the outputs:
# carried in the layer's `loss` (typed as written) for the round trip.
LOSS_KEYS = (
    "label_smooth_eps", "objectness_smooth", "iou_normalizer", "obj_normalizer", "cls_normalizer",
    "delta_normalizer", "uc_normalizer", "iou_loss", "iou_thresh_kind", "beta_nms", "nms_kind",
    "resize", "focal_loss", "iou_thresh", "max_delta", "counters_per_class", "show_details",
    "track_history_size", "sim_thresh", "dets_for_track", "dets_for_show", "track_ciou_norm",
    "embedding_layer", "yolo_point",
)  # fmt: skip


def _detect(classes: int, num: int) -> Keys:
    keys: Keys = {"classes": ("classes", "int", classes), "num": ("num", "int", num)}
    keys |= {"jitter": ("jitter", "float", 0.2), "random": ("random", "flagnum", False)}
    return keys | {
        k: (k, "float", 1.0) for k in ("coord_scale", "object_scale", "noobject_scale", "class_scale")
    }


def _flags(*names: str) -> Keys:
    return {name: (name, "flag", False) for name in names}


def _anchors(s: Section, fields: dict[str, Any]) -> None:
    """Darknet reads the first 2·num anchor numbers only."""
    anchors, num = fields.get("anchors"), fields.get("num", 0)
    if anchors and len(anchors) > num:
        s.notes.append(
            f"{s.file}:{s.options['anchors'][1]}: [{s.header}] (layer {s.index}): anchors: {len(anchors)} "
            f"pairs for num={num}: Darknet uses the first {num}"
        )
        fields["anchors"] = anchors[:num]


def _yolo_anchors(s: Section, fields: dict[str, Any]) -> None:
    """parse_yolo: fewer anchors than `num` leave the rest at 0 (calloc); a mask index past
    them reads outside Darknet's anchor buffer (said in a warning; the outputs do not use it)."""
    _anchors(s, fields)
    anchors, num, mask = fields.get("anchors"), fields["num"], fields.get("mask") or []
    if anchors is not None and len(anchors) < num:
        s.notes.append(
            f"{s.file}:{s.options['anchors'][1]}: [{s.header}] (layer {s.index}): anchors: "
            f"{len(anchors)} pairs for num={num}: Darknet's other {num - len(anchors)} are 0, 0"
        )
        fields["anchors"] = [*anchors, *[(0, 0)] * (num - len(anchors))]
    beyond = sorted({m for m in mask if m >= num})
    if beyond:
        s.notes.append(
            f"{s.file}:{s.options['mask'][1]}: [{s.header}] (layer {s.index}): mask: {beyond} ≥ num={num}: "
            "Darknet reads those anchors past its buffer (undefined boxes there; the outputs are exact)"
        )


YOLO = {k: v for k, v in _detect(20, 1).items() if not k.endswith("_scale")}
YOLO |= {"mask": ("mask", "ints", None), "anchors": ("anchors", "pairs", None)}
YOLO |= {"ignore_thresh": ("ignore_thresh", "float", 0.5), "truth_thresh": ("truth_thresh", "float", 1.0)}
YOLO |= {"max": ("max_boxes", "int", 90)}
YOLO |= {"new_coords": ("new_coords", "flag", False), "scale_x_y": ("scale_x_y", "float", 1.0)}
REGION = _detect(20, 1) | {"coords": ("coords", "int", 4), "anchors": ("anchors", "pairs", None)}
REGION |= _flags("softmax", "bias_match", "rescore", "absolute", "log", "sqrt", "background")
REGION |= {"thresh": ("thresh", "float", 0.5), "classfix": ("classfix", "int", 0)}
REGION |= {"max": ("max_boxes", "int", 30), "mask_scale": ("mask_scale", "float", 1.0)}
DETECTION = _detect(1, 1) | {"coords": ("coords", "int", 1), "side": ("side", "int", 7)}
DETECTION |= {"max": ("max_boxes", "int", 90)} | _flags("rescore", "softmax", "sqrt", "forced", "reorg")

SECTIONS = [
    keyed_section("yolo", Keyed(dn.Yolo, YOLO, {"map": None}, tuple(LOSS_KEYS), _yolo_anchors), MODULES),
    keyed_section(
        "Gaussian_yolo", Keyed(dn.GaussianYolo, YOLO, {"map": None}, tuple(LOSS_KEYS), _yolo_anchors), MODULES
    ),
    keyed_section("region", Keyed(dn.Region, REGION, {"tree": None, "map": None}, adjust=_anchors), MODULES),
    keyed_section("detection", Keyed(dn.Detection, DETECTION), MODULES),
]
