"""ONNX: torch's torch.export-based exporter; run back with onnxruntime (or onnx's reference
evaluator when onnxruntime is missing)."""

from __future__ import annotations

import importlib.util
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from darkforge.errors import UsageError
from darkforge.export.common import INPUT_NAME, ExportJob, Runner, dynamic_shapes, example

INSTALL_ONNX = "pip install 'darkforge[onnx]'"


def needs_onnx() -> None:
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"--format onnx needs {' and '.join(missing)}", f"install them: {INSTALL_ONNX}")


def write_onnx(job: ExportJob, path: Path) -> None:
    # dynamo=True: the exporter torch maintains (the TorchScript one is deprecated since torch 2.9
    # and warns on every call). It captures the graph with torch.export, as .pt2 does, so one
    # dynamic-batch spelling serves both, and it names outputs as asked. Measured with torch 2.14
    # on darknet53 and yolo-mini, both exporters match torch within 1e-7; the legacy one takes
    # ~1 s where this one takes 3-10 s, a one-off cost worth the supported path.
    with warnings.catch_warnings():
        # torchvision's nms meta function calls a torch API torch deprecates (--nms); not ours to fix
        warnings.filterwarnings("ignore", "`create_unbacked_symint` is deprecated", FutureWarning)
        program = _export(job)
    # Netron shows these under the model's properties; values are JSON, as in our safetensors.
    program.model.metadata_props.update({k: json.dumps(v) for k, v in job.metadata().items()})
    program.save(str(path), external_data=False)


def _export(job: ExportJob) -> Any:
    program = torch.onnx.export(
        job.module,
        (example(job),),
        dynamo=True,
        verbose=False,
        input_names=[INPUT_NAME],
        output_names=job.output_names(),
        dynamic_shapes=dynamic_shapes(job),
        external_data=False,  # one self-contained file (protobuf caps it at 2 GB)
    )
    assert program is not None  # dynamo=True always returns the program
    return program


def load_onnx(path: Path, job: ExportJob) -> tuple[Runner, str]:
    run: Callable[[np.ndarray], Any]
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime  # optional: the [onnx] extra

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # as many threads as torch's side uses
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        run, runner = lambda x: session.run(None, {INPUT_NAME: x}), "onnxruntime"
    else:  # onnx's own NumPy interpreter: slow, but needs nothing more
        from onnx.reference import ReferenceEvaluator  # optional: the [onnx] extra

        evaluator = ReferenceEvaluator(str(path))
        run, runner = lambda x: evaluator.run(None, {INPUT_NAME: x}), "onnx.reference"
    return lambda x: tuple(torch.from_numpy(np.asarray(y)) for y in run(x.numpy())), runner
