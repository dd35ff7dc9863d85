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
import warnings
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn

from darkforge.errors import DataError
from darkforge.files import MAX_TEXT_BYTES, check_regular, replacing, write_with
from darkforge.nn.network import Network
from darkforge.spec import budget
from darkforge.spec.archtext import embedded_spec
from darkforge.spec.base import NetworkSpec
from darkforge.spec.messages import describe
from darkforge.spec.shapes import plan

FORMAT = "darkforge-checkpoint-1"
SAVED = ("arch_yaml", "arch_name", "scale", "classes", "input", "mean", "std", "data", "data_dir")
OPTIONAL = ("data", "data_dir")  # saved since 0.2; older checkpoints load without them


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
    # Where the YAML was read from, for errors (a checkpoint, not the file it was trained from).
    origin: str = field(default="", compare=False, repr=False)

    def spec(self) -> NetworkSpec:
        return embedded_spec(self.arch_yaml, self.origin or self.arch_name)

    @property
    def input_size(self) -> int | None:
        """The square input it was trained at (`train --input-size` may differ from the file's)."""
        return self.input[1] if len(self.input) == 3 and self.input[1] == self.input[2] else None

    def build(self) -> Network:
        return Network(plan(self.spec().resolved(self.scale, self.input_size, len(self.classes))))

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in SAVED}

    def public(self) -> Inference:
        """The fields without this machine's paths, for a file that leaves it (an export): the
        architecture and an image folder by name only, no data folder."""
        data = self.data
        if data is not None and ":" in data:
            kind, _, arg = data.partition(":")
            data = f"{kind}:{Path(arg).name}" if "/" in arg or os.sep in arg else data
        return replace(self, arch_name=Path(self.arch_name).name, data=data, data_dir=None)


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
    """A run directory means its weights/last.pt; anything but a regular file is refused at once
    (a FIFO would block torch.load forever)."""
    p = Path(path)
    if p.is_dir():
        p = p / "weights" / "last.pt"
    if not p.exists():
        raise DataError(f"{p}: no such checkpoint", "give a run directory or a .pt/.safetensors file")
    check_regular(p, "give a run directory or a .pt/.safetensors file")
    return p


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint's payload, its inference fields and tensors checked (types, sizes, finite)."""
    p = resolve_path(path)
    if p.suffix == ".safetensors":
        payload = _load_safetensors(p)
    else:
        check_archive(p)
        try:
            with warnings.catch_warnings():  # torch's notes on pickle protocols mean nothing to a user
                warnings.simplefilter("ignore")
                payload = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many kinds for a foreign or torn file
            raise DataError(
                f"{p}: not a readable checkpoint ({type(e).__name__})", "was it written by darkforge?"
            ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"{p}: not a darkforge checkpoint", "train one with `darkforge train`")
    payload["inference"] = _checked_inference(payload.get("inference"), p)
    check_tensors(payload.get("model"), p)
    return payload


MAX_RECORDS = 1_000_000  # a darknet53 last.pt holds ~1,000 records


def check_archive(p: Path) -> None:
    """Before torch.load allocates anything: a torch checkpoint is a zip of stored records (torch
    never compresses them), so their declared sizes fit the file's length; a deflated record
    could declare gigabytes in a few bytes, a legacy pickle is not one darkforge writes."""
    try:
        with zipfile.ZipFile(p) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise DataError(
            f"{p}: not a readable checkpoint (not a torch zip archive)", "was it written by darkforge?"
        ) from None
    size = os.path.getsize(p)
    declared = sum(r.file_size for r in records)
    packed = any(r.compress_type != zipfile.ZIP_STORED for r in records)
    if packed or len(records) > MAX_RECORDS or declared > size:
        raise DataError(
            f"{p}: its records declare {declared:,} bytes in a {size:,}-byte file"
            + (" (compressed)" if packed else ""),
            "was it written by darkforge?",
        )


class _Fields(BaseModel):
    """The inference fields, as a file may hold them (anything else is refused, not guessed)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    arch_yaml: str = Field(max_length=MAX_TEXT_BYTES)
    arch_name: str = Field(max_length=4096)
    scale: str | None = Field(max_length=200)
    classes: list[Annotated[str, Field(max_length=200)]] = Field(min_length=1, max_length=1_000_000)
    input: list[Annotated[int, Field(ge=1, le=16384)]] = Field(min_length=3, max_length=3)
    mean: list[float] = Field(min_length=1, max_length=4096)
    std: list[Annotated[float, Field(gt=0)]] = Field(min_length=1, max_length=4096)
    data: str | None = Field(None, max_length=4096)
    data_dir: str | None = Field(None, max_length=4096)


def _checked_inference(fields: Any, p: Path) -> dict[str, Any]:
    if not isinstance(fields, dict):
        raise DataError(f"{p}: has no inference fields", "was it written by darkforge?")
    try:
        checked = _Fields.model_validate(fields).model_dump()
    except ValidationError as e:
        problem = describe(e, {"inference": fields}, ("inference",), _Fields)
        raise problem.line(DataError, str(p), "was it written by darkforge?") from None
    channels = checked["input"][0]
    if len(checked["mean"]) != channels or len(checked["std"]) != channels:
        raise DataError(
            f"{p}: inference.mean and .std need one value per input channel ({channels})",
            "was it written by darkforge?",
        )
    return checked


def check_tensors(state: Any, p: str | os.PathLike[str]) -> None:
    """A state dict of finite tensors: NaN or infinite weights (a diverged run) are refused at load
    rather than printed as `nan` predictions."""
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise DataError(
            f"{p}: its `model` is not a mapping of tensor names to tensors", "was it written by darkforge?"
        )
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise DataError(
                f"{p}: tensor {_short(name)} holds NaN or infinite values",
                "the run diverged; use an earlier checkpoint or train with a lower --lr",
            )


def check_resumable(payload: dict[str, Any], p: str | os.PathLike[str]) -> dict[str, Any]:
    """The training state of a `last.pt` (a `best.pt` has none: it holds weights only)."""
    state = payload.get("state")
    needed = {"optimizer": dict, "schedule": dict, "scaler": dict, "history": list, "best": float | int}
    if not isinstance(state, dict) or any(not isinstance(state.get(k), t) for k, t in needed.items()):
        raise DataError(
            f"{p}: holds no training state to resume from (a best.pt or a foreign file?)",
            "resume from the run's weights/last.pt, or start a new run with --weights",
        )
    if not all(isinstance(row, dict) for row in state["history"]):
        raise DataError(f"{p}: its training history is damaged", "start a new run")
    return state


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
    try:
        info = {k: json.loads(metadata[k]) for k in SAVED if k in metadata or k not in OPTIONAL}
    except (KeyError, ValueError, RecursionError):  # RecursionError: deeply nested JSON
        raise DataError(f"{p}: incomplete darkforge metadata", "export it again with darkforge") from None
    return {"format": FORMAT, "model": tensors, "inference": info}


def load_model(path: str | os.PathLike[str]) -> tuple[Network, Inference, dict[str, Any]]:
    """Rebuild the network a checkpoint describes and load its weights (eval mode). Its
    architecture is checked like a file (errors name the checkpoint) and against the size
    limits before anything is allocated."""
    p = resolve_path(path)
    payload = load(p)
    info = Inference(**payload["inference"], origin=f"{p} (its arch_yaml)")
    spec = info.spec()
    shapes = plan(spec.resolved(info.scale, info.input_size, len(info.classes)))
    budget.check(shapes)
    if list(shapes.input) != info.input:
        raise DataError(
            f"{p}: inference.input {info.input} differs from its architecture's input {list(shapes.input)}",
            "was it written by darkforge?",
        )
    model = Network(shapes)
    _fit(model, payload["model"], p)
    return model.eval(), info, payload


def _fit(model: nn.Module, state: dict[str, Any], p: Path) -> None:
    """load_state_dict, with a message naming the first tensor that does not fit."""
    wanted = model.state_dict()
    problems = [f"{_short(k)} is missing" for k in wanted if k not in state]
    problems += [f"{_short(k)} is not in the network" for k in state if k not in wanted]
    problems += [
        f"{_short(k)} is {_dims(v)}, the network's is {_dims(wanted[k])}"
        for k, v in state.items()
        if k in wanted and v.shape != wanted[k].shape
    ]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DataError(f"{p}: weights do not fit the architecture: {problems[0]}{more}")
    model.load_state_dict(state)


def _dims(tensor: torch.Tensor) -> str:
    return "×".join(map(str, tensor.shape)) or "a scalar"


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def inference_of(payload: dict[str, Any], path: str | os.PathLike[str]) -> Inference:
    """The Inference of a loaded payload (its fields were checked by `load`)."""
    return Inference(**payload["inference"], origin=f"{path} (its arch_yaml)")


__all__ = [
    "Inference",
    "check_archive",
    "check_tensors",
    "inference_of",
    "load",
    "load_model",
    "resolve_path",
    "save",
    "save_safetensors",
    "save_torch",
]
