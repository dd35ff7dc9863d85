"""The Detect head: its decode against a hand computation, the train/eval contract, the bias
prior and the fixed DFL; Classify's eval softmax."""

from __future__ import annotations

import math

import pytest
import torch

import darkforge
from darkforge.errors import SpecError
from darkforge.spec.load import spec_from_text
from darkforge.spec.shapes import plan

ONE_LEVEL = """\
name: tiny-detect
input: {size: 16}
classes: 2
layers:
  - {type: Conv, filters: 8, size: 3, stride: 8, pad: 1, bn: true, activation: silu}
  - {type: Detect, reg_max: 4}
"""


def _net() -> torch.nn.Module:
    return darkforge.build(spec_from_text(ONE_LEVEL, "tiny.yaml"))


def test_decode_equals_a_hand_computation() -> None:
    head = _net().layers["1"].eval()
    raw = torch.zeros(1, 4 * 4 + 2, 2, 2)  # one 2×2 level, stride 16 / 2 = 8
    for side, bin_ in enumerate((1, 2, 3, 0)):  # l, t, r, b: a sharp peak = that many strides
        raw[0, side * 4 + bin_] = 60.0
    raw[0, 17] = math.log(3.0)  # class 1 logit: sigmoid 0.75; class 0 logit 0: 0.5
    decoded = head.decode([raw])
    assert decoded.shape == (1, 6, 4)
    # anchor 1 is cell (x=1, y=0): centre (1.5, 0.5) strides; box from x 1.5−1 to 1.5+3, y 0.5−2 to 0.5+0
    x1, x2, y1, y2 = 0.5, 4.5, -1.5, 0.5
    want = torch.tensor([(x1 + x2) / 2 * 8, (y1 + y2) / 2 * 8, (x2 - x1) * 8, (y2 - y1) * 8, 0.5, 0.75])
    torch.testing.assert_close(decoded[0, :, 1], want, atol=1e-4, rtol=0)
    # every anchor: the same box around its own cell centre (offset (3 − 1)/2, (0 − 2)/2 strides), row-major
    centres = torch.tensor([[0.5, 0.5], [1.5, 0.5], [0.5, 1.5], [1.5, 1.5]]) * 8
    torch.testing.assert_close(
        decoded[0, 0:2].T - centres, torch.tensor([[8.0, -8.0]]).expand(4, 2), atol=1e-4, rtol=0
    )


def test_training_returns_raw_maps_eval_decoded_and_raw() -> None:
    net = _net()
    x = torch.rand(3, 3, 16, 16)
    maps = net.train()(x)
    assert isinstance(maps, list) and len(maps) == 1 and maps[0].shape == (3, 18, 2, 2)
    with torch.no_grad():
        decoded, raw = net.eval()(x)
    assert decoded.shape == (3, 6, 4) and raw[0].shape == (3, 18, 2, 2)
    assert plan(spec_from_text(ONE_LEVEL, "t.yaml").resolved()).output_shapes == [(6, 4)]


def test_bias_prior_and_fixed_dfl() -> None:
    head = _net().layers["1"]
    assert head.stride.tolist() == [8.0]
    assert torch.all(head.cv2[0][-1].bias == 1.0)
    # about 5 objects per 16×16 image over (16 / 8)² cells and 2 classes
    torch.testing.assert_close(head.cv3[0][-1].bias, torch.full((2,), math.log(5 / 2 / (16 / 8) ** 2)))
    assert not head.dfl.conv.weight.requires_grad
    assert head.dfl.conv.weight.flatten().tolist() == [0.0, 1.0, 2.0, 3.0]
    names = [name for name, p in _net().named_parameters() if not p.requires_grad]
    assert names == ["layers.1.dfl.conv.weight"]


def test_input_that_is_no_multiple_of_the_levels_is_refused() -> None:
    text = ONE_LEVEL.replace("size: 16}", "size: 20}")
    with pytest.raises(SpecError, match=r"layers\[1\] \(Detect\): the input 3×20×20 is no multiple"):
        darkforge.build(spec_from_text(text, "t.yaml"))


def test_classify_with_softmax_returns_logits_in_training_and_probabilities_in_eval() -> None:
    text = "name: c\ninput: {size: 8}\nclasses: 3\nlayers:\n  - {type: Classify, hidden: 16, softmax: true}\n"
    net = darkforge.build(spec_from_text(text, "c.yaml"))
    x = torch.rand(2, 3, 8, 8)
    logits = net.train()(x)
    with torch.no_grad():
        probs = net.eval()(x)
    torch.testing.assert_close(probs.sum(1), torch.ones(2))
    assert not torch.allclose(logits.sum(1), torch.ones(2))


def test_the_eval_head_exports_with_torch_export() -> None:
    net = _net().eval()
    x = torch.rand(1, 3, 16, 16)
    program = torch.export.export(net, (x,))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x)[0], net(x)[0])
