"""`collect: true`: a repeat whose output is every copy's output concatenated along channels
(YOLOv8's C2f), in the shape walk, its errors, the flat spelling, scales and the views."""

from __future__ import annotations

import json

import pytest
import torch

import darkforge
from darkforge.errors import SpecError
from darkforge.nn.network import forward_order_copy
from darkforge.spec.budget import cost
from darkforge.spec.shapes import flatten, plan

HEAD = """\
name: t
input: {channels: 4, size: 8}
"""

CONVS = (
    HEAD
    + """\
scales: {half: {depth: 0.5}}
layers:
  - {type: Conv, filters: 4, size: 3, repeat: 4, collect: true, id: m}
  - {type: Conv, filters: 2, size: 1}
"""
)

BLOCK = """\
blocks:
  Pair:
    params: {filters: int, stride: {type: int, default: 1}}
    layers:
      - {type: Conv, filters: $filters, size: 3, stride: "${stride if copy == 0 else 1}", bn: true}
      - {type: Conv, filters: $filters, size: 1, bn: true, id: out}
"""

OUTER = """\
  Outer:
    layers:
      - {type: Pair, filters: 3, repeat: 2, collect: true}
      - {type: Conv, filters: 2, size: 1}
"""


def test_channels_add_up_and_costs_are_the_repeat_s(write):
    p = plan(darkforge.load_spec(write("t.yaml", CONVS)).resolved())
    m = p.layers[0]
    one_params, one_macs = 4 * 4 * 9 + 4, 4 * 4 * 9 * 8 * 8  # a 3×3 conv, 4 -> 4, 8×8, with bias
    assert m.output == (16, 8, 8)  # 4 copies × 4 channels
    assert (m.cost.params, m.cost.macs) == (4 * one_params, 4 * one_macs) == (592, 36_864)
    assert m.cost.produced == 4 * 4 * 64 + 16 * 64  # every copy's map, then the concatenation
    assert p.layers[1].cost.params == 16 * 2 + 2  # the next layer reads 16 channels
    assert cost(p).layers == 4 + 1 + 1  # copies, the flat spelling's Route, the 1×1


def test_a_depth_scale_changes_the_copies_and_the_channels_follow(write):
    spec = darkforge.load_spec(write("t.yaml", CONVS))
    p = plan(spec.resolved("half"))
    assert p.layers[0].spec.repeat == 2 and p.layers[0].output == (8, 8, 8)
    assert darkforge.build(spec, scale="half")(torch.randn(1, 4, 8, 8)).shape == (1, 2, 8, 8)


def test_one_copy_collected_is_that_copy(write):
    text = HEAD + "layers:\n  - {type: Conv, filters: 6, size: 3, collect: true}\n"
    spec = darkforge.load_spec(write("t.yaml", text))
    assert plan(spec.resolved()).layers[0].output == (6, 8, 8)
    assert cost(plan(spec.resolved())).layers == 1
    flat = flatten(spec)
    assert [layer.type for layer in flat.layers] == ["Conv"] and not flat.layers[0].collect


def test_collect_with_no_copy_is_refused_at_its_line(run_cli, write):
    text = (
        HEAD
        + "layers:\n  - {type: Conv, filters: 4, size: 3}\n  - {type: Conv, filters: 4, size: 3, repeat: 0, collect: true}\n"
    )
    result = run_cli("validate", write("t.yaml", text))
    assert result.exit_code == 1
    assert "t.yaml:5:" in result.stderr and "layers[1].collect" in result.stderr
    assert "`repeat: 0`: there is no copy whose output to concatenate" in result.stderr


def test_a_copy_that_changes_the_size_is_named_with_both_sizes(write):
    text = (
        HEAD
        + "layers:\n  - {type: Conv, filters: 4, size: 3}\n  - {type: Conv, filters: 4, size: 3, stride: 2, repeat: 3, collect: true}\n"
    )
    with pytest.raises(SpecError, match=r"t\.yaml:5:") as e:
        plan(darkforge.load_spec(write("t.yaml", text)).resolved())
    assert "copy 1 outputs 4×2×2 and copy 0 4×4×4" in str(e.value)


def test_inside_a_block_only_the_first_copy_may_stride(write):
    text = HEAD + BLOCK + "layers:\n  - {type: Pair, filters: 3, stride: 2, repeat: 3, collect: true}\n"
    p = plan(darkforge.load_spec(write("t.yaml", text)).resolved())
    assert p.output_shapes == [(9, 4, 4)]
    inner = HEAD + BLOCK.replace('"${stride if copy == 0 else 1}"', "$stride")
    inner += "layers:\n  - {type: Pair, filters: 3, stride: 2, repeat: 2, collect: true}\n"
    with pytest.raises(SpecError, match=r"copy 1 outputs 3×2×2 and copy 0 3×4×4"):
        plan(darkforge.load_spec(write("u.yaml", inner)).resolved())


def test_the_flat_spelling_routes_every_copy_and_computes_the_same(write):
    text = (
        HEAD + BLOCK + "layers:\n  - {type: Pair, filters: 3, stride: 2, repeat: 3, collect: true, id: m}\n"
    )
    text += "  - {type: Conv, filters: 2, size: 1, from: m}\n"
    spec = darkforge.load_spec(write("t.yaml", text))
    flat = flatten(spec)
    assert [layer.type for layer in flat.layers] == [*["Conv"] * 6, "Route", "Conv"]
    assert flat.layers[6].from_ == [-5, -3, -1] and flat.layers[6].id == "m"
    assert cost(plan(spec.resolved())).layers == len(flat.layers)
    torch.manual_seed(0)
    staged, flat_model = darkforge.build(spec).eval(), darkforge.build(flat).eval()
    for module in staged.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.running_mean, -1, 1)
    forward_order_copy(staged, flat_model)
    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(staged(x), flat_model(x), rtol=0, atol=0)


def test_summary_and_draw_say_the_copies_are_concatenated(run_cli, write):
    path = write("t.yaml", CONVS)
    table = run_cli("summary", path).output
    assert "Conv ×4 collected" in table
    data = json.loads(run_cli("summary", path, "--json").output)
    assert data["layers"][0]["collect"] is True and data["layers"][0]["output"] == [16, 8, 8]
    dot = run_cli("draw", path, "--format", "dot", "-o", "-").output
    assert "Conv  ×4, concatenated" in dot and "×N, concatenated" in dot
    nested = HEAD + BLOCK + OUTER + "layers:\n  - {type: Outer}\n"
    dot = run_cli("draw", write("u.yaml", nested), "--format", "dot", "-o", "-").output
    assert "<B>×2, concatenated</B>" in dot and "Pair ×2" in dot  # the dashed box inside Outer
    darknet = run_cli("summary", path, "--style", "darknet").output
    assert "route  0 1 2 3" in darknet
