"""The dialect: layer specs, their registry, the YAML loader and the static plan. No torch here.

Importing the package registers the built-in layer types.
"""

from darkforge.spec import layers
from darkforge.spec.base import (
    INPUT,
    InputSpec,
    LayerCost,
    LayerSpec,
    NetworkSpec,
    Operand,
    Ref,
    Scale,
    Shape,
    ShapeError,
    Strict,
    fmt_shape,
    prod,
    require,
)
from darkforge.spec.load import load_spec, parse_spec, register_reader
from darkforge.spec.registry import load_plugins, network_model, register
from darkforge.spec.shapes import LayerInfo, Plan, flatten, plan

__all__ = [
    "INPUT",
    "InputSpec",
    "LayerCost",
    "LayerInfo",
    "LayerSpec",
    "NetworkSpec",
    "Operand",
    "Plan",
    "Ref",
    "Scale",
    "Shape",
    "ShapeError",
    "Strict",
    "flatten",
    "fmt_shape",
    "layers",
    "load_plugins",
    "load_spec",
    "network_model",
    "parse_spec",
    "plan",
    "prod",
    "register",
    "register_reader",
    "require",
]
