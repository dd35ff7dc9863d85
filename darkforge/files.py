"""File I/O every part shares: one capped reader of text files, one atomic writer.

Reading: only regular files (a FIFO or a device would block or never end), at most a size cap,
decoded as UTF-8; every failure is a located error. Writing: a temp file beside the target, fsync,
rename over it, so a reader (or a run killed at any moment, even by SIGKILL) sees the old file or
the new one, never half of one. Every file darkforge writes goes through `replacing`.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from darkforge.errors import DarkforgeError, DataError, DiskFullError, SpecError

MAX_TEXT_BYTES = 4 * 1024 * 1024  # architecture files: Darknet-53 flat is 4 KB, yolov4.cfg 12 KB


def read_text(
    path: str | os.PathLike[str],
    hint: str,
    limit: int = MAX_TEXT_BYTES,
    error: type[DarkforgeError] = SpecError,
) -> str:
    """A text file of at most `limit` bytes, as UTF-8; every failure is a located `error`."""
    raw = read_bytes(path, hint, limit, error)
    name = str(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise error(f"byte {e.start} is not UTF-8", "save the file as UTF-8", name, line) from None


def read_bytes(
    path: str | os.PathLike[str], hint: str, limit: int, error: type[DarkforgeError] = DataError
) -> bytes:
    """A regular file of at most `limit` bytes; anything else (missing, a folder, a FIFO, too big)
    is one `error` naming the file."""
    name = str(path)
    info = _regular(path, hint, error)
    if info.st_size > limit:
        raise error(f"file is larger than {_size(limit)}", hint, name)
    try:
        # O_NONBLOCK: should the path be swapped for a FIFO after the check, open() must not block
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped after the check: read what was checked
                raise error("is not a regular file (a pipe or a device?)", hint, name)
            raw = handle.read(limit + 1)
    except OSError as e:
        raise error(f"cannot read: {e.strerror}", hint, name) from None
    if len(raw) > limit:
        raise error(f"file is larger than {_size(limit)}", hint, name)
    return raw


def check_regular(path: str | os.PathLike[str], hint: str, error: type[DarkforgeError] = DataError) -> Path:
    """`path` if it is an existing regular file (what torch.load, PIL and safetensors may open)."""
    _regular(path, hint, error)
    return Path(path)


def _regular(path: str | os.PathLike[str], hint: str, error: type[DarkforgeError]) -> os.stat_result:
    name = str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error("no such file", hint or "check the path", name) from None
    except OSError as e:
        raise error(f"cannot read: {e.strerror}", hint, name) from None
    if stat.S_ISDIR(info.st_mode):
        raise error("is a directory, not a file", hint, name)
    if not stat.S_ISREG(info.st_mode):
        raise error("is not a regular file (a pipe or a device?)", hint, name)
    return info


def _size(limit: int) -> str:
    return f"{limit / 2**20:g} MiB" if limit >= 2**20 else f"{limit:,} bytes"


TEMP_MARK = ".tmp"  # temp names: .<target name>.<pid>-<n>.tmp<suffix>
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)-\d+\.tmp(?P<suffix>.*)")
STALE_AFTER_S = 24 * 3600  # a temp this old is stale even if its pid now belongs to another process
DISK_NEARLY_FULL = 2**20  # bytes: below this, a writer's failure is taken for a full disk


@contextmanager
def replacing(
    path: str | os.PathLike[str],
    error: type[DarkforgeError] = DataError,
    hint: str = "",
    needed: int | None = None,
) -> Iterator[Path]:
    """Yield a fresh temp path beside `path` (same suffix: writers such as matplotlib and the
    ONNX exporter look at it); when the block succeeds it replaces `path`, else it is removed.
    A folder that is missing or not writable, or a target that is a folder, raises `error`; a
    full disk raises DiskFullError naming the file and the space it needs (`needed` bytes, when
    the caller knows, else more than what was written). Temps left by killed runs go first."""
    target = Path(path)
    remove_stale_temps(target.parent)
    temp = _create_temp(target, error, hint)
    mode = stat.S_IMODE(temp.stat().st_mode)  # 0666 less the umask, as open() would make it
    try:
        try:
            yield temp
            with temp.open("rb+") as handle:
                if stat.S_IMODE(os.fstat(handle.fileno()).st_mode) != mode:
                    os.fchmod(handle.fileno(), mode)  # a writer that made its own file (0600)
                os.fsync(handle.fileno())
        except DarkforgeError:
            raise
        except Exception as e:  # torch and PIL report ENOSPC as RuntimeError or OSError
            if _disk_full(e, target.parent):
                raise _full(target, temp, needed) from None
            raise
        try:
            os.replace(temp, target)
        except IsADirectoryError:
            raise error(f"cannot write {target}: it is a folder", hint) from None
        _sync_folder(target.parent)
    finally:
        temp.unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (a power cut after it must not bring back the old file)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename is still atomic
    finally:
        os.close(fd)


def _disk_full(e: BaseException, folder: Path) -> bool:
    cause: BaseException | None = e
    while cause is not None:  # the OSError may be wrapped by the library that wrote
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        cause = cause.__cause__ or cause.__context__
    try:
        return shutil.disk_usage(folder).free < DISK_NEARLY_FULL
    except OSError:
        return False


def _full(target: Path, temp: Path, needed: int | None) -> DiskFullError:
    try:
        written = temp.stat().st_size
        free = shutil.disk_usage(target.parent).free + written  # the temp is removed next
    except OSError:
        written, free = 0, 0
    if needed is not None and needed > written:
        space = f"it needs {_size(needed)}, {_size(free)} free"
    elif written:
        space = f"it needs more than {_size(written)}, {_size(free)} free"
    else:
        space = f"{_size(free)} free"
    return DiskFullError(
        f"cannot write {target}: the disk is full ({space})",
        "free some space or write elsewhere; the previous file is intact",
    )


def remove_stale_temps(
    folder: str | os.PathLike[str], staged: Callable[[Path], bool] | None = None
) -> list[Path]:
    """Remove the temps darkforge's writers left in `folder` when killed (their process is gone, or
    they are a day old); returns what was removed. A temp-named folder goes (with its contents)
    only when `staged` says it is an unfinished staging folder (a run directory whose creation
    was killed): never a folder holding anything else, whatever its name. Never touches any
    other file."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if match is None or not is_temp(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                continue
            if _alive(int(match["pid"])) and now - info.st_mtime < STALE_AFTER_S:
                continue
            if stat.S_ISDIR(info.st_mode):  # a run directory whose creation was killed
                if staged is None or not staged(Path(entry.path)):
                    continue
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue  # another process removed or renamed it first
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process (or a pid we cannot ask about): leave it
    return True


def _create_temp(target: Path, error: type[DarkforgeError], hint: str) -> Path:
    # O_EXCL: never follow or reuse someone else's file; creating it first tests the folder.
    for n in range(1000):
        temp = target.with_name(f".{target.name}.{os.getpid()}-{n}{TEMP_MARK}{target.suffix}")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return temp
        except FileExistsError:
            continue
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _full(target, temp, None) from None
            missing = isinstance(e, FileNotFoundError)
            reason = f"directory {target.parent} does not exist" if missing else e.strerror or str(e)
            raise error(f"cannot write {target}: {reason}", hint) from None
    raise error(f"cannot write {target}: too many temporary files beside it", hint)


def is_temp(name: str) -> bool:
    """Whether `name` is spelt like a temp of darkforge's writers."""
    match = _TEMP_NAME.fullmatch(name)
    return match is not None and Path(match["name"]).suffix == match["suffix"]


def write_with(
    path: str | os.PathLike[str], writer: Callable[[Path], object], needed: int | None = None
) -> None:
    """Atomically write `path` with `writer(temp_path)`, e.g. `lambda p: torch.save(obj, p)`."""
    with replacing(path, needed=needed) as temp:
        writer(temp)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with replacing(path, needed=len(data)) as temp:
        temp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def open_lock(path: str | os.PathLike[str]) -> int:
    """A descriptor on the lock file `path`, created if missing (mode 0644 less the umask). A
    symlink there is never followed (O_CREAT would create or truncate its target, outside the
    folder) and anything but a regular file is refused: OSError, as for an unwritable folder."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
            raise OSError(errno.ELOOP, "the lock file is a symbolic link") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "the lock file is not a regular file")
    return fd


def same_file(fd: int, path: str | os.PathLike[str]) -> bool:
    """Whether `path` still names the file open on `fd` (a lock holder may have removed it)."""
    try:
        here, there = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
