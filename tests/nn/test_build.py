"""The compiler against trusted references: a hand-written module, torch's FLOP counter."""

from __future__ import annotations

import json
from typing import Literal

import pytest
import torch
from conftest import ARCHS
from reference import Darknet53
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import darkforge
from darkforge.nn.network import forward_order_copy
from darkforge.spec import registry
from darkforge.spec.base import LayerCost, LayerSpec
from darkforge.spec.registry import network_model


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def randomize_bn(model: nn.Module) -> None:
    """Non-trivial running statistics, so eval-mode comparisons test batch norm too."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def test_darknet53_builds_with_the_design_numbers():
    model = darkforge.build(ARCHS / "darknet53.yaml")
    assert params(model) == 40_595_178
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)  # flatten, not squeeze


def test_module_names_describe_the_structure():
    names = dict(darkforge.build(ARCHS / "darknet53.yaml").named_modules())
    for name in (
        "layers.stem.conv",
        "layers.stage1.down.bn",
        "layers.c3.blocks.7.conv2.act",
        "layers.fc",
    ):
        assert name in names
    assert (
        isinstance(names["layers.stem.act"], nn.LeakyReLU) and names["layers.stem.act"].negative_slope == 0.1
    )
    assert names["layers.stem.conv"].bias is None  # Darknet: no bias before batch norm


def test_staged_and_flat_spellings_are_the_same_network():
    torch.manual_seed(0)
    staged = darkforge.build(ARCHS / "darknet53.yaml", scale="nano")
    flat_spec = darkforge.load_spec(ARCHS / "darknet53-flat.yaml")
    full_staged = darkforge.build(ARCHS / "darknet53.yaml")
    full_flat = darkforge.build(flat_spec)
    assert params(full_staged) == params(full_flat) == 40_595_178
    randomize_bn(full_staged)
    forward_order_copy(full_staged, full_flat)
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(full_flat.eval()(x), full_staged.eval()(x), rtol=0, atol=0)
    assert staged(x).shape == (4, 10)


def test_bias_variant_equals_the_hand_written_reference():
    spec = darkforge.load_spec(ARCHS / "darknet53.yaml")
    with_bias = spec.model_copy(
        update={
            "layers": [x.model_copy(update={"bias": True}) if hasattr(x, "bias") else x for x in spec.layers]
        }
    )
    model = darkforge.build(with_bias)
    reference = Darknet53(bias=True)
    assert params(model) == params(reference) == 40_613_034
    randomize_bn(reference)
    forward_order_copy(reference, model)
    x = torch.randn(3, 3, 32, 32)
    diff = (model.eval()(x) - reference.eval()(x)).abs().max().item()
    assert diff <= 1e-5


@pytest.mark.parametrize("arch", sorted(p.name for p in ARCHS.glob("*.yaml")))
def test_static_costs_agree_with_torch(arch):
    model = darkforge.build(ARCHS / arch).eval()
    p = model.plan
    assert p.params == params(model)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, *p.input))
    assert counter.get_total_flops() == 2 * p.macs


def test_multi_output_returns_a_tuple_in_outputs_order():
    model = darkforge.build(ARCHS / "yolo-mini.yaml")
    out = model(torch.randn(2, 3, 64, 64))
    assert isinstance(out, tuple) and [o.shape for o in out] == [(2, 27, 8, 8), (2, 27, 16, 16)]
    model = darkforge.build(ARCHS / "yolo-mini.yaml", input_size=128, classes=4)
    assert [o.shape[-1] for o in model(torch.randn(1, 3, 128, 128))] == [16, 32]


def test_classes_override_resizes_the_head():
    model = darkforge.build(ARCHS / "darknet53.yaml", scale="nano", classes=100)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


class ScaledSpec(LayerSpec):
    """A user's own layer type: multiplies its input by `factor`."""

    type: Literal["Scaled"] = "Scaled"
    factor: float = 2.0

    def infer(self, inputs):
        return LayerCost(inputs[0].shape)


@darkforge.register(ScaledSpec)
class Scaled(nn.Module):
    def __init__(self, spec: ScaledSpec, inputs) -> None:
        super().__init__()
        self.factor = spec.factor

    def forward(self, x):
        return x * self.factor


def test_plugin_layer_registers_without_editing_darkforge(tmp_path):
    arch = tmp_path / "plugin.yaml"
    arch.write_text(
        "name: p\ninput: {size: 8}\nlayers:\n  - {type: ConvBnLeaky, filters: 4}\n  - {type: Scaled, factor: 3}\n"
    )
    model = darkforge.build(arch).eval()
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(model(x), 3 * model.layers["0"](x))
    assert "Scaled" in json.dumps(network_model().model_json_schema())


def test_plugin_module_must_be_named_like_its_tag():
    class Other(LayerSpec):
        type: Literal["Other"] = "Other"

    with pytest.raises(ValueError, match="named like its type tag"):
        darkforge.register(Other)(type("Wrong", (nn.Module,), {}))


def test_registry_names_equal_the_spec_union_tags():
    union = network_model().model_fields["layers"].annotation.__args__[0].__origin__
    tags = {cls.model_fields["type"].default for cls in union.__args__}
    assert tags == set(registry.names())
    for name in registry.names():
        assert registry.get(name).module_class().__name__ == name
