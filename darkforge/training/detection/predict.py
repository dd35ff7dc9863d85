"""Image files -> detections in each file's own pixels: letterbox, run the network, decode with its
head, NMS (metrics.postprocess: torchvision's batched_nms), undo the letterbox. What `darkforge
predict` runs for a detector (docs/detection.md, "eval, predict, export").

    for found in predict_files(model, files, conf=0.25, iou=0.7):
        found.path, found.detections   # (K, 6) x1, y1, x2, y2, score, class; original pixels
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from darkforge.errors import DataError
from darkforge.nn.network import Network
from darkforge.training.detection.data.images import (
    DETECTION_SUFFIXES,
    decode_upright,
    image_header,
    letterbox,
    letterbox_geometry,
)
from darkforge.training.detection.head import Head, head_of, raw_maps
from darkforge.training.detection.metrics import postprocess, to_original

BATCH = 16  # images per forward pass: a folder of photos is decoded a batch at a time


@dataclass
class Found:
    path: Path
    image: Tensor  # (3, h, w) uint8 as displayed (EXIF orientation applied)
    detections: Tensor  # (K, 6) x1, y1, x2, y2, score, class in the image's pixels, best first


def image_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The images named: files as given, folders as their image files (sorted, not recursive).
    Every header is read first, so a missing or unreadable file stops before anything runs."""
    files: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            inside = sorted(
                p for p in given.iterdir() if p.suffix.lower() in DETECTION_SUFFIXES and p.is_file()
            )
            if not inside:
                suffixes = ", ".join(sorted(DETECTION_SUFFIXES))
                raise DataError(f"{given}: no image files in this folder", f"images end in {suffixes}")
            files += inside
        elif not given.exists():
            raise DataError(f"{given}: no such file", "give image files or a folder of them")
        else:
            files.append(given)
    for f in files:
        image_header(f)  # DataError "cannot read image" for a file that is not one
    return files


def detector_head(model: Network, where: str) -> Head:
    head = head_of(model)
    if head is None:
        raise DataError(f"{where}: the network has no detection head (a Detect layer or [yolo] outputs)")
    return head


@torch.no_grad()
def decoded_of(model: nn.Module, head: Head, images: Tensor) -> Tensor:
    """(B, 3, S, S) uint8 letterboxed images -> the head's decoded (B, 4 + nc, A)."""
    x = images.float().div_(255)  # detectors take pixels in [0, 1] (mean 0, std 1)
    return head.decode(raw_maps(model(x)), int(x.shape[-1]))


def detect(
    model: nn.Module, head: Head, images: Tensor, conf: float, iou: float, max_det: int
) -> list[Tensor]:
    """Per image (K, 6) detections in input pixels (class-aware NMS)."""
    return [d.cpu() for d in postprocess(decoded_of(model, head, images), conf, iou, max_det)]


def predict_files(
    model: Network,
    files: Sequence[Path],
    conf: float = 0.25,
    iou: float = 0.7,
    max_det: int = 300,
    batch: int = BATCH,
) -> Iterator[Found]:
    """Each file's detections, in order; the model's input size is the letterbox size."""
    head = detector_head(model, str(files[0]) if files else "predict")
    size = int(model.plan.spec.input.shape[1])
    device = next(model.parameters()).device
    model.eval()
    for start in range(0, len(files), batch):
        chunk = files[start : start + batch]
        originals = [decode_upright(f) for f in chunk]
        boxed = torch.stack([letterbox(p, size) for p in originals]).to(device)
        for f, pixels, found in zip(
            chunk, originals, detect(model, head, boxed, conf, iou, max_det), strict=True
        ):
            h, w = pixels.shape[1:]
            r, _, _, pad_x, pad_y = letterbox_geometry(h, w, size)
            yield Found(f, pixels, to_original(found, r, (pad_x, pad_y), (h, w)))


def image_id(path: Path) -> int | str:
    """A result's image_id: the file's stem, as a number when it is one (COCO's ids are numbers,
    e.g. 000000139.jpg -> 139)."""
    return int(path.stem) if path.stem.isdigit() else path.stem


def summary(found: Tensor, names: Sequence[str], top: int) -> str:
    """ "3 boxes: 2 cat, 1 dog" — the count, then the `top` most frequent classes (ties: best score)."""
    if not len(found):
        return "no boxes"
    classes = found[:, 5].long().tolist()
    counts: dict[int, int] = {}
    for c in classes:  # found is best first, so a tie keeps the class seen (scored) first
        counts[c] = counts.get(c, 0) + 1
    ranked = sorted(counts, key=lambda c: -counts[c])[:top]
    shown = ", ".join(f"{counts[c]} {names[c] if c < len(names) else c}" for c in ranked)
    more = "" if len(counts) <= top else f", {len(counts) - top} more classes"
    return f"{len(found)} box{'es' if len(found) != 1 else ''}: {shown}{more} (best {found[0, 4]:.2f})"
