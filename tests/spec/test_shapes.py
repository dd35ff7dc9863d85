"""Static inference pins Darknet's and DESIGN.md's numbers, without torch."""

from __future__ import annotations

import pytest
from conftest import ARCHS

from darkforge import load_spec, plan
from darkforge.errors import SpecError
from darkforge.spec.load import SourceMap, parse_spec
from darkforge.spec.shapes import flatten


def darknet53(**overrides):
    return plan(load_spec(ARCHS / "darknet53.yaml").resolved(**overrides))


def test_darknet53_cifar_numbers():
    p = darknet53()
    assert p.params == 40_595_178
    assert [p.layers[i].output for i in range(1, 6)] == [
        (64, 16, 16),
        (128, 8, 8),
        (256, 4, 4),
        (512, 2, 2),
        (1024, 1, 1),
    ]
    assert p.output_shapes == [(10,)]


def test_dead_weights_of_the_last_stage_at_32x32():
    # 8 of 9 taps in each residual 3×3 conv on 1×1 maps, 5 of 9 in the stride-2 downsample.
    p = darknet53()
    assert p.dead_params == 4 * 1024 * 512 * 8 + 1024 * 512 * 5 == 19_398_656
    assert [i.cost.dead_params > 0 for i in p.layers].count(True) == 1
    assert darknet53(input_size=256).dead_params == 0


def test_darknet53_imagenet_matches_darknet():
    p = darknet53(input_size=256, classes=1000)
    assert p.params == 41_609_928  # darknet53.cfg
    assert round(p.bflops, 2) == 18.57
    backbone = sum(i.cost.params for i in p.layers[:-2])
    assert backbone == 40_584_928


def test_flat_spelling_has_the_same_plan():
    staged, flat = darknet53(), plan(load_spec(ARCHS / "darknet53-flat.yaml").resolved())
    assert (flat.params, flat.macs, flat.output_shapes) == (
        staged.params,
        staged.macs,
        staged.output_shapes,
    )
    assert len(flat.layers) == 77
    # flattening the staged file gives the flat file's layers
    assert (
        flatten(load_spec(ARCHS / "darknet53.yaml")).layers == load_spec(ARCHS / "darknet53-flat.yaml").layers
    )


def test_scales_round_channels_and_depth():
    tiny = darknet53(scale="tiny")
    stages = [info.spec for info in tiny.layers[1:6]]
    assert [s.filters for s in stages] == [32, 64, 128, 256, 512]
    assert [s.blocks for s in stages] == [1, 1, 4, 4, 2]
    nano = darknet53(scale="nano")
    assert [info.spec.filters for info in nano.layers[1:6]] == [8, 16, 32, 64, 128]


def test_multi_output_graph():
    p = plan(load_spec(ARCHS / "yolo-mini.yaml").resolved())
    assert p.output_shapes == [(27, 8, 8), (27, 16, 16)]
    assert p.layers[7].output == (128, 16, 16)  # Route of upsampled lateral + p4
    nano = plan(load_spec(ARCHS / "yolo-mini.yaml").resolved(scale="nano"))
    assert nano.output_shapes == [(27, 8, 8), (27, 16, 16)]  # fixed_width heads keep 27


def test_non_square_input():
    spec = parse_spec(
        {
            "name": "x",
            "input": {"height": 32, "width": 64},
            "layers": [{"type": "ConvBnLeaky", "filters": 8, "stride": 2}],
        },
        SourceMap("x.yaml"),
    )
    assert plan(spec).output_shapes == [(8, 16, 32)]


def _net(*layers, **top):
    data = {"name": "t", "input": {"size": 8}, "layers": list(layers), **top}
    return parse_spec(data, SourceMap("t.yaml"))


@pytest.mark.parametrize(
    "layers, words",
    [
        (
            [
                {"type": "ConvBnLeaky", "filters": 8},
                {"type": "ConvBnLeaky", "filters": 4},
                {"type": "Shortcut", "from": -2},
            ],
            ["layers[2]", "layers[0]", "layers[1]", "8×8×8", "4×8×8"],
        ),
        (
            [
                {"type": "ConvBnLeaky", "filters": 8, "stride": 2},
                {"type": "Route", "from": [-1, "input"]},
            ],
            ["spatial", "layers[0]", "the input"],
        ),
        (
            [{"type": "ConvBnLeaky", "filters": 8, "size": 3, "stride": 1, "pad": 0}] * 4,
            ["below 1×1", "layers[3]", "layers[2]"],
        ),
        (
            [{"type": "Route", "from": [1]}, {"type": "ConvBnLeaky", "filters": 4}],
            ["layers[0]", "layers[1]", "later"],
        ),
        ([{"type": "Route", "from": ["nope"]}], ["no layer has id 'nope'"]),
        (
            [
                {"type": "ConvBnLeaky", "filters": 4, "id": "a"},
                {"type": "Route", "from": ["b"]},
                {"type": "Flatten", "id": "b"},
            ],
            ["refers forward", "layers[2]"],
        ),
        ([{"type": "ConvBnLeaky", "filters": 4, "from": -5}], ["before the input"]),
        (
            [
                {"type": "ConvBnLeaky", "filters": 4, "id": "a"},
                {"type": "ConvBnLeaky", "filters": 4, "id": "a"},
            ],
            ["used twice"],
        ),
        ([{"type": "ConvBnLeaky", "filters": 6, "groups": 4}], ["groups=4"]),
        ([{"type": "Linear"}], ["no width"]),
    ],
)
def test_graph_errors_name_the_layers(layers, words):
    with pytest.raises(SpecError) as info:
        plan(_net(*layers).resolved())
    text = str(info.value)
    assert text.startswith("t.yaml")
    for word in words:
        assert word in text, text


def test_plan_says_which_layer_an_id_or_index_is():
    from darkforge.errors import UsageError

    p = plan(load_spec(ARCHS / "darknet53.yaml").resolved("nano"))
    c3 = next(info.index for info in p.layers if info.name == "c3")
    assert p.index_of("c3") == c3 and p.index_of(c3) == c3 and p.index_of(str(c3)) == c3
    assert p.indices(["c3", 0]) == (c3, 0)
    with pytest.raises(UsageError, match=r"--features: no layer 'c33'; did you mean 'c3'"):
        p.index_of("c33", "--features")
