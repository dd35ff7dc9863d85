"""Ultralytics state_dicts -> darkforge names: Ultralytics calls row i's module `model.i`, a
translated file's network calls it `layers.i` (darkforge/ultralytics/read.py keeps one layer per
row); below that the names are the same (`cv2.0.0.conv.weight`), so tensors then match by name."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from darkforge.errors import DataError

ROW = re.compile(r"^model\.(\d+)\.")


def darkforge_names(tensors: dict[str, Any], model: Any) -> dict[str, Any]:
    """`model.22.dfl.conv.weight` -> `layers.22.dfl.conv.weight` when the file uses Ultralytics'
    names and the network does not; anything else is returned as it is."""
    if not tensors or not all(ROW.match(name) for name in tensors):
        return tensors
    if any(name.startswith("model.") for name in model.state_dict()):
        return tensors
    plan = getattr(model, "plan", None)
    names = [info.name for info in plan.layers] if plan is not None else []

    def rename(name: str) -> str:
        match = ROW.match(name)
        assert match is not None
        row = int(match[1])
        layer = names[row] if row < len(names) else str(row)
        return f"layers.{layer}.{name[match.end() :]}"

    return {rename(name): tensor for name, tensor in tensors.items()}


def plain_state_dict(file: Path) -> dict[str, Any] | None:
    """A `.pt` holding a bare state_dict (name -> tensor), read with weights_only=True; None for
    anything else (a darkforge checkpoint is read by darkforge.weights.checkpoint)."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # a pickled model (Ultralytics' own .pt) is refused by weights_only
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise DataError(
                f"{file}: holds pickled Python objects (an Ultralytics checkpoint?), not a state_dict",
                "save `model.state_dict()` to a .safetensors (or a .pt of tensors only) and load that",
            ) from None
        return None
    if (
        isinstance(payload, dict)
        and payload
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload.items())
    ):
        return payload
    return None
