"""Checkpoint -> a file another runtime loads: ONNX, a torch.export program (.pt2), Darknet .weights
(with the .cfg that says how to read them) or safetensors; and `verify`, which runs the written file
and measures how far its outputs are from the checkpoint's torch model.

Each format is one entry of darkforge.export.formats.FORMATS: how to write it, and how to load it
back to run it; darkforge.export.run writes (a temp file in the output's folder, renamed over the
output: a reader never sees half a file) and verifies.

The exported network takes what the checkpoint's network takes: images scaled to [0, 1], then
normalized with the checkpoint's mean and std (C×H×W, float32). Both travel in the file's metadata.

This package's own module is torch-free, so the CLI can list the formats without importing torch.
"""

from __future__ import annotations

TOLERANCE = 1e-4  # max abs difference `verify` accepts between the file's outputs and torch's
# Format name -> file suffix. Kept here, torch-free, so the CLI lists the formats without
# importing torch; darkforge.export.formats holds what each one does (a test keeps both in step).
SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2", "weights": ".weights", "safetensors": ".safetensors"}

__all__ = ["SUFFIXES", "TOLERANCE"]
