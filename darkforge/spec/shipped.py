"""Where the files that ship with darkforge lie: the architectures of `darkforge zoo` and the
block libraries a file can `include` by name (`include: [ultralytics]`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

LIBRARIES = "blocks"  # the folder of archs/ that holds the shipped block libraries


def shipped_archs() -> Path:
    """The architectures that ship with darkforge: the wheel's darkforge/archs/, or in a clone the
    top-level archs/ that users edit (the wheel copies it; see pyproject.toml)."""
    packaged = Path(str(resources.files("darkforge"))) / "archs"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "archs"


def shipped_library(name: str) -> Path | None:
    """The shipped block library `name` (a bare word: `ultralytics`), or None."""
    if not name.isidentifier():
        return None
    path = shipped_archs() / LIBRARIES / f"{name}.yaml"
    return path if path.is_file() else None


def library_names() -> list[str]:
    return sorted(p.stem for p in (shipped_archs() / LIBRARIES).glob("*.yaml"))
