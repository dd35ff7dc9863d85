"""The decoded-image cache: one uint8 file per image folder and input size, read whole (`ram`) or
memory-mapped (`disk`).

Layout: MAGIC, an 8-byte little-endian header length, a JSON header, zero padding to a page, then
per split its images (N, C, H, W) uint8 and its labels (N,) int64 at the offsets the header names.
The header carries the format version, the source fingerprint (file list, sizes, mtimes, input
size), the class list, the shape and count of every split, the total length and a checksum of the
payload (blake2b, 128 bits, over every byte after the header page); a file that is not a regular
file, whose header disagrees with what the caller expects, whose length is wrong or whose payload
does not match its checksum (a flipped label, zeroed pixels) is rebuilt, with one warning line,
never trusted. Checking costs one read of the file: CIFAR-10 at 32×32 (176 MiB) hashes in
0.2 s of CPU (0.4 s wall on the shared 2-core machine); decoding its JPEGs takes ~36 s of CPU.

Building streams image by image into a temp file beside the target (darkforge.files.replacing:
fsync, rename), so memory stays bounded and a killed build leaves no cache, only a temp that the
next builder removes. One builder at a time: an OS lock (flock, released by the kernel on a kill)
beside the cache; the others wait for it, then read what it wrote. DDP ranks share one file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import mmap
import os
import stat
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from darkforge.files import TEMP_MARK, open_lock, replacing
from darkforge.training.data.images import OnDemand, decode_file

MAGIC = b"DARKFORGE-DATA-CACHE\n"
VERSION = 2  # 2: the payload checksum
PAGE = mmap.PAGESIZE
DIGEST = 16  # bytes of blake2b: a 128-bit checksum, hashed at ~1 GB/s on one core
CHUNK = 2**20
Items = dict[str, list[tuple[Path, int]]]  # split -> (file, label) in order


def header_for(
    fingerprint: str, size: tuple[int, int], channels: int, classes: list[str], items: Items
) -> dict[str, Any]:
    """The header a cache of `items` must carry, with every section's offset."""
    row = channels * size[0] * size[1]
    splits, offset = {}, 0
    for name, files in items.items():
        n = len(files)
        splits[name] = {"count": n, "images": offset, "labels": offset + n * row}
        offset += n * (row + 8)
    head = {"version": VERSION, "fingerprint": fingerprint, "size": list(size), "channels": channels}
    head |= {"classes": classes, "splits": splits}
    start = _data_start(head)
    head["start"], head["bytes"] = start, start + offset
    return head


def _data_start(head: dict[str, Any]) -> int:
    # the header's own length depends on "start" and "bytes": leave room for 20 digits each
    text = json.dumps(head | {"start": 10**20, "bytes": 10**20, "checksum": "0" * 2 * DIGEST}).encode()
    return -(-(len(MAGIC) + 8 + len(text)) // PAGE) * PAGE


def read_header(path: Path) -> dict[str, Any] | None:
    """The header of a cache file, or None when it is missing, foreign, torn or not a regular file
    (a FIFO there would block the open: O_NONBLOCK, then the type is checked on the descriptor)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        try:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode) or f.read(len(MAGIC)) != MAGIC:
                return None
            (length,) = struct.unpack("<Q", f.read(8))
            if length > 64 * 2**20:
                return None
            head = json.loads(f.read(length))
        except (OSError, ValueError, struct.error, RecursionError):  # RecursionError: nested JSON
            return None
    if not isinstance(head, dict):
        return None
    head["_length"] = info.st_size
    return head


MISSING = "missing"


def problem(path: Path, expected: dict[str, Any]) -> str | None:
    """Why `path` is not a complete cache with exactly the `expected` header (None: it is one)."""
    if not os.path.lexists(path):
        return MISSING
    head = read_header(path)
    if head is None:
        return "not a darkforge cache file (foreign, torn, or not a regular file)"
    length = head.pop("_length")
    checksum = head.pop("checksum", None)
    if head != expected:
        return "its header does not match the data set (another source, size or version)"
    if length != expected["bytes"]:
        return f"it is {length:,} bytes, its header says {expected['bytes']:,}"
    if checksum != payload_digest(path, expected["start"]):
        return "its pixels or labels do not match their checksum (the file was changed or damaged)"
    return None


def valid(path: Path, expected: dict[str, Any]) -> bool:
    """Whether `path` is a complete cache with exactly the `expected` header and payload checksum."""
    return problem(path, expected) is None


def payload_digest(path: Path, start: int) -> str:
    """blake2b of every byte of `path` from `start` (hashlib: C speed, chunks of 1 MiB)."""
    digest = hashlib.blake2b(digest_size=DIGEST)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with path.open("rb") as f:
        f.seek(start)
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def read_labels(path: Path, head: dict[str, Any], split: str) -> Tensor:
    info = head["splits"][split]
    data = np.fromfile(path, dtype="<i8", count=info["count"], offset=head["start"] + info["labels"])
    return torch.from_numpy(data.astype(np.int64))


def read_images(path: Path, head: dict[str, Any], split: str) -> Tensor:
    """A split's images read whole into memory (`ram`): (N, C, H, W) uint8."""
    shape = _shape(head, split)
    images = torch.empty(shape, dtype=torch.uint8)
    with path.open("rb") as f:
        f.seek(head["start"] + head["splits"][split]["images"])
        f.readinto(images.numpy().data.cast("B"))
    return images


def _shape(head: dict[str, Any], split: str) -> tuple[int, int, int, int]:
    return (head["splits"][split]["count"], head["channels"], *head["size"])


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the build lock of the cache `path` (waits for another builder to finish)."""
    fd = open_lock(path.with_name(path.name + ".lock"))  # a symlink there is refused, not followed
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def ensure(places: list[Path], head: dict[str, Any], items: Items) -> Path:
    """A valid cache file for `head`: found in one of `places` (beside the data first), else built
    in the first writable one; a wrong file is rebuilt with a warning saying why. Raises OSError
    when none is writable."""
    for path in places:
        if valid(path, head):
            return path
    error: OSError | None = None
    for path in places:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with locked(path):
                why = problem(path, head)  # another process may have built it while we waited
                if why is not None:
                    if why != MISSING:
                        warnings.warn(f"{path}: {why}; rebuilding it", stacklevel=2)
                    _remove_stale_temps(path)
                    build(path, head, items)
            return path
        except OSError as e:
            error = e
    assert error is not None
    raise error


def _remove_stale_temps(path: Path) -> None:
    """Temps of a killed build: we hold the lock, so no live builder owns one."""
    for temp in path.parent.glob(f".{path.name}.*{TEMP_MARK}*"):
        temp.unlink(missing_ok=True)


def build(path: Path, head: dict[str, Any], items: Items) -> None:
    """Decode `items` image by image into `path` (atomically; memory: one image at a time). The
    header goes in last, once the payload's checksum is known (its room was left at the start)."""
    size, channels = tuple(head["size"]), head["channels"]
    digest = hashlib.blake2b(digest_size=DIGEST)
    with replacing(path) as temp, temp.open("wb") as f:
        f.write(b"\0" * head["start"])
        for files in items.values():
            for file, _ in files:
                pixels = decode_file(file, size, channels).numpy().tobytes()  # type: ignore[arg-type]
                digest.update(pixels)
                f.write(pixels)
            labels = np.array([label for _, label in files], dtype="<i8").tobytes()
            digest.update(labels)
            f.write(labels)
        text = json.dumps(head | {"checksum": digest.hexdigest()}).encode()
        f.seek(0)
        f.write(MAGIC + struct.pack("<Q", len(text)) + text)


class Mapped(OnDemand):
    """A split's images memory-mapped from the cache (`disk`), read on demand. The pages a gather
    maps are dropped from this process right after it (madvise), so its resident set stays near one
    batch however large the file; the kernel's page cache keeps hot pages for the next epoch."""

    def __init__(self, path: Path, head: dict[str, Any], split: str, rows: Tensor | None = None) -> None:
        self.path, self.head, self.split, self.rows = path, head, split, rows
        full = _shape(head, split)
        self.shape = torch.Size((len(rows) if rows is not None else full[0], *full[1:]))
        self.row_bytes = full[1] * full[2] * full[3]
        self.offset = head["start"] + head["splits"][split]["images"]
        self._map: mmap.mmap | None = None
        self._tensor: Tensor | None = None

    def _open(self) -> Tensor:
        if self._tensor is None:
            with self.path.open("rb") as f:  # ACCESS_COPY: a writable view (torch wants one), never written
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
            if hasattr(self._map, "madvise"):  # rows are read at random: no readahead
                self._map.madvise(mmap.MADV_RANDOM)
            full = _shape(self.head, self.split)
            count = full[0] * self.row_bytes
            self._tensor = torch.frombuffer(self._map, dtype=torch.uint8, count=count, offset=self.offset)
            self._tensor = self._tensor.view(full)
        return self._tensor

    def __getitem__(self, index: Tensor | slice) -> Tensor:
        images = self._open()
        rows = torch.arange(len(self))[index] if isinstance(index, slice) else index.cpu()
        if self.rows is not None:
            rows = self.rows[rows]
        out = images[rows]  # a copy: the gather leaves the mapping
        self._release(rows)
        return out

    def _release(self, rows: Tensor) -> None:
        # One madvise over the whole mapping after each gather. Per row would cost more than the
        # gather (10 µs a call); less often lets pages pile up: each fault maps up to 64 KiB around
        # the row (the kernel's fault-around, MADV_RANDOM or not), 16 MiB for a batch of 256.
        if self._map is not None and hasattr(self._map, "madvise"):
            self._map.madvise(mmap.MADV_DONTNEED)

    def subset(self, index: Tensor | slice) -> Mapped:
        rows = torch.arange(len(self))[index] if isinstance(index, slice) else index.cpu()
        return Mapped(self.path, self.head, self.split, self.rows[rows] if self.rows is not None else rows)

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers and DDP reopen the file
        return self.__dict__ | {"_map": None, "_tensor": None}
