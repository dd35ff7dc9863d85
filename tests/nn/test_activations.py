"""One activation table: standard names, Darknet's as aliases of the same function, plain
BatchNorm and Activation layers with torch's defaults, channel shuffle."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import darkforge
from darkforge.nn.activations import ACTIVATIONS, activation
from darkforge.spec.activations import ALIASES, DARKNET, FUNCTIONS, NAMES, canonical

X = torch.linspace(-8, 8, 1001)
TORCH = {
    "linear": lambda x: x,
    "relu": F.relu,
    "relu6": F.relu6,
    "leaky": lambda x: F.leaky_relu(x, 0.01),
    "elu": F.elu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "silu": F.silu,
    "mish": F.mish,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid,
    "hardtanh": F.hardtanh,
    "ramp": lambda x: F.relu(x) + 0.1 * x,
}


@pytest.mark.parametrize("name", NAMES)
def test_every_name_computes_its_function(name):
    reference = TORCH[canonical(name)]
    torch.testing.assert_close(activation(name)(X.clone()), reference(X), rtol=0, atol=0)
    torch.testing.assert_close(ACTIVATIONS[name](0.01)(X.clone()), reference(X), rtol=0, atol=0)


def test_gelu_is_one_function_and_darknets_gelu_is_the_tanh_form():
    exact, tanh = activation("gelu")(X), activation("gelu_tanh")(X)
    assert 4e-4 < (exact - tanh).abs().max() < 1e-3  # two functions, two names
    # Darknet's activations.c: 0.5x(1 + tanh(0.797885x + 0.035677x³)) is gelu_tanh
    darknet = 0.5 * X * (1 + torch.tanh(0.797885 * X + 0.035677 * X**3))
    torch.testing.assert_close(activation(DARKNET["gelu"])(X), darknet, rtol=0, atol=2e-6)
    assert set(DARKNET.values()) <= set(FUNCTIONS) and set(ALIASES.values()) <= set(FUNCTIONS)


LAYERS = """\
name: plain
input: {channels: 8, size: 6}
layers:
  - {type: BatchNorm}
  - {type: Activation, activation: leaky}
  - {type: ChannelShuffle, groups: 2, id: shuffled}
  - {type: Activation, activation: hardswish, from: 0}
  - {type: Route, from: [shuffled, -1]}
"""


def test_batchnorm_activation_and_shuffle_layers_with_torchs_defaults(write):
    model = darkforge.build(write("plain.yaml", LAYERS)).eval()
    assert model.plan.params == 16
    bn = model.layers["0"].bn
    assert isinstance(bn, torch.nn.BatchNorm2d) and (bn.momentum, bn.eps) == (0.1, 1e-5)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        y = bn(x)
        shuffled = torch.nn.ChannelShuffle(2)(F.leaky_relu(y, 0.01))  # torch's slope, not Darknet's
        expected = torch.cat([shuffled, F.hardswish(y)], 1)
        torch.testing.assert_close(model(x), expected, rtol=0, atol=0)
    # channel 1 of the shuffle is input channel 4: (2 groups of 4) read as 4 × 2
    assert torch.equal(shuffled[:, 1], F.leaky_relu(y, 0.01)[:, 4])


PRIMITIVES = """\
name: prims
input: {channels: 4, size: 11}
layers:
  - {type: Conv, filters: 6, size: 3, dilation: 2, id: atrous}
  - {type: MaxPool, size: 3, stride: 2, ceil_mode: true, id: mp}
  - {type: AvgPool, size: 2, stride: 2, ceil_mode: true, count_include_pad: false}
  - {type: Upsample, stride: 2, mode: bilinear, align_corners: true, id: up}
  - {type: Upsample, from: mp, stride: 2, mode: bilinear}
  - {type: Upsample, from: mp, stride: 2}
"""


def test_dilation_ceil_mode_and_upsample_modes_as_torch(write):
    model = darkforge.build(write("prims.yaml", PRIMITIVES)).eval()
    p = model.plan
    # 11 at dilation 2 pads 2 and keeps 11; ceil 3/2 pools give 5 and 3 (floor: 5, 2)
    assert [info.output for info in p.layers] == [
        (6, 11, 11),
        (6, 5, 5),
        (6, 3, 3),
        (6, 6, 6),
        (6, 10, 10),
        (6, 10, 10),
    ]
    conv = model.layers["atrous"].conv
    assert (conv.dilation, conv.padding) == ((2, 2), (2, 2))
    x = torch.randn(2, 4, 11, 11)
    with torch.no_grad():
        a = F.conv2d(x, conv.weight, conv.bias, padding=2, dilation=2)
        m = F.max_pool2d(a, 3, 2, ceil_mode=True)
        v = F.avg_pool2d(m, 2, 2, ceil_mode=True, count_include_pad=False)
        up = F.interpolate(v, scale_factor=2, mode="bilinear", align_corners=True)
        torch.testing.assert_close(model.layers["up"](v), up, rtol=0, atol=0)
        torch.testing.assert_close(model(x), F.interpolate(m, scale_factor=2), rtol=0, atol=0)
        bilinear = model.layers["4"](m)
        torch.testing.assert_close(
            bilinear, F.interpolate(m, scale_factor=2, mode="bilinear"), rtol=0, atol=0
        )
        assert not torch.equal(bilinear, F.interpolate(m, scale_factor=2))


def test_align_corners_without_bilinear_is_refused(write, run_cli):
    bad = PRIMITIVES.replace("stride: 2}\n", "stride: 2, align_corners: false}\n")
    result = run_cli("validate", write("bad.yaml", bad))
    assert result.exit_code == 1 and "align_corners is for mode: bilinear" in result.output
    assert "bad.yaml:9:5: layers[5]" in result.output  # the last layer, the only nearest one
