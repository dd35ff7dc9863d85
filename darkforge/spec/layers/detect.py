"""Heads of the anchor-free YOLOs: `Detect` (YOLOv8/11: per level a box branch of 4 × reg_max DFL
bins and a class branch) and `Classify` (the -cls models). Shape rules only (no torch); the
modules are darkforge/nn/detect.py. Forward contract: docs/layers.md and the detection interface
(training: one raw map per level; eval: decoded (B, 4 + classes, A) and the raw maps).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field

from darkforge.spec.base import LayerCost, LayerSpec, Operand, Shape, ShapeError, fmt_shape, require
from darkforge.spec.layers.conv import conv_cost
from darkforge.spec.layers.csp import YoloNumerics, yolo_conv

ClassCount = Annotated[int, Field(ge=1, le=100_000)] | Literal["classes"] | None


def head_widths(channels: int, classes: int, reg_max: int) -> tuple[int, int]:
    """Hidden widths of the box and class branches, from the first level's channels (YOLOv8's
    rule: box max(16, C/4, 4·reg_max), class max(C, min(classes, 100)))."""
    return max(16, channels // 4, reg_max * 4), max(channels, min(classes, 100))


def level_strides(network_input: Shape, levels: Sequence[Shape]) -> list[int]:
    """Each level's stride: the input's height over the level's (8, 16, 32 for P3–P5)."""
    strides = []
    for level in levels:
        if network_input[1] % level[1] or network_input[2] % level[2]:
            raise ShapeError(
                f"the input {fmt_shape(network_input)} is no multiple of a {fmt_shape(level)} head level: "
                f"use an input size that is a multiple of the largest stride (e.g. 32)"
            )
        strides.append(network_input[1] // level[1])
    return strides


class Detect(LayerSpec, YoloNumerics):
    """Anchor-free detection head (YOLOv8/11) over feature maps, finest first (any number of
    levels; stride = input height / level height). Per level a box branch (two 3×3 convs, a 1×1
    to 4·reg_max DFL bins: sides l, t, r, b) and a class branch (two 3×3 convs, a 1×1 to the
    classes; `style: v11`: depthwise 3×3 + 1×1, twice). Training: one raw map per level,
    (B, 4·reg_max + classes, H, W). Eval: (decoded, raw maps), decoded (B, 4 + classes, A) = box
    centre x, y, width, height in input pixels, then sigmoid class probabilities, anchors level by
    level, row-major. The DFL's fixed 1×reg_max conv counts as parameters but never trains."""

    type: Literal["Detect"] = "Detect"
    classes: ClassCount = Field(None, description="class count; default (or `classes`): the network's")
    reg_max: int = Field(16, ge=1, le=64, description="DFL bins per box side")
    style: Literal["v8", "v11"] = Field("v8", description="v11: depthwise convs in the class branch")
    arity: ClassVar[tuple[int, int | None]] = (1, None)

    def with_classes(self, classes: int | None) -> Self:
        if isinstance(self.classes, int) or classes is None:
            return self
        return self.model_copy(update={"classes": classes})

    @property
    def nc(self) -> int:
        require(isinstance(self.classes, int), "has no class count: give it `classes`, or the network")
        assert isinstance(self.classes, int)
        return self.classes

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        for x in inputs:
            require(len(x.shape) == 3, f"needs C×H×W maps, but {x.name} gives {fmt_shape(x.shape)}")
        nc, box_bins = self.nc, 4 * self.reg_max
        c2, c3 = head_widths(inputs[0].shape[0], nc, self.reg_max)
        cost = LayerCost((), maps=0)
        for x in inputs:
            cost = cost + self._branch(x, [(c2, 3, 1), (c2, 3, 1)], box_bins)
            cost = cost + self._branch(x, self._class_convs(x.shape[0], c3), nc)
        anchors = sum(x.shape[1] * x.shape[2] for x in inputs)
        # the DFL: a fixed (not trainable) 1×1 conv of reg_max weights over 4 sides × A anchors
        dfl, dfl_macs = (self.reg_max, 4 * self.reg_max * anchors) if self.reg_max > 1 else (0, 0)
        # maps: every conv-bn-act of the branches, then what the head returns in eval: the raw
        # level maps (4·reg_max + classes channels each) and the decoded (4 + classes, A)
        returned = (box_bins + nc) * anchors + (4 + nc) * anchors
        maps = cost.produced + returned
        return LayerCost((4 + nc, anchors), cost.params + dfl, cost.macs + dfl_macs, cost.dead_params, maps)

    def _class_convs(self, channels: int, c3: int) -> list[tuple[int, int, int]]:
        if self.style == "v8":
            return [(c3, 3, 1), (c3, 3, 1)]
        return [(channels, 3, channels), (c3, 1, 1), (c3, 3, c3), (c3, 1, 1)]  # (dw 3×3, 1×1) twice

    @staticmethod
    def _branch(x: Operand, convs: list[tuple[int, int, int]], out: int) -> LayerCost:
        """conv-bn-act layers (filters, size, groups) then a 1×1 conv with bias to `out`; `maps`
        counts the conv-bn-act outputs (the 1×1's joins the level's raw map, counted by infer)."""
        cost = LayerCost(x.shape, maps=0)
        for filters, size, groups in convs:
            cost = cost + yolo_conv(Operand(cost.output, x.name), filters, size, 1, groups)
        last = conv_cost(Operand(cost.output, x.name), out, 1, 1, 0, 1, True, False)
        return cost + LayerCost(last.output, last.params, last.macs, last.dead_params, maps=0)

    def note(self, inputs: Sequence[Shape], network_input: Shape) -> str:
        try:
            strides = ", ".join(str(s) for s in level_strides(network_input, inputs))
        except ShapeError:
            strides = "none (the input is no multiple of the levels)"
        return (
            f"Detect: {self.classes} classes, strides {strides}, reg_max {self.reg_max}, style {self.style}"
        )


class Classify(LayerSpec, YoloNumerics):
    """conv-bn-act to `hidden` channels, global average pool, dropout, Linear to the classes
    (Ultralytics' -cls head). Logits, as every darkforge classifier returns (eval, predict and
    export apply the softmax); `softmax: true` returns probabilities in eval mode, as
    Ultralytics' own head does."""

    type: Literal["Classify"] = "Classify"
    classes: ClassCount = Field(None, description="class count; default (or `classes`): the network's")
    hidden: int = Field(1280, ge=1, le=65536, description="channels of the conv before the pool")
    size: int = Field(1, ge=1, le=31, description="kernel of that conv")
    stride: int = Field(1, ge=1, le=32)
    dropout: float = Field(0.0, ge=0, lt=1)
    softmax: bool = Field(False, description="eval returns probabilities (as Ultralytics' head)")

    def with_classes(self, classes: int | None) -> Self:
        if isinstance(self.classes, int) or classes is None:
            return self
        return self.model_copy(update={"classes": classes})

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = inputs[0]
        require(len(x.shape) == 3, f"needs a C×H×W map, but {x.name} gives {fmt_shape(x.shape)}")
        require(isinstance(self.classes, int), "has no class count: give it `classes`, or the network")
        assert isinstance(self.classes, int)
        conv = yolo_conv(x, self.hidden, self.size, self.stride)
        linear = self.hidden * self.classes + self.classes
        return LayerCost((self.classes,), conv.params + linear, conv.macs + linear - self.classes)


HEADS = (Detect, Classify)
