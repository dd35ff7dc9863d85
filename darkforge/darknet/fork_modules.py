"""nn.Modules of the AlexeyAB fork's layer types (specs in darkforge/darknet/fork.py), each
following the fork's CPU forward pass (src/*_layer.c, blas.c). Same constructor contract as
darkforge/nn/layers.py: (spec, static input shapes). Layers with weights of their own outside a
conv or linear ([shortcut] weights_type, [implicit]) hold them as `darknet_weights`, which
darkforge/darknet/weights.py reads and writes in Darknet's order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from darkforge.darknet import fork
from darkforge.darknet.activations import activation
from darkforge.errors import SpecError
from darkforge.nn.norm import batch_norm
from darkforge.spec.base import Shape


class Blur(nn.Module):
    """The fixed depthwise blur of `antialiasing` (not in the .weights): 1 → [1 2 1]ᵀ[1 2 1]/16
    with padding 1, 2 → a 2×2 box/4 without padding; at the layer's strides."""

    def __init__(self, channels: int, kind: int, strides: tuple[int, int]) -> None:
        super().__init__()
        if kind == 1:
            row = torch.tensor([1.0, 2.0, 1.0])
            kernel = torch.outer(row, row) / 16
        else:
            kernel = torch.full((2, 2), 0.25)
        self.kernel: Tensor
        self.register_buffer("kernel", kernel.expand(channels, 1, *kernel.shape).clone(), persistent=False)
        self.padding, self.strides, self.channels = fork.BLUR[kind][1], strides, channels

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.kernel, stride=self.strides, padding=self.padding, groups=self.channels)


def _check_xnor(spec: fork.DarknetConv) -> None:
    """An xnor conv builds only where darkforge computes what the fork's binary path computes."""
    if not spec.xnor:
        return
    sy, sx = spec.strides
    why = {
        "batch_normalize=1": spec.batch_norm is not None,
        "bin_output=1": spec.bin_output,
        "stride_x != stride_y": sx != sy,
        "dilation": spec.dilation > 1,
        "antialiasing": bool(spec.antialiasing),
        "share_index": spec.share is not None,
    }
    found = [what for what, present in why.items() if present]
    if found:
        raise SpecError(
            f"DarknetConv: xnor=1 with {found[0]}: the fork's binary inference path for it is not "
            "reproduced exactly, and darkforge does not build an xnor conv as a float one",
            "remove xnor (a float network) or that key",
        )


class DarknetConv(nn.Module):
    """conv -> batch norm (or bias) -> activation -> blur; `xnor`: sign(x) ⊛ sign(W)·mean|W| + bias,
    the padding counting as −1 (Darknet's binarised zeros)."""

    def __init__(self, spec: fork.DarknetConv, inputs: Sequence[Shape]) -> None:
        super().__init__()
        norm = spec.batch_norm
        _check_xnor(spec)
        self.share = spec.share
        c = inputs[0][0]
        strides = (1, 1) if spec.antialiasing else spec.strides
        self.xnor, self.padding = spec.xnor, spec.padding
        pad = 0 if spec.xnor else spec.padding * spec.dilation
        self.conv = nn.Conv2d(
            c, spec.filters, spec.size, strides, pad, spec.dilation, spec.groups, bias=norm is None
        )
        self.bn = batch_norm(norm, spec.filters) if norm else nn.Identity()
        self.act = activation(spec.activation)
        self.blur = (
            Blur(spec.filters, spec.antialiasing, spec.strides) if spec.antialiasing else nn.Identity()
        )

    def tie(self, earlier: Sequence[nn.Module]) -> None:
        """share_index: compute with that earlier conv's weight (and bias or batch norm), as
        Darknet's make_convolutional_layer points l.weights, l.biases, l.scales and the rolling
        statistics at share_layer's: one set of parameters, trained by both, stored once (in
        the state dict and the .weights, under the layer that owns them); this layer keeps its
        own strides, padding and dilation (resnet152_trident's branches)."""
        if self.share is None:
            return
        target = len(earlier) + self.share if self.share < 0 else self.share
        source = earlier[target] if 0 <= target < len(earlier) else None
        source = getattr(source, "__dict__", {}).get("source", source)  # a sharer: its source's weights
        conv = getattr(source, "conv", None)
        if not isinstance(conv, nn.Conv2d) or conv.weight.shape != self.conv.weight.shape:
            raise SpecError(
                f"DarknetConv: share_index={self.share} names layer {target}, not a conv of the same shape",
                "share_index names the conv whose weights this one uses",
            )
        own = self.conv
        self.geometry: tuple[Any, Any, Any, int] = (own.stride, own.padding, own.dilation, own.groups)
        del self.conv, self.bn  # this layer's own weights are not used
        object.__setattr__(self, "source", source)  # not a submodule: the parameters stay the source's

    def _conv_bn(self, x: Tensor) -> Tensor:
        if self.share is None:
            return self.bn(self.conv(x))  # type: ignore[no-any-return]
        source: Any = self.__dict__.get("source")
        if source is None:
            raise SpecError("DarknetConv: share_index is tied by the network that holds both layers")
        stride, padding, dilation, groups = self.geometry
        y = F.conv2d(x, source.conv.weight, source.conv.bias, stride, padding, dilation, groups)
        return source.bn(y)  # type: ignore[no-any-return]

    def forward(self, x: Tensor) -> Tensor:
        if self.xnor:
            x = F.pad(torch.where(x > 0, 1.0, -1.0), (self.padding,) * 4, value=-1.0)
            w = self.conv.weight
            scale = w.abs().mean(dim=(1, 2, 3), keepdim=True)
            y = F.conv2d(x, torch.where(w > 0, 1.0, -1.0) * scale, self.conv.bias, self.conv.stride)
        else:
            y = self._conv_bn(x)
        return self.blur(self.act(y))


class DarknetPool(nn.Module):
    """maxpool_layer.c: windows from −(padding // 2); max (outside pixels never win) or the mean of
    the pixels inside the image; over channels g, g + K, … with maxpool_depth."""

    def __init__(self, spec: fork.DarknetPool, inputs: Sequence[Shape]) -> None:
        super().__init__()
        before = spec.padding // 2
        self.pad = (before, spec.padding - before) * 2
        self.size, self.average, self.depth, self.k = spec.size, spec.average, spec.depth, spec.out_channels
        self.strides = (1, 1) if spec.antialiasing else spec.strides
        channels = inputs[0][0]
        self.blur = Blur(channels, spec.antialiasing, spec.strides) if spec.antialiasing else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        if self.depth:
            b, c, h, w = x.shape
            rows = -(-c // self.k)
            x = F.pad(x, (0, 0, 0, 0, 0, rows * self.k - c), value=float("-inf"))
            return x.view(b, rows, self.k, h, w).amax(1)
        if self.average:
            total = F.avg_pool2d(F.pad(x, self.pad), self.size, self.strides, divisor_override=1)
            ones = F.pad(torch.ones_like(x[:1, :1]), self.pad)
            return total / F.avg_pool2d(ones, self.size, self.strides, divisor_override=1)
        y = F.max_pool2d(F.pad(x, self.pad, value=float("-inf")), self.size, self.strides)
        return self.blur(y)


class GroupRoute(nn.Module):
    def __init__(self, spec: fork.GroupRoute, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.groups, self.group, self.detach = spec.groups, spec.group, spec.detach

    def forward(self, *xs: Tensor) -> Tensor:
        y = torch.cat([x.chunk(self.groups, 1)[self.group] for x in xs], 1)
        return y.detach() if self.detach else y


def _added(out: Tensor, x: Tensor, weight: Tensor) -> Tensor:
    """shortcut_multilayer_cpu: out[i] += w[channel of i]·x[i] over the first min(len) elements of
    the flat buffers (so a `from` with fewer channels meets the first channels, one with more gives
    its first C; maps of other spatial sizes are added flat, as the fork does)."""
    flat, extra = out.flatten(1), x.flatten(1)
    n = min(flat.shape[1], extra.shape[1])
    per_element = weight.view(-1, 1).expand(-1, flat.shape[1] // weight.numel()).reshape(1, -1)
    head = flat[:, :n] + per_element[:, :n] * extra[:, :n]
    return torch.cat([head, flat[:, n:]], 1).view_as(out)


class WeightedShortcut(nn.Module):
    def __init__(self, spec: fork.WeightedShortcut, inputs: Sequence[Shape]) -> None:
        super().__init__()
        k = {"none": 0, "per_feature": 1, "per_channel": inputs[0][0]}[spec.weights]
        self.normalization = spec.normalization
        self.darknet_weights = nn.Parameter(torch.ones(len(inputs), k)) if k else None
        self.act = activation(spec.activation)

    def forward(self, prev: Tensor, *adds: Tensor) -> Tensor:
        w: Tensor | None = self.darknet_weights
        if w is None:
            w = prev.new_ones(len(adds) + 1, 1)
        elif self.normalization == "relu":
            w = F.relu(w) / (1e-4 + F.relu(w).sum(0, keepdim=True))
        else:
            e = torch.exp(w - w.amax(0, keepdim=True))
            w = e / (1e-4 + e.sum(0, keepdim=True))
        out = prev * w[0].view(1, -1, 1, 1)
        for i, x in enumerate(adds, 1):
            out = _added(out, x, w[i])
        return self.act(out)


class ScaleChannels(nn.Module):
    def __init__(self, spec: fork.ScaleChannels, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.act = activation(spec.activation)

    def forward(self, scale: Tensor, x: Tensor) -> Tensor:
        if scale.dim() == 2:
            scale = scale[:, :, None, None]
        return self.act(x * scale)


class Sam(nn.Module):
    def __init__(self, spec: fork.Sam, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.act = activation(spec.activation)

    def forward(self, scale: Tensor, x: Tensor) -> Tensor:
        return self.act(x * scale)


def reorg_index(w: int, h: int, c: int, stride: int) -> Tensor:
    """reorg_cpu's out_index for every in_index (one image), as a flat index tensor."""
    out_c = c // (stride * stride)
    k = torch.arange(c).view(c, 1, 1)
    j = torch.arange(h).view(1, h, 1)
    i = torch.arange(w).view(1, 1, w)
    c2, offset = k % out_c, k // out_c
    w2, h2 = i * stride + offset % stride, j * stride + offset // stride
    return (w2 + w * stride * (h2 + h * stride * c2)).flatten()


class Reorg3d(nn.Module):
    """reorg_cpu with the output's w, h, c: forward=0 gathers, reverse (forward=1) scatters."""

    def __init__(self, spec: fork.Reorg3d, inputs: Sequence[Shape]) -> None:
        super().__init__()
        out = spec.infer([fork.Operand(tuple(inputs[0]), "input")]).output
        self.out, self.reverse = out, spec.reverse
        c, h, w = out
        self.index: Tensor
        self.register_buffer("index", reorg_index(w, h, c, spec.stride), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        flat = x.flatten(1)
        if self.reverse:
            y = torch.empty_like(flat)
            y[:, self.index] = flat
        else:
            y = flat[:, self.index]
        return y.view(x.shape[0], *self.out)


class Implicit(nn.Module):
    def __init__(self, spec: fork.Implicit, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.darknet_weights = nn.Parameter(
            torch.empty(spec.filters, spec.atoms).normal_(
                spec.mean, abs(spec.std)
            )  # mean + N(0,1)·std: a sign is no change
        )

    def forward(self, x: Tensor) -> Tensor:
        w = self.darknet_weights
        return w.view(1, *w.shape, 1).expand(x.shape[0], -1, -1, -1)


class DarknetUpsample(nn.Module):
    def __init__(self, spec: fork.DarknetUpsample, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.stride, self.scale = spec.stride, spec.scale

    def forward(self, x: Tensor) -> Tensor:
        s = self.stride
        if s < 0:
            return F.avg_pool2d(x, -s, divisor_override=1) * self.scale
        return x.repeat_interleave(s, 2).repeat_interleave(s, 3) * self.scale


class DarknetActivationLayer(nn.Module):
    def __init__(self, spec: fork.DarknetActivationLayer, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.act = activation(spec.activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x)


class Empty(nn.Identity):
    def __init__(self, spec: fork.Empty, inputs: Sequence[Shape]) -> None:
        super().__init__()


class Contrastive(nn.Identity):
    def __init__(self, spec: fork.Contrastive, inputs: Sequence[Shape]) -> None:
        super().__init__()


class DarknetBatchNorm(nn.Module):
    """forward_batchnorm_layer; its .weights hold shift, scale, rolling mean, rolling variance."""

    def __init__(self, spec: fork.DarknetBatchNorm, inputs: Sequence[Shape]) -> None:
        super().__init__()
        self.bn = batch_norm(spec.norm, inputs[0][0])

    def darknet_tensors(self) -> list[Tensor]:
        bn: Any = self.bn
        return [bn.bias, bn.weight, bn.running_mean, bn.running_var]

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(x)  # type: ignore[no-any-return]
