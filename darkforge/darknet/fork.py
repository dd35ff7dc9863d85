"""The AlexeyAB fork's layer types (torch-free specs; modules in darkforge/darknet/fork_modules.py).

Each follows the fork's C code (github.com/AlexeyAB/darknet src/*_layer.c) and keeps Darknet's
own activation names (`DarknetActivation`), so a [convolutional] with `hard_mish` or
`stride_x=2 stride_y=1` builds what Darknet computes. The converter uses darkforge's core types
where they compute the same thing, and these where the fork's semantics differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from darkforge.spec.base import LayerCost, LayerSpec, Operand, Ref, Shape, fmt_shape, require
from darkforge.spec.layers.numerics import BatchNorm

# activations.c get_activation of the fork (revleaky is refused: see docs/darknet.md).
DarknetActivation = Literal[
    "logistic", "loggy", "relu", "relu6", "elu", "selu", "gelu", "relie", "plse", "hardtan", "lhtan",
    "linear", "ramp", "leaky", "tanh", "stair", "swish", "mish", "hard_mish", "normalize_channels",
    "normalize_channels_softmax", "normalize_channels_softmax_maxval",
]  # fmt: skip
# The fork's CPU forward applies these only in [convolutional] (mish, swish also in [shortcut]):
# elsewhere its activate() has no case for them and outputs garbage (alexeyab-oracle README).
CONV_ONLY = {"swish", "mish", "hard_mish", "normalize_channels", "normalize_channels_softmax"}
CONV_ONLY |= {"normalize_channels_softmax_maxval", "relu6"}


def _map(x: Operand) -> Shape:
    require(len(x.shape) == 3, f"needs a C×H×W feature map, but {x.name} gives {fmt_shape(x.shape)}")
    return x.shape


def _out(n: int, size: int, stride: int, padding: int) -> int:
    return (n + padding - size) // stride + 1  # `padding` is the total added along the axis


BLUR = {1: (3, 1), 2: (2, 0)}  # antialiasing -> (blur size, blur padding per side)


def blurred(h: int, w: int, antialiasing: int, stride_y: int, stride_x: int) -> tuple[int, int]:
    size, pad = BLUR[antialiasing]
    return _out(h, size, stride_y, 2 * pad), _out(w, size, stride_x, 2 * pad)


class DarknetConv(LayerSpec):
    """The fork's [convolutional]: strides per axis, dilation (Darknet pads padding·dilation and
    sizes the output as if dilation were 1), `antialiasing` (the conv at stride 1, its activation,
    then a fixed depthwise blur at the stride), `xnor` (binary weights and inputs), Darknet's
    activations. Batch norm in eval: (x − mean)/sqrt(var + 1e-5)·scale + shift."""

    type: Literal["DarknetConv"] = "DarknetConv"
    filters: int = Field(ge=1, le=65536)
    size: int = Field(1, ge=1, le=31)
    stride: int = Field(1, ge=1, le=64, description="along the width (Darknet stride_x)")
    stride_y: int | None = Field(None, ge=1, le=64, description="along the height; default: stride")
    padding: int = Field(0, ge=0, le=64, description="zeros on each side")
    dilation: int = Field(1, ge=1, le=64)
    groups: int = Field(1, ge=1, le=65536)
    bn: bool | BatchNorm = Field(
        False, description="batch norm (Darknet batch_normalize; true: Darknet's momentum 0.01); else a bias"
    )
    activation: DarknetActivation = "logistic"
    antialiasing: Literal[0, 1, 2] = Field(0, description="1: 3×3 blur, 2: 2×2 blur after the activation")
    xnor: bool = Field(False, description="binary weights and inputs (XNOR-Net), scaled by mean |W|")
    bin_output: bool = Field(False, description="xnor: the fork passes binarised outputs on (not built)")
    share: int | None = Field(
        None, description="Darknet share_index: the conv layer whose weights (and batch norm) it uses"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.dilation > 1 and 2 * self.padding != self.size - 1:
            raise ValueError("dilation needs padding = (size − 1)/2: else Darknet's output size is wrong")
        if self.xnor and self.groups != 1:
            raise ValueError("xnor convs have groups=1 (Darknet forces it)")
        if self.size == 1 and self.stride == 1 and self.strides[0] != 1:
            raise ValueError(
                "a 1×1 conv with stride_x=1 and stride_y≠1: the fork's forward skips im2col on 1×1 "
                "stride-1 convs (it looks at stride_x only), so its output is not a convolution"
            )
        return self

    @property
    def strides(self) -> tuple[int, int]:
        return (self.stride if self.stride_y is None else self.stride_y), self.stride

    @property
    def batch_norm(self) -> BatchNorm | None:
        if self.bn is False:
            return None
        return BatchNorm(momentum=0.01) if self.bn is True else self.bn

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        c, h, w = _map(inputs[0])
        require(
            c % self.groups == 0 and self.filters % self.groups == 0,
            f"groups={self.groups} must divide the input channels ({c}) and filters ({self.filters})",
        )
        sy, sx = (1, 1) if self.antialiasing else self.strides
        oh, ow = _out(h, self.size, sy, 2 * self.padding), _out(w, self.size, sx, 2 * self.padding)
        require(oh >= 1 and ow >= 1, f"the conv shrinks {inputs[0].name}'s {h}×{w} map below 1×1")
        macs = self.filters * (c // self.groups) * self.size * self.size * oh * ow
        params = self.filters * (c // self.groups) * self.size**2 + (2 if self.bn else 1) * self.filters
        if self.share is not None:
            params = 0  # the shared layer's weights, counted (and stored in .weights) there once
        if self.antialiasing:
            oh, ow = blurred(oh, ow, self.antialiasing, *self.strides)
        return LayerCost((self.filters, oh, ow), params, macs)


class DarknetPool(LayerSpec):
    """The fork's [maxpool] and [local_avgpool]: windows from −(padding // 2), `padding` in all
    (default size − 1), strides per axis; `depth` (maxpool_depth) takes the max over channels
    g, g + out_channels, … instead; `antialiasing` pools at stride 1, then blurs at the stride.
    The average counts only pixels inside the image."""

    type: Literal["DarknetPool"] = "DarknetPool"
    size: int = Field(1, ge=1, le=64)
    stride: int = Field(1, ge=1, le=64, description="along the width (Darknet stride_x)")
    stride_y: int | None = Field(None, ge=1, le=64, description="default: stride")
    padding: int = Field(0, ge=0, le=128, description="total padding per axis")
    average: bool = Field(False, description="[local_avgpool]: the mean instead of the max")
    depth: bool = Field(False, description="maxpool_depth: pool over channels, not space")
    out_channels: int = Field(1, ge=1, le=65536, description="channels of a depth pool")
    antialiasing: Literal[0, 1, 2] = 0

    @property
    def strides(self) -> tuple[int, int]:
        return (self.stride if self.stride_y is None else self.stride_y), self.stride

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        c, h, w = _map(inputs[0])
        if self.depth:
            return LayerCost((self.out_channels, h, w))
        sy, sx = (1, 1) if self.antialiasing else self.strides
        oh, ow = _out(h, self.size, sy, self.padding), _out(w, self.size, sx, self.padding)
        require(oh >= 1 and ow >= 1, f"the pool shrinks {inputs[0].name}'s {h}×{w} map below 1×1")
        if self.antialiasing:
            oh, ow = blurred(oh, ow, self.antialiasing, *self.strides)
        return LayerCost((c, oh, ow))


class GroupRoute(LayerSpec):
    """[route] with groups/group_id: each input cut into `groups` equal channel chunks, chunk
    `group` of each, concatenated (yolov4-tiny's CSP split); with `detach` (onlyforward=1) the
    layers before it get no gradient through it, as Darknet's backward pass skips the layer."""

    type: Literal["GroupRoute"] = "GroupRoute"
    from_: Ref | list[Ref] = Field(alias="from")
    groups: int = Field(1, ge=1, le=65536)
    group: int = Field(0, ge=0, description="Darknet group_id")
    detach: bool = Field(False, description="Darknet onlyforward: no gradient flows back through it")
    arity: ClassVar[tuple[int, int | None]] = (1, None)

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        require(self.group < self.groups, f"group_id={self.group} must be below groups={self.groups}")
        first = _map(inputs[0])
        for x in inputs:
            require(_map(x)[1:] == first[1:], f"{x.name} ({fmt_shape(x.shape)}) has another spatial size")
            require(x.shape[0] % self.groups == 0, f"groups={self.groups} must divide {x.name}'s channels")
        return LayerCost((sum(x.shape[0] for x in inputs) // self.groups, *first[1:]))


class WeightedShortcut(LayerSpec):
    """The fork's [shortcut] of several layers, with learned weights (weights_type) and their
    normalisation: out = w₀·prev + Σ wᵢ·fromᵢ, then the activation. The buffers are added flat
    over the shorter length: a `from` with fewer channels meets the first ones, with more only its
    first C channels count; maps of other spatial sizes are added flat too (as the fork does)."""

    type: Literal["WeightedShortcut"] = "WeightedShortcut"
    from_: list[Ref] = Field(alias="from", description="the layers added to the previous one")
    activation: DarknetActivation = "linear"
    weights: Literal["none", "per_feature", "per_channel"] = Field("none", description="weights_type")
    normalization: Literal["none", "relu", "softmax"] = Field("none", description="weights_normalization")
    arity: ClassVar[tuple[int, int | None]] = (2, None)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.weights != "none" and self.normalization == "none":
            raise ValueError("weights_type needs weights_normalization (Darknet stops without one)")
        return self

    def sources(self) -> list[Ref]:
        return [-1, *self.from_]

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        out = _map(inputs[0])
        for x in inputs[1:]:
            _map(x)  # any C×H×W map: the fork adds the buffers flat
        k = {"none": 0, "per_feature": 1, "per_channel": out[0]}[self.weights]
        return LayerCost(out, k * len(inputs))


class ScaleChannels(LayerSpec):
    """[scale_channels]: `from` times the previous layer, which is C×1×1 (squeeze-excitation), or
    1×H×W with `scale_wh` (one map for every channel)."""

    type: Literal["ScaleChannels"] = "ScaleChannels"
    from_: Ref = Field(alias="from")
    scale_wh: bool = False
    activation: DarknetActivation = "linear"
    arity: ClassVar[tuple[int, int | None]] = (2, 2)

    def sources(self) -> list[Ref]:
        return [-1, self.from_]

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        scale, x = inputs[0].shape, _map(inputs[1])
        want = (1, *x[1:]) if self.scale_wh else (x[0], 1, 1)
        got = scale if len(scale) == 3 else (*scale, 1, 1)
        require(
            got == want,
            f"{inputs[0].name} gives {fmt_shape(scale)}; scaling {inputs[1].name} needs {fmt_shape(want)}",
        )
        return LayerCost(x)


class Sam(LayerSpec):
    """[sam]: spatial attention, `from` times the previous layer, elementwise (same shapes)."""

    type: Literal["Sam"] = "Sam"
    from_: Ref = Field(alias="from")
    activation: DarknetActivation = "linear"
    arity: ClassVar[tuple[int, int | None]] = (2, 2)

    def sources(self) -> list[Ref]:
        return [-1, self.from_]

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        require(inputs[0].shape == _map(inputs[1]), f"{inputs[0].name} and {inputs[1].name} differ in shape")
        return LayerCost(inputs[1].shape)


class Reorg3d(LayerSpec):
    """[reorg3d]: space to depth by `stride` in Darknet's memory order (reorg_cpu with the output's
    sizes); `reverse` goes depth to space."""

    type: Literal["Reorg3d"] = "Reorg3d"
    stride: int = Field(2, ge=1, le=64)
    reverse: bool = False

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        c, h, w = _map(inputs[0])
        s = self.stride
        if self.reverse:
            require(c % (s * s) == 0, f"reverse stride {s} needs channels divisible by {s * s}")
            return LayerCost((c // (s * s), h * s, w * s))
        require(h % s == 0 and w % s == 0, f"stride {s} needs sides divisible by {s}")
        return LayerCost((c * s * s, h // s, w // s))


class Implicit(LayerSpec):
    """[implicit] (YOLOR): a learned filters×atoms×1 tensor, independent of the input."""

    type: Literal["Implicit"] = "Implicit"
    filters: int = Field(128, ge=1, le=65536)
    atoms: int = Field(1, ge=1, le=65536)
    mean: float = Field(0.0, description="initial mean (Darknet `mean`)")
    std: float = Field(0.2, description="initial spread (Darknet `std`)")

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        return LayerCost((self.filters, self.atoms, 1), self.filters * self.atoms)


class DarknetUpsample(LayerSpec):
    """The fork's [upsample] with `scale` (output × scale) or a negative stride (sum of
    |stride|×|stride| blocks, × scale)."""

    type: Literal["DarknetUpsample"] = "DarknetUpsample"
    stride: int = Field(2, ge=-64, le=64)
    scale: float = 1.0

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        c, h, w = _map(inputs[0])
        s = self.stride
        require(s != 0, "stride 0 is not a resampling")
        if s < 0:
            require(h % -s == 0 and w % -s == 0, f"stride {s} needs sides divisible by {-s}")
            return LayerCost((c, h // -s, w // -s))
        return LayerCost((c, h * s, w * s))


class DarknetActivationLayer(LayerSpec):
    """[activation]: one of Darknet's activations on its own."""

    type: Literal["DarknetActivationLayer"] = "DarknetActivationLayer"
    activation: DarknetActivation = "linear"

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        return LayerCost(inputs[0].shape)


class Empty(LayerSpec):
    """[empty] / [silence]: the input passes through (Darknet keeps the layer number)."""

    type: Literal["Empty"] = "Empty"
    silence: bool = Field(False, description="written [silence] rather than [empty]")

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        return LayerCost(inputs[0].shape)


class DarknetBatchNorm(LayerSpec):
    """[batchnorm]: batch norm on its own (Darknet stores shift, scale, rolling mean, variance)."""

    type: Literal["DarknetBatchNorm"] = "DarknetBatchNorm"
    norm: BatchNorm = Field(default_factory=lambda: BatchNorm(momentum=0.01), description="its numerics")

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        c, _, _ = _map(inputs[0])
        return LayerCost(inputs[0].shape, 2 * c)


class Contrastive(LayerSpec):
    """[contrastive]: the fork's contrastive loss over a [yolo] layer's embeddings (training only:
    its forward returns at once in inference). Kept as a marker; the input passes through."""

    type: Literal["Contrastive"] = "Contrastive"
    classes: int = Field(1000, ge=1, le=100_000)
    yolo_layer: int = Field(description="the [yolo] layer whose boxes it reads (Darknet yolo_layer)")
    temperature: float = 1.0
    cls_normalizer: float = 1.0
    max_delta: float | None = Field(None, description="default: no clipping")
    contrastive_neg_max: int = 3

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        return LayerCost(inputs[0].shape)


FORK = (
    DarknetConv, DarknetPool, GroupRoute, WeightedShortcut, ScaleChannels, Sam, Reorg3d, Implicit,
    DarknetUpsample, DarknetActivationLayer, Empty, Contrastive, DarknetBatchNorm,
)  # fmt: skip
