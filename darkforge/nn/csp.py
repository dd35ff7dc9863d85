"""Modules of the CSP layer types (darkforge/spec/layers/csp.py). Parts are named as in
Ultralytics' state_dicts (`cv1`, `cv2`, `cv3`, `m.0.cv1`…) so its weights load by name;
every conv is darkforge's conv -> bn -> act (`conv`, `bn` keys, as Ultralytics' Conv)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from darkforge.nn.layers import Conv
from darkforge.spec import layers as specs
from darkforge.spec.base import Shape
from darkforge.spec.layers.csp import YoloNumerics


def cbs(
    numerics: YoloNumerics,
    c1: int,
    c2: int,
    size: int = 1,
    stride: int = 1,
    groups: int = 1,
    act: bool = True,
) -> Conv:
    """conv (no bias, centred padding) -> bn -> activation (none when `act` is False)."""
    spec = specs.Conv.model_construct(
        filters=c2,
        size=size,
        stride=stride,
        groups=groups,
        bn=numerics.bn,
        bias=False,
        activation=numerics.activation if act else "linear",
    )
    return Conv(spec, [(c1, 1, 1)])


class _Bottleneck(nn.Module):
    """x + cv2(cv1(x)) (the add only when `shortcut` and the channels match)."""

    def __init__(
        self,
        numerics: YoloNumerics,
        c1: int,
        c2: int,
        shortcut: bool,
        groups: int,
        sizes: tuple[int, int],
        expansion: float,
    ) -> None:
        super().__init__()
        hidden = max(1, int(c2 * expansion))
        self.cv1 = cbs(numerics, c1, hidden, sizes[0])
        self.cv2 = cbs(numerics, hidden, c2, sizes[1], groups=groups)
        self.add = shortcut and c1 == c2

    def forward(self, x: Tensor) -> Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class YoloBottleneck(_Bottleneck):
    def __init__(self, spec: specs.YoloBottleneck, inputs: Sequence[Shape]) -> None:
        super().__init__(
            spec, inputs[0][0], spec.filters, spec.shortcut, spec.groups, spec.sizes, spec.expansion
        )


class _C3(nn.Module):
    """cv3(cat(m(cv1(x)), cv2(x))) with Bottlenecks of `sizes` (expansion 1)."""

    def __init__(
        self,
        numerics: YoloNumerics,
        c1: int,
        c2: int,
        blocks: int,
        shortcut: bool,
        groups: int,
        expansion: float,
        sizes: tuple[int, int],
    ) -> None:
        super().__init__()
        c = max(1, int(c2 * expansion))
        self.cv1 = cbs(numerics, c1, c)
        self.cv2 = cbs(numerics, c1, c)
        self.cv3 = cbs(numerics, 2 * c, c2)
        self.m = nn.Sequential(
            *(_Bottleneck(numerics, c, c, shortcut, groups, sizes, 1.0) for _ in range(blocks))
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class C3(_C3):
    def __init__(self, spec: specs.C3, inputs: Sequence[Shape]) -> None:
        args = (spec.blocks, spec.shortcut, spec.groups, spec.expansion)
        super().__init__(spec, inputs[0][0], spec.filters, *args, (1, 3))


class C2(nn.Module):
    """cv2(cat(m(a), b)), (a, b) the halves of cv1(x)."""

    def __init__(self, spec: specs.C2, inputs: Sequence[Shape]) -> None:
        super().__init__()
        c = spec.hidden
        self.cv1 = cbs(spec, inputs[0][0], 2 * c)
        self.cv2 = cbs(spec, 2 * c, spec.filters)
        self.m = nn.Sequential(
            *(_Bottleneck(spec, c, c, spec.shortcut, spec.groups, (3, 3), 1.0) for _ in range(spec.blocks))
        )

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.cv1(x).chunk(2, 1)
        return self.cv2(torch.cat((self.m(a), b), 1))


class C2f(nn.Module):
    """cv2(cat(a, b, m0(b), m1(m0(b)), …)), (a, b) the halves of cv1(x): every block's output
    joins the concatenation (registered cv1, cv2, m; run cv1, m, cv2)."""

    def __init__(self, spec: specs.C2f, inputs: Sequence[Shape]) -> None:
        super().__init__()
        c = spec.hidden
        self.cv1 = cbs(spec, inputs[0][0], 2 * c)
        self.cv2 = cbs(spec, (2 + spec.blocks) * c, spec.filters)
        self.m = nn.ModuleList(self.block(spec, c) for _ in range(spec.blocks))

    @staticmethod
    def block(spec: specs.C2f, c: int) -> nn.Module:
        return _Bottleneck(spec, c, c, spec.shortcut, spec.groups, (3, 3), 1.0)

    def forward(self, x: Tensor) -> Tensor:
        parts = list(self.cv1(x).chunk(2, 1))
        for block in self.m:
            parts.append(block(parts[-1]))
        return self.cv2(torch.cat(parts, 1))


class C3k2(C2f):
    """C2f with Bottlenecks of expansion 0.5, or C3k blocks (a C3 of two 3×3 Bottlenecks)."""

    @staticmethod
    def block(spec: specs.C2f, c: int) -> nn.Module:
        assert isinstance(spec, specs.C3k2)
        if spec.c3k:
            return _C3(spec, c, c, 2, spec.shortcut, spec.groups, 0.5, (3, 3))
        return _Bottleneck(spec, c, c, spec.shortcut, spec.groups, (3, 3), 0.5)


class SPP(nn.Module):
    def __init__(self, spec: specs.SPP, inputs: Sequence[Shape]) -> None:
        super().__init__()
        c = max(1, inputs[0][0] // 2)
        self.cv1 = cbs(spec, inputs[0][0], c)
        self.cv2 = cbs(spec, c * (len(spec.sizes) + 1), spec.filters)
        self.m = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in spec.sizes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.cv1(x)
        return self.cv2(torch.cat([x, *(pool(x) for pool in self.m)], 1))


class SPPF(nn.Module):
    def __init__(self, spec: specs.SPPF, inputs: Sequence[Shape]) -> None:
        super().__init__()
        c = max(1, inputs[0][0] // 2)
        self.cv1 = cbs(spec, inputs[0][0], c)
        self.cv2 = cbs(spec, 4 * c, spec.filters)
        self.m = nn.MaxPool2d(spec.size, 1, spec.size // 2)

    def forward(self, x: Tensor) -> Tensor:
        parts = [self.cv1(x)]
        for _ in range(3):
            parts.append(self.m(parts[-1]))
        return self.cv2(torch.cat(parts, 1))


class ZeroPad(nn.ZeroPad2d):
    def __init__(self, spec: specs.ZeroPad, inputs: Sequence[Shape]) -> None:
        super().__init__(spec.pad)


__all__ = ["C2", "C3", "SPP", "SPPF", "C2f", "C3k2", "YoloBottleneck", "ZeroPad"]
