"""`--data` for detection -> train/val/test splits of letterboxed pixels and boxes, with the names.

    load_detection_data("path/to/data.yaml", 640)          # Ultralytics' dataset file
    load_detection_data("train/annotations.json", 640)     # one COCO file: the train split; val is
                                                           # the same path with `train` -> `val`
                                                           # (folder or name), when that exists
Labels are read and checked for every split before any pixel is decoded, so a bad row stops the run
before anything is trained (docs/detection.md, Data).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from darkforge.errors import DataError, UsageError
from darkforge.files import read_text
from darkforge.training.data.datasets import default_budget
from darkforge.training.data.splits import Lazy
from darkforge.training.detection.data.coco import read_coco
from darkforge.training.detection.data.images import DETECTION_SUFFIXES
from darkforge.training.detection.data.labels import Labels, concat
from darkforge.training.detection.data.source import read_data_yaml
from darkforge.training.detection.data.split import DetectionSplit, letterboxed_targets
from darkforge.training.detection.data.store import place_pixels
from darkforge.training.detection.data.yolo import list_images, read_yolo

DETECTION_FILES = (".yaml", ".yml", ".json")


@dataclass
class DetectionData:
    name: str  # the --data argument as given
    names: list[str]  # class names, index = class id
    input_size: int  # S: every image is letterboxed to S×S
    train: DetectionSplit
    val: DetectionSplit | None
    test: DetectionSplit | None = None
    cache: str = "ram"  # where the pixels live: ram, disk or none


def load_detection_data(
    source: str | os.PathLike[str],
    input_size: int,
    cache_mode: str = "auto",
    budget: int | None = None,
    workers: int | None = None,
) -> DetectionData:
    """Read, check and letterbox a detection set; `cache_mode` and `budget` (bytes) as for
    classification (`auto`: ram when it fits half the memory, else disk, else none)."""
    names, labels = read_detection_labels(source)
    # the cache sits beside the images, so both label forms of one set share it
    root = Path(os.path.commonpath([str(f.parent) for split in labels.values() for f in split.files]))
    workers = min(4, os.cpu_count() or 1) if workers is None else workers
    pixels, mode = place_pixels(root, labels, input_size, cache_mode, budget or default_budget(), workers)
    splits = {s: _split(labels[s], pixels[s], input_size) for s in labels}
    return DetectionData(
        str(source), names, input_size, splits["train"], splits.get("val"), splits.get("test"), mode
    )


def is_detection_source(source: str | os.PathLike[str]) -> bool:
    """Whether `--data` names a detection set (a data.yaml or a COCO json) rather than a
    classification source (cifar10, imagefolder:DIR, fake)."""
    return Path(source).suffix.lower() in DETECTION_FILES


def read_detection_labels(source: str | os.PathLike[str]) -> tuple[list[str], dict[str, Labels]]:
    """(names, split -> Labels) of a data.yaml or a COCO json, every label checked."""
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError("no such file", "give a data.yaml or a COCO instances .json", str(path))
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):  # DETECTION_FILES
        data = read_data_yaml(path)
        where = f"names in {path.name}"
        splits = {s: concat([_read(p, data.names, where) for p in paths]) for s, paths in data.splits.items()}
        names = data.names
    elif suffix == ".json":
        names, train = read_coco(path)
        splits = {"train": train}
        val = _val_beside(path)
        if val is not None:
            splits["val"] = read_coco(val, names, f"categories of {path}")[1]
    else:
        raise UsageError(f"--data {source}: not a data.yaml or a COCO .json", "see docs/detection.md, Data")
    for split, labels in splits.items():
        if not len(labels):
            raise DataError(f"the {split} split has no images", "check its folder", str(path))
    return names, splits


def _read(source: Path, names: list[str], where: str) -> Labels:
    """One entry of a split: a COCO json, a .txt list of images, or a folder of images."""
    if source.suffix.lower() == ".json":
        return read_coco(source, names, where)[1]
    if source.is_file():  # a list of image paths, one a line, relative to the list's folder
        lines = read_text(source, "a list of image paths, one a line", error=DataError).splitlines()
        images = [source.parent / line.strip() for line in lines if line.strip()]
        for line, image in enumerate(images, 1):
            if image.suffix.lower() not in DETECTION_SUFFIXES or not image.is_file():
                raise DataError(f"{image} is not an image file", "list existing images", str(source), line)
        return read_yolo(sorted(images), names, where)
    return read_yolo(list_images(source), names, where)


def _val_beside(path: Path) -> Path | None:
    """`.../train/annotations.json` -> `.../val/annotations.json`; `instances_train2017.json` ->
    `instances_val2017.json`: the first of these that exists."""
    candidates = [path.with_name(path.name.replace("train", "val"))]
    if path.parent.name == "train":
        candidates.insert(0, path.parent.parent / "val" / path.name)
    return next((c for c in candidates if c != path and c.is_file()), None)


def _split(labels: Labels, pixels: Tensor | Lazy, size: int) -> DetectionSplit:
    boxes, scale, pad = letterboxed_targets(labels, size)
    return DetectionSplit(
        pixels, boxes, labels.classes, labels.offsets, labels.sizes, scale, pad, labels.files
    )  # type: ignore[arg-type]
