"""The fork's keys: each one that changes the computation is honoured exactly or refused, with or
without --lenient; Darknet's own parsing (comments after values, repeated keys, long anchor lists);
keys that change no output carried through a round trip; stopbackward as a freeze count."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from darkforge.darknet.read import convert_cfg
from darkforge.darknet.weights import load_darknet_weights, save_darknet_weights
from darkforge.darknet.write import to_cfg
from darkforge.errors import SpecError
from darkforge.spec.shapes import plan
from darkforge.weights.transfer import build
from tests.conftest import SHARED

NET = "[net]\nheight=32\nwidth=32\nchannels=8\n\n"
CONV = "[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=leaky\n"

# (section text after [net] and a conv, the type built, fields it must carry) for honoured keys;
# (text, None, words of the error) for refused ones.
KEYS = [
    ("[route]\nlayers=-1\ngroups=2\ngroup_id=1\n", "GroupRoute", {"groups": 2, "group": 1}),
    (CONV + "stride_x=2\nstride_y=1\n", "DarknetConv", {"stride": 2, "stride_y": 1}),
    (CONV + "dilation=2\n", "DarknetConv", {"dilation": 2}),
    (CONV + "antialiasing=1\nstride=2\n", "DarknetConv", {"antialiasing": 1}),
    (CONV + "xnor=1\n", "DarknetConv", {"xnor": True}),
    (CONV.replace("leaky", "hard_mish"), "DarknetConv", {"activation": "hard_mish"}),
    ("[maxpool]\nsize=2\nstride_x=2\nstride_y=1\n", "DarknetPool", {"stride": 2, "stride_y": 1}),
    ("[maxpool]\nmaxpool_depth=1\nout_channels=4\n", "DarknetPool", {"depth": True, "out_channels": 4}),
    ("[maxpool]\nsize=2\nstride=2\nantialiasing=1\n", "DarknetPool", {"antialiasing": 1}),
    (
        "[shortcut]\nfrom=-2\nweights_type=per_channel\nweights_normalization=softmax\n",
        "WeightedShortcut",
        {},
    ),
    ("[shortcut]\nfrom=-2,-1\n", "WeightedShortcut", {"from_": [-2, -1]}),
    ("[upsample]\nstride=2\nscale=0.5\n", "DarknetUpsample", {"scale": 0.5}),
    ("[reorg3d]\nstride=2\nreverse=1\n", "Reorg3d", {"reverse": True}),
    ("[reorg3d]\nstride=3\nreverse=1\n", None, ["reverse stride 3 needs channels divisible by 9"]),
    ("[convolutional]\nfilters=8\nsize=1\nstride_x=1\nstride_y=2\n", None, ["skips im2col"]),
    (CONV + "share_index=-1\n", "DarknetConv", {"share": -1}),
    (CONV.replace("=8", "=4") + "share_index=-1\n", None, ["share_index", "not an earlier [convolutional]"]),
    (CONV + "sway=1\n", None, ["sway=1"]),
    (CONV + "assisted_excitation=1\n", None, ["assisted_excitation=1"]),
    (CONV + "cbn=1\n", None, ["cbn=1"]),
    (CONV + "binary=1\n", None, ["binary=1"]),
    (CONV + "coordconv=1\n", None, ["coordconv=1"]),
    (CONV + "learning_rate=0.5\n", None, ["learning_rate=0.5"]),
    (CONV.replace("leaky", "revleaky"), None, ["revleaky"]),
    ("[dropout]\nprobability=0.1\ndropblock=1\n", None, ["dropblock=1"]),
    ("[shortcut]\nfrom=-2\nweights_type=per_feature\n", None, ["weights_normalization"]),
    ("[activation]\nactivation=mish\n", None, ["no case for 'mish' outside [convolutional]"]),
    ("[contrastive]\nclasses=2\n", None, ["yolo_layer", "is not a [yolo] layer"]),
    (CONV + "xnor=1\nbin_output=1\n", "DarknetConv", {"bin_output": True}),
    ("[lstm]\noutput=8\n", None, ["recurrent layer"]),
    ("[crnn]\noutput=8\n", None, ["convolutional recurrent layer", "from one forward call"]),
    ("[conv]\nfilters=8\nonlyforward=1\n", None, ["onlyforward=1", "no darkforge equivalent"]),
]


@pytest.mark.parametrize(("text", "kind", "expected"), KEYS)
@pytest.mark.parametrize("lenient", [False, True])
def test_a_key_that_changes_the_computation_is_honoured_or_refused(write, text, kind, expected, lenient):
    path = write("k.cfg", NET + CONV + "\n" + CONV + "\n" + text)
    if kind is None:
        with pytest.raises(SpecError) as caught:
            convert_cfg(path, lenient=lenient)
        for word in expected:
            assert word in str(caught.value)
        return
    layer = convert_cfg(path, lenient=lenient).spec.layers[-1]
    assert layer.type == kind
    for key, value in expected.items():
        assert getattr(layer, key) == value


def test_lenient_drops_only_keys_it_has_never_seen_and_says_so(write):
    path = write("k.cfg", NET + CONV + "mystery=3\n")
    with pytest.raises(SpecError, match="unknown key 'mystery'"):
        convert_cfg(path)
    converted = convert_cfg(path, lenient=True)
    assert (
        len(converted.warnings) == 1
        and "mystery" in converted.warnings[0]
        and "dropped (--lenient)" in converted.warnings[0]
    )


@pytest.mark.skipif(not (SHARED / "darknet-cfg/alexeyab").is_dir(), reason="needs ../shared")
def test_yolov4_tiny_lenient_is_darknets_network():
    for lenient in (False, True):
        converted = convert_cfg(SHARED / "darknet-cfg/alexeyab/yolov4-tiny.cfg", lenient=lenient)
        p = plan(converted.spec)
        assert p.params == 6_056_606
        assert round(2 * sum(i.cost.macs for i in p.layers) / 1e9, 3) == 6.908
        assert not [w for w in converted.warnings if "dropped" in w]


def test_darknets_parsing(write):
    text = NET.replace("[net]\n", "[net]\nmomentum=0.9\nmomentum=0.8\nmosaic=1\nmax_epochs=300\n")
    text += "[convolutional]\nfilters=40 #32\nsize=3\npad=1\nactivation=logistic\n\n"
    text += "[convolutional]\nfilters=21\nsize=1\nactivation=linear\n\n"
    text += "[yolo]\nmask=0,1,2\nanchors=1,2, 3,4, 5,6, 7,8\nnum=3\nclasses=2\nscale_x_y=1.05\n"
    text += "iou_loss=ciou\nnms_kind=greedynms\nbeta1=0.6\n"
    converted = convert_cfg(write("p.cfg", text))
    spec = converted.spec
    assert spec.layers[0].filters == 40  # atoi stops at the comment
    assert spec.train["darknet"]["momentum"] == 0.9  # option_find: the first one counts
    assert spec.train["darknet"]["mosaic"] == 1 and spec.train["darknet"]["max_epochs"] == 300
    yolo = spec.layers[2]
    assert yolo.anchors == [(1, 2), (3, 4), (5, 6)] and yolo.scale_x_y == 1.05
    assert yolo.loss == {"iou_loss": "ciou", "nms_kind": "greedynms", "beta1": 0.6}
    said = " ".join(converted.warnings)
    for words in (
        "momentum: repeated",
        "max_epochs: Darknet ignores it",
        "Darknet uses the first 3",
        "beta1",
    ):
        assert words in said
    cfg, _ = to_cfg(spec)
    for line in ("mosaic=1", "max_epochs=300", "iou_loss=ciou", "scale_x_y=1.05", "beta1=0.6", "filters=40"):
        assert line in cfg.splitlines()


@pytest.mark.parametrize(
    ("value", "words"),
    [("4.5", "expected an integer"), ("#4", "no value before the comment"), ("x4", "expected an integer")],
)
def test_numbers_darknet_would_misread_are_refused(write, value, words):
    with pytest.raises(SpecError, match=words):
        convert_cfg(write("n.cfg", NET + f"[convolutional]\nfilters={value}\n"))


def test_numbers_as_darknet_reads_them(write):
    text = NET + "[convolutional]\nfilters=8.0\nsize=+3\npad=1\nactivation=linear\n\n"
    text += "[convolutional]\nfilters=14\nsize=1\nactivation=linear\n\n"
    text += "[yolo]\nmask=0,1\nnum=2\nclasses=2\njitter=.3\nignore_thresh=7e-1\nanchors=1,2,3,4,5\n"
    converted = convert_cfg(write("n.cfg", text))
    conv, _, yolo = converted.spec.layers
    assert (conv.filters, conv.size) == (8, 3)
    assert (yolo.jitter, yolo.ignore_thresh, yolo.anchors) == (0.3, 0.7, [(1, 2), (3, 4)])
    assert any("odd count" in w for w in converted.warnings)


def test_stopbackward_is_a_freeze_count_and_writes_back(write):
    path = write("s.cfg", NET + CONV + "\n" + CONV + "stopbackward=1\n\n" + CONV)
    spec = convert_cfg(path).spec
    assert spec.train["freeze"] == 2 and spec.train["darknet"]["stopbackward"] == [1, 1]
    cfg, _ = to_cfg(spec)
    sections = cfg.split("[convolutional]")
    assert "stopbackward=1" in sections[2] and "stopbackward" not in sections[1] + sections[3]


@pytest.mark.parametrize(
    "extra", ["batch_normalize=1", "stride_x=2\nstride_y=1", "dilation=2", "bin_output=1"]
)
def test_xnor_builds_as_darknet_computes_it_or_is_refused(write, extra):
    path = write("x.cfg", NET + CONV + "xnor=1\n" + extra + "\n")
    spec = convert_cfg(path).spec  # the shapes and counts are the fork's: it validates
    with pytest.raises(SpecError, match=r"xnor=1 with .*not build an xnor conv as a float one"):
        build(spec)


def test_training_defaults_follow_the_darknet_of_the_file(write):
    text = NET + "[dropout]\n\n[convolutional]\nfilters=7\nsize=1\nactivation=linear\n\n"
    path = write("d.cfg", text + "[yolo]\nmask=0\nnum=1\nclasses=2\nrandom=1.2\n")
    fork, original = convert_cfg(path).spec, convert_cfg(path, darknet="pjreddie").spec
    assert (fork.layers[0].p, fork.layers[2].max_boxes) == (0.2, 200)  # the fork's parse_* defaults
    assert (original.layers[0].p, original.layers[2].max_boxes) == (0.5, 90)
    assert fork.layers[2].random == 1.2  # the fork reads `random` as a number


def test_contrastive_is_a_marker_on_a_yolo_layer(write, tmp_path):
    text = NET + "[convolutional]\nfilters=7\nsize=1\nactivation=linear\n\n"
    text += "[yolo]\nmask=0\nnum=1\nclasses=2\n\n[contrastive]\nclasses=2\nyolo_layer=-1\n"
    spec = convert_cfg(write("c.cfg", text)).spec
    layer = spec.layers[2]
    assert (layer.type, layer.yolo_layer, layer.classes) == ("Contrastive", -1, 2)
    assert plan(spec).layers[2].cost.output == (7, 32, 32)
    cfg, _ = to_cfg(spec)
    assert "[contrastive]\nclasses=2\nyolo_layer=-1" in cfg


def test_weighted_shortcut_adds_flat_buffers_as_the_fork_does(write):
    text = NET + "[convolutional]\nfilters=8\nsize=1\nactivation=linear\n\n"
    text += "[convolutional]\nfilters=4\nsize=1\nstride=2\nactivation=linear\n\n"
    text += "[convolutional]\nfilters=6\nsize=1\nactivation=linear\n\n"
    text += "[shortcut]\nfrom=-2,-3\nweights_type=per_channel\nweights_normalization=relu\n"
    spec = convert_cfg(write("w.cfg", text)).spec
    layer = build(spec).eval().layers["3"]
    with torch.no_grad():
        layer.darknet_weights.copy_(torch.rand(3, 6) - 0.3)
    prev, small, big = torch.randn(1, 6, 16, 16), torch.randn(1, 4, 16, 16), torch.randn(1, 8, 32, 32)
    w = torch.relu(layer.darknet_weights.detach())
    w = w / (1e-4 + w.sum(0))
    want = (prev * w[0].view(1, 6, 1, 1)).flatten()
    per = [wi.repeat_interleave(256) for wi in w]
    want[:1024] += per[1][:1024] * small.flatten()  # fewer channels: the first ones
    want += per[2] * big.flatten()[:1536]  # a larger map: its first 6·16·16 floats
    torch.testing.assert_close(layer(prev, small, big), want.view(1, 6, 16, 16))


def test_batchnorm_section_computes_and_stores_as_darknet(write, tmp_path):
    text = NET + "[convolutional]\nfilters=3\nsize=1\nactivation=linear\n\n[batchnorm]\n"
    spec = convert_cfg(write("b.cfg", text)).spec
    assert spec.layers[1].type == "DarknetBatchNorm" and plan(spec).layers[1].cost.params == 6
    assert "[batchnorm]" in to_cfg(spec)[0]
    floats = np.arange(3 + 3 * 8 + 4 * 3, dtype="<f4") / 10 + 0.05  # conv bias, weights; bn ×4
    path = tmp_path / "b.weights"
    path.write_bytes(struct.pack("<3iQ", 0, 2, 5, 7) + floats.tobytes())
    net = build(spec).eval()
    load_darknet_weights(net, path)
    bn = net.layers["1"].bn
    shift, scale, mean, var = (torch.from_numpy(floats[27 + 3 * k : 30 + 3 * k]) for k in range(4))
    assert torch.equal(bn.bias.detach(), shift) and torch.equal(bn.running_var, var)
    x = torch.randn(1, 8, 4, 4)
    with torch.no_grad():
        conv = net.layers["0"](x)
        want = (conv - mean.view(1, 3, 1, 1)) / torch.sqrt(var.view(1, 3, 1, 1) + 1e-5)
        torch.testing.assert_close(net(x), want * scale.view(1, 3, 1, 1) + shift.view(1, 3, 1, 1))
    save_darknet_weights(net, tmp_path / "c.weights", seen=7, version=(0, 2, 5))
    assert (tmp_path / "c.weights").read_bytes() == path.read_bytes()
