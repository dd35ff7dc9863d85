"""Export a checkpoint: rebuild its network, write the format atomically, and `verify` the file
by running it against the torch model."""

from __future__ import annotations

import math
import os
import time
from contextlib import AbstractContextManager
from pathlib import Path

import torch
from torch import Tensor

from darkforge.errors import DataError, UsageError
from darkforge.export import TOLERANCE
from darkforge.export.common import DYNAMIC_BATCHES, Exported, ExportJob, Verification, runner
from darkforge.export.detect import Decoded, Nms, WithNms, anchor_strides, check_nms, detect_head, differences
from darkforge.export.formats import FORMATS
from darkforge.files import replacing
from darkforge.nn.network import Network
from darkforge.spec import budget
from darkforge.weights import checkpoint


def open_checkpoint(
    path: str | os.PathLike[str],
    input_size: int | None = None,
    batch: int | None = None,
    nms: Nms | None = None,
) -> ExportJob:
    """Rebuild a checkpoint's network (at another square input size if asked) for export; a Detect
    network as its decoded output, with NMS in the graph when `nms` says how."""
    ckpt = checkpoint.resolve_path(path)
    model, info, _ = checkpoint.load_model(ckpt)
    size = input_size if input_size is not None else info.input_size  # default: as trained
    spec = info.spec().resolved(info.scale, size, len(info.classes))
    if spec.input.shape != model.plan.spec.input.shape:
        resized = Network(budget.check_before_build(spec))  # --input-size: the size limits again
        wanted = resized.state_dict()
        for name, value in model.state_dict().items():
            if wanted[name].shape != value.shape:
                raise DataError(
                    f"{ckpt}: at input size {input_size}, {name} would be {_shape(wanted[name])}, "
                    f"but the checkpoint's is {_shape(value)}",
                    "the network's layers depend on its input size; export at the size it was trained at",
                )
        resized.load_state_dict(model.state_dict())
        model = resized.eval()
    model.requires_grad_(False)
    return ExportJob(ckpt, model, info, spec, batch, _graph(ckpt, model, nms))


def _graph(ckpt: Path, model: Network, nms: Nms | None) -> Decoded | WithNms | None:
    if detect_head(model) is None:
        if nms is not None:
            raise UsageError(
                f"--nms: {ckpt} has no Detect head as its output",
                "NMS is exported for anchor-free Detect heads; others export their raw outputs",
            )
        return None
    decoded = Decoded(model).eval()
    return decoded if nms is None else WithNms(decoded, nms).eval()


def export(
    ckpt: str | os.PathLike[str],
    fmt: str,
    output: str | os.PathLike[str] | None = None,
    input_size: int | None = None,
    batch: int | None = None,
    dynamic_batch: bool = False,
    nms: Nms | None = None,
) -> Exported:
    """Write checkpoint `ckpt` as `fmt` (a key of FORMATS); by default next to it, same stem.
    A Detect network's traced file outputs its decoded boxes, and with `nms` its detections."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}", "formats: " + ", ".join(FORMATS))
    form = FORMATS[fmt]
    if not form.traced:
        flags = {"--input-size": input_size, "--batch": batch, "--dynamic-batch": dynamic_batch, "--nms": nms}
        given = [flag for flag, value in flags.items() if value]
        if given:
            traced = ", ".join(k for k, f in FORMATS.items() if f.traced)
            raise UsageError(
                f"{given[0]} does not apply to {fmt}: it holds weights, not a traced graph",
                f"it applies to {traced}",
            )
    if batch is not None and dynamic_batch:
        raise UsageError("--batch fixes the batch size and --dynamic-batch leaves it free", "give one")
    form.needs()
    fixed = (batch or 1) if form.traced and not dynamic_batch else None
    job = open_checkpoint(ckpt, input_size, fixed, nms if form.traced else None)
    path = Path(output) if output is not None else job.checkpoint.with_suffix(form.suffix)
    if path.resolve() == job.checkpoint.resolve():
        raise UsageError(f"{path}: is the checkpoint being exported", "choose another -o")
    start = time.perf_counter()
    extra, warnings = form.companion(job) if form.companion else ({}, [])
    with _atomic(path) as temp:
        form.write(job, temp)
    files = [path]
    for suffix, text in extra.items():
        with _atomic(path.with_suffix(suffix)) as temp:
            temp.write_text(text)
        files.append(path.with_suffix(suffix))
    batch_dim: int | str = job.batch or "batch"
    seconds = time.perf_counter() - start
    return Exported(fmt, path, files, path.stat().st_size, (batch_dim, *job.shape), seconds, job, warnings)


def verify(exported: Exported, seed: int = 0) -> Verification:
    """Run the written file on random inputs and compare its outputs with the torch model's."""
    start = time.perf_counter()
    job = exported.job
    run, ran_by = FORMATS[exported.format].load(exported.path, job)
    reference = runner(job.module)
    batch = exported.input[0]
    batches = DYNAMIC_BATCHES if isinstance(batch, str) else (batch,)
    generator = torch.Generator().manual_seed(seed)
    detector = job.graph is not None  # a Detect network: decoded boxes (and NMS)
    strides = anchor_strides(job.model) if detector else None
    worst, pixels, kept, problem = 0.0, 0.0, 0, None
    for n in batches:
        # a detector takes pixels in [0, 1]; a classifier normalized ones, about N(0, 1)
        shape = (n, *job.shape)
        x = torch.rand(shape, generator=generator) if detector else torch.randn(shape, generator=generator)
        ours, theirs = reference(x), run(x)
        if [t.shape for t in ours] != [t.shape for t in theirs]:
            raise DataError(
                f"{exported.path}: at batch {n} it outputs {_shapes(theirs)}, torch {_shapes(ours)}"
            )
        if strides is not None:
            diff, px = differences(ours, theirs, strides)
            pixels = max(pixels, px)
        else:
            diff = max((a.float() - b.float()).abs().max().item() for a, b in zip(ours, theirs, strict=True))
        worst = diff if math.isnan(diff) or math.isnan(worst) else max(worst, diff)
        if job.nms is not None:  # the file's NMS against batched_nms on the file's own boxes
            kept += len(theirs[0])
            problem = problem or check_nms(theirs[0], theirs[1], job.nms, TOLERANCE)
    seconds = time.perf_counter() - start
    counted = kept if job.nms is not None else None
    return Verification(
        ran_by, batches, worst, seconds, TOLERANCE, counted, problem, pixels if detector else None
    )


def _shape(tensor: Tensor) -> str:
    return "×".join(map(str, tensor.shape))


def _shapes(tensors: tuple[Tensor, ...]) -> str:
    return ", ".join(_shape(t) for t in tensors)


def _atomic(path: Path) -> AbstractContextManager[Path]:
    return replacing(path, UsageError, "choose another -o")
