"""The one atomic writer: a failed write (a full disk above all) leaves the previous file whole,
no temp behind, and one line that names the file; temps of killed writers go on the next write."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from darkforge import files
from darkforge.errors import DarkforgeError, DiskFullError


def _enospc(temp: Path) -> None:
    temp.write_bytes(b"x" * 5000)  # part of the file made it before the disk filled
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_keeps_the_previous_file_and_names_the_space(tmp_path: Path) -> None:
    target = tmp_path / "last.pt"
    target.write_bytes(b"previous")
    with pytest.raises(DiskFullError) as caught:
        files.write_with(target, _enospc)
    message = str(caught.value)
    assert str(target) in message
    assert "the disk is full" in message and "more than 5,000 bytes" in message
    assert "\n" not in message
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_known_size_is_named(tmp_path: Path) -> None:
    with pytest.raises(DiskFullError, match=r"it needs 3 MiB"):
        files.write_with(tmp_path / "x.bin", _enospc, needed=3 * 2**20)


def test_a_wrapped_enospc_is_a_full_disk(tmp_path: Path) -> None:
    """torch.save reports ENOSPC as a RuntimeError raised from the OSError."""

    def torch_like(temp: Path) -> None:
        try:
            _enospc(temp)
        except OSError as e:
            raise RuntimeError("unexpected pos 64 vs 5000") from e

    with pytest.raises(DiskFullError):
        files.write_with(tmp_path / "x.pt", torch_like)


def test_other_failures_pass_through_and_leave_no_temp(tmp_path: Path) -> None:
    def broken(temp: Path) -> None:
        temp.write_text("half")
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        files.write_with(tmp_path / "x.txt", broken)
    assert list(tmp_path.iterdir()) == []


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temps_of_dead_writers_go_on_the_next_write(tmp_path: Path) -> None:
    dead = tmp_path / f".last.pt.{_dead_pid()}-0.tmp.pt"
    alive = tmp_path / f".best.pt.{os.getppid()}-0.tmp.pt"  # a live process may still be writing
    others = [tmp_path / ".last.pt.123-0.tmp.txt", tmp_path / "notes.tmp", tmp_path / ".hidden"]
    for path in [dead, alive, *others]:
        path.write_text("x")
    files.write_text(tmp_path / "metrics.csv", "epoch\n")
    left = {p.name for p in tmp_path.iterdir()}
    assert dead.name not in left
    assert {alive.name, "metrics.csv", *(p.name for p in others)} <= left


def test_remove_stale_temps_reports_what_it_removed(tmp_path: Path) -> None:
    dead = tmp_path / f".report.txt.{_dead_pid()}-3.tmp.txt"
    dead.write_text("x")
    assert files.remove_stale_temps(tmp_path) == [dead]
    assert files.remove_stale_temps(tmp_path / "missing") == []


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_only_regular_files_are_read(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "arch.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    with pytest.raises(DarkforgeError, match=r"not a regular file|is a directory"):
        files.read_text(path, "give a file")
    with pytest.raises(DarkforgeError):
        files.check_regular(path, "give a file")
