"""Scales inside blocks: one rule (docs/architecture.md), so a scaled file builds the network it
would be written out at that width; every shipped scale checked against a count by hand."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import ARCHS

import darkforge
from darkforge.nn.network import forward_order_copy


def test_resnet18_at_half_width_is_resnet18_written_at_half_width(write):
    text = (ARCHS / "resnet18.yaml").read_text()
    halved = re.sub(r"filters: (\d+)", lambda m: f"filters: {int(m.group(1)) // 2}", text.split("scales:")[0])
    scaled = darkforge.build(ARCHS / "resnet18.yaml", scale="half", input_size=64).eval()
    written = darkforge.build(write("half.yaml", halved), input_size=64).eval()
    shapes = {k: tuple(v.shape) for k, v in scaled.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in written.state_dict().items()}
    layer1 = scaled.plan.layers[2]
    assert (layer1.spec.id, layer1.cost.params) == ("layer1", 37_120)  # no projection: 39,296 with one
    assert scaled.plan.params == written.plan.params == sum(p.numel() for p in written.parameters())
    forward_order_copy(written, scaled)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(scaled(x), written(x), rtol=0, atol=0)


def conv(cin: int, cout: int, k: int = 3, bn: bool = True) -> int:
    """A conv's parameters: weights, then batch norm's scale and shift, or a bias."""
    return cin * cout * k * k + (2 * cout if bn else cout)


def darknet53(widths: list[int], blocks: list[int], classes: int = 10) -> int:
    """Darknet-53 by hand: a stem conv, then per stage a 3×3/2 and blocks of 1×1 to half, 3×3 back."""
    total, c = conv(3, widths[0]), widths[0]
    for f, n in zip(widths[1:], blocks, strict=True):
        total += conv(c, f) + n * (conv(f, f // 2, 1) + conv(f // 2, f))
        c = f
    return total + c * classes + classes


def yolo_mini(w: list[int]) -> int:
    stem, s1, s2, s3, lateral, neck = w
    total = conv(3, stem)
    c = stem
    for f in (s1, s2, s3):
        total += conv(c, f) + conv(f, f // 2, 1) + conv(f // 2, f)
        c = f
    total += conv(s3, lateral, 1) + conv(lateral, 27, 1, bn=False)  # head5: 27 fixed
    total += conv(lateral + s2, neck) + conv(neck, 27, 1, bn=False)  # upsampled ⊕ p4, head4
    return total


def resnet18(widths: list[int], classes: int = 1000) -> int:
    total, c = conv(3, widths[0], 7), widths[0]
    for k, f in enumerate(widths):
        for block in range(2):
            project = c != f or (k > 0 and block == 0)
            total += conv(c, f) + conv(f, f) + (conv(c, f, 1) if project else 0)
            c = f
    return total + c * classes + classes


def darknet53_det(widths: list[int], blocks: list[int], nc: int = 10) -> int:
    """darknet53's backbone, the neck of archs/darknet53-det.yaml, and the Detect head (per level
    a box branch 3x3, 3x3, 1x1 to 64 DFL bins and a class branch 3x3, 3x3, 1x1 to nc)."""
    w = widths
    total = darknet53(w, blocks) - (w[5] * 10 + 10)  # without the classifier's Linear
    c3, c4, c5 = w[3], w[4], w[5]
    lateral5, top4, mid, out3 = c3, c3, w[2], w[2]  # 256, 256, 128, 128 at full width
    total += conv(c5, lateral5, 1) + conv(lateral5 + c4, top4) + conv(top4, mid, 1) + conv(mid + c3, out3)
    out4, out5 = c3, c4  # 256, 512
    total += conv(out3, out3) + conv(out3 + top4, out4) + conv(out4, out4) + conv(out4 + lateral5, out5)
    box, cls = max(16, out3 // 4, 64), max(out3, min(nc, 100))
    for ch in (out3, out4, out5):
        total += conv(ch, box) + conv(box, box) + 64 * box + 64
        total += conv(ch, cls) + conv(cls, cls) + nc * cls + nc
    return total + 16  # the DFL's fixed 1x16 conv


BY_HAND = {
    ("darknet53-det", None): darknet53_det([32, 64, 128, 256, 512, 1024], [1, 2, 8, 8, 4]),
    ("darknet53-det", "tiny"): darknet53_det([16, 32, 64, 128, 256, 512], [1, 1, 4, 4, 2]),
    ("darknet53-det", "nano"): darknet53_det([8, 8, 16, 32, 64, 128], [1, 1, 3, 3, 1]),
    ("darknet53", None): darknet53([32, 64, 128, 256, 512, 1024], [1, 2, 8, 8, 4]),
    ("darknet53", "tiny"): darknet53([16, 32, 64, 128, 256, 512], [1, 1, 4, 4, 2]),
    ("darknet53", "nano"): darknet53([8, 8, 16, 32, 64, 128], [1, 1, 3, 3, 1]),
    ("yolo-mini", None): yolo_mini([16, 32, 64, 128, 64, 64]),
    ("yolo-mini", "nano"): yolo_mini([8, 16, 32, 64, 32, 32]),
    ("resnet18", None): resnet18([64, 128, 256, 512]),
    ("resnet18", "half"): resnet18([32, 64, 128, 256]),
    ("mobilenet_v2", None): 3_504_872,  # torchvision's mobilenet_v2()
    ("mobilenet_v2", "half"): 1_968_680,  # torchvision's mobilenet_v2(width_mult=0.5)
    # Ultralytics' own counts (its yolov8.yaml/yolo11.yaml summaries; tests/ultralytics/test_library.py)
    **{
        ("yolov8", s): n
        for s, n in zip("nsmlx", (3_157_200, 11_166_560, 25_902_640, 43_691_520, 68_229_648), strict=True)
    },
    **{
        ("yolo11", s): n
        for s, n in zip("nsmlx", (2_624_080, 9_458_752, 20_114_688, 25_372_160, 56_966_176), strict=True)
    },
}


@pytest.mark.parametrize("name", sorted(p.stem for p in ARCHS.glob("*.yaml")))
def test_every_scale_of_every_shipped_arch_builds_to_its_count_by_hand(name):
    spec = darkforge.load_spec(ARCHS / f"{name}.yaml")
    for scale in spec.scales:
        model = darkforge.build(spec, scale=scale, input_size=64)
        assert model.plan.params == sum(p.numel() for p in model.parameters()), scale
        assert (name, scale) in BY_HAND, f"{name} --scale {scale}: add its count by hand"
        assert model.plan.params == BY_HAND[name, scale], scale
    if (name, None) in BY_HAND:
        assert darkforge.plan(spec.resolved()).params == BY_HAND[name, None]


SPPF = """\
name: sppf
input: {channels: 3, size: 16}
blocks:
  Pyramid:                           # YOLOv8's: half the input's channels, three pools, joined
    params: {out: {type: int, scale: width}}
    layers:
      - {type: Conv, filters: "${in_channels // 2}", size: 1, id: cv1}
      - {type: MaxPool, size: 5, stride: 1, pad: 2}
      - {type: MaxPool, size: 5, stride: 1, pad: 2}
      - {type: Route, from: [cv1, -2, -1]}
      - {type: Conv, filters: $out, size: 1}
layers:
  - {type: Conv, filters: 64, size: 3}
  - {type: Pyramid, out: 64}
scales: {half: {width: 0.5}}
"""


def test_a_width_computed_from_in_channels_is_scaled_once(write):
    p = darkforge.plan(darkforge.load_spec(write("sppf.yaml", SPPF)).resolved("half"))
    inner = p.layers[1].spec.instance([p.layers[0].output])
    # the input is 32 wide at half: cv1 has 16 channels (scaled twice it had 8), the block ends at 32
    assert [info.output[0] for info in inner.infos] == [16, 16, 16, 48, 32]


ULTRA = """\
name: u
input: {channels: 3, size: 16}
scale: n
scales:
  n: {width: 0.25, depth: 0.34, max_channels: 256, round: up, set: {Conv: {size: 1}}}
  wide: {width: 1.5}
layers:
  - {type: Conv, filters: 1000}
  - {type: Conv, filters: 100}
  - {type: Conv, filters: 30, repeat: 3}
"""


def test_ultralytics_channel_rule_cap_then_round_up(write):
    spec = darkforge.load_spec(write("u.yaml", ULTRA))
    n = spec.resolved()  # `scale: n` is the default
    # min(1000, 256)·0.25 = 64; 100·0.25 = 25 → 32 (up, not 24); 30·0.25 = 7.5 → 8; round(3·0.34) = 1
    assert [(c.filters, c.size, c.repeat) for c in n.layers] == [(64, 1, 1), (32, 1, 1), (8, 1, 1)]
    assert [c.filters for c in spec.resolved("wide").layers] == [1504, 152, 48]  # nearest, no cap
    assert darkforge.build(spec).plan.params == sum(p.numel() for p in darkforge.build(spec).parameters())


def test_scale_set_names_a_type_the_layers_use(write):
    text = ULTRA.replace("set: {Conv: {size: 1}}", "set: {C3k2: {c3k: true}}")
    with pytest.raises(darkforge.SpecError, match="scale 'n' sets fields of C3k2, but no layer is a C3k2"):
        darkforge.load_spec(write("u.yaml", text)).resolved()
    text = ULTRA.replace("set: {Conv: {size: 1}}", "set: {Conv: {size: 100}}")
    with pytest.raises(darkforge.SpecError, match=r"u.yaml:5:.*scale 'n' sets Conv.size of layers\[0\]"):
        darkforge.load_spec(write("u.yaml", text)).resolved()


def test_a_default_scale_must_be_one_of_the_scales(write):
    with pytest.raises(darkforge.SpecError, match="`scale: q` names none of the file's scales"):
        darkforge.load_spec(write("u.yaml", ULTRA.replace("scale: n", "scale: q")))
