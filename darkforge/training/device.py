"""Which device and precision a run uses."""

from __future__ import annotations

import torch

from darkforge.errors import UsageError
from darkforge.training import distributed
from darkforge.training.recipe import Recipe


def pick_device(name: str) -> torch.device:
    """The device `--device` names; under torchrun a GPU is this process's own, cuda:LOCAL_RANK."""
    return distributed.local_device(_named_device(name))


def _named_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name!r} is not a device", "use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: this machine has no CUDA GPU", "use --device cpu (or auto)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps: Metal is not available here", "use --device cpu (or auto)")
    return device


def precision_of(recipe: Recipe, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32."""
    choice = recipe.precision
    if choice == "auto":
        choice = "bf16" if device.type == "cuda" else "32"
    return {"32": None, "bf16": torch.bfloat16, "16": torch.float16}[choice]
