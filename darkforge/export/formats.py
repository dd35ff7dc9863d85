"""The export formats: how each is written, and how it is loaded back to run it.

Traced formats (ONNX, .pt2) fix the input shape, and the batch size unless it is left dynamic;
weight formats hold tensors only, and rebuild the network from the arch.
"""

from __future__ import annotations

from darkforge.export import SUFFIXES
from darkforge.export.common import Format
from darkforge.export.onnx import load_onnx, needs_onnx, write_onnx
from darkforge.export.pt2 import load_pt2, write_pt2
from darkforge.export.weights import (
    darknet_cfg,
    load_safetensors,
    load_weights,
    write_safetensors,
    write_weights,
)

FORMATS: dict[str, Format] = {
    "onnx": Format(SUFFIXES["onnx"], write_onnx, load_onnx, traced=True, needs=needs_onnx),
    "pt2": Format(SUFFIXES["pt2"], write_pt2, load_pt2, traced=True),
    "weights": Format(SUFFIXES["weights"], write_weights, load_weights, traced=False, companion=darknet_cfg),
    "safetensors": Format(SUFFIXES["safetensors"], write_safetensors, load_safetensors, traced=False),
}
