"""torch.export programs (.pt2), with darkforge's metadata as an extra file."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from darkforge.export.common import ExportJob, Runner, dynamic_shapes, example


def write_pt2(job: ExportJob, path: Path) -> None:
    # The model is in eval mode, so batch norm is traced with its running statistics (a batch of
    # any size gives each sample the same output); a train-mode trace would bake in batch statistics.
    program = torch.export.export(job.model, (example(job),), dynamic_shapes=dynamic_shapes(job))
    torch.export.save(program, path, extra_files={"darkforge.json": json.dumps(job.metadata())})


def load_pt2(path: Path, job: ExportJob) -> tuple[Runner, str]:
    module = torch.export.load(path).module()

    def run(x: Tensor) -> tuple[Tensor, ...]:
        with torch.no_grad():
            out = module(x)
        return tuple(out) if isinstance(out, list | tuple) else (out,)

    return run, "torch.export.load"
