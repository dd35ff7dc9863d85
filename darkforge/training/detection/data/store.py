"""Where a detection split's letterboxed pixels live: `ram`, `disk` or `none`, as for classification.

The decoded file has training.cache's layout (MAGIC, JSON header, page-aligned (N, 3, S, S) uint8
sections), so `ram` reads a section whole (cache.read_images) and `disk` memory-maps it
(cache.Mapped). It holds pixels only: labels are cheap to read, and they are re-read and re-checked
on every load, so an edited label file is never served stale from a cache. The header's
fingerprint covers each image's path, byte size and mtime and the input size; a file whose header
disagrees is rebuilt (one builder at a time, under cache.locked; atomically, via files.replacing).
`none` decodes per batch (`LetterboxFiles`, in DataLoader workers when `workers` > 0).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from darkforge.errors import DataError, UsageError
from darkforge.files import replacing
from darkforge.training.data import cache
from darkforge.training.data.datasets import MODES, cache_dir, choose_cache
from darkforge.training.data.images import OnDemand, reason
from darkforge.training.data.splits import Lazy
from darkforge.training.detection.data.images import decode_letterboxed
from darkforge.training.detection.data.labels import Labels

VERSION = 1


class LetterboxFiles(OnDemand):
    """Images left on disk (`--cache none`): indexing decodes and letterboxes them."""

    def __init__(self, files: list[Path], sizes: Tensor, size: int, workers: int = 0) -> None:
        self.files, self.sizes, self.size, self.workers = files, sizes, size, workers
        self.shape = torch.Size((len(files), 3, size, size))

    def __getitem__(self, index: Tensor | slice) -> Tensor:
        rows = list(range(len(self)))[index] if isinstance(index, slice) else index.reshape(-1).tolist()
        out = torch.empty((len(rows), 3, self.size, self.size), dtype=torch.uint8)
        for k, i in enumerate(rows):
            out[k] = decode_letterboxed(
                self.files[i], self.size, (int(self.sizes[i, 0]), int(self.sizes[i, 1]))
            )
        return out

    def subset(self, index: Tensor | slice) -> LetterboxFiles:
        rows = list(range(len(self)))[index] if isinstance(index, slice) else index.reshape(-1).tolist()
        return LetterboxFiles([self.files[i] for i in rows], self.sizes[rows], self.size, self.workers)


def place_pixels(
    root: Path, splits: dict[str, Labels], size: int, mode: str, budget: int, workers: int
) -> tuple[dict[str, Tensor | Lazy], str]:
    """Each split's (N, 3, size, size) uint8 pixels in the cache `mode` (auto resolved), and the mode."""
    if mode not in MODES:
        raise UsageError(f"--cache {mode!r} is not a cache mode", f"use one of {', '.join(MODES)}")
    decoded = sum(len(labels) for labels in splits.values()) * 3 * size * size
    if mode == "auto":
        mode = choose_cache(decoded, budget, _free_space(root))
    if mode == "none":
        return {s: LetterboxFiles(v.files, v.sizes, size, workers) for s, v in splits.items()}, mode
    head = header_for(splits, size)
    name = f"darkforge-det-{head['fingerprint']}.u8"
    places = [root / ".darkforge-cache" / name, cache_dir() / "detection" / name]
    try:
        path = ensure(places, head, splits)
    except OSError as e:
        if mode == "disk":
            raise DataError(
                f"cannot write the decoded-image cache in {places[0].parent} "
                f"or {places[1].parent} ({reason(e)})",
                "free some disk space, set DARKFORGE_CACHE to a writable folder, or use --cache none",
            ) from None
        return {s: _decode_all(v, size) for s, v in splits.items()}, mode  # ram without a cache file
    if mode == "ram":
        return {s: cache.read_images(path, head, s) for s in splits}, mode
    return {s: cache.Mapped(path, head, s) for s in splits}, mode


def header_for(splits: dict[str, Labels], size: int) -> dict[str, Any]:
    """The header the cache of `splits` at `size` must carry (training.cache's keys for images)."""
    stats = [(str(f), *_stat(f)) for labels in splits.values() for f in labels.files]
    key = repr((VERSION, size, [len(v) for v in splits.values()], stats))
    head: dict[str, Any] = {"version": VERSION, "kind": "detection", "size": [size, size], "channels": 3}
    head["fingerprint"] = hashlib.sha256(key.encode()).hexdigest()[:16]
    offset, sections = 0, {}
    for name, labels in splits.items():
        sections[name] = {"count": len(labels), "images": offset}
        offset += len(labels) * 3 * size * size
    head["splits"] = sections
    text = json.dumps(head | {"start": 10**20, "bytes": 10**20}).encode()  # room for the two numbers
    head["start"] = -(-(len(cache.MAGIC) + 8 + len(text)) // cache.PAGE) * cache.PAGE
    head["bytes"] = head["start"] + offset
    return head


def ensure(places: list[Path], head: dict[str, Any], splits: dict[str, Labels]) -> Path:
    """A complete cache for `head` in one of `places` (found, else built in the first writable)."""
    for path in places:
        if _valid(path, head):
            return path
    error: OSError | None = None
    for path in places:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with cache.locked(path):
                if not _valid(path, head):  # another process may have built it while we waited
                    _build(path, head, splits)
            return path
        except OSError as e:
            error = e
    assert error is not None
    raise error


def _valid(path: Path, head: dict[str, Any]) -> bool:
    found = cache.read_header(path)
    return found is not None and found.pop("_length") == head["bytes"] and found == head


def _build(path: Path, head: dict[str, Any], splits: dict[str, Labels]) -> None:
    """Decode image by image into a temp beside `path`, renamed over it when complete."""
    size = head["size"][0]
    text = json.dumps(head).encode()
    with replacing(path) as temp, temp.open("wb") as f:
        f.write(cache.MAGIC + struct.pack("<Q", len(text)) + text)
        f.write(b"\0" * (head["start"] - f.tell()))
        for labels in splits.values():
            for file, hw in zip(labels.files, labels.sizes.tolist(), strict=True):
                f.write(decode_letterboxed(file, size, (hw[0], hw[1])).numpy().tobytes())


def _decode_all(labels: Labels, size: int) -> Tensor:
    return LetterboxFiles(labels.files, labels.sizes, size)[slice(None)]


def _stat(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns


def _free_space(root: Path) -> int:
    try:
        return os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
    except OSError:
        return 0
