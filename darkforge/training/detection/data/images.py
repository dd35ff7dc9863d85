"""Image files -> letterboxed uint8 pixels, and the geometry that maps boxes in and out.

Decoding reuses the classification decoder (darkforge.training.data.images.read_image: capped read,
decompression-bomb check, libjpeg/libpng with PIL as fallback) and then applies the file's EXIF
orientation, because labels describe the image as it is displayed (a phone photo stored sideways
with orientation 6 is labelled upright). The size a label refers to is read from the header alone
(`image_size`), so boxes can be checked and mapped before any pixel is decoded.

Letterbox (the network input is S×S): scale r = min(S/h, S/w), resize to (round(h·r), round(w·r))
with the same antialiased resize as classification, centre it on a grey (114) canvas. A point maps
as input = original · r + pad, and back as original = (input - pad) / r (docs/detection.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import Tensor

from darkforge.errors import DataError
from darkforge.training.data.images import read_image, reason, resize

FILL = 114  # the letterbox grey (Ultralytics' and Darknet's 0.5 grey in uint8)
EXIF_ORIENTATION = 0x0112
DETECTION_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}

# EXIF orientation -> the (C, H, W) operation that shows the image upright (PIL's exif_transpose:
# 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270, 7 TRANSVERSE, 8 ROTATE_90)
ORIENT: dict[int, Callable[[Tensor], Tensor]] = {
    2: lambda x: x.flip(-1),
    3: lambda x: x.flip(-1, -2),
    4: lambda x: x.flip(-2),
    5: lambda x: x.transpose(-1, -2),
    6: lambda x: torch.rot90(x, -1, (-2, -1)),
    7: lambda x: x.transpose(-1, -2).flip(-1, -2),
    8: lambda x: torch.rot90(x, 1, (-2, -1)),
}


def image_header(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """(h, w, orientation) of an image as displayed, from its header (nothing is decoded)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = int(image.getexif().get(EXIF_ORIENTATION, 1) or 1)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: cannot read image ({reason(e)})", "remove or replace it") from None
    if orientation not in ORIENT:
        orientation = 1  # 1, or a value outside the standard's 1-8 (PIL ignores those too)
    if orientation >= 5:  # 5-8 swap the axes
        width, height = height, width
    return height, width, orientation


def decode_upright(path: str | os.PathLike[str], size: tuple[int, int] | None = None) -> Tensor:
    """(3, h, w) uint8 RGB as displayed; `size` (h, w) is what the header said: a file whose pixels
    disagree is refused rather than trained with boxes that no longer fit."""
    header = image_header(path)
    pixels = read_image(path, 3)
    if header[2] != 1:
        pixels = ORIENT[header[2]](pixels).contiguous()
    expected = size or header[:2]
    if tuple(pixels.shape[1:]) != tuple(expected):
        raise DataError(
            f"{path}: decodes to {pixels.shape[2]}×{pixels.shape[1]} pixels, "
            f"but its labels are for {expected[1]}×{expected[0]}",
            "fix the image size in the annotations or replace the file",
        )
    return pixels


def letterbox_geometry(h: int, w: int, size: int) -> tuple[float, int, int, int, int]:
    """(r, new_h, new_w, pad_x, pad_y) for an h×w image on a size×size canvas."""
    r = min(size / h, size / w)
    new_h, new_w = max(1, min(size, round(h * r))), max(1, min(size, round(w * r)))
    return r, new_h, new_w, (size - new_w) // 2, (size - new_h) // 2


def letterbox(pixels: Tensor, size: int) -> Tensor:
    """(3, h, w) uint8 -> (3, size, size) uint8, resized keeping the aspect and centred on grey."""
    _, h, w = pixels.shape
    _, new_h, new_w, pad_x, pad_y = letterbox_geometry(h, w, size)
    out = torch.full((pixels.shape[0], size, size), FILL, dtype=torch.uint8)
    out[:, pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resize(pixels[None], (new_h, new_w))[0]
    return out


def decode_letterboxed(path: str | os.PathLike[str], size: int, hw: tuple[int, int] | None = None) -> Tensor:
    """What every cache mode stores or decodes for one file: (3, size, size) uint8."""
    return letterbox(decode_upright(path, hw), size)
