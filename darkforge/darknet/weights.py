"""Darknet .weights <-> the tensors of a built network.

Layout (pjreddie/darknet src/parser.c, load_weights_upto / save_weights_upto): int32 major, minor,
revision; `seen` (images trained on) as int64 when major·10 + minor ≥ 2 (both < 1000), else int32;
then float32 arrays for each layer that has weights, in layer order:

    [convolutional]  biases (batch norm's shift when batch_normalize), then if batch_normalize:
                     scales, rolling mean, rolling variance; then weights (out, in/groups, kh, kw)
    [connected]      biases, weights (out, in), then if batch_normalize: scales, mean, variance
    [shortcut]       (the fork's weights_type) weights (inputs, 1 or C); [implicit] filters × atoms

The file names no layers and no shapes, so the network decides how to cut it, and its size is
checked against the network before anything is read. Modules are registered in forward order
(docs/design.md), so a walk over named_modules() meets each conv or linear layer, then its batch norm,
in Darknet's layer order; the network's flat spelling (shapes.flatten) numbers them as Darknet
does, which is what `cutoff` counts. A 1×1 conv and a Linear hold the same floats in the same
order, so darknet53.cfg's conv head loads into darknet53.yaml's Linear head.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from darkforge.errors import DataError
from darkforge.files import check_regular, replacing
from darkforge.spec.shapes import flatten, plan

VERSION = (0, 2, 0)  # what we write: 64-bit `seen`


@dataclass(frozen=True)
class WeightedLayer:
    """One Darknet layer with weights: a conv or linear module and the batch norm after it."""

    layer: int  # Darknet's layer index
    name: str  # module path, e.g. "layers.c3.blocks.7.conv2"
    module: nn.Module  # a Conv2d or Linear, or a module holding `darknet_weights`
    bn: _BatchNorm | None

    def __str__(self) -> str:
        return f"layer {self.layer} ({self.name})"

    def tensors(self) -> list[Tensor]:
        """The tensors in file order (batch norm's shift stands in for the bias)."""
        own = _own(self.module)
        if own is not None:
            return [own]
        listed = getattr(self.module, "darknet_tensors", None)
        if callable(listed):  # a layer that names its own tensors in file order ([batchnorm])
            return list(listed())
        shift = self.bn.bias if self.bn is not None else _tensor(self.module, "bias")
        if shift is None:
            raise DataError(f"{self}: has neither a bias nor batch norm", "Darknet stores one of them")
        stats: list[Tensor] = []
        if self.bn is not None:
            assert self.bn.running_mean is not None and self.bn.running_var is not None  # track_running_stats
            stats = [self.bn.weight, self.bn.running_mean, self.bn.running_var]
        weight = _tensor(self.module, "weight")
        assert weight is not None
        return [shift, *stats, weight] if isinstance(self.module, nn.Conv2d) else [shift, weight, *stats]

    @property
    def floats(self) -> int:
        return sum(t.numel() for t in self.tensors())

    @property
    def params(self) -> int:
        modules: list[nn.Module] = [self.module] if self.bn is None else [self.module, self.bn]
        return sum(p.numel() for m in modules for p in m.parameters())


@dataclass(frozen=True)
class WeightsReport:
    action: str  # "loaded" or "saved"
    path: str
    layers: int  # Darknet layers with weights read or written
    total: int  # ... in the network
    params: int  # trainable parameters among them (the summary's count)
    version: tuple[int, int, int]
    seen: int

    def __str__(self) -> str:
        return f"{self.action} {self.layers} of {self.total} layers, {self.params:,} parameters"


def weighted_layers(model: nn.Module) -> list[WeightedLayer]:
    """The network's Darknet layers with weights, in file order."""
    found: list[tuple[str, nn.Module, _BatchNorm | None]] = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear) or _own(module) is not None or _lists(module):
            found.append((name, module, None))
        elif isinstance(module, _BatchNorm):
            if found and _lists(found[-1][1]) and name.startswith(found[-1][0] + "."):
                continue  # inside a layer that lists its own tensors
            weight = _tensor(found[-1][1], "weight") if found else None
            if weight is None or found[-1][2] is not None or weight.shape[0] != module.num_features:
                raise DataError(
                    f"{name}: a batch norm that follows no conv or linear layer", "Darknet has none"
                )
            found[-1] = (*found[-1][:2], module)
    indices = _darknet_indices(model, [sum(p.numel() for p in m.parameters()) for _, m, _ in found])
    return [WeightedLayer(i, name, m, bn) for i, (name, m, bn) in zip(indices, found, strict=True)]


def _darknet_indices(model: nn.Module, sizes: list[int]) -> list[int]:
    """Darknet's index of each weighted layer: from the flat spelling of a darkforge Network."""
    spec = getattr(model, "spec", None)
    if spec is None:  # any other module: each conv/linear layer counts as one Darknet layer
        return list(range(len(sizes)))
    weighted = [info.index for info in plan(flatten(spec)).layers if info.cost.params > 0]
    if len(weighted) != len(sizes):
        raise DataError(
            f"{spec.name}: {len(sizes)} conv/linear modules but {len(weighted)} Darknet layers with weights",
            "a layer type with weights of its own cannot be mapped onto Darknet's order",
        )
    return weighted


def load_darknet_weights(
    model: nn.Module, path: str | os.PathLike[str], cutoff: int | None = None
) -> WeightsReport:
    """Read a Darknet .weights file into `model`: all its layers, or those before `cutoff`
    (`*.conv.N` files, e.g. darknet53.conv.74, imply cutoff=N)."""
    file = check_regular(path, "give a Darknet .weights file")  # a FIFO would block the read
    every = weighted_layers(model)
    if cutoff is None and (match := re.search(r"\.conv\.(\d+)$", file.name)):
        cutoff = int(match.group(1))
    chosen = [u for u in every if cutoff is None or u.layer < cutoff]
    try:
        size = file.stat().st_size
        with file.open("rb") as handle:
            major, minor, revision, seen, header = _header(handle, file, size)
            _check_size(file, size, header, chosen, partial=cutoff is not None)
            data = np.fromfile(handle, dtype="<f4", count=sum(u.floats for u in chosen))
    except FileNotFoundError:
        raise DataError("no such file", "check the path", str(path)) from None
    transpose = _transposed(major, minor)  # Darknet's flag for [connected] weights stored (in, out)
    offset = 0
    with torch.no_grad():
        for unit in chosen:
            for tensor in unit.tensors():
                chunk = torch.from_numpy(data[offset : offset + tensor.numel()])
                if transpose and isinstance(unit.module, nn.Linear) and tensor is unit.module.weight:
                    chunk = chunk.view(unit.module.in_features, -1).t()
                tensor.copy_(chunk.reshape(tensor.shape))
                offset += tensor.numel()
            bias = _tensor(unit.module, "bias")
            if unit.bn is not None and bias is not None:
                bias.zero_()  # the file's shift is batch norm's; see save_darknet_weights
    params = sum(u.params for u in chosen)
    return WeightsReport("loaded", str(path), len(chosen), len(every), params, (major, minor, revision), seen)


def save_darknet_weights(
    model: nn.Module,
    path: str | os.PathLike[str],
    cutoff: int | None = None,
    seen: int = 0,
    version: tuple[int, int, int] = VERSION,
) -> WeightsReport:
    """Write `model` as a Darknet .weights file, atomically. The header is `version` (major, minor,
    revision; default 0.2.0) and `seen` at Darknet's width for that version, so a file read with
    load_darknet_weights and written back with its report's version and seen is the same bytes."""
    every = weighted_layers(model)
    chosen = [u for u in every if cutoff is None or u.layer < cutoff]
    major, minor, _ = version
    wide = _wide(major, minor)
    if not 0 <= seen < (1 << 64 if wide else 1 << 31):
        raise DataError(
            f"seen={seen} does not fit the {'64' if wide else '32'}-bit field of version {version}"
        )
    with replacing(path) as temp, temp.open("wb") as handle:
        handle.write(struct.pack("<3i" + ("Q" if wide else "i"), *version, seen))
        for unit in chosen:
            for tensor in _saved(unit):
                if (
                    _transposed(major, minor)
                    and isinstance(unit.module, nn.Linear)
                    and tensor is unit.module.weight
                ):
                    tensor = tensor.t()  # Darknet's flag: [connected] weights stored (in, out)
                handle.write(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return WeightsReport(
        "saved", str(path), len(chosen), len(every), sum(u.params for u in chosen), version, seen
    )


def _wide(major: int, minor: int) -> bool:
    """Darknet stores `seen` as 64 bits from version 0.2 on (both numbers below 1000)."""
    return major * 10 + minor >= 2 and major < 1000 and minor < 1000


def _transposed(major: int, minor: int) -> bool:
    return major > 1000 or minor > 1000


def _saved(unit: WeightedLayer) -> list[Tensor]:
    tensors = unit.tensors()
    bias = _tensor(unit.module, "bias")
    if unit.bn is not None and bias is not None:
        # Darknet has no conv bias under batch norm; fold it in exactly: bn(x + b) with mean m
        # equals bn(x) with mean m - b.
        index = 2 if isinstance(unit.module, nn.Conv2d) else 3
        tensors[index] = tensors[index] - bias
    return tensors


def _tensor(module: nn.Module, name: str) -> Tensor | None:
    value = getattr(module, name, None)
    return value if isinstance(value, Tensor) else None


def _lists(module: nn.Module) -> bool:
    return callable(getattr(module, "darknet_tensors", None))


def _own(module: nn.Module) -> Tensor | None:
    """The weights of a layer that is neither conv nor linear ([shortcut] weights, [implicit])."""
    return _tensor(module, "darknet_weights")


def _header(handle: BinaryIO, file: Path, size: int) -> tuple[int, int, int, int, int]:
    head = handle.read(12)
    if len(head) < 12:
        raise DataError(f"{file}: {size} bytes is too short for a Darknet weights header (at least 16)")
    major, minor, revision = struct.unpack("<3i", head)
    wide = _wide(major, minor)
    raw = handle.read(8 if wide else 4)
    if len(raw) < (8 if wide else 4):
        raise DataError(f"{file}: {size} bytes is too short for a version {major}.{minor} header")
    (seen,) = struct.unpack("<Q" if wide else "<i", raw)
    return major, minor, revision, seen, 12 + len(raw)


def _check_size(file: Path, size: int, header: int, chosen: list[WeightedLayer], partial: bool) -> None:
    """Every chosen layer must fit; without a cutoff, nothing may be left over."""
    end = header
    for k, unit in enumerate(chosen):
        start, end = end, end + 4 * unit.floats
        if end > size:
            expected = header + 4 * sum(u.floats for u in chosen)
            hint = "is the file for another network?"
            if k and start == size:
                last = chosen[k - 1].layer
                hint = f"it holds exactly the layers up to layer {last}: pass cutoff={last + 1} (--cutoff)"
            raise DataError(
                f"{file}: too short: {unit} needs bytes {start:,}–{end:,}, but the file has {size:,} bytes "
                f"({expected:,} expected for {len(chosen)} layers)",
                hint,
            )
    if size > end and not partial:
        after = f" after {chosen[-1]}" if chosen else ""
        raise DataError(
            f"{file}: too long: {size - end:,} bytes left over{after}; the network's {len(chosen)} layers "
            f"need {end:,} bytes, the file has {size:,}",
            "is the file for another network? to read only the first N layers, pass cutoff=N (--cutoff)",
        )
