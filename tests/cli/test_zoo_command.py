"""`darkforge zoo` lists the shipped networks by the names every command takes."""

from __future__ import annotations

import json

from conftest import ROOT


def test_zoo_lists_every_shipped_network_with_its_numbers(run_cli):
    data = json.loads(run_cli("zoo", "--json").output)["networks"]
    names = [row["name"] for row in data]
    assert names == sorted(p.stem for p in (ROOT / "archs").glob("*.yaml"))
    darknet53 = data[names.index("darknet53")]
    assert darknet53["params"] == 40_595_178 and darknet53["input"] == [3, 32, 32]
    assert darknet53["scales"] == ["tiny", "nano"] and darknet53["about"].startswith("Darknet-53")
    table = run_cli("zoo").output
    width = max(map(len, names)) + 2  # the name column fits the longest name
    assert f"{'darknet53':<{width}} 40,595,178 params  input 3×32×32  scales: tiny, nano" in table


def test_a_bare_name_that_is_not_shipped_suggests_one(run_cli):
    result = run_cli("summary", "resnet")
    assert result.exit_code == 1
    assert "no such file or shipped network 'resnet'; did you mean 'resnet50'?" in result.output
    assert "darkforge zoo" in result.output and len(result.output.strip().splitlines()) == 1
