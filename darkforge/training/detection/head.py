"""What training and evaluation need to know of a detector's head, whatever its kind: its loss on
the raw maps, and the decoding of those maps into the Detect layout (B, 4 + nc, A) — centre x,
centre y, width, height in input pixels, then class probabilities.

A table from the head's kind to how it is found in a built network, so a new head is one entry:
the anchor-free `Detect` module (task-aligned assignment, CIoU + DFL + BCE) and Darknet's
anchor-based `[yolo]` layers (YOLOv3 matching; their raw maps are the network's outputs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from darkforge.darknet.layers import Yolo
from darkforge.errors import SpecError
from darkforge.nn.detect import Detect
from darkforge.nn.network import Network
from darkforge.training.detection.loss import DetectionLoss, decode_detect, yolo_loss_from_layers

Loss = Callable[[Sequence[Tensor], Tensor, int], tuple[Tensor, dict[str, float]]]


@dataclass
class Head:
    kind: str  # "detect" or "yolo"
    classes: int
    loss: Loss  # (raw maps, targets (M, 6), input side) -> (total, parts)
    decode: Callable[[Sequence[Tensor], int], Tensor]  # (raw maps, input side) -> (B, 4 + nc, A)
    parts: tuple[str, ...]  # the loss components, as logged


def raw_maps(output: Any) -> list[Tensor]:
    """The raw per-level maps of a forward pass in either mode: a Detect head gives a list in
    training and (decoded, list) in eval; a network of [yolo] heads gives its outputs (a tuple of
    maps, or one map)."""
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, tuple) and len(output) == 2 and isinstance(output[1], list):
        return list(output[1])
    return list(output)


# the loss gains each kind of head has (recipe.Boxes; a gain of another head is refused)
GAINS = {"detect": ("box", "cls", "dfl"), "yolo": ("box", "obj", "cls")}


def _detect_head(model: Network, gains: dict[str, float]) -> Head | None:
    heads = [m for m in model.modules() if isinstance(m, Detect)]
    if not heads:
        return None
    if len(heads) > 1:
        raise SpecError(f"{len(heads)} Detect layers: a detector has one head", "keep one Detect layer")
    head = heads[0]
    loss = DetectionLoss.for_head(head, **{k: v for k, v in gains.items() if k in GAINS["detect"]})
    strides = [float(s) for s in head.stride]

    def decode(maps: Sequence[Tensor], size: int) -> Tensor:
        return decode_detect(maps, strides, head.reg_max)

    return Head("detect", head.nc, loss, decode, ("box", "cls", "dfl"))


def _yolo_head(model: Network, gains: dict[str, float]) -> Head | None:
    layers = [info.spec for info in model.plan.layers if isinstance(info.spec, Yolo)]
    if not layers:
        return None
    outputs = {model.plan.layers[i].spec.id or str(i) for i in model.plan.outputs}
    names = [info.spec.id or str(info.index) for info in model.plan.layers if isinstance(info.spec, Yolo)]
    if set(names) != outputs:
        raise SpecError(
            "a Darknet detector trains when its [yolo] layers are its outputs",
            f"set outputs: [{', '.join(names)}]",
        )
    loss = yolo_loss_from_layers(layers, **{k: v for k, v in gains.items() if k in GAINS["yolo"]})
    return Head("yolo", loss.heads.nc, loss, loss.decode, ("box", "obj", "cls"))


# How each kind of head is found in a built network; the first that finds one wins.
HEADS: list[Callable[[Network, dict[str, float]], Head | None]] = [_detect_head, _yolo_head]


def head_of(model: Network, gains: dict[str, float | None] | None = None) -> Head | None:
    """The detection head of `model`, or None for a network without one (a classifier); `gains`
    (None: the head's default) weight its loss terms."""
    given = {k: v for k, v in (gains or {}).items() if v is not None}
    for find in HEADS:
        head = find(model, given)
        if head is not None:
            return head
    return None


def is_detector(model: nn.Module) -> bool:
    return isinstance(model, Network) and head_of(model) is not None
