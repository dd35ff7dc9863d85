"""Image files -> uint8 tensors: one decoder for every cache mode, and the lazy `Files` source.

Every mode (ram, disk, none) decodes with the same function, `decode_file` (torchvision's libjpeg /
libpng decoders, PIL for what they refuse), then resizes with the same antialiased resize: so the
pixels a batch holds do not depend on where they were kept.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor

from darkforge.errors import DataError
from darkforge.files import read_bytes

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
MAX_IMAGE_BYTES = 256 * 2**20  # one encoded image; a 224-px JPEG is ~30 KB, a 4K PNG ~25 MB
PNG = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 89_478_485  # PIL's own decompression-bomb limit (a 4K image is 8.3 million)


def reason(error: Exception) -> str:
    """The first line of an error's cause, short enough for a one-line message."""
    text = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
    return str(text).split("\n")[0][:120]


def read_image(path: str | os.PathLike[str], channels: int = 3) -> Tensor:
    """One image file as a (C, H, W) uint8 tensor (C = `channels`: 3 for RGB, 1 for gray)."""
    raw = read_bytes(path, "remove or replace it", MAX_IMAGE_BYTES)
    if not raw:  # torch.frombuffer refuses an empty buffer with numpy's words
        raise DataError(f"{path}: empty file, not an image", "remove or replace it")
    _check_pixels(path, raw)
    if raw.startswith(PNG):  # torchvision's libpng decoder crashes the process on truncated data
        return _read_with_pil(path, channels)
    try:
        with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders (for torchcodec)
            warnings.simplefilter("ignore", DeprecationWarning)
            from torchvision.io import ImageReadMode, decode_image

            mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
            return decode_image(torch.frombuffer(bytearray(raw), dtype=torch.uint8), mode=mode)
    except RuntimeError:  # formats libjpeg/libpng refuse (CMYK JPEG, odd PNGs): PIL may still read them
        return _read_with_pil(path, channels)


def _check_pixels(path: str | os.PathLike[str], raw: bytes) -> None:
    """Refuse a decompression bomb before decoding it: PIL reads the size from the header alone."""
    from PIL import Image

    try:
        # PIL warns past MAX_PIXELS (its own line on stderr): darkforge says it once, below
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as image:
                width, height = image.size
    except Image.DecompressionBombError as e:
        raise DataError(f"{path}: {reason(e)}", "use a smaller image") from None
    except (OSError, ValueError, SyntaxError):
        return  # not PIL's to judge: the decoders below say what is wrong
    if width * height > MAX_PIXELS:
        raise DataError(
            f"{path}: {width}×{height} pixels is more than {MAX_PIXELS // 10**6} million",
            "use a smaller image",
        )


def _read_with_pil(path: str | os.PathLike[str], channels: int) -> Tensor:
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB" if channels == 3 else "L"))
    except (
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
    ) as e:  # UnidentifiedImageError: OSError
        raise DataError(f"{path}: cannot decode image ({reason(e)})", "remove or replace it") from None
    tensor = torch.from_numpy(pixels.copy())
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)


def resize(images: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, C, H, W) uint8 at `size` (H, W), antialiased; unchanged when already that size."""
    if tuple(images.shape[-2:]) == size:
        return images
    from torchvision.transforms.v2.functional import resize as tv_resize

    return tv_resize(images, list(size), antialias=True)


def decode_file(path: str | os.PathLike[str], size: tuple[int, int], channels: int = 3) -> Tensor:
    """(C, H, W) uint8 at `size`: what every cache mode stores or decodes for one file."""
    return resize(read_image(path, channels)[None], size)[0]


class OnDemand:
    """Pixels read on demand, on the host, that quack like the (N, C, H, W) uint8 tensor they
    stand for: `shape`, `len`, `device`, `nbytes`, and indexing by a tensor of rows."""

    shape: torch.Size
    workers = 0  # DataLoader workers that fetch batches (0: fetched in the calling process)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def nbytes(self) -> int:
        return self.shape.numel()

    def __len__(self) -> int:
        return self.shape[0]


class Files(OnDemand):
    """Images left on disk as files (`--cache none`): indexing decodes them, in the calling
    process or in a DataLoader worker."""

    def __init__(self, paths: list[Path], size: tuple[int, int], channels: int = 3, workers: int = 0) -> None:
        self.paths, self.size, self.channels, self.workers = paths, size, channels, workers
        self.shape = torch.Size((len(paths), channels, *size))

    def __getitem__(self, index: Tensor | slice) -> Tensor:
        rows = _rows(index, len(self))
        out = torch.empty((len(rows), self.channels, *self.size), dtype=torch.uint8)
        for k, i in enumerate(rows):
            out[k] = decode_file(self.paths[i], self.size, self.channels)
        return out

    def subset(self, index: Tensor | slice) -> Files:
        return Files([self.paths[i] for i in _rows(index, len(self))], self.size, self.channels, self.workers)


def _rows(index: Tensor | slice, n: int) -> list[int]:
    if isinstance(index, slice):
        return list(range(n))[index]
    return index.cpu().reshape(-1).tolist()
