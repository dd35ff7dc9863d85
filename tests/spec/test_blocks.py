"""User-defined blocks: parameters, references, `when`, repeats, includes, and their errors."""

from __future__ import annotations

import re
import textwrap

import pytest
import torch

import darkforge
from darkforge.errors import SpecError
from darkforge.nn.network import forward_order_copy
from darkforge.spec.shapes import flatten

HEAD = """\
name: t
input: {channels: 3, size: 16}
classes: 4
"""

BLOCK = """\
blocks:
  Twice:
    params: {filters: int, act: {type: str, default: relu, choices: [relu, leaky]}}
    layers:
      - {type: Conv, filters: $filters, size: 3, bn: true, activation: $act}
      - {type: Conv, filters: "${filters * 2}", size: 1, id: wide}
"""


def load(write, text: str, name: str = "t.yaml"):
    return darkforge.load_spec(write(name, textwrap.dedent(text)))


def test_a_block_is_a_layer_with_its_parameters(write):
    spec = load(
        write,
        HEAD
        + BLOCK
        + "layers:\n  - {type: Twice, filters: 8, id: a}\n  - {type: Twice, filters: 4, act: leaky}\n",
    )
    p = darkforge.plan(spec.resolved())
    assert [info.output for info in p.layers] == [(16, 16, 16), (8, 16, 16)]
    assert p.params == (3 * 9 * 8 + 16 + 8 * 16 + 16) + (16 * 9 * 4 + 8 + 4 * 8 + 8)
    model = darkforge.build(spec)
    assert "layers.a.wide.conv.weight" in model.state_dict()  # names follow the structure
    x = torch.randn(2, 3, 16, 16)
    a = model.layers["a"]
    expected = a.wide(a.get_submodule("0")(x))
    torch.testing.assert_close(model.layers["a"](x), expected)


def test_repeat_chains_copies_and_depth_scales_it(write):
    spec = load(
        write,
        HEAD
        + BLOCK
        + "layers:\n  - {type: Conv, filters: 8, size: 1}\n  - {type: Twice, filters: 4, repeat: 4, id: r}\n"
        "scales: {half: {depth: 0.5}}\n",
    )
    model = darkforge.build(spec)
    assert [k for k in dict(model.named_children()) | {}] == ["layers"]
    assert "layers.r.3.wide.conv.weight" in model.state_dict()
    half = darkforge.build(spec, scale="half")
    assert (
        "layers.r.1.wide.conv.weight" in half.state_dict()
        and "layers.r.2.wide.conv.weight" not in half.state_dict()
    )
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 8, 16, 16)


def test_when_leaves_a_layer_out_and_references_read_its_input(write):
    text = HEAD + textwrap.dedent("""\
        blocks:
          Res:
            params: {out: int, stride: {type: int, default: 1}}
            layers:
              - {type: Conv, filters: $out, size: 3, stride: $stride, id: body}
              - {type: Conv, from: input, filters: $out, size: 1, stride: $stride, id: proj, when: "${stride != 1 or in_channels != out}"}
              - {type: Shortcut, from: [body, proj]}
        layers:
          - {type: Res, out: 8, stride: 2}
          - {type: Res, out: 8}
        """)
    spec = load(write, text)
    model = darkforge.build(spec)
    assert "proj" in dict(model.layers["0"].named_children()) and "proj" not in dict(
        model.layers["1"].named_children()
    )
    block = model.layers["1"]
    x = torch.randn(1, 8, 8, 8)
    torch.testing.assert_close(block(x), block.body(x) + x)  # proj left out: the shortcut adds the input


def test_blocks_from_a_library_file(write, tmp_path):
    (tmp_path / "lib").mkdir()
    write("lib/common.yaml", BLOCK)
    spec = load(write, HEAD + "include: [lib/common.yaml]\nlayers:\n  - {type: Twice, filters: 2}\n")
    assert darkforge.plan(spec.resolved()).output_shapes == [(4, 16, 16)]


def test_flat_spelling_of_blocks_computes_the_same(write):
    text = (
        HEAD
        + BLOCK
        + "layers:\n  - {type: Twice, filters: 4, repeat: 2}\n  - {type: Twice, filters: 2, from: 0}\n  - {type: Route, from: [0, 1]}\n"
    )
    spec = load(write, text)
    staged, flat = darkforge.build(spec).eval(), darkforge.build(flatten(spec)).eval()
    assert len(flatten(spec).layers) == 7
    forward_order_copy(staged, flat)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(staged(x), flat(x), rtol=0, atol=0)


def test_a_residual_block_reading_an_earlier_layer_flattens_right(write):
    # ResidualBlock from: 0 (not the previous layer): its shortcut must add layer 0, not layer 1
    text = (
        HEAD
        + "layers:\n  - {type: ConvBnLeaky, filters: 8}\n  - {type: ConvBnLeaky, filters: 8}\n  - {type: ResidualBlock, from: 0}\n"
    )
    spec = load(write, text)
    flat = flatten(spec)
    assert flat.layers[-1].type == "Shortcut" and flat.layers[-1].from_ == -4
    staged, flat_model = darkforge.build(spec).eval(), darkforge.build(flat).eval()
    forward_order_copy(staged, flat_model)
    for m in staged.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.running_mean, -1, 1)
    forward_order_copy(staged, flat_model)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(staged(x), flat_model(x), rtol=0, atol=0)


BAD = [
    # (the use and the block, what the one line says)
    (
        "layers:\n  - {type: Twice, filters: 4, filtres: 2}\n",
        "t.yaml:11:",
        "unknown key 'filtres'",
        "t.yaml:5)",
    ),
    ("layers:\n  - {type: Twice}\n", "t.yaml:11:", "missing required key 'filters'", "t.yaml:5)"),
    ("layers:\n  - {type: Twice, filters: four}\n", "t.yaml:11:", "filters", "t.yaml:5)"),
    ("layers:\n  - {type: Twice, filters: 4, repeat: -1}\n", "t.yaml:11:", "repeat", "t.yaml:5)"),
    ("layers:\n  - {type: Twice, filters: 4, act: gelu}\n", "t.yaml:11:", "act", "t.yaml:5)"),
]


@pytest.mark.parametrize("use, at_use, what, at_definition", BAD)
def test_bad_uses_name_both_places(run_cli, write, use, at_use, what, at_definition):
    path = write("t.yaml", HEAD + BLOCK + use)
    result = run_cli("validate", path)
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert at_use in line and what in line and "is defined at" in line and at_definition in line, line


BAD_DEFINITIONS = [
    (
        "  Loop:\n    params: {n: int}\n    layers:\n      - {type: Loop, n: $n}\n",
        "{type: Loop, n: 1}",
        "block Loop uses itself (Loop → Loop)",
    ),
    (
        "  Out:\n    layers:\n      - {type: Conv, filters: 2, size: 1, from: -3}\n",
        "{type: Out}",
        "`from: -3` leaves block Out",
    ),
    (
        "  Out:\n    layers:\n      - {type: Conv, filters: 2, size: 1, from: stem}\n",
        "{type: Out}",
        "`from: stem` names no layer of block Out",
    ),
    (
        "  Bad:\n    params: {f: int}\n    layers:\n      - {type: Conv, filters: $g, size: 1}\n",
        "{type: Bad, f: 2}",
        "$g: no such parameter",
    ),
    (
        "  Bad:\n    layers:\n      - {type: Conv, filtres: 2, size: 1}\n",
        "{type: Bad}",
        "unknown key 'filtres'",
    ),
]


@pytest.mark.parametrize("definition, use, what", BAD_DEFINITIONS)
def test_bad_definitions_name_the_use_and_the_definition(run_cli, write, definition, use, what):
    text = (
        HEAD
        + "layers:\n  - {type: Conv, filters: 2, size: 1, id: stem}\n  - "
        + use
        + "\nblocks:\n"
        + definition
    )
    result = run_cli("validate", write("t.yaml", text))
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and re.match(r"error: \S*t\.yaml:6:", line), line  # the use's line
    assert re.search(r"in block \w+ \(\S*t\.yaml:1\d:\d+\)", line) and what in line, (
        line
    )  # ... the definition's


def test_expressions_are_arithmetic_only(write):
    text = (
        HEAD
        + "blocks:\n  B:\n    layers:\n      - {type: Conv, filters: \"${__import__('os')}\", size: 1}\nlayers:\n  - {type: B}\n"
    )
    with pytest.raises(darkforge.SpecError, match="is not allowed"):
        darkforge.plan(load(write, text).resolved())
    text = (
        HEAD
        + 'blocks:\n  B:\n    layers:\n      - {type: Conv, filters: "${10 ** 100}", size: 1}\nlayers:\n  - {type: B}\n'
    )
    with pytest.raises(darkforge.SpecError, match="powers are limited"):
        darkforge.plan(load(write, text).resolved())


def test_schema_of_a_file_lists_its_blocks_with_their_parameters(run_cli):
    import json

    from conftest import ARCHS

    result = run_cli("schema", ARCHS / "resnet50.yaml")
    assert result.exit_code == 0, result.output
    bottleneck = json.loads(result.stdout)["$defs"]["Bottleneck"]
    assert {"width", "stride", "repeat"} <= set(bottleneck["properties"]) and bottleneck["required"] == [
        "width"
    ]


def test_summary_shows_a_row_per_use_and_expands(run_cli):
    from conftest import ARCHS

    short = run_cli("summary", ARCHS / "resnet50.yaml").stdout
    assert "layer3  Stage" in short and "25,557,032" in short
    expanded = run_cli("summary", ARCHS / "resnet50.yaml", "--expand").stdout
    assert expanded.count("Shortcut") == 16 and "25,557,032" in expanded


def test_width_scales_reach_inside_blocks_even_when_the_input_shape_is_the_same(write):
    text = (
        HEAD
        + "blocks:\n  B:\n    params: {f: {type: int, scale: width}}\n    layers:\n"
        + "      - {type: Conv, filters: $f, size: 1}\n"
    )
    text += "layers:\n  - {type: Conv, filters: 8, size: 1, fixed_width: true}\n  - {type: B, f: 32}\nscales: {half: {width: 0.5}}\n"
    spec = load(write, text)
    assert darkforge.plan(spec.resolved()).output_shapes == [(32, 16, 16)]
    assert darkforge.plan(spec.resolved("half")).output_shapes == [(16, 16, 16)]
    # a channel count computed from a parameter that declares no scale: refused, never guessed
    loose = load(write, text.replace("{f: {type: int, scale: width}}", "{f: int}"))
    with pytest.raises(SpecError, match=r"`filters` is computed from f, which declares no `scale:`"):
        darkforge.plan(loose.resolved("half"))
    fixed = load(write, text.replace("scale: width", "scale: none"))
    assert darkforge.plan(fixed.resolved("half")).output_shapes == [(32, 16, 16)]
