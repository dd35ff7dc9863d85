"""The architecture text a run directory (arch.yaml) and its checkpoints keep: self-contained.

A YAML file is kept as written (its comments survive) unless it `include`s block libraries: then
its blocks and every included library's are inlined under `blocks:` and the `include:` dropped,
so a checkpoint means what it meant when trained wherever it goes, whatever files lie beside it
later. A Darknet .cfg is converted. Text read back from a run or a checkpoint must be
self-contained: an `include:` there (a run of an older darkforge) would read files beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from darkforge.errors import DataError
from darkforge.spec.base import NetworkSpec
from darkforge.spec.dump import dump_spec
from darkforge.spec.library import read_blocks
from darkforge.spec.load import parse_spec, parse_yaml_text


def inlined(spec: NetworkSpec) -> NetworkSpec:
    """`spec` with its includes' blocks under `blocks:` (itself when it includes nothing)."""
    source = spec._source
    if not spec.include or source is None:
        return spec
    own = {"include": spec.include, "blocks": spec.blocks, "defaults": spec.defaults}
    blocks = read_blocks(own, source, (source.file,))
    written = {
        name: block.definition.model_dump(mode="json", exclude_unset=True) for name, block in blocks.items()
    }
    # the blocks carry their own files' defaults now: the network's would reach a library's
    resolved = spec.model_copy(update={"include": None, "blocks": written, "defaults": None})
    resolved._source = source
    return resolved


def arch_text(path: Path, spec: NetworkSpec, resolved: NetworkSpec | None = None) -> str:
    """What a run keeps of the file it trains (`spec`, as loaded): the YAML itself, or a
    self-contained rewrite (`resolved`: `inlined(spec)`, when the caller has it)."""
    if path.suffix == ".cfg" or spec._converted_from is not None:  # a Darknet .cfg, an Ultralytics YAML
        return dump_spec(spec, f"Converted from {path.name} by `darkforge train`.")
    if spec.include:
        names = ", ".join(spec.include)
        header = f"{path.name} as `darkforge train` read it: its includes ({names}) inlined under blocks."
        return dump_spec(resolved or inlined(spec), header)
    return path.read_text()


def embedded_spec(text: str, origin: str) -> NetworkSpec:
    """The spec of an architecture a run or a checkpoint holds, refused if it reads other files."""
    data: Any
    data, source = parse_yaml_text(text, origin)
    if isinstance(data, dict) and data.get("include"):
        raise DataError(
            f"{origin}: includes block libraries, so what it means depends on the files beside it",
            "retrain from the file with this darkforge (runs keep their blocks inlined)",
        )
    return parse_spec(data, source)
