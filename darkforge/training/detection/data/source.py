"""`data.yaml` (Ultralytics' dataset file) -> class names and the sources of each split.

    path: ../datasets/coco8   # the root; relative to this file's folder (default: that folder)
    train: images/train       # a folder of images (or one holding images/ and labels/), a .txt
    val: images/val           #   list of image paths, a COCO .json, or a list of these
    test:                     # optional
    names: {0: person, 1: bicycle}   # or a list [person, bicycle]; `nc`, when given, must agree

Read with the project's capped, safe YAML reader; every error is located (file:line:column, key).
Keys that would change what is trained and that darkforge does not implement (keypoints,
segmentation-only settings) are refused rather than ignored; `download` is accepted and never run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from darkforge.errors import DataError, did_you_mean
from darkforge.spec.source import read_yaml

SPLITS = ("train", "val", "test")
KNOWN = {*SPLITS, "path", "names", "nc", "download", "channels"}
Err = Callable[..., DataError]  # (key path, message, hint="") -> the located error


@dataclass
class DataFile:
    file: Path
    names: list[str]
    splits: dict[str, list[Path]]  # split -> its sources, resolved (a split left out is absent)


def read_data_yaml(path: Path) -> DataFile:
    data, source = read_yaml(path)

    def error(key: tuple[object, ...], message: str, hint: str = "") -> DataError:
        line, column = source.locate(key)
        return DataError(message, hint, str(path), line, column, key)

    if not isinstance(data, dict):
        raise error((), "a dataset file is a mapping", "with path, train, val and names")
    for key in data:
        if key not in KNOWN:
            raise error((key,), f"unknown key {key!r}", did_you_mean(str(key), KNOWN))
    if data.get("channels", 3) != 3:
        raise error(("channels",), f"{data['channels']!r} channels: detection reads RGB images", "remove it")
    root = _root(path, data, error)
    splits = {s: _sources(data[s], root, (s,), error) for s in SPLITS if data.get(s) is not None}
    for needed in ("train", "val"):
        if needed not in splits:
            raise error((), f"no `{needed}` split", f"add `{needed}: <folder of images>`")
    return DataFile(path, _names(data, error), splits)


def _root(path: Path, data: dict[object, object], error: Err) -> Path:
    given = data.get("path")
    if given is None:
        return path.parent
    if not isinstance(given, str):
        raise error(("path",), f"{given!r} is not a folder path")
    root = Path(given).expanduser()
    return root if root.is_absolute() else path.parent / root


def _sources(value: object, root: Path, key: tuple[object, ...], error: Err) -> list[Path]:
    items = value if isinstance(value, list) else [value]
    sources = []
    for k, item in enumerate(items):
        where = (*key, k) if isinstance(value, list) else key
        if not isinstance(item, str) or not item:
            raise error(where, f"{item!r} is not a path", "a folder, a .txt list or a COCO .json")
        found = Path(item).expanduser()
        found = found if found.is_absolute() else root / found
        if not found.exists():
            raise error(
                where, f"{found} does not exist", "paths are relative to `path`, itself relative to this file"
            )
        sources.append(found)
    return sources


def _names(data: dict[object, object], error: Err) -> list[str]:
    names = data.get("names")
    nc = data.get("nc")
    if names is None:
        if not isinstance(nc, int) or isinstance(nc, bool) or nc < 1:
            raise error(("names",), "no class names", "add `names: [cat, dog]` or `names: {0: cat, 1: dog}`")
        return [f"class{i}" for i in range(nc)]
    if isinstance(names, dict):
        keys = list(names)
        if not all(type(k) is int for k in keys) or set(keys) != set(range(len(keys))):
            raise error(
                ("names",), f"keys {keys[:6]} are not 0..{len(keys) - 1}", "number the classes from 0"
            )
        names = [names[i] for i in range(len(keys))]
    if not isinstance(names, list) or not names:
        raise error(("names",), "is not a list or a mapping of class names")
    for k, name in enumerate(names):
        if not isinstance(name, str | int | float) or isinstance(name, bool):
            raise error(("names", k), f"{name!r} is not a class name")
    if nc is not None and nc != len(names):
        raise error(("nc",), f"nc {nc} but {len(names)} names", "remove nc or make them agree")
    return [str(name) for name in names]
