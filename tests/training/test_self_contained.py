"""A run trained from a file that `include`s a block library keeps the blocks, not the path:
predict, eval, export and resume work from the run alone, anywhere, the library gone."""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml
from PIL import Image

from darkforge.weights import checkpoint

LIBRARY = """\
# a block library
blocks:
  Pair:
    params: {filters: int, act: {type: str, default: leaky, choices: [relu, leaky]}}
    layers:
      - {type: Conv, filters: $filters, size: 3, bn: true, activation: $act}
      - {type: Conv, filters: "${filters * 2}", size: 1, bn: true, activation: $act, when: "${filters > 2}"}
"""

NET = """\
name: incl
input: {channels: 3, size: 8}
classes: 10
include: [lib/pairs.yaml]
blocks:
  Twin:
    params: {filters: int}
    layers:
      - {type: Pair, filters: $filters}
      - {type: Pair, filters: $filters, act: relu}
layers:
  - {type: Twin, filters: 4}
  - {type: GlobalAvgPool}
  - {type: Linear}
"""


@pytest.fixture
def trained(run_cli, tmp_path):
    """A run of NET, then the library and the file deleted and the run moved elsewhere."""
    source = tmp_path / "src"
    (source / "lib").mkdir(parents=True)
    (source / "lib" / "pairs.yaml").write_text(LIBRARY)
    (source / "net.yaml").write_text(NET)
    args = ["--data", "fake:40,20", "--epochs", "1", "--batch-size", "20", "--device", "cpu"]
    result = run_cli("train", source / "net.yaml", *args, "--project", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    params = checkpoint.load_model(tmp_path / "runs" / "train" / "weights" / "best.pt")[0]
    shutil.rmtree(source)
    moved = tmp_path / "elsewhere" / "run"
    shutil.move(tmp_path / "runs" / "train", moved)
    return moved, sum(p.numel() for p in params.parameters())


def test_the_run_keeps_the_blocks_inlined(trained):
    run, params = trained
    for text in (
        (run / "arch.yaml").read_text(),
        checkpoint.load(run / "weights" / "best.pt")["inference"]["arch_yaml"],
    ):
        data = yaml.safe_load(text)
        assert "include" not in data and set(data["blocks"]) == {"Pair", "Twin"}
        assert data["blocks"]["Pair"]["layers"][1]["when"] == "${filters > 2}"
    model, _, _ = checkpoint.load_model(run / "weights" / "best.pt")
    assert sum(p.numel() for p in model.parameters()) == params


def test_predict_eval_export_and_resume_from_the_run_alone(run_cli, trained, tmp_path):
    run, _ = trained
    image = tmp_path / "x.png"
    Image.fromarray(torch.randint(0, 256, (8, 8, 3), dtype=torch.uint8).numpy()).save(image)
    best = run / "weights" / "best.pt"
    result = run_cli("predict", best, image)
    assert result.exit_code == 0 and result.output.startswith(f"{image}: class"), result.output
    result = run_cli("eval", best)
    assert result.exit_code == 0 and "on 20 test images of fake" in result.output, result.output
    result = run_cli("export", best, "--format", "safetensors", "-o", tmp_path / "m.safetensors")
    assert result.exit_code == 0, result.output
    assert run_cli("predict", tmp_path / "m.safetensors", image).exit_code == 0
    result = run_cli("train", "--resume", run, "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert len(checkpoint.load(run / "weights" / "last.pt")["state"]["history"]) == 2


def test_an_embedded_include_is_refused_not_read_from_beside_the_checkpoint(run_cli, trained, tmp_path):
    """An older run kept `include:`: a library later found beside the checkpoint must not change
    what it means; it is one line instead."""
    run, _ = trained
    payload = checkpoint.load(run / "weights" / "best.pt")
    payload["inference"]["arch_yaml"] = NET
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "lib").mkdir()
    (tmp_path / "old" / "lib" / "pairs.yaml").write_text(LIBRARY)
    old = tmp_path / "old" / "best.pt"
    torch.save(payload, old)
    result = run_cli("predict", old, old)
    assert result.exit_code == 1, result.output
    assert "includes block libraries, so what it means depends on the files beside it" in result.stderr
    assert result.stderr.count("\n") == 1
