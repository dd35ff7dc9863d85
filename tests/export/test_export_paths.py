"""An exported file leaves the machine: its metadata names no local path (issue 21)."""

from __future__ import annotations

import json

import pytest
from conftest import ARCHS

from darkforge.weights import checkpoint

SECRET = "/home/someone/private"


@pytest.fixture
def ckpt(tmp_path):
    arch = ARCHS / "darknet53.yaml"
    info = checkpoint.Inference(
        arch.read_text(), str(arch), "nano", [f"c{i}" for i in range(10)], [3, 32, 32], [0.5] * 3, [0.25] * 3,
        data=f"imagefolder:{SECRET}/pets", data_dir=f"{SECRET}/cache",
    )  # fmt: skip
    path = tmp_path / "best.pt"
    checkpoint.save(path, info.build().eval(), info)
    return path


def test_exported_safetensors_metadata_holds_no_local_path(run_cli, ckpt, tmp_path):
    from safetensors import safe_open

    out = tmp_path / "m.safetensors"
    result = run_cli("export", ckpt, "--format", "safetensors", "-o", out)
    assert result.exit_code == 0, result.output
    with safe_open(str(out), framework="pt") as handle:
        meta = {k: json.loads(v) if k != "format" else v for k, v in handle.metadata().items()}
    assert SECRET not in json.dumps(meta) and str(ARCHS) not in json.dumps(meta)
    assert meta["data"] == "imagefolder:pets" and meta["arch_name"] == "darknet53.yaml"
    assert meta["data_dir"] is None and meta["classes"][0] == "c0"


def test_exported_onnx_metadata_holds_no_local_path(run_cli, ckpt, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    import onnx

    out = tmp_path / "m.onnx"
    result = run_cli("export", ckpt, "--format", "onnx", "-o", out)
    assert result.exit_code == 0, result.output
    meta = {p.key: json.loads(p.value) for p in onnx.load(out).metadata_props}
    assert SECRET not in json.dumps(meta) and str(ARCHS) not in json.dumps(meta)
    assert meta["data"] == "imagefolder:pets" and meta["arch_name"] == "darknet53.yaml"
