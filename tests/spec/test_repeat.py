"""`repeat:` with a copy index, `repeat: 0`, and null and mapping block parameters."""

from __future__ import annotations

import torch

import darkforge

DEPTH = """\
name: depth
input: {channels: 4, size: 4}
blocks:
  Res:                               # per-block stochastic depth: copy k of n drops k/n of `drop`
    params: {drop: float}
    layers:
      - {type: Conv, filters: 4, size: 3, bn: {momentum: 0.01}}
      - {type: DropPath, p: "${drop * copy / copies}"}
      - {type: Shortcut, from: [-1, input]}
layers:
  - {type: Res, drop: 0.4, repeat: 4}
  - {type: Conv, filters: 4, size: 1, repeat: 0}
  - {type: Res, drop: 0.2}
"""


def test_each_copy_sees_its_index(write):
    model = darkforge.build(write("d.yaml", DEPTH))
    drops = [m.p for m in model.modules() if type(m).__name__ == "DropPath"]
    assert drops == [0.0, 0.1, 0.2, 0.30000000000000004, 0.0]  # copies 0..3 of 4, then copy 0 of 1
    p = model.plan
    assert [info.cost.params for info in p.layers] == [4 * (4 * 4 * 9 + 8), 0, 4 * 4 * 9 + 8]
    assert p.layers[1].output == (4, 4, 4) and p.layers[1].cost.produced == 0


def test_repeat_0_passes_its_input(write, run_cli):
    model = darkforge.build(write("d.yaml", DEPTH)).eval()
    x = torch.randn(1, 4, 4, 4)
    with torch.no_grad():
        assert torch.equal(model.layers["1"](x), x)
    assert run_cli("summary", write("e.yaml", DEPTH)).exit_code == 0
    result = run_cli("draw", write("f.yaml", DEPTH), "--format", "dot", "-o", "-")
    assert result.exit_code == 0 and "Conv ×0" in result.output


PARAMS = """\
name: params
input: {channels: 4, size: 8}
blocks:
  Norm:
    params: {bn: mapping, pad: {type: int, default: null}}
    layers:
      - {type: Conv, filters: 8, size: 3, bn: $bn, pad: $pad}
layers:
  - {type: Norm, bn: {eps: 0.001, momentum: 0.01}}
  - {type: Norm, bn: {eps: 0.1}, pad: 0}
"""


def test_mapping_and_null_parameters(write):
    model = darkforge.build(write("p.yaml", PARAMS))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert [(m.eps, m.momentum) for m in norms] == [(0.001, 0.01), (0.1, 0.1)]
    assert [info.output for info in model.plan.layers] == [(8, 8, 8), (8, 6, 6)]  # pad: null -> size // 2
