"""What every export format works on: the network rebuilt from its checkpoint (ExportJob), the
file written (Exported), and how it is run back (Runner)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.export import Dim

from darkforge.export import TOLERANCE
from darkforge.nn.network import Network
from darkforge.spec.base import NetworkSpec
from darkforge.weights.checkpoint import Inference

INPUT_NAME = "input"
DYNAMIC_BATCHES = (2, 3)  # torch.export specializes sizes 0 and 1, so a dynamic batch is traced at 2
Runner = Callable[[Tensor], tuple[Tensor, ...]]


@dataclass(frozen=True)
class ExportJob:
    """The network to export, rebuilt from its checkpoint (it was `Source` before 0.2)."""

    checkpoint: Path
    model: Network  # eval mode, on the CPU
    info: Inference
    spec: NetworkSpec  # resolved: scale, input size and class count applied
    batch: int | None  # the batch size a traced export fixes; None: dynamic

    @property
    def shape(self) -> tuple[int, ...]:  # (C, H, W)
        return self.spec.input.shape

    def metadata(self) -> dict[str, Any]:
        """What a runtime needs besides the graph: classes, input shape, normalization, the arch
        (no local paths: the exported file leaves this machine)."""
        return self.info.public().as_dict() | {"input": list(self.shape)}

    def output_names(self) -> list[str]:
        # the output layers' ids ("fc", "head5"), so Netron and ONNX runtimes show what each one is
        layers = self.model.plan.layers
        return [layers[i].spec.id or f"layer{i}" for i in self.model.plan.outputs]


@dataclass(frozen=True)
class Format:
    suffix: str
    write: Callable[[ExportJob, Path], None]  # write the file at this (temporary) path
    load: Callable[[Path, ExportJob], tuple[Runner, str]]  # the written file, runnable; what runs it
    traced: bool  # the file fixes the input shape (and batch): --input-size/--batch/--dynamic-batch apply
    needs: Callable[[], None] = lambda: None  # raises UsageError when an optional package is missing
    # written beside the file (same stem): suffix -> text, and warnings; raises if it cannot be
    companion: Callable[[ExportJob], tuple[dict[str, str], list[str]]] | None = None


@dataclass(frozen=True)
class Exported:
    format: str
    path: Path
    files: list[Path]  # path first, then companions (a .weights file's .cfg)
    size: int  # bytes of `path`
    input: tuple[int | str, ...]  # (N, C, H, W); N is "batch" where any batch size runs
    seconds: float
    job: ExportJob = field(repr=False)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verification:
    runner: str  # what ran the file: onnxruntime, torch.export.load, ...
    batches: tuple[int, ...]
    max_diff: float  # max abs difference to the torch model, over every batch and output
    seconds: float
    tolerance: float = TOLERANCE

    @property
    def ok(self) -> bool:
        return self.max_diff <= self.tolerance  # False for NaN too


def example(job: ExportJob) -> Tensor:
    return torch.randn(job.batch or DYNAMIC_BATCHES[0], *job.shape)


def dynamic_shapes(job: ExportJob) -> tuple[dict[int, Any], ...] | None:
    return None if job.batch else ({0: Dim("batch")},)


def runner(model: Network) -> Runner:
    def run(x: Tensor) -> tuple[Tensor, ...]:
        with torch.no_grad():
            out = model(x)
        return out if isinstance(out, tuple) else (out,)

    return run
