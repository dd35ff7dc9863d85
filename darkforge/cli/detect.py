"""The detector halves of `darkforge eval` and `darkforge predict` (cli/train.py picks them by the
checkpoint's task): COCO metrics on a split; boxes for images, as COCO result JSON and drawn images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from darkforge.errors import DataError, UsageError
from darkforge.files import write_text, write_with

PREDICT_PROJECT, PREDICT_NAME = Path("runs"), "predict"  # runs/predict, runs/predict2, … as train's runs


def eval_boxes(ckpt: str, model: Any, info: Any, flags: dict[str, Any]) -> None:
    """COCO mAP of a detector on the val split of its data (or --data, --split), and the table."""
    from darkforge.training.detection.data import is_detection_source
    from darkforge.training.detection.evaluate import evaluate_split, load_split
    from darkforge.training.detection.metrics import report_dict, report_text
    from darkforge.training.detection.predict import detector_head

    source = flags["data"] or info.data
    if source is None or not is_detection_source(source):
        given = "it names no data" if source is None else f"--data {source} is not a detection set"
        raise UsageError(
            f"{ckpt} is a detector: {given}", "give --data path/to/data.yaml (or a COCO instances .json)"
        )
    names, split, data = load_split(source, int(info.input[1]), flags["split"])
    if names != info.classes:
        raise DataError(
            f"{source}: its classes ({', '.join(names)}) differ from the checkpoint's "
            f"({', '.join(info.classes)})"
        )
    metrics, _ = evaluate_split(model, detector_head(model, ckpt), data, names)
    click.echo(
        f"{ckpt}: mAP50-95 {metrics.map:.4f}, mAP50 {metrics.map50:.4f} on {len(data):,} {split} "
        f"images of {source}"
    )
    click.echo(report_text(metrics).rstrip())
    if flags["output"]:
        extra = {"checkpoint": str(ckpt), "data": str(source), "split": split, "boxes_in": "original pixels"}
        write_text(flags["output"], json.dumps(report_dict(metrics, **extra), indent=2) + "\n")
        click.echo(f"report: {flags['output']}")


def predict_boxes(ckpt: str, model: Any, info: Any, images: tuple[str, ...], flags: dict[str, Any]) -> None:
    """Boxes for each image (letterboxed to the network's input, mapped back to the image's pixels):
    one line per image, predictions.json (COCO results) and the drawn images in --output."""
    from darkforge.training.detection.metrics import draw_detections, write_results
    from darkforge.training.detection.predict import image_files, image_id, predict_files, summary

    files = image_files(images)
    conf = 0.25 if flags["conf"] is None else flags["conf"]
    iou = 0.7 if flags["iou"] is None else flags["iou"]
    out = _folder(flags["output"])
    detections, ids, drawn = [], [], set[str]()
    for found in predict_files(model, files, conf, iou):
        picture = draw_detections(found.image, found.detections, info.classes)
        name = _unique(found.path.stem, drawn)
        _write_jpeg(out / f"{name}.jpg", picture)
        detections.append(found.detections)
        ids.append(image_id(found.path))
        click.echo(f"{found.path}: {summary(found.detections, info.classes, flags['top'])}")
    write_results(out / "predictions.json", detections, ids)
    total = sum(len(d) for d in detections)
    click.echo(
        f"{total} boxes (conf > {conf:g}, NMS IoU {iou:g}) in {out}/: predictions.json (COCO results, "
        f"bbox x, y, w, h in image pixels, category_id = class index) and {len(files)} drawn images"
    )


def _folder(given: str | None) -> Path:
    """--output as given (created), else the first free runs/predict, runs/predict2, …"""
    try:
        if given is not None:
            Path(given).mkdir(parents=True, exist_ok=True)
            return Path(given)
        PREDICT_PROJECT.mkdir(parents=True, exist_ok=True)
        for n in range(1, 10_000):
            path = PREDICT_PROJECT / (PREDICT_NAME if n == 1 else f"{PREDICT_NAME}{n}")
            try:
                path.mkdir()  # atomic: two predicts never share a folder
                return path
            except FileExistsError:
                continue
    except OSError as e:
        raise UsageError(
            f"--output {given or PREDICT_PROJECT}: cannot create it ({e.strerror})",
            "choose a writable folder",
        ) from None
    raise UsageError(f"{PREDICT_PROJECT}: too many predict folders", "give --output DIR")


def _unique(stem: str, taken: set[str]) -> str:
    """a, a_2, a_3: two inputs of one name (from different folders) keep both drawings."""
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}_{n}"
    taken.add(name)
    return name


def _write_jpeg(path: Path, image: Any) -> None:
    """(3, H, W) uint8 -> a JPEG, atomically (PIL: torchvision's encoders are deprecated)."""
    from PIL import Image

    pixels = Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())
    write_with(path, lambda temp: pixels.save(temp, "JPEG", quality=92))


NOUNS = {"classify": "classifier", "detect": "detector"}


def refuse_flags(ckpt: str, task: str, given: dict[str, tuple[Any, str]]) -> None:
    """A flag of the other task is a usage error, never silently ignored: flag -> (value, its task)."""
    for flag, (value, applies) in given.items():
        if value is not None and applies != task:
            raise UsageError(f"{flag} applies to a {NOUNS[applies]}; {ckpt} is a {NOUNS[task]}")
