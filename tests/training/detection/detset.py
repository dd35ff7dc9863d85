"""A tiny detection set written in both label forms (YOLO txt + data.yaml, COCO json) for tests.

Images of several sizes (JPEG and PNG), boxes at whole pixels, a background image without a label
file and one with an empty label file; COCO category ids are 1, 5, 9 (listed out of order) so the
contiguous-class mapping is exercised.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

NAMES = ["cat", "dog", "bird"]
CATEGORY_IDS = [1, 5, 9]  # class k <-> COCO category CATEGORY_IDS[k]
# split -> file -> ((h, w), [(class, x1, y1, x2, y2)] in pixels, or None: no label file)
IMAGES: dict[str, dict[str, tuple[tuple[int, int], list[tuple[int, int, int, int, int]] | None]]] = {
    "train": {
        "a.jpg": ((48, 64), [(0, 4, 6, 20, 30), (2, 30, 10, 64, 48)]),
        "b.png": ((30, 40), [(1, 0, 0, 10, 12)]),
        "c.jpg": ((32, 32), None),
        "d.png": ((20, 50), []),
    },
    "val": {"e.jpg": ((64, 64), [(2, 10, 12, 40, 50)])},
}


def write_images(root: Path, layout: str = "ultralytics") -> dict[str, Path]:
    """Images and YOLO labels; layout `ultralytics`: images/<split>/ + labels/<split>/, `split`:
    <split>/images/ + <split>/labels/. Returns split -> image folder."""
    rng = np.random.default_rng(0)
    folders = {}
    for split, files in IMAGES.items():
        images = root / ("images/" + split if layout == "ultralytics" else split + "/images")
        labels = root / ("labels/" + split if layout == "ultralytics" else split + "/labels")
        images.mkdir(parents=True)
        labels.mkdir(parents=True)
        for name, ((h, w), boxes) in files.items():
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(images / name, quality=95)
            if boxes is not None:
                rows = [
                    f"{c} {(x1 + x2) / 2 / w!r} {(y1 + y2) / 2 / h!r} {(x2 - x1) / w!r} {(y2 - y1) / h!r}\n"
                    for c, x1, y1, x2, y2 in boxes
                ]
                (labels / name).with_suffix(".txt").write_text("".join(rows))
        folders[split] = images
    return folders


def write_yaml(root: Path, text: str | None = None) -> Path:
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(NAMES))
    path = root / "data.yaml"
    path.write_text(text or f"path: .\ntrain: images/train\nval: images/val\nnames:\n{names}")
    return path


def write_coco(root: Path, split: str, prefix: str = "images/") -> Path:
    """root/<split>.json with file_name relative to root (`images/<split>/a.jpg`)."""
    images, annotations = [], []
    for k, (name, ((h, w), boxes)) in enumerate(IMAGES[split].items()):
        images.append({"id": 100 + k, "file_name": f"{prefix}{split}/{name}", "width": w, "height": h})
        for c, x1, y1, x2, y2 in boxes or []:
            annotations.append(
                {"id": len(annotations) + 1, "image_id": 100 + k, "category_id": CATEGORY_IDS[c],
                 "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0}
            )  # fmt: skip
    categories = [{"id": CATEGORY_IDS[k], "name": NAMES[k]} for k in (2, 0, 1)]  # out of id order
    path = root / f"{split}.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def write_set(root: Path) -> tuple[Path, Path]:
    """Both forms: (data.yaml, train.json); val.json beside train.json."""
    write_images(root)
    write_coco(root, "val")
    return write_yaml(root), write_coco(root, "train")


# a learnable set for training tests: one colour per class, squares on a grey canvas
COLOURS = [(230, 40, 40), (40, 200, 40), (40, 60, 230)]


def write_shapes(root: Path, train: int = 48, val: int = 16, side: int = 32, seed: int = 0) -> Path:
    """A data.yaml over `train`/`val` generated images (side × side PNGs), each with one or two
    filled squares whose colour is the class (NAMES); returns the data.yaml."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("val", val)):
        images, labels = root / "images" / split, root / "labels" / split
        images.mkdir(parents=True)
        labels.mkdir(parents=True)
        for k in range(n):
            pixels = np.full((side, side, 3), 114, np.uint8)
            rows = []
            for _ in range(int(rng.integers(1, 3))):
                c, w = int(rng.integers(0, len(NAMES))), int(rng.integers(side // 4, side // 2))
                x, y = (int(v) for v in rng.integers(0, side - w, 2))
                pixels[y : y + w, x : x + w] = COLOURS[c]
                rows.append(f"{c} {(x + w / 2) / side} {(y + w / 2) / side} {w / side} {w / side}\n")
            Image.fromarray(pixels).save(images / f"{k:03d}.png")
            (labels / f"{k:03d}.txt").write_text("".join(rows))
    return write_yaml(root)
