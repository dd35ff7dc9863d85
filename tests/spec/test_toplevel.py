"""`${classes}` in a network's own layers and in blocks (darkforge/spec/toplevel.py): the class
count reaches a convolution, `--classes` changes it, a scale leaves it alone."""

from __future__ import annotations

import pytest

import darkforge

HEAD = """\
name: h
input: {channels: 3, size: 16}
classes: 4
scales: {half: {width: 0.5}}
blocks:
  Head:
    layers:
      - {type: Conv, filters: "${3 * (5 + classes)}", size: 1, bias: true}
layers:
  - {type: Conv, filters: 16, id: stem}
  - {type: Conv, filters: "${3 * (5 + classes)}", size: 1, bias: true}
  - {type: Head, from: stem}
outputs: [1, 2]
"""


def widths(spec, **kw):
    p = darkforge.plan(spec.resolved(**kw))
    return [p.layers[1].output[0], p.layers[2].output[0]]


def test_classes_reach_a_convolution_at_the_top_and_in_blocks(write):
    spec = darkforge.load_spec(write("h.yaml", HEAD))
    assert widths(spec) == [27, 27]
    assert widths(spec, classes=10) == [45, 45]  # --classes 10, or a dataset of 10
    assert widths(spec, scale="half", classes=10) == [45, 45]  # a class count is no width
    net = darkforge.build(spec, classes=10)
    assert (
        net.plan.params == sum(p.numel() for p in net.parameters()) == (3 * 16 * 9 + 16) + 2 * (16 * 45 + 45)
    )


def test_resolved_twice_keeps_the_scale(write):
    spec = darkforge.load_spec(write("h.yaml", HEAD)).resolved("half")
    p = darkforge.plan(spec.resolved(classes=10))
    assert p.layers[0].output[0] == 8 and p.layers[1].output[0] == 45


@pytest.mark.parametrize(
    "change, message",
    [
        (("classes: 4\n", ""), "filters reads `classes`, but the file gives no `classes:`"),
        (
            (
                '"${3 * (5 + classes)}", size: 1, bias: true}\n  - {type: Head',
                '"${k}", size: 1, bias: true}\n  - {type: Head',
            ),
            "a top-level expression reads only `classes`, not k",
        ),
    ],
)
def test_what_a_top_level_expression_cannot_read_is_one_line(write, change, message):
    with pytest.raises(darkforge.SpecError, match=message) as e:
        darkforge.load_spec(write("h.yaml", HEAD.replace(*change)))
    assert "h.yaml:1" in str(e.value)  # layers[1] is on line 11 / 12


def test_a_block_parameter_named_classes_is_the_block_s_own(write):
    text = HEAD.replace(
        "  Head:\n    layers:", "  Head:\n    params: {classes: {type: int, default: 2}}\n    layers:"
    )
    spec = darkforge.load_spec(write("h.yaml", text))
    assert widths(spec, classes=10) == [45, 21]
