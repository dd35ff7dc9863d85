"""YOLO txt labels (Ultralytics' and Darknet's layout): one `class cx cy w h` row per object.

Image i at `.../images/NAME.jpg` has its labels at `.../labels/NAME.txt` (the last `images` folder
of the path becomes `labels`); an image path with no `images` folder keeps its labels beside it
(Darknet's layout). A missing or empty label file is a background image. Coordinates are
normalised by the image's width and height; a row of 7 or more numbers (an odd count) is a
polygon (Ultralytics' segment labels) and stands for its bounding box.

Every row is checked and a bad one is one located line: `labels/00012.txt:3: class 12 >= 10
classes (names in data.yaml)`. Corners that fall outside the image (a centre near an edge with a
wide box) are clipped to it, as both Darknet and Ultralytics do: the visible part is the object.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

from darkforge.errors import DataError
from darkforge.files import read_text
from darkforge.training.detection.data.images import DETECTION_SUFFIXES, image_header
from darkforge.training.detection.data.labels import Labels, build_labels

MAX_LABEL_BYTES = 16 * 2**20  # one label file; a row is ~40 bytes, so 400,000 objects
BOX_FIELDS = ("cx", "cy", "w", "h")
Bad = Callable[..., DataError]  # message (, hint) -> the located error of the row being read


def label_path(image: Path) -> Path:
    """`.../images/X.jpg` -> `.../labels/X.txt` (the last `images` part); else `X.txt` beside it."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def list_images(folder: Path) -> list[Path]:
    """Every image under `folder` (recursively), sorted; a split folder holding `images/` and
    `labels/` means its `images/`."""
    if (folder / "images").is_dir() and not _has_images(folder):
        folder = folder / "images"
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in DETECTION_SUFFIXES and p.is_file())


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in DETECTION_SUFFIXES for p in folder.iterdir())


def read_yolo(images: list[Path], names: list[str], names_from: str) -> Labels:
    """Labels of `images`; `names_from` says where the class count comes from, for messages."""
    sizes, boxes, classes = [], [], []
    if images and not any(os.path.lexists(label_path(image)) for image in images):
        # every image a background image is a set whose labels are elsewhere, not an empty set
        raise DataError(
            f"no label file for any of the {len(images)} images (the first would be {label_path(images[0])})",
            "the labels of .../images/X.jpg are .../labels/X.txt",
            str(images[0].parent),
        )
    for image in images:
        h, w, _ = image_header(image)
        rows = read_label_file(label_path(image), len(names), names_from)
        sizes.append((h, w))
        boxes.append([[x1 * w, y1 * h, x2 * w, y2 * h] for _, x1, y1, x2, y2 in rows])
        classes.append([c for c, *_ in rows])
    return build_labels(images, sizes, boxes, classes)


def read_label_file(path: Path, nc: int, names_from: str) -> list[tuple[int, float, float, float, float]]:
    """(class, x1, y1, x2, y2) rows, normalised to 0-1 and clipped; [] when there is no file."""
    if not os.path.lexists(path):
        return []
    text = read_text(path, "a label file holds rows of `class cx cy w h`", MAX_LABEL_BYTES, DataError)
    rows = []
    for line, row in enumerate(text.splitlines(), 1):
        if row.strip():
            rows.append(_parse_row(row, nc, names_from, str(path), line))
    return rows


def _parse_row(
    row: str, nc: int, names_from: str, file: str, line: int
) -> tuple[int, float, float, float, float]:
    def bad(message: str, hint: str = "a row is `class cx cy w h`, coordinates 0-1") -> DataError:
        return DataError(message, hint, file, line)

    fields = row.split()
    try:
        values = [float(v) for v in fields]
    except ValueError:
        word = next(v for v in fields if not _is_number(v))
        raise bad(f"{word[:40]!r} is not a number") from None
    if len(values) != 5 and (len(values) < 7 or len(values) % 2 == 0):
        raise bad(f"a row of {len(values)} numbers", "a row is `class cx cy w h` (5 numbers)")
    for name, value in zip(("class", *BOX_FIELDS) if len(values) == 5 else ("class",), values, strict=False):
        if not math.isfinite(value):
            raise bad(f"{name} is {value}")
    cls = values[0]
    if cls != int(cls) or cls < 0:
        raise bad(f"class {fields[0]} is not a class index", f"classes are 0..{nc - 1} ({names_from})")
    if cls >= nc:
        raise bad(f"class {int(cls)} >= {nc} classes ({names_from})", "fix the row or add the class name")
    return (int(cls), *(_box(values[1:], bad) if len(values) == 5 else _polygon(values[1:], bad)))


def _box(values: list[float], bad: Bad) -> tuple[float, float, float, float]:
    for name, value in zip(BOX_FIELDS, values, strict=True):
        if not 0 <= value <= 1:
            raise bad(f"{name} = {value:g} is outside 0-1")
    cx, cy, w, h = values
    if w <= 0 or h <= 0:
        raise bad(f"{'w' if w <= 0 else 'h'} = 0: a box needs a positive size")
    return (max(0.0, cx - w / 2), max(0.0, cy - h / 2), min(1.0, cx + w / 2), min(1.0, cy + h / 2))


def _polygon(values: list[float], bad: Bad) -> tuple[float, float, float, float]:
    for k, value in enumerate(values):
        if not math.isfinite(value) or not 0 <= value <= 1:
            raise bad(f"point {k // 2 + 1} {'xy'[k % 2]} = {value:g} is outside 0-1")
    xs, ys = values[0::2], values[1::2]
    if max(xs) <= min(xs) or max(ys) <= min(ys):
        raise bad("the polygon has no area")
    return (min(xs), min(ys), max(xs), max(ys))


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True
