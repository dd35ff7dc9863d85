"""`--weights` input: NaN refused in every format, a run directory accepted, files checked
before anything is allocated, deeply nested metadata one line."""

from __future__ import annotations

import json
import zipfile

import pytest
import torch
from conftest import ARCHS

import darkforge
from darkforge.darknet.weights import save_darknet_weights
from darkforge.weights import checkpoint

NANO = [
    "train", str(ARCHS / "darknet53.yaml"), "--scale", "nano", "--data", "fake:64,32",
    "--batch-size", "32", "--epochs", "1", "--device", "cpu",
]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from click.testing import CliRunner

    from darkforge.cli import cli

    project = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(cli, [*NANO, "--project", str(project)])
    assert result.exit_code == 0, result.output
    return project / "train"


def poisoned(network):
    state = network.state_dict()
    state["layers.stem.conv.weight"][0, 0, 0, 0] = float("nan")
    return state


@pytest.mark.parametrize("kind", ["pt", "safetensors", "weights"])
def test_nan_weights_are_refused_in_every_format(run_cli, tmp_path, run, kind):
    network = darkforge.build(ARCHS / "darknet53.yaml", scale="nano")
    network.load_state_dict(poisoned(network))
    path = tmp_path / f"bad.{kind}"
    if kind == "pt":
        payload = checkpoint.load(run / "weights" / "best.pt")
        torch.save(payload | {"model": network.state_dict()}, path)
    elif kind == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(path))
    else:
        save_darknet_weights(network, path)
    result = run_cli(*NANO, "--weights", path, "--project", tmp_path / "runs")
    assert result.exit_code == 1, result.output
    assert f"{path}: tensor layers.stem.conv.weight holds NaN or infinite values" in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "runs" / "train").exists()


def test_weights_from_a_run_directory_take_its_best(run_cli, tmp_path, run):
    result = run_cli(*NANO, "--weights", run, "--project", tmp_path)
    assert result.exit_code == 0, result.output
    assert f"transferred 146/146 tensors from {run}/weights/best.pt (146 by name" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli(*NANO, "--weights", empty, "--project", tmp_path)
    assert result.exit_code == 1 and "a folder without weights/best.pt or weights/last.pt" in result.stderr


def test_a_checkpoint_is_checked_before_any_data_is_read(run_cli, tmp_path, run):
    """A record deflated to declare more bytes than the file holds: refused from the zip headers,
    before the data set (missing here) is even looked at."""
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(run / "weights" / "best.pt") as src, zipfile.ZipFile(bomb, "w") as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_DEFLATED)
    args = [*NANO[:4], "--data", f"imagefolder:{tmp_path / 'nowhere'}", "--project", tmp_path]
    result = run_cli(*args, "--weights", bomb)
    assert result.exit_code == 1, result.output
    assert f"{bomb}: its records declare" in result.stderr and "(compressed)" in result.stderr
    assert result.stderr.count("\n") == 1
    result = run_cli("predict", bomb, ARCHS / "darknet53.yaml")  # every reader checks it
    assert result.exit_code == 1 and "(compressed)" in result.stderr


def test_deeply_nested_safetensors_metadata_is_one_line(run_cli, tmp_path, run):
    from safetensors.torch import load_file, save_file

    source = run / "weights" / "best.safetensors"
    from safetensors import safe_open

    with safe_open(str(source), framework="pt") as handle:
        metadata = handle.metadata()
    deep = tmp_path / "deep.safetensors"
    save_file(
        load_file(str(source)), str(deep), metadata=metadata | {"classes": "[" * 100_000 + "]" * 100_000}
    )
    result = run_cli("eval", deep)
    assert result.exit_code == 1, result.output
    assert f"{deep}: incomplete darkforge metadata" in result.stderr and result.stderr.count("\n") == 1
    assert json.loads(metadata["classes"])  # the original reads
