"""The module of a collected repeat (`collect: true`), and YOLOv8's C2f written with it as a
dialect block: the same parameters, the same state_dict names and the same output, bit for bit,
as darkforge's built-in C2f (darkforge/nn/csp.py, whose names are Ultralytics')."""

from __future__ import annotations

import pytest
import torch

import darkforge
from darkforge.nn.graph import Collected
from darkforge.spec.load import load_spec

CONVS = """\
name: t
input: {channels: 4, size: 8}
layers:
  - {type: Conv, filters: 4, size: 3, repeat: 3, collect: true, id: m}
  - {type: Conv, filters: 5, size: 3, collect: true, id: one}
"""

BN = "bias: false, bn: {momentum: 0.03, eps: 0.001}, activation: silu"
C2F = f"""\
name: c2f
input: {{channels: 16, size: 8}}
blocks:
  Bottleneck:   # Ultralytics' Bottleneck with e=1.0, as C2f uses it
    params: {{filters: {{type: int, scale: width}}, shortcut: {{type: bool, default: true}}}}
    layers:
      - {{type: Conv, filters: $filters, size: 3, {BN}, id: cv1}}
      - {{type: Conv, filters: $filters, size: 3, {BN}, id: cv2}}
      - {{type: Shortcut, from: [-1, input], when: "${{shortcut and in_channels == filters}}", when_removed: -1}}
  C2fB:
    params:
      filters: {{type: int, scale: width}}
      blocks: {{type: int, default: 1, scale: depth}}
      shortcut: {{type: bool, default: false}}
      expansion: {{type: float, default: 0.5}}
    layers:
      - {{type: Conv, filters: "${{2 * int(filters * expansion)}}", size: 1, {BN}, id: cv1}}
      - {{type: Slice, groups: 2, group: 1}}
      - {{type: Bottleneck, filters: "${{int(filters * expansion)}}", shortcut: $shortcut, repeat: $blocks,
         collect: true, id: m}}
      - {{type: Route, from: [cv1, m]}}
      - {{type: Conv, filters: $filters, size: 1, {BN}, id: cv2}}
layers:
  - {{type: C2fB, filters: FILTERS, blocks: BLOCKS, shortcut: SHORTCUT, id: dialect}}
  - {{type: C2f, filters: FILTERS, blocks: BLOCKS, shortcut: SHORTCUT, from: input, id: builtin}}
outputs: [dialect, builtin]
"""


def test_copies_keep_their_names_and_their_outputs_are_concatenated(write):
    model = darkforge.build(write("t.yaml", CONVS)).eval()
    m = model.layers["m"]
    assert type(m) is Collected and [name for name, _ in m.named_children()] == ["0", "1", "2"]
    assert {"layers.m.0.conv.weight", "layers.m.2.conv.bias", "layers.one.0.conv.weight"} <= set(
        model.state_dict()
    )
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        y0 = m[0](x)
        y1 = m[1](y0)
        expected = torch.cat([y0, y1, m[2](y1)], 1)
        assert torch.equal(m(x), expected) and m(x).shape == (2, 12, 8, 8)
        one = model.layers["one"]  # one copy: still a Collected (keys `one.0.…`), its output as is
        assert type(one) is Collected and len(one) == 1 and torch.equal(one(expected), one[0](expected))


@pytest.mark.parametrize("filters", [32, 64])
@pytest.mark.parametrize("blocks", [1, 2, 3])
@pytest.mark.parametrize("shortcut", [True, False])
def test_c2f_as_a_dialect_block_is_the_builtin_c2f(write, filters, blocks, shortcut):
    text = C2F.replace("FILTERS", str(filters)).replace("BLOCKS", str(blocks))
    spec = load_spec(write("c2f.yaml", text.replace("SHORTCUT", str(shortcut).lower())))
    torch.manual_seed(0)
    model = darkforge.build(spec).eval()
    dialect, builtin = model.layers["dialect"], model.layers["builtin"]
    p = model.plan
    assert p.layers[0].cost.params == p.layers[1].cost.params
    assert sum(t.numel() for t in dialect.parameters()) == sum(t.numel() for t in builtin.parameters())
    names = builtin.state_dict().keys()
    assert set(dialect.state_dict()) == set(names)  # the same names; registered in another order
    assert {"cv1.conv.weight", f"m.{blocks - 1}.cv1.conv.weight", "cv2.bn.running_mean"} <= set(names)
    for module in builtin.modules():  # batch norm statistics that are not the identity
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.running_mean, -1, 1)
            torch.nn.init.uniform_(module.running_var, 0.5, 2)
            torch.nn.init.uniform_(module.weight, 0.5, 2)
    dialect.load_state_dict(builtin.state_dict())
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        ours, theirs = model(x)
    assert ours.shape == (2, filters, 8, 8) and torch.equal(ours, theirs)
