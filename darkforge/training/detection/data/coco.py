"""COCO json instances: `images`, `annotations` (bbox = [x, y, w, h] in pixels), `categories`.

Classes are the categories in increasing id order (COCO's ids 1..90 with gaps become 0..79); an
image without annotations is a background image. `iscrowd` annotations mark regions of many
objects that COCO's evaluation ignores; they are not objects to learn, so training leaves them out
(docs/detection.md). A box may overrun the image by up to one pixel (rounding in the tools that
write COCO files) and is clipped to it; further out is an error, like every other bad entry: one
line naming the file and the key path (`annotations.json: annotations[17].bbox: ...`).

`file_name` is relative to the json's folder, or to the first of `images/` beside it, the folder
above it, or the split folder its name names (`annotations/instances_val2017.json` ->
`val2017/`) where the first image is found.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from darkforge.errors import DataError
from darkforge.files import read_bytes
from darkforge.training.detection.data.images import image_header
from darkforge.training.detection.data.labels import Labels, build_labels

MAX_JSON_BYTES = 2 * 2**30  # COCO's instances_train2017.json is 448 MB
OVERRUN_PX = 1.0  # how far a box may reach past the image edge and still be clipped


class _Where:
    """Located errors of one json file: `where.error(("images", 3, "width"), "is not ...")`."""

    def __init__(self, path: Path) -> None:
        self.file = str(path)

    def error(self, key: tuple[object, ...], message: str, hint: str = "") -> DataError:
        return DataError(message, hint or "see docs/detection.md, Data", self.file, path=key)


def read_coco(path: Path, names: list[str] | None = None, names_from: str = "") -> tuple[list[str], Labels]:
    """(class names, labels) of a COCO instances file. `names`, when given (data.yaml's), must equal
    the categories' names in id order."""
    where = _Where(path)
    data = _load(path, where)
    categories = _categories(data, where)
    found = [name for _, name in categories]
    if names is not None and names != found:
        raise where.error(
            ("categories",), f"names {found[:4]}… differ from {names[:4]}… ({names_from})", "make them agree"
        )
    index = {cid: k for k, (cid, _) in enumerate(categories)}
    images = _images(data, path, where)
    per_image: dict[object, tuple[list[list[float]], list[int]]] = {i: ([], []) for i in images}
    for k, ann in enumerate(_list(data, "annotations", where)):
        key: tuple[object, ...] = ("annotations", k)
        if not isinstance(ann, dict):
            raise where.error(key, "is not an object")
        if ann.get("iscrowd", 0):
            continue
        if ann.get("image_id") not in images:
            raise where.error((*key, "image_id"), f"{ann.get('image_id')!r} is not the id of an image")
        if ann.get("category_id") not in index:
            raise where.error((*key, "category_id"), f"{ann.get('category_id')!r} is not a category id")
        h, w = images[ann["image_id"]][1]
        image_boxes, image_classes = per_image[ann["image_id"]]
        image_boxes.append(_box(ann.get("bbox"), h, w, (*key, "bbox"), where))
        image_classes.append(index[ann["category_id"]])
    files = [file for file, _ in images.values()]
    sizes = [size for _, size in images.values()]
    boxes = [b for b, _ in per_image.values()]
    classes = [c for _, c in per_image.values()]
    return found, build_labels(files, sizes, boxes, classes)


def _load(path: Path, where: _Where) -> dict[str, Any]:
    raw = read_bytes(path, "give a COCO instances .json file", MAX_JSON_BYTES)
    try:
        data = json.loads(raw)
    except UnicodeDecodeError as e:
        raise DataError(f"byte {e.start} is not UTF-8", "save the file as UTF-8", where.file) from None
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON: {e.msg}", "", where.file, e.lineno, e.colno) from None
    if not isinstance(data, dict):
        raise DataError("is not a COCO file (an object with images, annotations, categories)", "", where.file)
    return data


def _list(data: dict[str, Any], key: str, where: _Where) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise where.error((key,), "missing or not a list", "a COCO file has images, annotations, categories")
    return value


def _categories(data: dict[str, Any], where: _Where) -> list[tuple[int, str]]:
    found: dict[int, str] = {}
    for k, cat in enumerate(_list(data, "categories", where)):
        if not isinstance(cat, dict) or not _is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise where.error(("categories", k), "a category needs an integer `id` and a `name`")
        if cat["id"] in found:
            raise where.error(("categories", k, "id"), f"id {cat['id']} is used twice")
        found[cat["id"]] = cat["name"]
    if not found:
        raise where.error(("categories",), "is empty", "list the classes as {id, name} objects")
    return sorted(found.items())


def _images(data: dict[str, Any], path: Path, where: _Where) -> dict[object, tuple[Path, tuple[int, int]]]:
    """id -> (file, (h, w)); the sizes the json states are checked against the files' headers."""
    entries = _list(data, "images", where)
    root = _image_root(path, entries)
    images: dict[object, tuple[Path, tuple[int, int]]] = {}
    for k, entry in enumerate(entries):
        key: tuple[object, ...] = ("images", k)
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            raise where.error(key, "an image needs `id`, `file_name`, `width` and `height`")
        if entry.get("id") in images:
            raise where.error((*key, "id"), f"id {entry.get('id')!r} is used twice")
        for side in ("width", "height"):
            if not _is_int(entry.get(side)) or entry[side] <= 0:
                raise where.error((*key, side), f"{entry.get(side)!r} is not a positive integer")
        file = root / entry["file_name"]
        if not file.is_file():
            raise where.error((*key, "file_name"), f"{file} not found", f"images are looked up in {root}")
        h, w, _ = image_header(file)
        if (h, w) != (entry["height"], entry["width"]):
            raise where.error(key, f"{entry['width']}×{entry['height']} here, but {file} is {w}×{h}")
        images[entry["id"]] = (file, (h, w))
    return images


def _image_root(path: Path, entries: list[Any]) -> Path:
    """The folder `file_name`s are relative to: the first candidate holding the first image."""
    here = path.parent
    candidates = [here, here / "images", here.parent, here.parent / "images"]
    candidates += [here.parent / part for part in path.stem.split("_")[1:]]  # instances_val2017
    first = entries[0].get("file_name") if entries and isinstance(entries[0], dict) else None
    if isinstance(first, str):
        for root in candidates:
            if (root / first).is_file():
                return root
    return here


def _box(bbox: object, h: int, w: int, key: tuple[object, ...], where: _Where) -> list[float]:
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        raise where.error(key, f"{str(bbox)[:60]} is not [x, y, w, h] (4 numbers)")
    x, y, bw, bh = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (x, y, bw, bh)):
        raise where.error(key, f"{bbox} is not finite")
    if bw <= 0 or bh <= 0:
        raise where.error(key, f"{bbox}: a box needs a positive width and height")
    if x < -OVERRUN_PX or y < -OVERRUN_PX or x + bw > w + OVERRUN_PX or y + bh > h + OVERRUN_PX:
        raise where.error(
            key, f"{bbox} reaches outside the {w}×{h} image", "boxes are [x, y, w, h] in pixels"
        )
    return [max(0.0, x), max(0.0, y), min(float(w), x + bw), min(float(h), y + bh)]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
