"""darkforge: compile a YAML graph of layers into a torch.nn.Module.

`import darkforge` stays light (no torch, no disk, no network): `build` and the modules are
imported on first use, so `darkforge validate` answers in a fraction of a second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from darkforge.errors import DarkforgeError, SpecError, UsageError
from darkforge.load import load_spec
from darkforge.registry import register
from darkforge.shapes import Plan, plan
from darkforge.spec import Cost, LayerSpec, NetworkSpec, Shape, ShapeError, Tensor

if TYPE_CHECKING:
    from darkforge.darknet_weights import load_darknet_weights, save_darknet_weights
    from darkforge.network import Network, build

__version__ = "0.1.0"

_LAZY = {
    "build": "darkforge.network",
    "Network": "darkforge.network",
    "load_darknet_weights": "darkforge.darknet_weights",
    "save_darknet_weights": "darkforge.darknet_weights",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'darkforge' has no attribute {name!r}")


__all__ = [
    "Cost",
    "DarkforgeError",
    "LayerSpec",
    "Network",
    "NetworkSpec",
    "Plan",
    "Shape",
    "ShapeError",
    "SpecError",
    "Tensor",
    "UsageError",
    "build",
    "load_darknet_weights",
    "load_spec",
    "plan",
    "register",
    "save_darknet_weights",
]
