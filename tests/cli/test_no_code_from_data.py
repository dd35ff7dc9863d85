"""No name in a data file chooses code (issue 22): a block parameter named `module` once replaced
the "package.module:Class" `build` imported, so a YAML file, a checkpoint's embedded architecture
(`.pt` or `.safetensors` metadata) or a run's `arch.yaml` picked a module darkforge ran. Each path
below carries that architecture, with a marker module importable beside it: the input is refused
with one line and the marker never runs."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

MARKER = "df_marker_issue22"
EVIL = f"""name: evil
input: {{channels: 3, size: 8}}
classes: 2
blocks:
  B:
    params: {{module: {{type: str, default: "{MARKER}:Block"}}}}
    layers:
      - {{type: Conv, filters: 4, size: 3}}
layers:
  - {{type: B}}
  - {{type: GlobalAvgPool}}
  - {{type: Linear}}
"""
FORMAT = "darkforge-checkpoint-1"  # what darkforge's checkpoints say they are (as a hostile file would)
REFUSED = "parameter name 'module' is reserved"


def plant(folder: Path, name: str = MARKER) -> Path:
    """A module that leaves a file when imported (and would build a layer if asked)."""
    (folder / f"{name}.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(folder / (name + '.ran'))!r}).write_text('ran')\n"
        "class Block:\n    def __init__(self, *args):\n        raise SystemExit(9)\n"
    )
    return folder / f"{name}.ran"


@pytest.fixture
def marked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ran = plant(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield ran
    assert not ran.exists(), "the marker module ran"
    assert MARKER not in sys.modules


def test_the_marker_would_be_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The detector works: importing such a module leaves its file."""
    ran = plant(tmp_path, "df_marker_control")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("df_marker_control")
    assert ran.read_text() == "ran"
    sys.modules.pop("df_marker_control")


def info() -> dict[str, Any]:
    return {
        "arch_yaml": EVIL,
        "arch_name": "evil.yaml",
        "scale": None,
        "classes": ["a", "b"],
        "input": [3, 8, 8],
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
    }


def pt(root: Path) -> Path:
    """A `.pt` shaped like darkforge's checkpoints (training/checkpoint.py) whose arch is EVIL."""
    import torch

    state = {"layers.0.0.weight": torch.zeros(4, 3, 3, 3), "layers.2.weight": torch.zeros(2, 4)}
    path = root / "evil.pt"
    torch.save({"format": FORMAT, "model": state, "inference": info()}, path)
    return path


def safetensors(root: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    metadata = {k: json.dumps(v) for k, v in info().items()} | {"format": FORMAT}
    path = root / "evil.safetensors"
    save_file({"layers.2.weight": torch.zeros(2, 4)}, str(path), metadata=metadata)
    return path


def image(root: Path) -> Path:
    from PIL import Image

    path = root / "x.png"
    Image.new("RGB", (8, 8)).save(path)
    return path


def run_dir(root: Path) -> Path:
    run = root / "runs" / "evil"
    (run / "weights").mkdir(parents=True)
    (run / "args.yaml").write_text(
        "arch: evil.yaml\nscale: null\ndata: fake:20,20\ndata_dir: null\ndevice: cpu\n"
        "sync_bn: false\nrecipe: {epochs: 2}\n"
    )
    (run / "arch.yaml").write_text(EVIL)
    return run


def yaml(root: Path) -> Path:
    path = root / "evil.yaml"
    path.write_text(EVIL)
    return path


PATHS = {
    "validate": lambda r: ["validate", yaml(r)],
    "summary-runtime": lambda r: ["summary", "--runtime", yaml(r)],
    "draw": lambda r: ["draw", yaml(r), "-o", r / "x.svg"],
    "train": lambda r: ["train", yaml(r), "--data", "fake:20,20", "--project", r / "runs", "--epochs", "1"],
    "train-resume": lambda r: ["train", "--resume", run_dir(r)],
    "predict-pt": lambda r: ["predict", pt(r), image(r)],
    "eval-pt": lambda r: ["eval", pt(r), "--data", "fake:20,20"],
    "export-pt": lambda r: ["export", pt(r), "--format", "onnx", "-o", r / "x.onnx"],
    "predict-safetensors": lambda r: ["predict", safetensors(r), image(r)],
    "export-safetensors": lambda r: ["export", safetensors(r), "--format", "pt2", "-o", r / "x.pt2"],
}


@pytest.mark.parametrize("name", sorted(PATHS))
def test_an_arch_naming_a_module_is_refused_and_imports_nothing(run_cli, marked, name) -> None:
    root = marked.parent
    result = run_cli(*PATHS[name](root))
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and REFUSED in lines[0], lines


def test_python_build_refuses_it_too(marked) -> None:
    import darkforge
    from darkforge.errors import SpecError

    with pytest.raises(SpecError, match=REFUSED):
        darkforge.build(yaml(marked.parent))
    with pytest.raises(SpecError, match=REFUSED):
        darkforge.load_spec(yaml(marked.parent))
