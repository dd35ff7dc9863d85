"""Architecture files -> NetworkSpec, with errors that point at the file, line, column and key path.

YAML is read safely and capped (darkforge.spec.source); its `blocks:` and `include:` make the file's
own layer types (darkforge.spec.library); pydantic's errors become one located line
(darkforge.spec.messages).

Other file formats plug in by suffix (`READERS`): darkforge.darknet registers `.cfg` the way a
user's plugin would, so nothing here knows Darknet. YAML files of another format plug in by their
content (`YAML_FORMATS`): darkforge.ultralytics recognises Ultralytics' `backbone:`/`head:` files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from darkforge.errors import SpecError, did_you_mean
from darkforge.spec import registry
from darkforge.spec.base import NetworkSpec
from darkforge.spec.defaults import applied, checked
from darkforge.spec.library import layer_fields, network_model_for
from darkforge.spec.messages import describe
from darkforge.spec.shipped import shipped_archs
from darkforge.spec.source import SourceMap, parse_yaml_text, read_yaml
from darkforge.spec.toplevel import computed, relayer, substituted

# Readers of other architecture formats, by file suffix (".cfg": darkforge.darknet fills it in).
READERS: dict[str, Callable[[Path], NetworkSpec]] = {}


def register_reader(suffix: str, reader: Callable[[Path], NetworkSpec]) -> None:
    """Make `load_spec` read files ending in `suffix` (e.g. ".cfg") with `reader`."""
    READERS[suffix.lower()] = reader


@dataclass(frozen=True)
class YamlFormat:
    """Another YAML format: `recognise` sees the parsed data; `read` gets it, its positions and
    the path as asked; `locate` maps a name that is no file to the file that holds it (Ultralytics'
    `yolov8n.yaml` is `yolov8.yaml` at scale n), or None."""

    name: str
    recognise: Callable[[Any], bool]
    read: Callable[[Any, SourceMap, Path], NetworkSpec]
    locate: Callable[[Path], Path | None]


YAML_FORMATS: list[YamlFormat] = []


def register_yaml_format(fmt: YamlFormat) -> None:
    """Make `load_spec` hand YAML files that `fmt.recognise` to `fmt.read`."""
    if all(f.name != fmt.name for f in YAML_FORMATS):
        YAML_FORMATS.append(fmt)


def arch_path(arch: str | os.PathLike[str]) -> Path:
    """A file path, or the bare name of an architecture shipped with darkforge (`darknet53`),
    so `darkforge train darknet53` works from an installed wheel."""
    path = Path(arch)
    shipped = shipped_archs() / f"{arch}.yaml"
    if not path.exists() and not path.suffix and shipped.is_file():
        return shipped
    if not path.exists() and not path.suffix and os.sep not in str(arch):  # a bare name, not shipped
        names = shipped_names()
        near = did_you_mean(str(arch), names)
        hint = f"{near} (`darkforge zoo` lists them)"
        raise SpecError(f"no such file or shipped network {str(arch)[:60]!r}", hint)
    return path


def shipped_names() -> list[str]:
    """The names `arch_path` accepts for the shipped architectures (`darkforge zoo`)."""
    return sorted(p.stem for p in shipped_archs().glob("*.yaml"))


DEFAULT_ARCH = "darknet53"


def default_arch() -> Path:
    """What commands use when no ARCH is given: ./archs/darknet53.yaml, else the shipped one."""
    local = Path("archs") / f"{DEFAULT_ARCH}.yaml"
    return local if local.is_file() else shipped_archs() / f"{DEFAULT_ARCH}.yaml"


def load_spec(path: str | os.PathLike[str]) -> NetworkSpec:
    """Read and validate an architecture file (a darkforge YAML, or a format a plugin reads,
    such as Darknet's .cfg)."""
    path = arch_path(path)
    registry.load_plugins()  # entry points may add readers
    reader = READERS.get(path.suffix.lower())
    if reader is not None:
        return reader(path)
    if not path.exists():
        for fmt in YAML_FORMATS:
            real = fmt.locate(path)
            if real is not None:
                data, source = read_yaml(real)
                return fmt.read(data, source, path)
    data, source = read_yaml(path)
    for fmt in YAML_FORMATS:
        if fmt.recognise(data):
            return fmt.read(data, source, path)
    return parse_spec(data, source)


def spec_from_text(text: str, name: str) -> NetworkSpec:
    """A spec from YAML text, such as the copy a run directory or checkpoint keeps."""
    return parse_spec(*parse_yaml_text(text, name))


def parse_spec(data: Any, source: SourceMap) -> NetworkSpec:
    """Validate plain data (already read from `source`) into a spec."""
    if not isinstance(data, dict):
        raise source.error(f"expected a mapping of `name`, `input`, `layers`…, got {type(data).__name__}")
    if "blocks" in data and not {"name", "input", "layers"} & set(data):
        names = ", ".join(map(str, data["blocks"])) if isinstance(data["blocks"], dict) else "?"
        raise source.error(
            f"this is a block library (blocks: {names}), not a network",
            f"use it from a network file: include: [{Path(source.file).name}]",
        )
    _check_plugins(data, source)
    model, library = network_model_for(data, source)
    blocks = library.blocks if library is not None else {}
    defaults = checked(data, source, lambda kind: layer_fields(kind, blocks))
    if defaults:
        data = {**data, "layers": applied(data.get("layers"), defaults)}
    written = data
    classes = data.get("classes")
    keys = computed(data, source)
    expressions = bool(keys) and isinstance(classes, int) and not isinstance(classes, bool)
    if expressions:
        data = substituted(data, source, classes)
    try:
        spec = model.model_validate(data)
    except ValidationError as e:
        raise describe(e, data, library=library).at(source) from None
    spec._source = source
    if expressions:  # `${classes}` in the layers: --classes validates them again (spec/toplevel.py)
        spec._relayer = relayer(model, written, source, partial(describe, library=library))
        spec._computed = keys
    return spec


def _check_plugins(data: dict[str, Any], source: SourceMap) -> None:
    """A file names the plugins it needs; a missing one is said before its unknown types are."""
    needed = data.get("plugins") or []
    if not isinstance(needed, list):
        return  # the model's validation says what is wrong with it
    for k, name in enumerate(needed):
        if isinstance(name, str) and not registry.has_plugin(name):
            raise source.error(
                f"needs plugin {name!r}",
                f"pip install {name} (its `darkforge.layers` entry point loads it), or pass --plugin MODULE",
                ("plugins", k),
            )


__all__ = [
    "READERS",
    "YAML_FORMATS",
    "SourceMap",
    "YamlFormat",
    "load_spec",
    "parse_spec",
    "parse_yaml_text",
    "read_yaml",
    "register_reader",
    "register_yaml_format",
]
