"""darkforge against Ultralytics' own numbers (../shared/ultralytics-oracle, README there): the
parameter counts of 22 shipped models read from Ultralytics' YAMLs, and the outputs of four of
them after loading their state_dicts by name. Skipped when ../shared is absent."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import darkforge
from darkforge.spec.load import load_spec
from darkforge.spec.shapes import plan
from tests.conftest import SHARED

ORACLE = SHARED / "ultralytics-oracle"
pytestmark = pytest.mark.skipif(not (ORACLE / "index.json").is_file(), reason="needs ../shared")
INDEX = json.loads((ORACLE / "index.json").read_text()) if (ORACLE / "index.json").is_file() else {}
COUNTS = INDEX.get("counts", {})
MODELS = INDEX.get("models", {})
SIZE = 320  # the oracle's eval shapes are at 320 px (64 for the classifiers)


def _size(name: str) -> int:
    return 64 if name.endswith("-cls") else SIZE


def _classes(name: str) -> int | None:
    return 10 if name.endswith("-cls") else None  # the oracle builds the -cls models with nc 10


@pytest.mark.parametrize("name", sorted(COUNTS) or ["none"])
def test_parameter_count_read_from_the_ultralytics_yaml_equals_ultralytics(name: str) -> None:
    expected = COUNTS[name]
    spec = load_spec(ORACLE / f"{name}.yaml")  # yolov8n.yaml is yolov8.yaml at scale n
    p = plan(spec.resolved(input_size=_size(name), classes=_classes(name)))
    assert p.params == expected["params"]
    assert list(p.output_shapes[-1]) == expected["output"][1:]


SMALL = [n for n, c in COUNTS.items() if c["params"] < 13_000_000]  # torch builds stay quick


@pytest.mark.parametrize("name", sorted(SMALL) or ["none"])
def test_built_module_counts_and_the_dfl_is_not_trainable(name: str) -> None:
    expected = COUNTS[name]
    net = darkforge.build(ORACLE / f"{name}.yaml", input_size=_size(name), classes=_classes(name))
    assert sum(p.numel() for p in net.parameters()) == expected["params"]
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == expected["trainable"]


def _tensors(name: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    m = MODELS[name]
    x = np.fromfile(ORACLE / m["input"]["file"], dtype="<f4").reshape(m["input"]["shape"])
    flat = np.fromfile(ORACLE / m["outputs_file"], dtype="<f4")
    outputs, at = {}, 0
    for key, shape in m["outputs"].items():  # concatenated in index order
        n = math.prod(shape)
        outputs[key] = torch.from_numpy(flat[at : at + n].reshape(shape).copy())
        at += n
    assert at == flat.size
    return torch.from_numpy(x.copy()), outputs


def _loaded(name: str) -> torch.nn.Module:
    net = darkforge.build(
        ORACLE / f"{name}.yaml",
        input_size=_size(name),
        classes=_classes(name),
        weights=ORACLE / MODELS[name]["weights"],
    )
    assert net.transfer.complete and net.transfer.by_name == net.transfer.total  # every tensor by name
    return net


def _before_train_step(net: torch.nn.Module, saved: dict[str, torch.Tensor]) -> None:
    """The oracle ran eval (decoded) before its train-mode pass (level maps) and saved the state
    after it: its running statistics carry that one update (num_batches_tracked says so). `net`
    has now made the same pass from `saved`, the file's statistics: running = (1 − m)·before +
    m·batch twice over gives before = ((2 − m)·saved − after) / (1 − m), what Ultralytics' eval saw."""
    state = net.state_dict()
    momenta = {n: m.momentum for n, m in net.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    with torch.no_grad():
        for key, before in saved.items():
            m = momenta[key.rpartition(".")[0]]
            after = state[key].double()
            state[key].copy_((((2 - m) * before.double() - after) / (1 - m)).float())


@pytest.mark.parametrize("name", [n for n in MODELS if not n.endswith("-cls")] or ["none"])
def test_detection_outputs_equal_ultralytics(name: str) -> None:
    x, ref = _tensors(name)
    net = _loaded(name)
    saved = {k: v.clone() for k, v in net.state_dict().items() if "running_" in k}
    with torch.no_grad():
        maps = net.train()(x)  # train mode: batch statistics, raw maps
    for level, got in enumerate(maps):
        want = ref[f"level{level}"]
        spread = float(want.max() - want.min())
        assert float((got - want).abs().max()) <= 1e-5 * spread
    _before_train_step(net, saved)
    with torch.no_grad():
        decoded, raw = net.eval()(x)
    assert decoded.shape == ref["decoded"].shape and len(raw) == 3
    boxes = float((decoded[:, :4] - ref["decoded"][:, :4]).abs().max())
    assert boxes <= 1e-4 * SIZE  # README: about 1e-4 of the input size, in pixels
    assert float((decoded[:, 4:] - ref["decoded"][:, 4:]).abs().max()) <= 1e-5


def test_classifier_probabilities_equal_ultralytics() -> None:
    x, ref = _tensors("yolov8n-cls")
    net = _loaded("yolov8n-cls")
    with torch.no_grad():
        probs = net.eval()(x).softmax(1)  # darkforge's classifiers return logits
    spread = float(ref["probs"].max() - ref["probs"].min())
    assert float((probs - ref["probs"]).abs().max()) <= 1e-5 * spread


def test_classes_10_changes_the_detect_class_branch_by_the_right_count(run_cli) -> None:
    spec = load_spec(ORACLE / "yolov8n.yaml")
    p80, p10 = plan(spec.resolved(input_size=SIZE)), plan(spec.resolved(input_size=SIZE, classes=10))
    levels = [p80.shape_of(s)[0] for s in p80.layers[-1].sources]  # 64, 128, 256

    def class_branch(c3: int, nc: int) -> int:  # two 3×3 conv+bn, a 1×1 conv with bias, per level
        return sum(9 * c * c3 + 2 * c3 + 9 * c3 * c3 + 2 * c3 + c3 * nc + nc for c in levels)

    # the hidden width is max(P3's channels, min(classes, 100)): 80 -> 80, 10 -> 64
    assert p80.params - p10.params == class_branch(80, 80) - class_branch(64, 10)
    assert p10.output_shapes[-1] == (4 + 10, 2100)
    net = darkforge.build(ORACLE / "yolov8n.yaml", input_size=SIZE, classes=10)
    assert [branch[-1].out_channels for branch in net.layers["22"].cv3] == [10, 10, 10]
    result = run_cli("summary", ORACLE / "yolov8n.yaml", "--classes", "10", "--input-size", SIZE, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["params"] == p10.params
