"""torch.export programs (.pt2), with darkforge's metadata as an extra file."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch
from torch import Tensor

from darkforge.export.common import ExportJob, Runner, dynamic_shapes, example


def write_pt2(job: ExportJob, path: Path) -> None:
    # The model is in eval mode, so batch norm is traced with its running statistics (a batch of
    # any size gives each sample the same output); a train-mode trace would bake in batch statistics.
    with warnings.catch_warnings():  # torchvision's nms meta function (--nms), as in onnx.py
        warnings.filterwarnings("ignore", "`create_unbacked_symint` is deprecated", FutureWarning)
        program = torch.export.export(job.module, (example(job),), dynamic_shapes=dynamic_shapes(job))
    # Into memory first: on a full disk torch's zip writer throws from its C++ destructor, which
    # aborts the process at exit; a Python write fails cleanly (darkforge.files.replacing).
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={"darkforge.json": json.dumps(job.metadata())})
    path.write_bytes(buffer.getbuffer())


def load_pt2(path: Path, job: ExportJob) -> tuple[Runner, str]:
    module = torch.export.load(path).module()

    def run(x: Tensor) -> tuple[Tensor, ...]:
        with torch.no_grad():
            out = module(x)
        return tuple(out) if isinstance(out, list | tuple) else (out,)

    return run, "torch.export.load"
