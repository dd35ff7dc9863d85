"""A full disk, for real: a small tmpfs (skipped where the machine does not allow mounting one).
Each write ends in one line naming the file, the previous file intact, no temp left behind."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ARCHS
from hostile_cases import TINY, checkpoint


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system of `folder` until about `leave` bytes are free."""
    with (folder / "filler").open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    size = (folder / "filler").stat().st_size
    (folder / "filler").unlink()
    (folder / "filler").write_bytes(b"\0" * max(0, size - leave))


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1, stderr
    assert len(lines[0]) < 300 and "Traceback" not in stderr
    return lines[0]


def test_convert_on_a_full_disk_keeps_the_previous_file(run_cli, small_disk: Path) -> None:
    target = small_disk / "darknet53.cfg"
    target.write_text("# the previous file\n")
    _fill(small_disk, leave=2048)  # darknet53's .cfg is ~8 KB
    result = run_cli("convert", ARCHS / "darknet53-flat.yaml", "-o", target)
    assert result.exit_code == 1
    line = _one_error_line(result.stderr)
    assert f"cannot write {target}: the disk is full" in line and "free" in line
    assert target.read_text() == "# the previous file\n"
    assert sorted(p.name for p in small_disk.iterdir()) == ["darknet53.cfg", "filler"]


def test_train_on_a_full_disk_is_one_line(run_cli, small_disk: Path, tmp_path: Path) -> None:
    arch = tmp_path / "tiny.yaml"
    arch.write_text(TINY)
    project = small_disk / "runs"
    result = run_cli("train", arch, "--data", "fake:40,20", "--epochs", "1", "--project", project)
    assert result.exit_code == 1, result.output
    line = _one_error_line(result.stderr)
    assert "the disk is full" in line and str(project / "train") in line
    assert not [p for p in project.rglob("*") if ".tmp" in p.name]
    assert (project / "train" / "weights" / "last.pt").is_file()  # what was written stays whole


def test_a_pt2_export_on_a_full_disk_exits_cleanly(run_cli, small_disk: Path, tmp_path: Path) -> None:
    """torch's zip writer used to throw from its C++ destructor here, aborting the process."""
    target = small_disk / "tiny.pt2"
    result = run_cli("export", checkpoint(tmp_path), "--format", "pt2", "--batch", "4096", "-o", target)
    assert result.exit_code == 1, result.output
    assert f"cannot write {target}: the disk is full" in _one_error_line(result.stderr)
    assert list(small_disk.iterdir()) == []
