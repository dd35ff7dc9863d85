"""Position self-attention (YOLO11's PSA) as a layer type, and the C2PSA block built on it.

`Attention` is multi-head self-attention over the H·W positions of a C×H×W map, with a depthwise
3×3 positional term on the values (YOLO11 paper; Ultralytics' `Attention`). Its three convs are
conv -> batch norm without activation (`yolo_conv`), named `qkv`, `proj`, `pe` in the module
(darkforge/nn/attention.py) as in Ultralytics' state_dicts. With it, C2PSA is writable as a block
of the dialect; the built-in `C2PSA` uses the same module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from darkforge.spec.base import LayerCost, LayerSpec, Operand, require
from darkforge.spec.layers.csp import YOLO_BN, YoloBlock, chain, map_of, with_channels, yolo_conv
from darkforge.spec.layers.numerics import BatchNorm


class Attention(LayerSpec):
    """Multi-head self-attention over positions (YOLO11's PSA attention): qkv (1×1 to C + 2·key·heads)
    split per head into q, k (key rows each) and v (C / heads rows); softmax(qᵀk / √key) weights
    the values; a depthwise 3×3 of v is added; proj (1×1, C -> C). Keeps the input's shape; its
    channels come from its input (no `filters`, not width-scaled). With it, C2PSA is writable as
    a block: PSA blocks of Attention + Shortcut, then Conv 1×1 (2C, silu) -> Conv 1×1 (C, linear)
    + Shortcut, on the second Slice half of a 1×1 conv, Route of both halves, 1×1 conv
    (tests/nn/test_attention.py, the same parameters and outputs as the built-in C2PSA)."""

    type: Literal["Attention"] = "Attention"
    heads: int | None = Field(
        None, ge=1, le=65536, description="attention heads; default max(1, channels // 64), Ultralytics' rule"
    )
    key_ratio: float = Field(
        0.5, gt=0, le=1, description="query and key width per head = int(channels / heads · key_ratio)"
    )
    bn: BatchNorm = Field(YOLO_BN, description="batch norm of the three convs (none has an activation)")

    def widths(self, x: Operand) -> tuple[int, int, int]:
        """(heads, key width, head width) for the input's channels."""
        c = x.shape[0]
        heads = self.heads if self.heads is not None else max(1, c // 64)
        require(
            c % heads == 0,
            f"{heads} heads do not divide the {c} channels of {x.name}: give `heads` a divisor of {c}",
        )
        head = c // heads
        key = int(head * self.key_ratio)
        require(key >= 1, f"key width int({head} · {self.key_ratio}) is 0: raise `key_ratio`")
        return heads, key, head

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = map_of(inputs[0])
        c = x.shape[0]
        heads, key, head = self.widths(x)
        qkv = yolo_conv(x, c + 2 * key * heads)
        pe, proj = yolo_conv(x, c, 3, 1, c), yolo_conv(x, c)
        # besides the convs, the qᵀ·k and v·attentionᵀ products: heads · N² · (key + head width)
        # multiply-accumulates over the N = H·W positions (torch's FlopCounterMode counts them too)
        positions = x.shape[1] * x.shape[2]
        macs = heads * positions * positions * (key + head)
        products = LayerCost(x.shape, macs=macs, maps=0, products=macs)
        return qkv + pe + proj + products


class C2PSA(YoloBlock):
    """cv1 (1×1 to 2·hidden) split in halves; `blocks` PSA blocks (an `Attention` over positions,
    then a 2× feed-forward of 1×1 convs, each with a residual add) on the second; cv2 (1×1) over
    both halves (YOLO11). Heads: hidden // 64; key width: half the head width."""

    type: Literal["C2PSA"] = "C2PSA"

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        x = map_of(inputs[0])
        require(
            x.shape[0] == self.filters,
            f"C2PSA keeps its channels: {x.name} gives {x.shape[0]}, filters is {self.filters}",
        )
        c = self.hidden
        y = with_channels(x, c)
        block = Attention(bn=self.bn).infer([y]) + chain(y, (2 * c, 1, 1), (c, 1, 1))
        cv1 = yolo_conv(x, 2 * c)
        cv2 = yolo_conv(with_channels(x, 2 * c), self.filters)
        params = cv1.params + self.blocks * block.params + cv2.params
        macs = cv1.macs + self.blocks * block.macs + cv2.macs
        maps = cv1.produced + self.blocks * block.produced + cv2.produced
        return LayerCost(cv2.output, params, macs, maps=maps, products=self.blocks * block.products)


ATTENTION = (Attention, C2PSA)
