"""File-level layer defaults (darkforge/spec/defaults.py): filled in where a layer writes nothing,
in the file's own blocks too, never in an included library's; checked where they are written."""

from __future__ import annotations

import pytest

import darkforge
from darkforge.errors import SpecError

YOLO_CONV = "{bias: false, bn: {momentum: 0.03, eps: 0.001}, activation: silu}"

NET = f"""\
name: d
input: {{channels: 3, size: 16}}
defaults: {{Conv: {YOLO_CONV}}}
blocks:
  Pair:
    layers:
      - {{type: Conv, filters: 8}}
      - {{type: Conv, filters: 8, activation: relu}}
layers:
  - {{type: Conv, filters: 8}}
  - {{type: Conv, filters: 8, bn: false, bias: true}}
  - {{type: Pair}}
"""


def test_defaults_fill_what_a_layer_does_not_write(write):
    spec = darkforge.load_spec(write("d.yaml", NET))
    first, second = spec.layers[0], spec.layers[1]
    assert (first.activation, first.bias, first.bn.eps, first.bn.momentum) == ("silu", False, 0.001, 0.03)
    assert (second.activation, second.bias, second.bn) == ("silu", True, False)  # its own win
    net = darkforge.build(spec)
    pair = net.plan.layers[2]
    inner = pair.spec.instance([(8, 16, 16)]).layers
    assert [(c.activation, c.bias) for c in inner] == [("silu", False), ("relu", False)]
    # 8·8·9 weights + BN's 16 for each conv of the pair: the defaults reached the block
    assert pair.cost.params == 2 * (8 * 8 * 9 + 16)


def test_an_included_library_keeps_its_own_defaults(write):
    write("lib.yaml", "blocks:\n  Plain:\n    layers:\n      - {type: Conv, filters: 4}\n")
    path = write(
        "net.yaml",
        NET.replace("blocks:\n  Pair:", "include: [lib.yaml]\nblocks:\n  Pair:").replace(
            "  - {type: Pair}", "  - {type: Pair}\n  - {type: Plain}"
        ),
    )
    net = darkforge.build(path)
    plain = net.plan.layers[3].spec.instance([(8, 16, 16)]).layers[0]
    assert (plain.activation, plain.bn, plain.bias) == ("linear", False, None)  # Conv's own defaults


def test_an_inlined_copy_means_the_same(write, tmp_path):
    from darkforge.spec.archtext import arch_text, inlined
    from darkforge.spec.load import spec_from_text

    write("lib.yaml", "blocks:\n  Plain:\n    layers:\n      - {type: Conv, filters: 4}\n")
    path = write(
        "net.yaml",
        NET.replace("blocks:\n  Pair:", "include: [lib.yaml]\nblocks:\n  Pair:").replace(
            "  - {type: Pair}",
            "  - {type: Pair}\n  - {type: Plain}\n  - {type: Conv, filters: 4, activation: linear}",
        ),
    )
    spec = darkforge.load_spec(path)
    again = spec_from_text(arch_text(path, spec, inlined(spec)), "arch.yaml")
    a, b = darkforge.plan(spec.resolved()), darkforge.plan(again.resolved())
    assert [(i.spec.type, i.cost.params, i.output) for i in a.layers] == [
        (i.spec.type, i.cost.params, i.output) for i in b.layers
    ]
    assert b.layers[4].spec.activation == "linear"  # written equal to Conv's default: kept
    assert b.layers[3].spec.instance([(8, 16, 16)]).layers[0].activation == "linear"


@pytest.mark.parametrize(
    "defaults, where, message",
    [
        ("{Conf: {bias: false}}", "3:", "defaults for 'Conf': no such layer type; did you mean 'Conv'?"),
        ("{Conv: {activaton: silu}}", "3:", "Conv has no field 'activaton'; did you mean 'activation'?"),
        ("{Conv: {from: 0}}", "3:", "`from` has no default: each layer says its own"),
        ("{Conv: 3}", "3:", "the defaults of Conv map its fields to values"),
        ("[Conv]", "3:", "`defaults` maps layer types to field values"),
    ],
)
def test_a_bad_default_is_one_line_at_its_place(write, defaults, where, message):
    text = f"name: d\ninput: {{channels: 3, size: 16}}\ndefaults: {defaults}\nlayers:\n  - {{type: Conv, filters: 8}}\n"
    with pytest.raises(SpecError) as e:
        darkforge.load_spec(write("d.yaml", text))
    assert message in str(e.value) and f"d.yaml:{where}" in str(e.value)
    assert "\n" not in str(e.value)


def test_a_bad_default_value_is_refused_as_the_field_would_be(write):
    text = "name: d\ninput: {channels: 3, size: 16}\ndefaults: {Conv: {activation: sigh}}\nlayers:\n  - {type: Conv, filters: 8}\n"
    with pytest.raises(SpecError, match="activation"):
        darkforge.load_spec(write("d.yaml", text))
