"""`draw` of networks written with blocks: blocks without weights, repeated blocks' numbers, and
collapsed composites naming every part."""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import ARCHS

from darkforge import load_spec, plan
from darkforge.views.draw import draw

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's `dot` is not installed")

NO_WEIGHTS = """\
name: up
input: {channels: 8, size: 64}
blocks:
  UpCat:
    inputs: [input, lateral]
    layers:
      - {type: Upsample, stride: 2}
      - {type: Route, from: [-1, lateral]}
  Pools:
    layers:
      - {type: MaxPool, size: 2}
      - {type: MaxPool, size: 2}
layers:
  - {type: Conv, filters: 8, size: 3, stride: 2, id: small}
  - {type: UpCat, from: [small, input]}
  - {type: Pools}
  - {type: Pools, repeat: 2}
"""


@needs_dot
def test_a_block_of_only_upsample_and_route_renders_to_png(run_cli, write, tmp_path):
    out = tmp_path / "up.png"
    result = run_cli("draw", write("up.yaml", NO_WEIGHTS), "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_block_without_weights_has_no_empty_note(write):
    dot = draw(plan(load_spec(write("up.yaml", NO_WEIGHTS)).resolved())).source
    assert "<FONT POINT-SIZE='9'></FONT>" not in dot and "UpCat" in dot and "Pools  ×2" in dot
    assert "MaxPool ×2" in dot  # one Pools copy: its two pools, counted


def test_resnet50s_collapsed_bottleneck_names_all_three_convs_and_the_projection():
    dot = draw(plan(load_spec(ARCHS / "resnet50.yaml").resolved())).source
    labels = re.findall(r"<B>Bottleneck</B><BR/>([^<]*)<BR/>", dot)
    # each stage's first block: 1×1, 3×3, 1×1 up and the 1×1 projection, then the add
    assert labels == ["Conv 1×1 relu, Conv 3×3 relu, Conv 1×1 ×2, + relu"] * 4
    repeated = re.findall(r"<B>Bottleneck ×(\d)</B><BR/>([^<]*)<BR/>.*?>([^<]*) params", dot)
    assert [(n, parts) for n, parts, _ in repeated] == [
        (n, "Conv 1×1 relu, Conv 3×3 relu, Conv 1×1, + relu") for n in "2352"
    ]


def test_a_repeated_block_shows_its_total_and_the_copys_share_at_every_level(write):
    text = NO_WEIGHTS.replace(
        "MaxPool, size: 2}\n      - {type: MaxPool", "Conv, filters: 16}\n      - {type: MaxPool"
    )
    dot = draw(plan(load_spec(write("w.yaml", text)).resolved())).source
    one = 16 * 16 * 9 + 16  # one Pools copy: a 3×3 conv 16 -> 16 with bias
    top = re.search(r"<B>Pools  ×2</B><BR/><FONT POINT-SIZE='9'>([^<]*)</FONT>", dot)
    assert top is not None and top.group(1) == f"{2 * one / 1000:.3g}k params (2 × {one / 1000:.3g}k)"
    nested = draw(plan(load_spec(ARCHS / "resnet50.yaml").resolved())).source
    assert "141k params (2 × 70.4k)" in nested  # layer1's Bottleneck ×2 inside its Stage
