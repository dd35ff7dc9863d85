"""The Attention layer (YOLO11's position self-attention) against plain torch written from the
paper's formulas; its counted parameters against the module's; and C2PSA written as a dialect block
against the built-in C2PSA, parameter for parameter and output for output."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import darkforge
from darkforge.spec.base import Scale
from darkforge.spec.layers import Attention
from darkforge.spec.load import spec_from_text
from darkforge.spec.shapes import plan

YOLO_CONV = "size: 1, bias: false, bn: {momentum: 0.03, eps: 0.001}"


def one_layer(layer: str, channels: int, size: int = 8) -> str:
    return f"name: t\ninput: {{channels: {channels}, size: {size}}}\nlayers:\n  - {layer}\n"


def randomize(model: nn.Module) -> nn.Module:
    """Random weights and batch-norm statistics, so no branch is near an identity; eval mode."""
    torch.manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
            elif isinstance(m, nn.Conv2d):
                m.weight.normal_(0, 0.1)
    return model.eval()


@pytest.mark.parametrize(
    "channels, heads, key_ratio, params",
    [
        (64, 1, 0.5, 13_376),  # qkv 64->128: 8,448; proj 4,224; pe (3×3 depthwise) 704
        (128, 2, 0.5, 51_328),
        (256, None, 0.5, 200_960),  # default heads: 256 // 64 = 4
        (64, 2, 1.0, 17_600),  # key = head width 32: qkv 64->192
    ],
)
def test_counted_parameters_equal_the_module_s(channels, heads, key_ratio, params):
    layer = f"{{type: Attention, heads: {'null' if heads is None else heads}, key_ratio: {key_ratio}}}"
    spec = spec_from_text(one_layer(layer, channels), "t.yaml")
    net = darkforge.build(spec)
    assert plan(spec).params == sum(p.numel() for p in net.parameters()) == params
    assert plan(spec).output_shapes == [(channels, 8, 8)]
    assert net(torch.randn(2, channels, 8, 8)).shape == (2, channels, 8, 8)


def test_macs_are_the_convs_and_the_two_products_as_torch_counts_them_and_width_scales_leave_it_alone():
    from torch.utils.flop_counter import FlopCounterMode

    spec = spec_from_text(one_layer("{type: Attention}", 64), "t.yaml")
    convs = (64 * 128 + 64 * 64 + 64 * 9) * 8 * 8  # qkv, proj, the depthwise pe over 8×8
    products = 1 * 64 * 64 * (32 + 64)  # one head, N = 64 positions, key 32 + head 64
    assert plan(spec).macs == convs + products == 1_216_512
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        darkforge.build(spec).eval()(torch.randn(1, 64, 8, 8))
    assert counter.get_total_flops() == 2 * plan(spec).macs
    layer = spec.layers[0]
    assert isinstance(layer, Attention)
    assert layer.scaled(Scale(width=0.5)) is layer  # its channels come from its input


def test_heads_that_do_not_divide_the_channels_are_one_located_line():
    text = one_layer("{type: Conv, filters: 48, size: 1}", 3) + "  - {type: Attention, heads: 5}\n"
    with pytest.raises(darkforge.SpecError) as error:
        darkforge.build(spec_from_text(text, "t.yaml"))
    message = str(error.value)
    assert "\n" not in message and "t.yaml:5" in message, message
    assert "5 heads do not divide the 48 channels" in message, message


def _bn(x: Tensor, bn: nn.BatchNorm2d) -> Tensor:
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def reference(m: nn.Module, x: Tensor, heads: int, key: int) -> Tensor:
    """The paper's formulas in plain torch, reading the module's weights only."""
    b, c, h, w = x.shape
    n, head = h * w, c // heads
    qkv = _bn(F.conv2d(x, m.qkv.conv.weight), m.qkv.bn).view(b, heads, 2 * key + head, n)
    q, k, v = qkv[:, :, :key], qkv[:, :, key : 2 * key], qkv[:, :, 2 * key :]
    attn = torch.softmax((q.transpose(-2, -1) @ k) * key**-0.5, dim=-1)  # (B, heads, N, N)
    v_map = v.reshape(b, c, h, w)
    pe = _bn(F.conv2d(v_map, m.pe.conv.weight, padding=1, groups=c), m.pe.bn)
    y = (v @ attn.transpose(-2, -1)).view(b, c, h, w) + pe
    return _bn(F.conv2d(y, m.proj.conv.weight), m.proj.bn)


@pytest.mark.parametrize("channels, heads, key", [(64, 1, 32), (128, 2, 32)])
def test_the_module_is_the_paper_s_formulas_bit_for_bit(channels, heads, key):
    net = darkforge.build(
        spec_from_text(one_layer(f"{{type: Attention, heads: {heads}}}", channels), "t.yaml")
    )
    attention = randomize(net).layers["0"]
    assert [name for name, _ in attention.named_children()] == ["qkv", "proj", "pe"]
    x = torch.randn(2, channels, 6, 5)
    with torch.no_grad():
        assert torch.equal(attention(x), reference(attention, x, heads, key))


C2PSA_BLOCK = f"""\
name: psa
input: {{channels: 128, size: 8}}
blocks:
  PSABlock:                 # x + attn(x), then + ffn (1×1 to 2c with SiLU, 1×1 back without)
    layers:
      - {{type: Attention, id: attn}}
      - {{type: Shortcut, from: [input, attn], id: mixed}}
      - {{type: Conv, filters: "${{2 * in_channels}}", {YOLO_CONV}, activation: silu, id: ffn0}}
      - {{type: Conv, filters: $in_channels, {YOLO_CONV}, activation: linear, id: ffn1}}
      - {{type: Shortcut, from: [mixed, ffn1]}}
  MyC2PSA:                  # cv1 to 2c, the PSA blocks on the second half, cv2 over both halves
    params: {{filters: int, blocks: int}}
    layers:
      - {{type: Conv, filters: "${{2 * (filters // 2)}}", {YOLO_CONV}, activation: silu, id: cv1}}
      - {{type: Slice, groups: 2, group: 0, id: a}}
      - {{type: Slice, from: cv1, groups: 2, group: 1}}
      - {{type: PSABlock, repeat: $blocks, id: m}}
      - {{type: Route, from: [a, m]}}
      - {{type: Conv, filters: $filters, {YOLO_CONV}, activation: silu, id: cv2}}
layers:
  - {{type: MyC2PSA, filters: 128, blocks: 2, id: psa}}
"""
BUILT_IN = "name: psa\ninput: {channels: 128, size: 8}\nlayers:\n  - {type: C2PSA, filters: 128, blocks: 2, id: psa}\n"


def ultralytics_name(name: str) -> str:
    return name.replace(".ffn0.", ".ffn.0.").replace(".ffn1.", ".ffn.1.")  # ids cannot hold a dot


def test_c2psa_written_as_a_block_is_the_built_in_c2psa():
    mine, builtin = spec_from_text(C2PSA_BLOCK, "psa.yaml"), spec_from_text(BUILT_IN, "c2psa.yaml")
    # hidden 64: cv1 and cv2 16,640 each; per PSA block attention 13,376 + ffn 8,448 + 8,320
    assert plan(mine).params == plan(builtin).params == 2 * 16_640 + 2 * (13_376 + 8_448 + 8_320) == 93_568
    mine_net, builtin_net = darkforge.build(mine), randomize(darkforge.build(builtin))
    weights = builtin_net.state_dict()
    names = {name: ultralytics_name(name) for name in mine_net.state_dict()}
    assert sorted(names.values()) == sorted(weights)  # layers.psa.cv1…, layers.psa.m.0.attn.qkv…
    mine_net.load_state_dict({name: weights[theirs] for name, theirs in names.items()})
    x = torch.randn(2, 128, 8, 8)
    with torch.no_grad():
        assert torch.equal(mine_net.eval()(x), builtin_net(x))
