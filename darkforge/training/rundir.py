"""A run directory: runs/<name>, auto-incremented, never overwritten; every file written atomically.

One writer at a time: `lock()` takes an OS lock (flock) on `<run>/.lock` for the life of the
process; the kernel drops it when the process ends, however it ends, so a killed run never leaves
a lock held, and a second `train --resume` of a live run stops at once, naming the holder. A run
that ends removes its `.lock` (a killed one leaves it, unheld: the next lock reuses it). The lock
file is never followed if it is a symlink, and refused unless it is a regular file.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from darkforge.errors import DataError, UsageError
from darkforge.files import TEMP_MARK, is_temp, open_lock, remove_stale_temps, same_file, write_text

LOCK = ".lock"


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def create(
        cls, project: str | os.PathLike[str], name: str, files: dict[str, str] | None = None
    ) -> RunDir:
        """project/name, or project/name2, name3… if taken (ultralytics' convention), holding
        `files` (name -> text) and weights/. Built under a temp name and renamed into place, so a
        run directory never exists without its files, whenever the process is killed."""
        check_name(name)
        root = Path(project)
        try:
            root.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(root, _staging_only)  # folders a killed creation left
            staging = root / f".{name}.{os.getpid()}-{time.monotonic_ns()}{TEMP_MARK}"
            (staging / "weights").mkdir(parents=True)
            for file, text in (files or {}).items():
                write_text(staging / file, text)
            for n in range(1, 10_000):
                path = root / (name if n == 1 else f"{name}{n}")
                if path.exists() or path.is_symlink():
                    continue
                try:
                    os.rename(staging, path)  # refused when another process took the name first
                except OSError as e:
                    if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
                        continue
                    raise
                return cls(path)
        except OSError as e:
            raise UsageError(
                f"--project {root}: cannot create a run directory ({e.strerror})",
                "choose a writable --project folder",
            ) from None
        shutil.rmtree(staging, ignore_errors=True)
        raise UsageError(f"--project {root}: too many runs named {name!r}", "pick another --name")

    @classmethod
    def existing(cls, path: str | os.PathLike[str]) -> RunDir:
        p = Path(path)
        if p.is_file():  # a checkpoint inside runs/<name>/weights/
            p = p.parent.parent
        if not (p / "args.yaml").is_file():
            raise DataError(
                f"{p}: not a darkforge run directory (no args.yaml)",
                "give runs/<name> or its weights/last.pt",
            )
        return cls(p)

    def lock(self) -> RunLock:
        """Hold the run's lock until the process ends (or `unlock`); a DataError (exit 1) naming the
        holder's pid when another process holds it."""
        path = self.path / LOCK
        for _ in range(100):
            try:
                # not an atomic write: the file only carries the holder's pid for the message; the
                # lock itself is the kernel's, on the open file
                fd = open_lock(path)
            except OSError as e:
                raise DataError(
                    f"{path}: cannot lock the run ({e.strerror})",
                    "is the folder writable? remove the .lock if it is not a file darkforge wrote",
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise DataError(
                    f"{self.path}: another darkforge process (pid {holder}) is writing this run",
                    "wait for it to end, or stop it, then resume",
                ) from None
            if same_file(fd, path):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                return RunLock(path, fd)
            os.close(fd)  # a holder that just finished removed this file: lock the next one
        raise DataError(f"{path}: cannot lock the run (it keeps changing)", "is another process racing?")

    def clean(self) -> list[Path]:
        """Remove the temp files of writes a killed process left (call it holding the lock)."""
        return [*remove_stale_temps(self.path), *remove_stale_temps(self.path / "weights")]

    @property
    def last(self) -> Path:
        return self.path / "weights" / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "weights" / "best.pt"

    def file(self, name: str) -> Path:
        return self.path / name

    def write_text(self, name: str, text: str) -> Path:
        target = self.path / name
        write_text(target, text)
        return target

    def write_yaml(self, name: str, data: Any) -> Path:
        return self.write_text(name, yaml.safe_dump(data, sort_keys=False))

    def read_yaml(self, name: str) -> Any:
        return yaml.safe_load((self.path / name).read_text())

    def write_metrics(self, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})
        self.write_text("metrics.csv", buffer.getvalue())


def check_name(name: str) -> None:
    """A run name is one path component: `--project` alone says where runs go. It never starts
    with '.': every temp name does (a staging folder `.<name>.<pid>-<n>.tmp`), so no run can be
    taken for the temp of a killed creation and removed."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise UsageError(
            f"--name {name!r}: a run name is one folder name (no '/', not '.' or '..')",
            "choose where runs go with --project",
        )
    if name.startswith("."):
        raise UsageError(
            f"--name {name[:60]!r}: a run name cannot start with '.' (darkforge's temporary names do)",
            f"e.g. --name {name.lstrip('.')[:60] or 'train'}",
        )


STAGED = {"arch.yaml", "args.yaml", "weights"}  # what `create` writes before the rename


def _staging_only(folder: Path) -> bool:
    """Whether `folder` holds only what a staging folder does (its files, an empty weights/, temps
    of its writes): a folder with anything more is a run, whatever its name, and is kept."""
    try:
        names = {n for n in os.listdir(folder) if not is_temp(n)}
        weights = [n for n in os.listdir(folder / "weights") if not is_temp(n)] if "weights" in names else []
    except OSError:
        return False
    return names <= STAGED and not weights


@dataclass(frozen=True)
class RunLock:
    path: Path
    fd: int


def unlock(lock: RunLock) -> None:
    """Release the run's lock and leave no `.lock` behind. Removed while still held: a process
    that opened the file meanwhile finds it gone once it gets the flock, and locks a new one."""
    if same_file(lock.fd, lock.path):
        with contextlib.suppress(OSError):
            os.unlink(lock.path)
    os.close(lock.fd)  # closing the descriptor releases the flock


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
