"""Size limits before allocation (darkforge.spec.budget) and the spec-side refusals of issue 14."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ARCHS
from torch import nn

from darkforge.spec import budget
from darkforge.spec.load import load_spec
from darkforge.spec.reserved import reserved
from darkforge.spec.shapes import flatten, plan

HEAD = "name: h\ninput: {channels: 3, size: 8}\nclasses: 2\nlayers:\n"


def test_darknet53_costs_what_it_is() -> None:
    p = plan(load_spec(ARCHS / "darknet53.yaml").resolved())
    cost = budget.check(p)
    assert cost.params == 40_595_178
    assert cost.layers == len(flatten(p.spec).layers) == 77  # the flat spelling, counted without building it
    assert cost.layers == len(plan(load_spec(ARCHS / "darknet53-flat.yaml").resolved()).layers)


def test_a_bomb_is_refused_naming_its_layer_and_the_flag(run_cli, write) -> None:
    path = write(
        "b.yaml", HEAD + "  - {type: Conv, filters: 64}\n  - {type: Conv, filters: 65536, size: 31}\n"
    )
    result = run_cli("validate", path)
    assert result.exit_code == 1
    assert "layers[1]: the network has 4,030,793,472 parameters" in result.stderr
    assert "over the limit of 1,000,000,000" in result.stderr and "--max-params" in result.stderr
    assert run_cli("validate", "--no-budget", path).exit_code == 0
    assert run_cli("validate", "--max-params", "20000000000", path).exit_code == 0
    assert run_cli("summary", path).exit_code == 1


def test_layers_after_expansion_are_limited(run_cli, write) -> None:
    stage = "  - {type: ResidualStage, filters: 8, blocks: 1000, stride: 1}\n"
    path = write("s.yaml", HEAD + stage * 40)
    result = run_cli("validate", path)
    assert (
        "the network expands to 120,040 layers (3,001 from this one), over the limit of 100,000"
        in result.stderr
    )
    assert run_cli("validate", "--max-layers", "200000", path).exit_code == 0


def test_activations_are_limited(run_cli, write) -> None:
    path = write("u.yaml", HEAD + "  - {type: Upsample, stride: 64}\n" * 3)
    result = run_cli("validate", path)
    assert result.exit_code == 1 and "of activations per image" in result.stderr
    assert "3×2.1e+06×2.1e+06" in result.stderr


@pytest.mark.parametrize("out", ["-3", "0", "1e30"])
def test_linear_out_is_bounded(run_cli, write, out: str) -> None:
    result = run_cli("validate", write("l.yaml", HEAD + f"  - {{type: Linear, out: {out}}}\n"))
    assert result.exit_code == 1 and "layers[0].out" in result.stderr


@pytest.mark.parametrize("name", ["keys", "training", "input", "_modules", "__init__"])
def test_reserved_ids_are_refused_when_read(run_cli, write, name: str) -> None:
    result = run_cli("validate", write("r.yaml", HEAD + f"  - {{type: Conv, filters: 4, id: {name}}}\n"))
    assert result.exit_code == 1 and f"id {name!r} is reserved" in result.stderr


def test_reserved_ids_cover_torchs_module_dict() -> None:
    """ModuleDict refuses its own attribute names as keys; a torch upgrade adding one shows here."""
    assert all(reserved(n) for n in dir(nn.ModuleDict()) if n.isidentifier())
    assert not reserved("stem") and not reserved("c3")


def test_a_network_without_a_classifier_is_refused_before_a_run_exists(
    run_cli, write, tmp_path: Path
) -> None:
    path = write("n.yaml", HEAD + "  - {type: Conv, filters: 4}\n")
    result = run_cli("train", path, "--data", "fake:20,20", "--project", tmp_path / "runs")
    assert result.exit_code == 2  # bad usage: --output ID chooses a layer to train a pooled head on
    assert "its output is a map (0 4×8×8), not one class-score vector" in result.stderr
    assert "--output ID" in result.stderr and not (tmp_path / "runs").exists()
