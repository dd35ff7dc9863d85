"""Modules of the attention layer types (darkforge/spec/layers/attention.py): `Attention` and the
C2PSA block built on it. Parts are named as in Ultralytics' state_dicts (`cv1`, `m.0.attn.qkv`,
`m.0.ffn.0`…), each conv darkforge's conv -> bn (`conv`, `bn` keys), so its weights load by name."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from darkforge.nn.csp import cbs
from darkforge.spec import layers as specs
from darkforge.spec.base import Operand, Shape
from darkforge.spec.layers.csp import YoloNumerics


class Attention(nn.Module):
    """Multi-head self-attention over the H·W positions: qkv (1×1), softmax(qᵀk / √key) per
    head, values weighted, plus a depthwise 3×3 positional term on v; proj (1×1)."""

    def __init__(self, spec: specs.Attention, inputs: Sequence[Shape]) -> None:
        super().__init__()
        c = inputs[0][0]
        self.heads, self.key_dim, self.head_dim = spec.widths(Operand(inputs[0], "the input"))
        self.scale = self.key_dim**-0.5
        plain = YoloNumerics(activation="linear", bn=spec.bn)  # no activation after any of the three
        self.qkv = cbs(plain, c, c + 2 * self.key_dim * self.heads)
        self.proj = cbs(plain, c, c)
        self.pe = cbs(plain, c, c, 3, groups=c)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        split = [self.key_dim, self.key_dim, self.head_dim]
        # (B, heads, key + key + head, N): per head its q, k and v rows over the N = H·W positions
        q, k, v = self.qkv(x).view(b, self.heads, sum(split), h * w).split(split, dim=2)
        attn = ((q.transpose(-2, -1) @ k) * self.scale).softmax(dim=-1)  # (B, heads, N, N)
        y = (v @ attn.transpose(-2, -1)).view(b, c, h, w) + self.pe(v.reshape(b, c, h, w))
        return self.proj(y)  # type: ignore[no-any-return]


class _PSABlock(nn.Module):
    """x + attn(x), then + ffn (1×1 to 2c with the activation, 1×1 back without)."""

    def __init__(self, spec: specs.C2PSA, c: int) -> None:
        super().__init__()
        self.attn = Attention(specs.Attention(bn=spec.bn), [(c, 1, 1)])  # heads: max(1, c // 64)
        self.ffn = nn.Sequential(cbs(spec, c, 2 * c), cbs(spec, 2 * c, c, act=False))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(x)
        return x + self.ffn(x)  # type: ignore[no-any-return]


class C2PSA(nn.Module):
    def __init__(self, spec: specs.C2PSA, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.c = c = spec.hidden
        self.cv1 = cbs(spec, inputs[0][0], 2 * c)
        self.cv2 = cbs(spec, 2 * c, spec.filters)
        self.m = nn.Sequential(*(_PSABlock(spec, c) for _ in range(spec.blocks)))

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)  # (B, c, H, W) each
        return self.cv2(torch.cat((a, self.m(b)), 1))


__all__ = ["C2PSA", "Attention"]
