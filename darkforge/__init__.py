"""darkforge: compile a YAML graph of layers into a torch.nn.Module.

`import darkforge` stays light (no torch, no disk, no network): `build` and the modules are
imported on first use, so `darkforge validate` answers in a fraction of a second. The parts live
in subpackages (docs/design.md): spec (the dialect), nn (modules), views, darknet, training,
export, cli.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from darkforge.errors import DarkforgeError, DataError, SpecError, UsageError
from darkforge.spec.base import LayerCost, LayerSpec, NetworkSpec, Operand, Shape, ShapeError
from darkforge.spec.load import load_spec
from darkforge.spec.registry import load_plugins, register
from darkforge.spec.shapes import Plan, plan

if TYPE_CHECKING:
    from darkforge.darknet.weights import load_darknet_weights, save_darknet_weights
    from darkforge.nn.network import Network
    from darkforge.training.session import Run, train
    from darkforge.weights.transfer import build

__version__ = "0.2.0"

# torch-backed names, imported on first use so `import darkforge` does not import torch
_LAZY = {
    "build": "darkforge.weights.transfer",
    "Network": "darkforge.nn.network",
    "load_darknet_weights": "darkforge.darknet.weights",
    "save_darknet_weights": "darkforge.darknet.weights",
    "train": "darkforge.training.session",
    "Run": "darkforge.training.session",
}


# Renamed public names: the old one still works for one release, with a DeprecationWarning.
_RENAMED = {"Cost": "LayerCost"}  # 0.2: `Cost` is Darknet's [cost] layer, a shape rule returns LayerCost


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _RENAMED:
        new = _RENAMED[name]
        warnings.warn(
            f"darkforge.{name} is now darkforge.{new}; the old name goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[new]
    raise AttributeError(f"module 'darkforge' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API (what `__all__` names), not the imports this module happens to use."""
    return sorted([*__all__, "__version__"])


__all__ = [
    "DarkforgeError",
    "DataError",
    "LayerCost",
    "LayerSpec",
    "Network",
    "NetworkSpec",
    "Operand",
    "Plan",
    "Run",
    "Shape",
    "ShapeError",
    "SpecError",
    "UsageError",
    "build",
    "load_darknet_weights",
    "load_plugins",
    "load_spec",
    "plan",
    "register",
    "save_darknet_weights",
    "train",
]
