"""Darknet's own layer types, for networks converted from .cfg files (see darkforge/darknet/read.py).

Where Darknet's section has a darkforge equivalent the converter uses it ([convolutional] ->
ConvBnLeaky or Conv, [route] -> Route, [avgpool] -> GlobalAvgPool, ...). These types cover the rest:
[connected] with an activation or batch norm, the resampling [shortcut] of resnet*.cfg, [reorg],
[crop], and [softmax] plus the detection and cost sections, which stay in the graph as identity
layers carrying their metadata, so a loss or decoder can read it and Darknet's layer numbers hold.
Importing darkforge.darknet registers them (modules in darkforge.darknet.modules).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from darkforge.spec.base import (
    LayerCost,
    LayerSpec,
    Operand,
    Ref,
    Shape,
    ShapeError,
    fmt_shape,
    prod,
    require,
)
from darkforge.spec.layers.numerics import Activation, BatchNorm

Number = int | float  # anchors keep the cfg's spelling: 10 stays 10, 0.57273 stays a float


def _map(x: Operand) -> Shape:
    require(len(x.shape) == 3, f"needs a C×H×W feature map, but {x.name} gives {fmt_shape(x.shape)}")
    return x.shape


class Connected(LayerSpec):
    """Darknet [connected]: flatten -> Linear -> optional BatchNorm1d -> activation. As with convs,
    the Linear has no bias under batch norm (Darknet's `biases` are then batch norm's shift)."""

    type: Literal["Connected"] = "Connected"
    out: int = Field(ge=1, le=1_000_000, description="output features (Darknet `output`)")
    activation: Activation = Field("linear", description="applied last (Darknet's default: logistic)")
    slope: float = Field(0.1, ge=0, lt=1, description="negative slope of `leaky`")
    bn: bool | BatchNorm = Field(False, description="batch norm: true, false or {momentum, eps}")

    @property
    def batch_norm(self) -> BatchNorm | None:
        if self.bn is False:
            return None
        return BatchNorm() if self.bn is True else self.bn

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        features = prod(inputs[0].shape)
        extra = 2 * self.out if self.batch_norm else self.out  # gamma + beta, or the bias
        return LayerCost((self.out,), features * self.out + extra, features * self.out)


def shortcut_geometry(add: Shape, out: Shape) -> tuple[int, int, int, int, int]:  # pjreddie's rule
    """Darknet's shortcut_cpu between maps of different sizes: `add` is read every `stride` pixels,
    `out` written every `sample` pixels, over the common channels and the smaller map's extent.
    Returns (stride, sample, channels, height, width); raises ValueError where Darknet asserts."""
    (c1, h1, w1), (c2, h2, w2) = add, out
    stride, sample = w1 // w2, w2 // w1
    if stride != h1 // h2 or sample != h2 // h1:
        raise ValueError("the two maps must scale by the same factor in height and width")
    return max(stride, 1), max(sample, 1), min(c1, c2), min(h1, h2), min(w1, w2)


class DarknetShortcut(LayerSpec):
    """Darknet's [shortcut] between maps of different shapes (resnet*.cfg downsample blocks):
    the output has the previous layer's shape. pjreddie's rule (shortcut_cpu): `from` is added
    where the maps overlap, subsampled (or spread) to fit, over the channels both have; the other
    channels pass through unchanged. The AlexeyAB fork's rule (shortcut_multilayer_cpu): the two
    buffers are added element by element, flat, over the shorter one's length. They agree when
    only the channel counts differ."""

    type: Literal["DarknetShortcut"] = "DarknetShortcut"
    from_: Ref = Field(alias="from", description="the layer added to the previous one")
    activation: Activation = Field("linear", description="applied after the add")
    slope: float = Field(0.1, ge=0, lt=1, description="negative slope of `leaky`")
    alpha: float = Field(1.0, description="weight of the previous layer where the maps overlap")
    beta: float = Field(1.0, description="weight of `from`")
    rule: Literal["pjreddie", "alexeyab"] = Field("pjreddie", description="which Darknet's shortcut")
    arity: ClassVar[tuple[int, int | None]] = (2, 2)

    def sources(self) -> list[Ref]:
        return [-1, self.from_]

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        out, add = _map(inputs[0]), _map(inputs[1])
        if self.rule == "alexeyab":
            require(self.alpha == self.beta == 1, "the fork's [shortcut] has no alpha/beta")
            return LayerCost(out)
        try:
            shortcut_geometry(add, out)
        except ValueError as e:
            raise ShapeError(
                f"cannot add {inputs[1].name} ({fmt_shape(add)}) to {inputs[0].name} ({fmt_shape(out)}): {e}"
            ) from None
        return LayerCost(out)


class Softmax(LayerSpec):
    """Darknet [softmax], kept as a marked no-op: the network returns the logits (what
    cross-entropy expects), flattened to a vector. `logits: false` outputs Darknet's probabilities."""

    type: Literal["Softmax"] = "Softmax"
    groups: int = Field(1, ge=1, le=1_000_000, description="softmax over this many equal chunks")
    temperature: float = Field(1.0, gt=0)
    logits: bool = Field(True, description="true: pass the logits through; false: apply the softmax")

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        n = prod(inputs[0].shape)
        require(n % self.groups == 0, f"groups={self.groups} must divide the {n} inputs")
        return LayerCost((n,))


class Crop(LayerSpec):
    """Darknet [crop]: a random `height`×`width` window in training (centred in eval), mirrored at
    random when `flip`, then rescaled to [-1, 1] (x·2−1) unless `rescale: false` (Darknet noadjust=1)."""

    type: Literal["Crop"] = "Crop"
    height: int = Field(ge=1, le=16384, description="Darknet crop_height")
    width: int = Field(ge=1, le=16384, description="Darknet crop_width")
    flip: bool = Field(False, description="mirror the crop at random in training")
    rescale: bool = Field(True, description="x·2−1: Darknet's [0, 1] images to [-1, 1]")
    # Darknet's GPU-only jitter; kept for the round trip, not applied: use the recipe's augmentation.
    angle: float = 0.0
    saturation: float = 1.0
    exposure: float = 1.0
    shift: float = 0.0

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        c, h, w = _map(inputs[0])
        require(
            self.height <= h and self.width <= w,
            f"a {self.height}×{self.width} crop does not fit {inputs[0].name}'s {h}×{w} map",
        )
        return LayerCost((c, self.height, self.width))


class Reorg(LayerSpec):
    """Darknet [reorg] (yolov2.cfg): space-to-depth by `stride`, with Darknet's own memory order
    (the input read as a (C/s², H·s, W·s) buffer), so pretrained yolov2 weights still fit."""

    type: Literal["Reorg"] = "Reorg"
    stride: int = Field(2, ge=1, le=64)

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        c, h, w = _map(inputs[0])
        k = self.stride
        require(
            h % k == 0 and w % k == 0 and c % (k * k) == 0,
            f"stride {k} needs a map whose sides divide by {k} and channels by {k * k}, "
            f"but {inputs[0].name} gives {fmt_shape(inputs[0].shape)}",
        )
        return LayerCost((c * k * k, h // k, w // k))


class _Marker(LayerSpec):
    """A detection or cost section: an identity in the graph; its fields are the loss's settings."""

    def channels(self) -> int | None:
        """The channels the layer needs, or None where any shape goes."""
        return None

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        need = self.channels()
        if need is not None:
            c, _, _ = _map(inputs[0])
            require(c == need, f"needs {need} channels ({self._formula()}), but {inputs[0].name} gives {c}")
        return LayerCost(inputs[0].shape)

    def _formula(self) -> str:
        return ""


def _check_anchors(anchors: list[tuple[Number, Number]] | None, num: int) -> None:
    if anchors is not None and len(anchors) != num:
        raise ValueError(f"{len(anchors)} anchor pairs for num={num}")


Carried = dict[str, int | float | str]  # Darknet keys that change no output: kept for the round trip


class Yolo(_Marker):
    """Darknet [yolo] (YOLOv3/v4/v7): marks a detection output. Returns the raw conv output unless
    `decode` (then what Darknet's forward_yolo_layer outputs: the logistic on x, y, objectness and
    classes unless new_coords; x, y ← x·scale_x_y − (scale_x_y − 1)/2)."""

    type: Literal["Yolo"] = "Yolo"
    classes: int = Field(20, ge=1, le=100_000)
    num: int = Field(1, ge=1, le=1000, description="anchors in `anchors`")
    mask: list[int] | None = Field(None, description="the anchors this scale predicts (default: all)")
    anchors: list[tuple[Number, Number]] | None = Field(None, description="(width, height) in pixels")
    jitter: float = 0.2
    ignore_thresh: float = 0.5
    truth_thresh: float = 1.0
    random: bool | float = Field(False, description="multi-scale training (the fork: a scale range)")
    max_boxes: int = Field(90, ge=1, description="Darknet `max`: boxes per image")
    new_coords: bool = Field(False, description="YOLOv4-csp/v7 box coding: no logistic in the layer")
    scale_x_y: float = Field(1.0, gt=0, description="x, y ← x·s − (s − 1)/2 (grid sensitivity)")
    decode: bool = Field(False, description="output Darknet's decoded values instead of the raw conv")
    loss: Carried = Field(default_factory=dict, description="the fork's loss keys, kept for the cfg")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_anchors(self.anchors, self.num)
        # Darknet takes any mask index; one ≥ num reads past its `num` anchors (cspx-p7-mish.cfg's
        # last scales): the outputs do not depend on it, the box decoding there is undefined.
        if self.mask is not None and any(m < 0 for m in self.mask):
            raise ValueError("mask indices must be 0 or more")
        return self

    def channels(self) -> int:
        return len(self.mask if self.mask is not None else range(self.num)) * (self.classes + 5)

    def _formula(self) -> str:
        return "anchors × (classes + 5)"


class GaussianYolo(Yolo):
    """[Gaussian_yolo]: a [yolo] whose boxes carry an uncertainty per coordinate (8 + 1 + classes
    channels per anchor); marks the output, the raw conv output passes through."""

    type: Literal["GaussianYolo"] = "GaussianYolo"  # type: ignore[assignment]

    def channels(self) -> int:
        return len(self.mask if self.mask is not None else range(self.num)) * (self.classes + 9)

    def _formula(self) -> str:
        return "anchors × (classes + 9)"


class Region(_Marker):
    """Darknet [region] (YOLOv2): marks the detection output; fields are the loss's settings."""

    type: Literal["Region"] = "Region"
    classes: int = Field(20, ge=1, le=100_000)
    coords: int = Field(4, ge=1, le=64)
    num: int = Field(1, ge=1, le=1000)
    anchors: list[tuple[Number, Number]] | None = Field(None, description="(width, height) in cells")
    softmax: bool = False
    bias_match: bool = False
    jitter: float = 0.2
    rescore: bool = False
    thresh: float = 0.5
    absolute: bool = False
    random: bool | float = False
    log: bool = False
    sqrt: bool = False
    background: bool = False
    classfix: int = 0
    max_boxes: int = Field(30, ge=1, description="Darknet `max`")
    coord_scale: float = 1.0
    object_scale: float = 1.0
    noobject_scale: float = 1.0
    mask_scale: float = 1.0
    class_scale: float = 1.0

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_anchors(self.anchors, self.num)
        return self

    def channels(self) -> int:
        return self.num * (self.coords + self.classes + 1)

    def _formula(self) -> str:
        return "num × (coords + classes + 1)"


class Detection(_Marker):
    """Darknet [detection] (YOLOv1): marks the detection output of a [connected] layer."""

    type: Literal["Detection"] = "Detection"
    classes: int = Field(1, ge=1, le=100_000)
    coords: int = Field(1, ge=1, le=64)
    num: int = Field(1, ge=1, le=1000)
    side: int = Field(7, ge=1, le=1000)
    rescore: bool = False
    softmax: bool = False
    sqrt: bool = False
    forced: bool = False
    random: bool | float = False
    reorg: bool = False
    jitter: float = 0.2
    max_boxes: int = Field(90, ge=1, description="Darknet `max`")
    coord_scale: float = 1.0
    object_scale: float = 1.0
    noobject_scale: float = 1.0
    class_scale: float = 1.0

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        need = self.side * self.side * ((1 + self.coords) * self.num + self.classes)
        got = prod(inputs[0].shape)
        require(got == need, f"needs side² × ((1 + coords) × num + classes) = {need} inputs, got {got}")
        return LayerCost(inputs[0].shape)


class Cost(_Marker):
    """Darknet [cost]: marks where the loss goes (resnet101.cfg); an identity."""

    type: Literal["Cost"] = "Cost"
    loss: Literal["sse", "masked", "smooth", "L1", "seg", "wgan"] = Field("sse", description="Darknet `type`")
    scale: float = 1.0
    ratio: float = 0.0
    noobject_scale: float = Field(1.0, description="Darknet `noobj`")
    thresh: float = 0.0


DARKNET = (Connected, DarknetShortcut, Softmax, Crop, Reorg, Yolo, GaussianYolo, Region, Detection, Cost)

__all__ = [
    "DARKNET",
    "Connected",
    "Cost",
    "Crop",
    "DarknetShortcut",
    "Detection",
    "GaussianYolo",
    "Region",
    "Reorg",
    "Softmax",
    "Yolo",
    "shortcut_geometry",
]
