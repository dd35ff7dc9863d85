"""Checkpoints written before the subpackage layout (darkforge 0.1) still load, compute the same
outputs and resume (tests/data/README.md says how they were made)."""

from __future__ import annotations

import csv

import torch
import yaml
from conftest import ROOT

from darkforge.training.recipe import Recipe
from darkforge.weights import checkpoint

DATA = ROOT / "tests" / "data"


def test_an_old_checkpoint_loads_and_computes_what_it_computed():
    model, info, payload = checkpoint.load_model(DATA / "checkpoint-v0.1-best.pt")
    assert payload["format"] == "darkforge-checkpoint-1"
    assert info.arch_name == "/tmp/mini.yaml" and info.input == [3, 16, 16] and len(info.classes) == 10
    saved = torch.load(DATA / "checkpoint-v0.1-io.pt", weights_only=True)
    with torch.no_grad():
        # Equal up to float rounding: kernels differ between CPUs (2.98e-8 apart on a Xeon without AVX-512).
        torch.testing.assert_close(model(saved["x"]), saved["y"], rtol=0, atol=1e-6)


def test_an_old_last_checkpoint_resumes(run_cli, tmp_path):
    run = tmp_path / "r"
    (run / "weights").mkdir(parents=True)
    ckpt = torch.load(DATA / "checkpoint-v0.1-last.pt", weights_only=True)
    (run / "weights" / "last.pt").write_bytes((DATA / "checkpoint-v0.1-last.pt").read_bytes())
    (run / "arch.yaml").write_text(ckpt["inference"]["arch_yaml"])
    args = {
        "arch": "mini.yaml", "scale": None, "data": "fake", "data_dir": None, "device": "cpu", "sync_bn": False,
        "recipe": {**Recipe().model_dump(mode="json"), "epochs": 2, "batch": 32},
    }  # fmt: skip
    (run / "args.yaml").write_text(yaml.safe_dump(args))
    result = run_cli("train", "--resume", run)
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and "after epoch 1" in result.output
    with (run / "metrics.csv").open() as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1", "2"]
