"""`darkforge summary`, `validate` and `schema` as a user sees them."""

from __future__ import annotations

import json

from conftest import ARCHS, ROOT

from darkforge.views.reference import markdown


def test_summary_json_follows_the_contract(run_cli):
    result = run_cli("summary", ARCHS / "darknet53.yaml", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert {"name", "input", "params", "macs", "bflops", "outputs", "layers"} <= set(data)
    assert data["params"] == 40_595_178 and data["input"] == [3, 32, 32]
    assert data["outputs"] == [[10]]
    stages = [layer["output"] for layer in data["layers"] if layer["type"] == "ResidualStage"]
    assert stages == [[64, 16, 16], [128, 8, 8], [256, 4, 4], [512, 2, 2], [1024, 1, 1]]
    for layer in data["layers"]:
        assert {"index", "id", "type", "from", "output", "params", "macs"} <= set(layer)
    assert data["bflops"] == round(2 * data["macs"] / 1e9, 6)
    assert data["dead_params"] == 19_398_656 and "never see data" in data["warnings"][0]


def test_summary_table_totals_and_warning(run_cli):
    result = run_cli("summary", ARCHS / "darknet53.yaml")
    assert "40,595,178" in result.output and "c5" in result.output
    # the shipped file has them by design: a note, not a warning, unless asked (--warn, --expand)
    assert "warning:" not in result.output
    assert "unused   19,398,656 params (47.8%) only see zero padding (--warn: where)" in result.output
    for flag in ("--warn", "--expand"):
        asked = run_cli("summary", ARCHS / "darknet53.yaml", flag).output
        assert "warning: 19,398,656 parameters (47.8%) can never see data" in asked and "unused" not in asked
    tiny = run_cli(
        "summary", ARCHS / "darknet53.yaml", "--scale", "tiny", "--input-size", "64", "--classes", "100"
    )
    assert tiny.exit_code == 0 and "outputs  100" in tiny.output and "fc      Linear" in tiny.output


def test_darknet_style_numbers_layers_as_darknet(run_cli):
    result = run_cli(
        "summary", ARCHS / "darknet53.yaml", "--style", "darknet", "--input-size", "256", "--classes", "1000"
    )
    lines = result.output.splitlines()
    assert lines[1].split()[:2] == ["0", "conv"] and "0.113 BF" in lines[1]  # Darknet prints 0.113
    assert lines[5].split()[:4] == ["4", "Shortcut", "Layer:", "1,"]
    assert "BFLOPs   18.570" in result.output


def test_validate_many_files(run_cli, write):
    bad = write("bad.yaml", "name: x\n")
    result = run_cli("validate", *sorted(ARCHS.glob("*.yaml")), bad)
    assert result.exit_code == 1
    assert result.output.count("ok: ") == len(list(ARCHS.glob("*.yaml")))
    assert "bad.yaml" in result.stderr


def test_schema_is_json_schema_with_every_type(run_cli):
    schema = json.loads(run_cli("schema").output)
    text = json.dumps(schema)
    for name in ("ConvBnLeaky", "ResidualStage", "Route", "Shortcut", "Upsample"):
        assert name in text
    assert schema["properties"]["layers"]["type"] == "array"


def test_layer_reference_in_docs_is_current():
    assert (ROOT / "docs" / "layers.md").read_text() == markdown(), (
        "run: darkforge schema --markdown > docs/layers.md"
    )
