"""The core channel layers written as the fork's sections compute the same network."""

from __future__ import annotations

import pytest
import torch
from conftest import ARCHS

import darkforge
from darkforge.darknet.read import convert_cfg
from darkforge.darknet.write import to_cfg
from darkforge.errors import SpecError
from darkforge.nn.network import forward_order_copy

SE = """
name: se
input: {channels: 3, size: 16}
classes: 4
layers:
  - {type: ConvBnLeaky, filters: 16, id: x}
  - {type: GlobalAvgPool}
  - {type: Conv, filters: 4, size: 1, activation: relu}
  - {type: Conv, filters: 16, size: 1, activation: logistic}
  - {type: Mul, from: [x, -1]}
  - {type: Slice, groups: 2, group: 1}
  - {type: GlobalAvgPool}
  - {type: Conv, filters: 4, size: 1}
"""


def roundtrip(spec, tmp_path, size: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    text, _ = to_cfg(spec)
    (tmp_path / "n.cfg").write_text(text)
    ours = darkforge.build(spec, input_size=size).eval()
    theirs = darkforge.build(convert_cfg(tmp_path / "n.cfg").spec, input_size=size).eval()
    forward_order_copy(ours, theirs)
    return ours, theirs


def test_squeeze_excitation_and_a_group_slice_as_fork_sections(write, tmp_path):
    spec = darkforge.load_spec(write("se.yaml", SE))
    assert "[scale_channels]\nfrom=0" in to_cfg(spec)[0] and "groups=2\ngroup_id=1" in to_cfg(spec)[0]
    ours, theirs = roundtrip(spec, tmp_path, 16)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(ours(x).flatten(1), theirs(x).flatten(1))


def test_cspdarknet53_as_a_cfg(tmp_path):
    spec = darkforge.load_spec(ARCHS / "cspdarknet53.yaml")
    ours, theirs = roundtrip(spec, tmp_path, 64)
    assert darkforge.plan(theirs.spec).params == 27_642_184 or sum(
        p.numel() for p in theirs.parameters()
    ) == sum(p.numel() for p in ours.parameters())
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(ours(x).flatten(1), theirs(x).flatten(1), rtol=1e-4, atol=1e-4)


def test_a_channel_range_has_no_darknet_spelling(write):
    text = SE.replace("{type: Slice, groups: 2, group: 1}", "{type: Slice, start: 0, end: 8}")
    with pytest.raises(SpecError, match="slices a channel range; Darknet's \\[route\\] slices equal groups"):
        to_cfg(darkforge.load_spec(write("r.yaml", text)))


def test_what_darknet_cannot_say_is_refused_never_dropped(write):
    """The dialect's newer primitives never vanish on the way to a cfg: a dilated conv (the
    fork's dilation pads (size - 1)/2 whatever the dilation), a ceil-mode pool and a bilinear
    upsample have no exact Darknet spelling."""
    head = (
        "name: d\ninput: {channels: 3, size: 16}\nclasses: 4\nlayers:\n  - {type: ConvBnLeaky, filters: 8}\n"
    )
    for layer, words in (
        (
            "{type: ConvBnLeaky, filters: 8, size: 3, dilation: 2, pad: 2}",
            "dilation has no exact Darknet spelling",
        ),
        ("{type: MaxPool, size: 2, stride: 2, ceil_mode: true}", "ceil_mode has no Darknet spelling"),
        ("{type: Upsample, stride: 2, mode: bilinear}", "mode bilinear has no Darknet spelling"),
    ):
        spec = darkforge.load_spec(write("x.yaml", head + f"  - {layer}\n"))
        with pytest.raises(SpecError, match=words):
            to_cfg(spec)
