"""Layer-type name -> spec class (torch-free shape rule) and module class (resolved by `build`).

Built-in modules are named by an import path so `validate` and `schema` never import torch; a
plugin registers its module class directly:

    @darkforge.register(MySpec)
    class MyLayer(nn.Module):
        def __init__(self, spec: MySpec, inputs: list[Shape]) -> None: ...
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from darkforge.errors import SpecError

if TYPE_CHECKING:
    from darkforge.spec import LayerSpec, NetworkSpec

T = TypeVar("T")


@dataclass(frozen=True)
class LayerType:
    name: str
    spec: type[LayerSpec]
    module: str | type  # "package.module" holding a class named `name`, or the class itself

    def module_class(self) -> type:
        if isinstance(self.module, type):
            return self.module
        return getattr(importlib.import_module(self.module), self.name)  # type: ignore[no-any-return]


_TYPES: dict[str, LayerType] = {}
_models: dict[tuple[str, ...], Any] = {}


def _ensure_builtins() -> None:
    if not _TYPES:
        importlib.import_module("darkforge.specs")


def add(spec: type[LayerSpec], module: str | type) -> None:
    """Register a layer type; its name is the spec's `type` literal (= the module's class name)."""
    name = _tag(spec)
    if isinstance(module, type) and module.__name__ != name:
        raise ValueError(f"module class {module.__name__} must be named like its type tag {name!r}")
    if name in _TYPES and _TYPES[name].spec is not spec:
        raise ValueError(f"layer type {name!r} is already registered")
    _TYPES[name] = LayerType(name, spec, module)


def register(spec: type[LayerSpec]) -> Callable[[T], T]:
    """Class decorator: make `spec`'s type usable in YAML files, built by the decorated module."""
    _ensure_builtins()

    def decorate(module: T) -> T:
        add(spec, module)  # type: ignore[arg-type]
        return module

    return decorate


def names() -> list[str]:
    _ensure_builtins()
    return list(_TYPES)


def get(name: str) -> LayerType:
    _ensure_builtins()
    if name not in _TYPES:
        raise SpecError(f"unknown layer type {name!r}", did_you_mean(name, _TYPES))
    return _TYPES[name]


def spec_classes() -> tuple[type[LayerSpec], ...]:
    _ensure_builtins()
    return tuple(t.spec for t in _TYPES.values())


def network_model(make: Callable[[tuple[type[LayerSpec], ...]], type[NetworkSpec]]) -> Any:
    """The network model for the current set of types, rebuilt only when a type registers."""
    types = spec_classes()
    key = tuple(_TYPES)
    if key not in _models:
        _models[key] = make(types)
    return _models[key]


def did_you_mean(word: str, choices: Any) -> str:
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:  # case-insensitive second try: "convbnleaky" -> "ConvBnLeaky"
        lowered = {c.lower(): c for c in choices}
        close = [lowered[m] for m in difflib.get_close_matches(word.lower(), lowered, n=1)]
    if close:
        return f"did you mean {close[0]!r}?"
    return "valid: " + ", ".join(sorted(choices))


def _tag(spec: type[LayerSpec]) -> str:
    annotation = spec.model_fields["type"].annotation
    args: tuple[object, ...] = getattr(annotation, "__args__", ())
    if len(args) != 1 or not isinstance(args[0], str):
        raise ValueError(f"{spec.__name__}.type must be Literal['<Name>']")
    return args[0]
