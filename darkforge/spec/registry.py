"""Layer-type name -> spec class (torch-free shape rule) and module class (resolved by `build`).

Built-in modules are named by an import path so `validate` and `schema` never import torch; a
plugin registers its module class directly:

    @darkforge.register(MySpec)
    class MyLayer(nn.Module):
        def __init__(self, spec: MySpec, inputs: list[Shape]) -> None: ...

Plugins are Python modules that register types when imported: those named by the `darkforge.layers`
entry-point group (darkforge's own Darknet support is one) load on first use of the registry;
`load_plugins(["my_module"])` (the CLI's `--plugin`) imports more. A YAML file never imports code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Annotated, Any, TypeVar, Union

from pydantic import Field, create_model

from darkforge.errors import SpecError, UsageError, did_you_mean
from darkforge.spec.base import LayerSpec, NetworkSpec

T = TypeVar("T")
ENTRY_POINTS = "darkforge.layers"
# darkforge's own parts that plug in through ENTRY_POINTS (pyproject.toml); imported by name too
# when an environment's metadata predates one (an editable install made before it was added).
OWN_PLUGINS = {"darknet": "darkforge.darknet", "ultralytics": "darkforge.ultralytics"}


@dataclass(frozen=True)
class LayerType:
    name: str
    spec: type[LayerSpec]
    # "package.module:Class", "package.module" holding a class named `name`, or the class itself
    module: str | type
    plugin: str = ""  # the plugin that registered it ("" for built-ins)

    def module_class(self) -> type:
        if isinstance(self.module, type):
            return self.module
        path, _, name = self.module.partition(":")
        return getattr(importlib.import_module(path), name or self.name)  # type: ignore[no-any-return]


_TYPES: dict[str, LayerType] = {}
_models: dict[tuple[str, ...], type[NetworkSpec]] = {}
_loaded: set[str] = set()  # plugins imported so far (entry-point values and module names)
_failed: dict[str, str] = {}  # plugin -> why it did not load
_entry_points_done = False


def add(spec: type[LayerSpec], module: str | type) -> None:
    """Register a layer type; its name is the spec's `type` literal (= the module's class name)."""
    name = _tag(spec)
    if isinstance(module, type) and module.__name__ != name:
        raise ValueError(f"module class {module.__name__} must be named like its type tag {name!r}")
    if name in _TYPES and _TYPES[name].spec is not spec:
        raise ValueError(f"layer type {name!r} is already registered")
    _TYPES[name] = LayerType(name, spec, module, foreign(spec))


def foreign(cls: type) -> str:
    """The module of a class darkforge did not write (a plugin's), "" for darkforge's own: errors
    in a plugin's shape rule, module or forward are blamed on it by this name."""
    module = cls.__module__
    return "" if module == "darkforge" or module.startswith("darkforge.") else module


def register(spec: type[LayerSpec]) -> Callable[[T], T]:
    """Class decorator: make `spec`'s type usable in YAML files, built by the decorated module."""

    def decorate(module: T) -> T:
        add(spec, module)  # type: ignore[arg-type]
        return module

    return decorate


def load_plugins(modules: Iterable[str] = ()) -> None:
    """Import the `darkforge.layers` entry points (once) and the named plugin modules."""
    global _entry_points_done
    if not _entry_points_done:
        _entry_points_done = True
        found = set()
        for point in entry_points(group=ENTRY_POINTS):
            found.add(point.value.split(":")[0])
            _import(point.value, f"entry point {point.name!r} ({point.value})", strict=False)
        for name, module in OWN_PLUGINS.items():
            if module not in found:
                _import(module, f"entry point {name!r} ({module})", strict=False)
    for module in modules:
        _import(module, f"--plugin {module}", strict=True)


def _import(module: str, label: str, strict: bool) -> None:
    name = module.split(":")[0]
    if name in _loaded:
        return
    try:
        importlib.import_module(name)
    except (Exception, SystemExit) as e:  # a broken plugin (or one that exits): say which and why
        why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
        if strict:
            hint = "is it installed in this environment?" if isinstance(e, ModuleNotFoundError) else ""
            raise UsageError(f"plugin {name!r} failed to load ({why})", hint) from None
        _failed[label] = why
        return
    _loaded.add(name)


def has_plugin(name: str) -> bool:
    """Whether a plugin is loaded, named by its module, its entry point or its distribution."""
    load_plugins()
    if name in _loaded:
        return True
    for point in entry_points(group=ENTRY_POINTS):
        module = point.value.split(":")[0]
        dist = point.dist.name if point.dist is not None else ""
        if name in (point.name, module, dist) and module in _loaded:
            return True
    return False


def names() -> list[str]:
    load_plugins()
    return list(_TYPES)


def get(name: str) -> LayerType:
    load_plugins()
    if name not in _TYPES:
        raise SpecError(f"unknown layer type {name!r}", _unknown_hint(name))
    return _TYPES[name]


def _unknown_hint(name: str) -> str:
    hint = did_you_mean(name, _TYPES)
    if _failed:
        label, why = next(iter(_failed.items()))
        hint += f"; plugin {label} failed to load: {why}"
    return hint


def spec_classes() -> tuple[type[LayerSpec], ...]:
    load_plugins()
    return tuple(t.spec for t in _TYPES.values())


def layer_union(extra: Sequence[type[LayerSpec]] = ()) -> Any:
    """The one union of layer types: the registered ones and `extra` (a file's blocks),
    told apart by `type`."""
    own = {_tag(spec) for spec in extra}  # a block with `shadows: true` stands for the type
    types = (*(spec for spec in spec_classes() if _tag(spec) not in own), *extra)
    union: Any = types[0] if len(types) == 1 else Union[types]  # noqa: UP007
    return Annotated[union, Field(discriminator="type")]


def network_model(extra: Sequence[type[LayerSpec]] = ()) -> type[NetworkSpec]:
    """The NetworkSpec with `layers` narrowed to `layer_union(extra)`; without `extra`, rebuilt
    only when a type registers."""
    key = tuple(_TYPES)
    if extra or key not in _models:
        model = create_model(
            "NetworkFile",  # the spec of a file (nn.network.Network is the module)
            __base__=NetworkSpec,
            layers=(list[layer_union(extra)], Field(min_length=1, max_length=10_000)),  # type: ignore[arg-type,misc]
        )
        if extra:
            return model
        _models[key] = model
    return _models[key]


def _tag(spec: type[LayerSpec]) -> str:
    annotation = spec.model_fields["type"].annotation
    args: tuple[object, ...] = getattr(annotation, "__args__", ())
    if len(args) != 1 or not isinstance(args[0], str):
        raise ValueError(f"{spec.__name__}.type must be Literal['<Name>']")
    return args[0]
