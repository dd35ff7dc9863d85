"""The Ultralytics YAML reader on small handwritten files (no ../shared needed): the scale rules,
the name -> file and scale lookup, errors, and weights under Ultralytics' names."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import darkforge
from darkforge.errors import DataError, UsageError
from darkforge.spec.load import load_spec
from darkforge.spec.shapes import plan

TOY = """\
nc: 4
scales: # [depth, width, max_channels]
  n: [0.5, 0.25, 256]
  s: [1.0, 0.5, 128]
backbone:
  - [-1, 1, Conv, [64, 3, 2]] # 0
  - [-1, 5, C2f, [64, True]] # 1: 5 · 0.5 = 2.5 rounds to 2 (Python's round, as Ultralytics')
  - [-1, 1, Conv, [128, 3, 2]] # 2
  - [-1, 1, SPPF, [512, 5]] # 3: capped by max_channels before the width
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]] # 4
  - [[-1, 1], 1, Concat, [1]] # 5
  - [-1, 3, C3, [60, False]] # 6: 3 · 0.5 = 1.5 rounds to 2; 60 · 0.25 = 15 rounds up to 16
  - [-1, 4, Conv, [16, 1, 1]] # 7: 4 · 0.5 = 2 copies in series
  - [[7, 3], 1, Detect, [nc]] # 8
"""


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    path = tmp_path / "toy8.yaml"
    path.write_text(TOY)
    return path


def test_the_scale_comes_from_the_name_and_follows_ultralytics_rules(toy: Path) -> None:
    spec = load_spec(toy.with_name("toy8n.yaml"))  # no such file: toy8.yaml at scale n
    layers = spec.layers
    assert spec.name == "toy8n" and spec.classes == 4
    assert [getattr(layer, "filters", None) for layer in layers[:4]] == [16, 16, 32, 64]
    assert layers[1].blocks == 2 and layers[1].shortcut is True  # type: ignore[attr-defined]
    assert layers[6].filters == 16 and layers[6].blocks == 2 and layers[6].shortcut is False  # type: ignore[attr-defined]
    assert layers[7].repeat == 2 and layers[7].filters == 8  # type: ignore[attr-defined]
    assert layers[8].type == "Detect" and layers[8].classes == "classes"  # type: ignore[attr-defined]
    s = load_spec(toy.with_name("toy8s.yaml")).layers
    assert [getattr(layer, "filters", None) for layer in s[:4]] == [32, 32, 64, 64]  # 512 -> 128 · 0.5
    assert s[1].blocks == 5  # type: ignore[attr-defined]


def test_scale_option_and_first_scale_default(toy: Path) -> None:
    plain = load_spec(toy)  # no letter in the name: the first scale, as Ultralytics does
    assert plan(plain.resolved()).params == plan(load_spec(toy.with_name("toy8n.yaml")).resolved()).params
    assert plan(plain.resolved("s")).params == plan(load_spec(toy.with_name("toy8s.yaml")).resolved()).params
    chained = plan(plain.resolved(input_size=64, classes=9).resolved("s"))  # keeps the input and classes
    assert (
        chained.params
        == plan(load_spec(toy.with_name("toy8s.yaml")).resolved(input_size=64, classes=9)).params
    )
    assert chained.input == (3, 64, 64)
    with pytest.raises(UsageError, match="has no scale 'q'; its scales: n, s"):
        plain.resolved("q")


def test_hand_counted_parameters_and_the_torch_module_agree(toy: Path) -> None:
    p = plan(load_spec(toy.with_name("toy8n.yaml")).resolved(input_size=64))
    assert p.layers[0].cost.params == 3 * 16 * 9 + 2 * 16  # 3×3 conv, no bias, batch norm
    # SPPF 32 -> 64: cv1 1×1 to 16, cv2 1×1 from 4·16
    assert p.layers[3].cost.params == (32 * 16 + 2 * 16) + (64 * 64 + 2 * 64)
    net = darkforge.build(toy.with_name("toy8n.yaml"), input_size=64)
    assert sum(t.numel() for t in net.parameters()) == p.params
    assert sum(t.numel() for t in net.parameters() if not t.requires_grad) == 16  # the DFL's 0..15
    head = net.layers["8"]
    assert head.stride.tolist() == [2.0, 4.0]  # input 64 over the levels' 32 and 16 rows


def test_network_returns_raw_maps_in_training_and_decoded_in_eval(toy: Path) -> None:
    net = darkforge.build(toy.with_name("toy8n.yaml"), input_size=64)
    x = torch.rand(2, 3, 64, 64)
    maps = net.train()(x)
    assert isinstance(maps, list) and [tuple(m.shape) for m in maps] == [(2, 68, 32, 32), (2, 68, 16, 16)]
    with torch.no_grad():
        decoded, raw = net.eval()(x)
    assert tuple(decoded.shape) == (2, 4 + 4, 32 * 32 + 16 * 16) and len(raw) == 2
    assert float(decoded[:, 4:].min()) >= 0 and float(decoded[:, 4:].max()) <= 1


def test_classes_option_reaches_the_detect_head(toy: Path) -> None:
    net = darkforge.build(toy.with_name("toy8n.yaml"), input_size=64, classes=9)
    assert [branch[-1].out_channels for branch in net.layers["8"].cv3] == [9, 9]


def test_weights_under_ultralytics_names_load_by_name(toy: Path, tmp_path: Path) -> None:
    source = darkforge.build(toy.with_name("toy8n.yaml"), input_size=64).eval()
    state = {f"model.{k.removeprefix('layers.')}": v.clone() for k, v in source.state_dict().items()}
    save_file(state, str(tmp_path / "toy.safetensors"))
    torch.save(state, tmp_path / "toy.pt")
    x = torch.rand(1, 3, 64, 64)
    for file in ("toy.safetensors", "toy.pt"):
        net = darkforge.build(toy.with_name("toy8n.yaml"), input_size=64, weights=tmp_path / file).eval()
        assert net.transfer.by_name == net.transfer.total and net.transfer.complete
        with torch.no_grad():
            assert torch.equal(net(x)[0], source(x)[0])


def test_a_pickled_model_is_refused_in_one_line(toy: Path, tmp_path: Path) -> None:
    torch.save(torch.nn.Linear(2, 2), tmp_path / "model.pt")  # what weights_only=True refuses
    with pytest.raises(DataError, match=r"pickled Python objects .* not a state_dict"):
        darkforge.build(toy.with_name("toy8n.yaml"), input_size=64, weights=tmp_path / "model.pt")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("[-1, 1, RepNCSPELAN4, [32, 16, 8, 1]]", "unknown module 'RepNCSPELAN4' (row 1)"),
        ("[-1, 1, Conv, [32, 3, 1, None, 1, 2]]", "Conv: dilation 2 is not supported"),
        ('[-1, 1, nn.Upsample, [None, 2, "bilinear"]]', "only size=None, mode='nearest'"),
        ("[-1, 1, Concat, [2]]", "Concat: only dimension 1"),
        ("[-1, 0, Conv, [32]]", "row 1: repeats must be a positive integer"),
        ("[5, 1, Conv, [32]]", "row 1: `from` 5 is not an earlier row"),
    ],
)
def test_what_the_reader_cannot_honour_is_one_located_line(run_cli, write, row: str, message: str) -> None:
    path = write(
        "bad.yaml",
        f"nc: 3\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - {row}\nhead:\n  - [-1, 1, Detect, [nc]]\n",
    )
    result = run_cli("summary", path)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{path}:4:" in lines[0] and "backbone[1]" in lines[0] and message in lines[0]


def test_summary_names_the_head(run_cli, toy: Path) -> None:
    result = run_cli("summary", toy.with_name("toy8n.yaml"), "--input-size", 64)
    assert result.exit_code == 0, result.output
    assert "head     8: Detect: 4 classes, strides 2, 4, reg_max 16, style v8" in result.stdout
    assert math.isclose(float(load_spec(toy).resolved().layers[8].reg_max), 16)  # type: ignore[attr-defined]


def test_convert_writes_darkforge_yaml_that_builds_the_same_network(
    run_cli, toy: Path, tmp_path: Path
) -> None:
    out = tmp_path / "toy_df.yaml"
    result = run_cli("convert", toy.with_name("toy8s.yaml"), "-o", out)
    assert result.exit_code == 0, result.output
    native = load_spec(out)
    assert native._converted_from is None
    assert plan(native.resolved()).params == plan(load_spec(toy.with_name("toy8s.yaml")).resolved()).params
    assert plan(native.resolved(classes=9)).params != plan(native.resolved()).params  # `classes` follows


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            "ch: abc\nbackbone:\n  - [-1, 1, Conv, [16]]\nhead: []\n",
            ":1:",
            "`ch` must be an input channel count",
        ),
        ("backbone: []\nhead: []\n", ":1:", "hold no rows"),
        (
            "backbone:\n  - [-1, 100000, C2f, [64]]\nhead: []\n",
            ":2:5: backbone[0]",
            "blocks: Input should be less",
        ),
        (
            "backbone:\n  - [-1, 1, Conv, [16]]\nhead:\n  - [-1, 1, Conv, [99999999]]\n",
            ":4:5: head[0]",
            "filters",
        ),
        (
            "scales:\n  n: [1, 2]\nbackbone:\n  - [-1, 1, Conv, [3]]\nhead: []\n",
            ":2:3: scales.n",
            "[depth, width",
        ),
    ],
)
def test_bad_files_end_in_one_located_line(run_cli, write, text: str, where: str, message: str) -> None:
    path = write("bad8.yaml", text)
    result = run_cli("validate", path)
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and f"{path}{where}" in line and message in line


def test_validate_checks_every_scale_of_the_file(run_cli, toy: Path) -> None:
    result = run_cli("validate", toy)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("scales: n, s")


def test_static_plan_agrees_with_torchinfo(run_cli, toy: Path) -> None:
    result = run_cli("summary", toy, "--input-size", 64, "--runtime")
    assert result.exit_code == 0, result.output
    assert "torchinfo and the static plan agree" in result.stdout
