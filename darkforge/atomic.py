"""Atomic file writes: write a temp file beside the target, fsync, rename over it.

A reader (or a run killed at any moment, even by SIGKILL) sees the old file or the new one,
never half of one. Every file darkforge writes goes through `replacing`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from darkforge.errors import DarkforgeError, DataError


@contextmanager
def replacing(
    path: str | os.PathLike[str], error: type[DarkforgeError] = DataError, hint: str = ""
) -> Iterator[Path]:
    """Yield a fresh temp path beside `path` (same suffix: writers such as matplotlib and the
    ONNX exporter look at it); when the block succeeds it replaces `path`, else it is removed.
    A folder that is missing or not writable, or a target that is a folder, raises `error`."""
    target = Path(path)
    temp = _create_temp(target, error, hint)
    try:
        yield temp
        with temp.open("rb+") as handle:
            os.fsync(handle.fileno())
        try:
            os.replace(temp, target)
        except IsADirectoryError:
            raise error(f"cannot write {target}: it is a folder", hint) from None
    finally:
        temp.unlink(missing_ok=True)


def _create_temp(target: Path, error: type[DarkforgeError], hint: str) -> Path:
    # O_EXCL: never follow or reuse someone else's file; creating it first tests the folder.
    for n in range(1000):
        temp = target.with_name(f".{target.name}.{os.getpid()}-{n}.tmp{target.suffix}")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return temp
        except FileExistsError:
            continue
        except OSError as e:
            missing = isinstance(e, FileNotFoundError)
            reason = f"directory {target.parent} does not exist" if missing else e.strerror or str(e)
            raise error(f"cannot write {target}: {reason}", hint) from None
    raise error(f"cannot write {target}: too many temporary files beside it", hint)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with replacing(path) as temp:
        temp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode("utf-8"))
