"""The channel primitives and adaptive pooling, each against torch itself; a squeeze-and-excitation
block and a CSP split written in YAML alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import yaml
from torchvision.ops import SqueezeExcitation

import darkforge
from darkforge.nn.network import forward_order_copy
from darkforge.spec.load import SourceMap, parse_spec


def net(layers: list[dict], channels: int = 8, size: int = 6, **top: object):
    data = {"name": "t", "input": {"channels": channels, "size": size}, "layers": layers, **top}
    return darkforge.build(parse_spec(yaml.safe_load(yaml.safe_dump(data)), SourceMap("t.yaml"))).eval()


def test_mul_broadcasts_a_channel_gate_and_a_position_gate():
    model = net(
        [
            {"type": "GlobalAvgPool", "from": "input", "id": "gate"},
            {"type": "Mul", "from": ["input", "gate"], "id": "by_channel"},
            {"type": "Conv", "filters": 1, "size": 1, "from": "input", "id": "where"},
            {"type": "Mul", "from": ["by_channel", "where"]},
        ]
    )
    x = torch.randn(2, 8, 6, 6)
    where = model.layers["where"].conv(x)
    expected = x * x.mean((2, 3), keepdim=True) * where
    torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-6)


def test_mul_refuses_a_gate_that_does_not_broadcast():
    with pytest.raises(darkforge.SpecError, match=r"cannot scale the input \(8×6×6\) by .*\(4×6×6\)"):
        net([{"type": "Conv", "filters": 4, "size": 1, "id": "g"}, {"type": "Mul", "from": ["input", "g"]}])


def test_slice_by_range_and_by_group():
    x = torch.randn(2, 8, 6, 6)
    model = net([{"type": "Slice", "start": 2, "end": 5}])
    assert torch.equal(model(x), x[:, 2:5])
    model = net([{"type": "Slice", "groups": 2, "group": 1}])
    assert torch.equal(model(x), x.chunk(2, 1)[1])
    with pytest.raises(darkforge.SpecError, match="groups=3 must divide"):
        net([{"type": "Slice", "groups": 3, "group": 0}])
    with pytest.raises(darkforge.SpecError, match="give `start` and `end`, or `groups` and `group`"):
        net([{"type": "Slice", "start": 1, "group": 0}])


def test_layer_norm_and_layer_scale_are_torch_s():
    model = net([{"type": "LayerNorm"}, {"type": "LayerScale", "init": 0.5}])
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        model.layers["0"].weight.uniform_()
        model.layers["0"].bias.uniform_()
    ln = model.layers["0"]
    expected = F.layer_norm(x.permute(0, 2, 3, 1), (8,), ln.weight, ln.bias, 1e-6).permute(0, 3, 1, 2) * 0.5
    torch.testing.assert_close(model(x), expected)
    assert darkforge.plan(model.spec).params == sum(p.numel() for p in model.parameters()) == 16 + 8


def test_drop_path_drops_whole_samples_in_training_only():
    model = net([{"type": "DropPath", "p": 0.5}], channels=3, size=4)
    x = torch.ones(64, 3, 4, 4)
    assert torch.equal(model(x), x)  # eval: identity
    model.train()
    torch.manual_seed(0)
    y = model(x)
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}  # dropped, or kept and scaled by 1/(1-p)
    assert all(len(row.unique()) == 1 for row in per_sample)


def test_adaptive_avg_pool_and_linear_activation():
    model = net(
        [{"type": "AdaptiveAvgPool", "size": [2, 3]}, {"type": "Linear", "out": 5, "activation": "relu"}]
    )
    x = torch.randn(2, 8, 6, 6)
    fc = model.layers["1"]
    expected = F.relu(F.linear(F.adaptive_avg_pool2d(x, (2, 3)).flatten(1), fc.weight, fc.bias))
    torch.testing.assert_close(model(x), expected)
    assert model.plan.layers[0].output == (8, 2, 3)


def test_squeeze_and_excitation_in_yaml_equals_torchvision_s():
    se = [
        {"type": "GlobalAvgPool", "from": "input"},
        {"type": "Conv", "filters": 4, "size": 1, "bias": True, "activation": "relu"},
        {"type": "Conv", "filters": 16, "size": 1, "bias": True, "activation": "logistic", "id": "gate"},
        {"type": "Mul", "from": ["input", "gate"]},
    ]
    model = net(se, channels=16, size=5)
    reference = SqueezeExcitation(16, 4).eval()
    forward_order_copy(reference, model)
    x = torch.randn(3, 16, 5, 5)
    torch.testing.assert_close(model(x), reference(x), rtol=0, atol=1e-6)


def test_a_csp_split_in_yaml():
    # CSP: split the channels, run one half through a block, concatenate with the other half
    csp = [
        {"type": "Slice", "groups": 2, "group": 0, "from": "input", "id": "part1"},
        {"type": "Slice", "groups": 2, "group": 1, "from": "input"},
        {"type": "ConvBnLeaky", "filters": 4, "size": 3, "id": "part2"},
        {"type": "Route", "from": ["part1", "part2"]},
    ]
    model = net(csp, channels=8)
    x = torch.randn(2, 8, 6, 6)
    conv = model.layers["part2"]
    expected = torch.cat([x[:, :4], conv.act(conv.bn(conv.conv(x[:, 4:])))], 1)
    torch.testing.assert_close(model(x), expected)
    assert model.plan.output_shapes == [(8, 6, 6)]


def test_max_pool_pads_per_side_like_torch():
    model = net([{"type": "MaxPool", "size": 3, "stride": 2, "pad": 1}], channels=2, size=7)
    x = torch.randn(2, 2, 7, 7)
    assert torch.equal(model(x), F.max_pool2d(x, 3, 2, 1))


def test_the_old_max_pool_padding_is_refused_with_its_rewrite():
    with pytest.raises(
        darkforge.SpecError, match=r"`padding` \(the total per axis\) is now `pad`.*padding: 2 is pad: 1"
    ):
        net([{"type": "MaxPool", "size": 3, "stride": 2, "padding": 2}])
    with pytest.raises(darkforge.SpecError, match=r"padding: 1 is pad: \[0, 1\]"):
        net([{"type": "MaxPool", "size": 2, "stride": 1, "padding": 1}])


def test_an_even_kernel_needs_an_explicit_pad():
    with pytest.raises(darkforge.SpecError, match=r"an even kernel \(4×4\) needs an explicit `pad`"):
        net([{"type": "Conv", "filters": 4, "size": 4, "stride": 4}], size=8)
    assert net(
        [{"type": "Conv", "filters": 4, "size": 4, "stride": 4, "pad": 0}], size=8
    ).plan.output_shapes == [(4, 2, 2)]
