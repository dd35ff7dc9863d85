"""Checkpoints: everything inference needs (arch YAML, classes, input size, normalization) plus,
for `last`, everything an exact resume needs (optimizer, schedule, scaler, EMA, history). No RNG
state is kept: every epoch reseeds from (seed, epoch), so a resumed epoch draws what it would have.

Files are written atomically (temp file, fsync, rename) and load with `weights_only=True`:
only tensors, numbers, strings, lists and dicts go in. `best.safetensors` carries the same
inference metadata as strings, so one file rebuilds the model without torch.load.
"""

from __future__ import annotations

import json
import os
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from darkforge.errors import DataError
from darkforge.files import replacing, write_with
from darkforge.nn.network import Network, build
from darkforge.spec.base import NetworkSpec
from darkforge.spec.load import spec_from_text

FORMAT = "darkforge-checkpoint-1"


@dataclass
class Inference:
    """What a checkpoint says about its model."""

    arch_yaml: str
    arch_name: str
    scale: str | None
    classes: list[str]
    input: list[int]  # [C, H, W]
    mean: list[float]
    std: list[float]
    data: str | None = None  # the --data it was trained on, so `eval` needs no --data (None: older)
    data_dir: str | None = None

    def spec(self) -> NetworkSpec:
        return spec_from_text(self.arch_yaml, self.arch_name)

    def build(self) -> Network:
        return build(self.spec(), scale=self.scale, input_size=None, classes=len(self.classes))

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def save(path: Path, model: nn.Module, info: Inference, state: dict[str, Any] | None = None) -> None:
    payload: dict[str, Any] = {"format": FORMAT, "model": model.state_dict(), "inference": info.as_dict()}
    if state is not None:
        payload["state"] = state
    save_torch(payload, path)


def save_torch(obj: object, path: Path) -> None:
    """torch.save, atomically (darkforge.files.replacing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_with(path, lambda temp: torch.save(obj, temp))


def save_safetensors(path: Path, model: nn.Module, info: Inference) -> None:
    from safetensors.torch import save_file

    metadata = {k: json.dumps(v) for k, v in info.as_dict().items()}  # safetensors keeps str -> str
    metadata["format"] = FORMAT
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as temp:
        save_file(tensors, str(temp), metadata=metadata)


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """A run directory means its weights/last.pt."""
    p = Path(path)
    if p.is_dir():
        p = p / "weights" / "last.pt"
    if not p.exists():
        raise DataError(f"{p}: no such checkpoint", "give a run directory or a .pt/.safetensors file")
    return p


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = resolve_path(path)
    if p.suffix == ".safetensors":
        return _load_safetensors(p)
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a foreign or torn file
        raise DataError(
            f"{p}: not a readable checkpoint ({type(e).__name__})", "was it written by darkforge?"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"{p}: not a darkforge checkpoint", "train one with `darkforge train`")
    return payload


def _load_safetensors(p: Path) -> dict[str, Any]:
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    except Exception as e:
        raise DataError(f"{p}: not a readable safetensors file ({type(e).__name__})") from None
    if metadata.get("format") != FORMAT:
        raise DataError(f"{p}: no darkforge metadata", "export it with darkforge")
    fields = Inference.__dataclass_fields__
    try:
        info = {k: json.loads(metadata[k]) for k in fields if k in metadata or fields[k].default is MISSING}
    except (KeyError, ValueError):
        raise DataError(f"{p}: incomplete darkforge metadata", "export it again with darkforge") from None
    return {"format": FORMAT, "model": tensors, "inference": info}


def load_model(path: str | os.PathLike[str]) -> tuple[Network, Inference, dict[str, Any]]:
    """Rebuild the network a checkpoint describes and load its weights (eval mode)."""
    payload = load(path)
    info = inference_of(payload, path)
    model = info.build()
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as e:
        raise DataError(f"{path}: weights do not fit the architecture ({str(e).splitlines()[0]})") from None
    return model.eval(), info, payload


def inference_of(payload: dict[str, Any], path: str | os.PathLike[str]) -> Inference:
    fields = Inference.__dataclass_fields__
    known = {k: v for k, v in dict(payload.get("inference") or {}).items() if k in fields}
    try:
        return Inference(**known)
    except TypeError:
        raise DataError(
            f"{path}: the checkpoint's inference metadata is incomplete", "was it written by darkforge?"
        ) from None


__all__ = [
    "Inference",
    "inference_of",
    "load",
    "load_model",
    "resolve_path",
    "save",
    "save_safetensors",
    "save_torch",
]
