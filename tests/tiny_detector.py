"""A tiny anchor-free detector (three convs + Detect at 32 px: 80 anchors) saved as a checkpoint, for
the eval/predict/export tests. Its weights are seeded random with batch-norm statistics moved off
their defaults, and its class biases at 0 (not the rare-object prior), so that random weights score
boxes around 0.5: NMS and the confidence filter have real work to do."""

from __future__ import annotations

from pathlib import Path

import torch

from darkforge.nn.detect import Detect
from darkforge.weights import checkpoint

TINY_DETECTOR = """\
version: 1
name: tinydet
input: {channels: 3, size: 32}
classes: 3
layers:
  - {type: Conv, filters: 8, size: 3, stride: 2, activation: silu}
  - {type: Conv, filters: 16, size: 3, stride: 2, activation: silu}
  - {type: Conv, filters: 16, size: 3, stride: 2, activation: silu}
  - {type: Detect, classes: classes, from: [1, 2]}
"""
NAMES = ["cat", "dog", "bird"]


def save_tiny_detector(path: Path, data: str | None = None, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    info = checkpoint.Inference(
        TINY_DETECTOR, str(path.parent / "tinydet.yaml"), None, NAMES, [3, 32, 32], [0.0] * 3, [1.0] * 3, data
    )
    model = info.build()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
            if isinstance(m, Detect):
                for branch in m.cv3:
                    branch[-1].bias.zero_()  # type: ignore[index]
    checkpoint.save(path, model.eval(), info)
    return path
