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


NECK = """\
name: n
input: {channels: 3, size: 32}
scales: {half: {width: 0.5}}
blocks:
  Merge:                       # a lateral 1×1 to the first input's width, then both joined
    inputs: [top, lateral]
    layers:
      - {type: Conv, from: lateral, filters: "${channels(top)}", size: 1, id: squeeze}
      - {type: Upsample, from: top}
      - {type: Route, from: [-1, squeeze]}
      - {type: Conv, filters: "${max(16, channels(lateral) // 4)}", size: 1}
layers:
  - {type: Conv, filters: 64, stride: 2, id: p4}
  - {type: Conv, filters: 128, stride: 2, id: p5}
  - {type: Merge, from: [p5, p4]}
"""


def test_a_block_reads_each_input_s_channels_by_name(write):
    spec = darkforge.load_spec(write("n.yaml", NECK))
    merge = darkforge.plan(spec.resolved()).layers[2]
    inner = merge.spec.instance([(128, 8, 8), (64, 16, 16)]).layers
    assert (inner[0].filters, inner[3].filters, merge.output) == (128, 16, (16, 16, 16))
    half = darkforge.plan(spec.resolved("half")).layers[2]  # input widths are already scaled: once
    assert half.spec.instance([(64, 8, 8), (32, 16, 16)]).layers[0].filters == 64
    assert darkforge.build(spec).plan.params == sum(p.numel() for p in darkforge.build(spec).parameters())


def test_channels_of_what_is_no_input_is_one_line(write):
    with pytest.raises(
        darkforge.SpecError,
        match=r"channels\(p4\): p4 is no input of this block \(its inputs: lateral, top\)",
    ):
        darkforge.plan(
            darkforge.load_spec(write("n.yaml", NECK.replace("channels(top)", "channels(p4)"))).resolved()
        )
    with pytest.raises(
        darkforge.SpecError, match="a top-level expression reads only `classes`, not in_channels"
    ):
        darkforge.load_spec(
            write("n.yaml", NECK.replace("filters: 128, stride", 'filters: "${channels(p4)}", stride'))
        )
