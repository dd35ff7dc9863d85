"""Nothing outside the run is touched: symlinked lock files, temp-like run names, no `.lock` left."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import ARCHS

from darkforge.training.data import cache
from darkforge.training.rundir import RunDir, unlock

NANO = [
    "train", str(ARCHS / "darknet53.yaml"), "--scale", "nano", "--data", "fake:64,32",
    "--batch-size", "32", "--epochs", "1", "--device", "cpu",
]  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """One finished nano run (module-wide: a run takes seconds)."""
    from click.testing import CliRunner

    from darkforge.cli import cli

    project = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(cli, [*NANO, "--project", str(project)])
    assert result.exit_code == 0, result.output
    return project / "train"


def test_a_finished_run_leaves_no_lock(finished):
    assert not (finished / ".lock").exists()
    assert not (finished / ".lock").is_symlink()


def test_a_symlinked_run_lock_leaves_its_target_byte_identical(run_cli, finished, tmp_path):
    target = tmp_path / "precious.txt"
    target.write_bytes(b"do not truncate me\n")
    (finished / ".lock").symlink_to(target)
    try:
        result = run_cli("train", "--resume", finished)
        assert result.exit_code == 1, result.output
        assert "cannot lock the run (the lock file is a symbolic link)" in result.stderr
        assert result.stderr.count("\n") == 1
        assert target.read_bytes() == b"do not truncate me\n"
        missing = tmp_path / "missing.txt"
        (finished / ".lock").unlink()
        (finished / ".lock").symlink_to(missing)  # a dangling link: O_CREAT would create it
        assert run_cli("train", "--resume", finished).exit_code == 1
        assert not missing.exists()
    finally:
        (finished / ".lock").unlink()
    assert "already complete" in run_cli("train", "--resume", finished).output  # no lock: fine


def test_a_lock_file_that_is_not_a_regular_file_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / ".lock")
    with pytest.raises(Exception, match="not a regular file"):
        RunDir(run).lock()


def test_unlock_removes_the_lock_and_a_second_locker_gets_a_fresh_one(tmp_path):
    run = RunDir(tmp_path)
    first = run.lock()
    assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"
    unlock(first)
    assert not (tmp_path / ".lock").exists()
    second = run.lock()  # after a removal: a new file, locked
    assert (tmp_path / ".lock").is_file()
    unlock(second)


def test_a_symlinked_cache_lock_is_never_followed(tmp_path):
    target = tmp_path / "elsewhere.txt"
    path = tmp_path / "cache" / "c.u8"
    path.parent.mkdir()
    path.with_name("c.u8.lock").symlink_to(target)  # dangling
    with pytest.raises(OSError, match="symbolic link"), cache.locked(path):
        pass
    assert not target.exists()
    target.write_bytes(b"keep")
    with pytest.raises(OSError), cache.locked(path):
        pass
    assert target.read_bytes() == b"keep"


def test_a_run_name_cannot_be_spelt_like_a_temp(run_cli, tmp_path):
    result = run_cli(*NANO, "--project", tmp_path, "--name", ".exp.999999-0.tmp")
    assert result.exit_code == 2, result.output
    assert "a run name cannot start with '.'" in result.stderr and result.stderr.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_a_run_named_like_a_temp_survives_the_next_train(run_cli, finished, tmp_path):
    """A finished run in a temp's name (an older darkforge allowed it; pid 999999 is gone) is a
    run, not the leftover of a killed creation: the next train in the project keeps it."""
    import shutil

    old = tmp_path / ".exp.999999-0.tmp"
    shutil.copytree(finished, old)
    before = sorted(p.relative_to(old) for p in old.rglob("*"))
    killed = tmp_path / ".train.999999-5.tmp"  # what a killed creation leaves: staging files only
    (killed / "weights").mkdir(parents=True)
    (killed / "args.yaml").write_text("x")
    (killed / ".arch.yaml.999999-0.tmp.yaml").write_text("torn")
    assert run_cli(*NANO, "--project", tmp_path).exit_code == 0
    assert sorted(p.relative_to(old) for p in old.rglob("*")) == before
    assert not killed.exists() and (tmp_path / "train" / "weights" / "last.pt").is_file()


def test_resume_after_arch_yaml_changed_says_which_file_and_what_to_do(run_cli, finished, tmp_path):
    import shutil

    run = tmp_path / "edited"
    shutil.copytree(finished, run)
    arch = run / "arch.yaml"
    arch.write_text("# a comment changes nothing\n" + arch.read_text())
    assert "already complete" in run_cli("train", "--resume", run).output
    arch.write_text(arch.read_text().replace("id: pool}", "id: pool}\n  - {type: Linear, out: 7}"))
    result = run_cli("train", "--resume", run, "--epochs", "2")
    assert result.exit_code == 1, result.output
    assert f"{arch}: differs from the architecture {run}/weights/last.pt was trained with" in result.stderr
    assert "restore the file" in result.stderr and result.stderr.count("\n") == 1


def test_every_file_of_a_run_has_the_same_mode_the_umask_allows(finished):
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.relative_to(finished).as_posix(): p.stat().st_mode & 0o777 for p in finished.rglob("*")}
    files = {name: mode for name, mode in modes.items() if (finished / name).is_file()}
    assert "weights/best.safetensors" in files
    assert set(files.values()) == {0o666 & ~umask}, files
