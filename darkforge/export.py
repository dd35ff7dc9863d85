"""Checkpoint -> a file another runtime loads: ONNX, a torch.export program (.pt2), Darknet .weights
(with the .cfg that says how to read them) or safetensors; and `verify`, which runs the written file
and measures how far its outputs are from the checkpoint's torch model.

Each format is one entry of FORMATS: how to write it, and how to load it back to run it. Traced
formats (ONNX, .pt2) fix the input shape, and the batch size unless it is left dynamic; weight
formats hold tensors only, and rebuild the network from the arch. Every file is written to a temp
file in the output's folder, then renamed over the output: a reader never sees half a file.

The exported network takes what the checkpoint's network takes: images scaled to [0, 1], then
normalized with the checkpoint's mean and std (C×H×W, float32). Both travel in the file's metadata.

torch is imported inside the functions, so the CLI can list the formats without importing it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from darkforge.atomic import replacing
from darkforge.errors import DarkforgeError, DataError, UsageError

if TYPE_CHECKING:
    from torch import Tensor

    from darkforge.checkpoint import Inference
    from darkforge.network import Network
    from darkforge.spec import NetworkSpec

TOLERANCE = 1e-4  # max abs difference `verify` accepts between the file's outputs and torch's
INSTALL_ONNX = "pip install 'darkforge[onnx]'"
INPUT_NAME = "input"
DYNAMIC_BATCHES = (2, 3)  # torch.export specializes sizes 0 and 1, so a dynamic batch is traced at 2
Runner = Callable[["Tensor"], "tuple[Tensor, ...]"]


@dataclass(frozen=True)
class Source:
    """The network to export, rebuilt from its checkpoint."""

    checkpoint: Path
    model: Network  # eval mode, on the CPU
    info: Inference
    spec: NetworkSpec  # resolved: scale, input size and class count applied
    batch: int | None  # the batch size a traced export fixes; None: dynamic

    @property
    def shape(self) -> tuple[int, ...]:  # (C, H, W)
        return self.spec.input.shape

    def metadata(self) -> dict[str, Any]:
        """What a runtime needs besides the graph: classes, input shape, normalization, the arch."""
        return self.info.as_dict() | {"input": list(self.shape)}

    def output_names(self) -> list[str]:
        # the output layers' ids ("fc", "head5"), so Netron and ONNX runtimes show what each one is
        layers = self.model.plan.layers
        return [layers[i].spec.id or f"layer{i}" for i in self.model.plan.outputs]


@dataclass(frozen=True)
class Format:
    suffix: str
    write: Callable[[Source, Path], None]  # write the file at this (temporary) path
    load: Callable[[Path, Source], tuple[Runner, str]]  # the written file, runnable; what runs it
    traced: bool  # the file fixes the input shape (and batch): --input-size/--batch/--dynamic-batch apply
    needs: Callable[[], None] = lambda: None  # raises UsageError when an optional package is missing
    # written beside the file (same stem): suffix -> text, and warnings; raises if it cannot be
    companion: Callable[[Source], tuple[dict[str, str], list[str]]] | None = None


@dataclass(frozen=True)
class Exported:
    format: str
    path: Path
    files: list[Path]  # path first, then companions (a .weights file's .cfg)
    size: int  # bytes of `path`
    input: tuple[int | str, ...]  # (N, C, H, W); N is "batch" where any batch size runs
    seconds: float
    source: Source = field(repr=False)
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


def open_checkpoint(
    path: str | os.PathLike[str], input_size: int | None = None, batch: int | None = None
) -> Source:
    """Rebuild a checkpoint's network (at another square input size if asked) for export."""
    from darkforge import checkpoint
    from darkforge.network import Network
    from darkforge.shapes import plan

    ckpt = checkpoint.resolve_path(path)
    model, info, _ = checkpoint.load_model(ckpt)
    spec = info.spec().resolved(info.scale, input_size, len(info.classes))
    if spec.input.shape != model.plan.spec.input.shape:
        resized = Network(plan(spec))
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
    return Source(ckpt, model, info, spec, batch)


def export(
    ckpt: str | os.PathLike[str],
    fmt: str,
    output: str | os.PathLike[str] | None = None,
    input_size: int | None = None,
    batch: int | None = None,
    dynamic_batch: bool = False,
) -> Exported:
    """Write checkpoint `ckpt` as `fmt` (a key of FORMATS); by default next to it, same stem."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}", "formats: " + ", ".join(FORMATS))
    form = FORMATS[fmt]
    if not form.traced:
        flags = {"--input-size": input_size, "--batch": batch, "--dynamic-batch": dynamic_batch}
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
    source = open_checkpoint(ckpt, input_size, (batch or 1) if form.traced and not dynamic_batch else None)
    path = Path(output) if output is not None else source.checkpoint.with_suffix(form.suffix)
    if path.resolve() == source.checkpoint.resolve():
        raise UsageError(f"{path}: is the checkpoint being exported", "choose another -o")
    start = time.perf_counter()
    extra, warnings = form.companion(source) if form.companion else ({}, [])
    with _atomic(path) as temp:
        form.write(source, temp)
    files = [path]
    for suffix, text in extra.items():
        with _atomic(path.with_suffix(suffix)) as temp:
            temp.write_text(text)
        files.append(path.with_suffix(suffix))
    batch_dim: int | str = source.batch or "batch"
    seconds = time.perf_counter() - start
    return Exported(
        fmt, path, files, path.stat().st_size, (batch_dim, *source.shape), seconds, source, warnings
    )


def verify(exported: Exported, seed: int = 0) -> Verification:
    """Run the written file on random inputs and compare its outputs with the torch model's."""
    import torch

    start = time.perf_counter()
    source = exported.source
    run, runner = FORMATS[exported.format].load(exported.path, source)
    reference = _runner(source.model)
    batch = exported.input[0]
    batches = DYNAMIC_BATCHES if isinstance(batch, str) else (batch,)
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for n in batches:
        x = torch.randn(n, *source.shape, generator=generator)
        ours, theirs = reference(x), run(x)
        if [t.shape for t in ours] != [t.shape for t in theirs]:
            raise DataError(
                f"{exported.path}: at batch {n} it outputs {_shapes(theirs)}, torch {_shapes(ours)}"
            )
        for a, b in zip(ours, theirs, strict=True):
            diff = (a.float() - b.float()).abs().max().item()
            worst = diff if math.isnan(diff) or math.isnan(worst) else max(worst, diff)
    return Verification(runner, batches, worst, time.perf_counter() - start)


def _shape(tensor: Tensor) -> str:
    return "×".join(map(str, tensor.shape))


def _shapes(tensors: tuple[Tensor, ...]) -> str:
    return ", ".join(_shape(t) for t in tensors)


def _atomic(path: Path) -> AbstractContextManager[Path]:
    return replacing(path, UsageError, "choose another -o")


def _example(source: Source) -> Tensor:
    import torch

    return torch.randn(source.batch or DYNAMIC_BATCHES[0], *source.shape)


def _dynamic_shapes(source: Source) -> tuple[dict[int, Any], ...] | None:
    from torch.export import Dim

    return None if source.batch else ({0: Dim("batch")},)


# ONNX ---------------------------------------------------------------------------------------------


def _needs_onnx() -> None:
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"--format onnx needs {' and '.join(missing)}", f"install them: {INSTALL_ONNX}")


def _write_onnx(source: Source, path: Path) -> None:
    import torch

    # dynamo=True: the exporter torch maintains (the TorchScript one is deprecated since torch 2.9
    # and warns on every call). It captures the graph with torch.export, as .pt2 does, so one
    # dynamic-batch spelling serves both, and it names outputs as asked. Measured with torch 2.14
    # on darknet53 and yolo-mini, both exporters match torch within 1e-7; the legacy one takes
    # ~1 s where this one takes 3-10 s, a one-off cost worth the supported path.
    program = torch.onnx.export(
        source.model,
        (_example(source),),
        dynamo=True,
        verbose=False,
        input_names=[INPUT_NAME],
        output_names=source.output_names(),
        dynamic_shapes=_dynamic_shapes(source),
        external_data=False,  # one self-contained file (protobuf caps it at 2 GB)
    )
    assert program is not None  # dynamo=True always returns the program
    # Netron shows these under the model's properties; values are JSON, as in our safetensors.
    program.model.metadata_props.update({k: json.dumps(v) for k, v in source.metadata().items()})
    program.save(str(path), external_data=False)


def _load_onnx(path: Path, source: Source) -> tuple[Runner, str]:
    import numpy as np
    import torch

    run: Callable[[np.ndarray], Any]
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # as many threads as torch's side uses
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        run, runner = lambda x: session.run(None, {INPUT_NAME: x}), "onnxruntime"
    else:  # onnx's own NumPy interpreter: slow, but needs nothing more
        from onnx.reference import ReferenceEvaluator

        evaluator = ReferenceEvaluator(str(path))
        run, runner = lambda x: evaluator.run(None, {INPUT_NAME: x}), "onnx.reference"
    return lambda x: tuple(torch.from_numpy(np.asarray(y)) for y in run(x.numpy())), runner


# torch.export (.pt2) ------------------------------------------------------------------------------


def _write_pt2(source: Source, path: Path) -> None:
    import torch

    # The model is in eval mode, so batch norm is traced with its running statistics (a batch of
    # any size gives each sample the same output); a train-mode trace would bake in batch statistics.
    program = torch.export.export(source.model, (_example(source),), dynamic_shapes=_dynamic_shapes(source))
    torch.export.save(program, path, extra_files={"darkforge.json": json.dumps(source.metadata())})


def _load_pt2(path: Path, source: Source) -> tuple[Runner, str]:
    import torch

    module = torch.export.load(path).module()

    def run(x: Tensor) -> tuple[Tensor, ...]:
        with torch.no_grad():
            out = module(x)
        return tuple(out) if isinstance(out, list | tuple) else (out,)

    return run, "torch.export.load"


# Darknet .weights ---------------------------------------------------------------------------------


def _darknet_cfg(source: Source) -> tuple[dict[str, str], list[str]]:
    """The .cfg that tells Darknet how to cut the .weights (the file itself names no layers)."""
    from darkforge.darknet_weights import units
    from darkforge.darknet_write import to_cfg

    try:
        text, warnings = to_cfg(source.spec)
        units(source.model)
    except DarkforgeError as e:
        raise DataError(
            f"{source.checkpoint}: Darknet cannot express {source.spec.name}: {e}",
            "export onnx, pt2 or safetensors instead",
        ) from None
    if any(m != 0.0 for m in source.info.mean) or any(s != 1.0 for s in source.info.std):
        warnings.append(
            f"the network expects inputs normalized with mean {source.info.mean} and std "
            f"{source.info.std}; Darknet feeds pixels in [0, 1] as they are"
        )
    return {".cfg": text}, warnings


def _write_weights(source: Source, path: Path) -> None:
    from darkforge.darknet_weights import save_darknet_weights

    save_darknet_weights(source.model, path)


def _load_weights(path: Path, source: Source) -> tuple[Runner, str]:
    from darkforge.darknet_weights import load_darknet_weights
    from darkforge.network import build

    model = build(source.spec).eval()  # a fresh network: every tensor comes from the file
    load_darknet_weights(model, path)
    return _runner(model), "load_darknet_weights into a fresh network"


# safetensors --------------------------------------------------------------------------------------


def _write_safetensors(source: Source, path: Path) -> None:
    from darkforge.checkpoint import save_safetensors

    save_safetensors(path, source.model, source.info)


def _load_safetensors(path: Path, source: Source) -> tuple[Runner, str]:
    from darkforge.checkpoint import load_model

    model, _, _ = load_model(path)  # the file alone: arch, classes and weights
    return _runner(model), "checkpoint.load_model"


def _runner(model: Network) -> Runner:
    import torch

    def run(x: Tensor) -> tuple[Tensor, ...]:
        with torch.no_grad():
            out = model(x)
        return out if isinstance(out, tuple) else (out,)

    return run


FORMATS: dict[str, Format] = {
    "onnx": Format(".onnx", _write_onnx, _load_onnx, traced=True, needs=_needs_onnx),
    "pt2": Format(".pt2", _write_pt2, _load_pt2, traced=True),
    "weights": Format(".weights", _write_weights, _load_weights, traced=False, companion=_darknet_cfg),
    "safetensors": Format(".safetensors", _write_safetensors, _load_safetensors, traced=False),
}

__all__ = [
    "FORMATS",
    "TOLERANCE",
    "Exported",
    "Format",
    "Source",
    "Verification",
    "export",
    "open_checkpoint",
    "verify",
]
