"""Darknet .weights, with the .cfg that says how to cut them; and safetensors with the metadata
that rebuilds the network."""

from __future__ import annotations

from pathlib import Path

from darkforge.darknet.weights import load_darknet_weights, save_darknet_weights, weighted_layers
from darkforge.darknet.write import to_cfg
from darkforge.errors import DarkforgeError, DataError
from darkforge.export.common import ExportJob, Runner, runner
from darkforge.weights.checkpoint import load_model, save_safetensors
from darkforge.weights.transfer import build


def darknet_cfg(job: ExportJob) -> tuple[dict[str, str], list[str]]:
    """The .cfg that tells Darknet how to cut the .weights (the file itself names no layers)."""
    try:
        text, warnings = to_cfg(job.spec)
        weighted_layers(job.model)
    except DarkforgeError as e:
        raise DataError(
            f"{job.checkpoint}: Darknet cannot express {job.spec.name}: {e}",
            "export onnx, pt2 or safetensors instead",
        ) from None
    if any(m != 0.0 for m in job.info.mean) or any(s != 1.0 for s in job.info.std):
        warnings.append(
            f"the network expects inputs normalized with mean {job.info.mean} and std "
            f"{job.info.std}; Darknet feeds pixels in [0, 1] as they are"
        )
    return {".cfg": text}, warnings


def write_weights(job: ExportJob, path: Path) -> None:
    save_darknet_weights(job.model, path)


def load_weights(path: Path, job: ExportJob) -> tuple[Runner, str]:
    model = build(job.spec).eval()  # a fresh network: every tensor comes from the file
    load_darknet_weights(model, path)
    return runner(model), "load_darknet_weights into a fresh network"


def write_safetensors(job: ExportJob, path: Path) -> None:
    save_safetensors(path, job.model, job.info.public())  # no local paths in an exported file


def load_safetensors(path: Path, job: ExportJob) -> tuple[Runner, str]:
    model, _, _ = load_model(path)  # the file alone: arch, classes and weights
    return runner(model), "checkpoint.load_model"
