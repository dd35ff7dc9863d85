"""The fork's sections added for its held-out cfgs: [local] (yolov1) against an explicit sum, with
its parameter count and .weights order; share_index as one set of weights (resnet152_trident);
[route] onlyforward=1; `silu` as Darknet reads it; yolo masks past `num` (cspx-p7-mish); and the
hostile cfgs that once escaped as pydantic errors (exit 3) now refused at their line."""

from __future__ import annotations

import struct

import pytest
import torch
import torch.nn.functional as F

from darkforge.darknet import catalog
from darkforge.darknet.read import convert_cfg
from darkforge.darknet.weights import load_darknet_weights, save_darknet_weights, weighted_layers
from darkforge.darknet.write import to_cfg
from darkforge.errors import SpecError
from darkforge.spec.shapes import plan
from darkforge.weights.transfer import build

NET = "[net]\nheight=9\nwidth=8\nchannels=3\n\n"


def local_reference(x, weight, bias, size, stride, pad):
    """forward_local_layer written out: out[f, oy, ox] = bias[f, oy, ox] + Σ_c,ky,kx
    W[location][f][c, ky, kx] · x[c, oy·stride + ky − pad, ox·stride + kx − pad] (zeros outside)."""
    c = x.shape[1]
    filters, oh, ow = bias.shape
    padded = F.pad(x, (pad,) * 4)
    out = torch.empty(x.shape[0], filters, oh, ow, dtype=torch.float64)
    for oy in range(oh):
        for ox in range(ow):
            patch = padded[:, :, oy * stride : oy * stride + size, ox * stride : ox * stride + size]
            matrix = weight[oy * ow + ox].view(filters, c, size, size)
            out[:, :, oy, ox] = torch.einsum("bckl,fckl->bf", patch, matrix) + bias[:, oy, ox]
    return out


@pytest.mark.parametrize(("size", "stride", "pad"), [(3, 1, 1), (3, 2, 1), (2, 1, 0), (1, 2, 0)])
def test_local_is_a_conv_with_weights_per_position(write, size, stride, pad):
    cfg = write(
        "l.cfg", NET + f"[local]\nfilters=4\nsize={size}\nstride={stride}\npad={pad}\nactivation=linear\n"
    )
    spec = convert_cfg(cfg).spec
    net = build(spec).double().eval()
    oh = (9 - (1 if pad else size)) // stride + 1
    ow = (8 - (1 if pad else size)) // stride + 1
    assert plan(spec).layers[0].cost.output == (4, oh, ow)
    params = oh * ow * 4 * 3 * size * size + 4 * oh * ow  # weights per location, a bias per output
    assert sum(p.numel() for p in net.parameters()) == params == plan(spec).params
    layer = net.layers["0"]
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    expected = local_reference(x, layer.weight, layer.bias, size, stride, pad)
    assert torch.allclose(net(x), expected, atol=1e-10)


def test_local_weights_file_holds_biases_then_weights_per_location(write, tmp_path):
    spec = convert_cfg(write("l.cfg", NET + "[local]\nfilters=2\nsize=3\nstride=2\npad=1\n")).spec
    net = build(spec)
    layer = net.layers["0"]
    n_bias, n_weight = layer.bias.numel(), layer.weight.numel()
    path = tmp_path / "l.weights"
    values = torch.arange(n_bias + n_weight, dtype=torch.float32)
    path.write_bytes(struct.pack("<3iQ", 0, 2, 0, 0) + values.numpy().tobytes())
    report = load_darknet_weights(net, path)
    assert report.layers == 1 and report.params == n_bias + n_weight
    assert torch.equal(layer.bias.flatten(), values[:n_bias])
    # location 1 (row 0, column 1), filter 1, channel 0, ky 0, kx 0: after location 0's 2×27 numbers
    assert layer.weight[1, 1, 0] == n_bias + 2 * 27 + 27
    save_darknet_weights(net, tmp_path / "again.weights")
    assert (tmp_path / "again.weights").read_bytes() == path.read_bytes()


def test_local_round_trips_and_refuses_a_pad_darknet_misaligns(write):
    spec = convert_cfg(write("l.cfg", NET + "[local]\nfilters=2\nsize=3\npad=1\nactivation=leaky\n")).spec
    text, _ = to_cfg(spec)
    assert "[local]\nfilters=2\nsize=3\nstride=1\npad=1\nactivation=leaky" in text
    with pytest.raises(SpecError, match="pad=2 with size=3") as caught:
        convert_cfg(write("bad.cfg", NET + "[local]\nfilters=2\nsize=3\npad=2\n"))
    assert str(caught.value).startswith(f"{caught.value.file}:6: [local] (layer 0): pad=2 with size=3")


SHARE = NET.replace("channels=3", "channels=4")
SHARE += "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=leaky\n\n"
SHARE += "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\ndilation=2\n"
SHARE += "share_index=-1\nactivation=leaky\n"


def test_share_index_is_one_set_of_weights(write, tmp_path):
    spec = convert_cfg(write("s.cfg", SHARE)).spec
    assert spec.layers[1].share == -1 and "share_index=-1" in to_cfg(spec)[0]
    p = plan(spec)
    own = 4 * 4 * 9 + 2 * 4
    assert p.params == own and [i.cost.params for i in p.layers] == [own, 0]
    net = build(spec)
    first, second = net.layers["0"], net.layers["1"]
    assert second.source is first and not list(second.parameters())
    assert sum(p.numel() for p in net.parameters()) == own  # counted once, trained once
    assert not [k for k in net.state_dict() if k.startswith("layers.1.")]  # stored once
    x = torch.randn(2, 4, 9, 8)
    net.eval()
    expected = F.leaky_relu(first.bn(F.conv2d(first(x), first.conv.weight, padding=2, dilation=2)), 0.1)
    assert torch.allclose(net(x), expected, atol=1e-6)
    net.train()
    net(x).sum().backward()
    assert first.conv.weight.grad is not None and first.conv.weight.grad.abs().sum() > 0
    # Darknet's .weights skip a share_index conv: one layer's floats (shift, scale, mean, var, weights)
    assert [u.layer for u in weighted_layers(net)] == [0]
    report = save_darknet_weights(net, tmp_path / "s.weights")
    assert (tmp_path / "s.weights").stat().st_size == 20 + 4 * (4 * 4 + 4 * 4 * 9) and report.layers == 1


def test_onlyforward_route_passes_values_but_no_gradient(write):
    text = (
        NET + "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n\n[route]\nlayers=-1\nonlyforward=1\n"
    )
    spec = convert_cfg(write("o.cfg", text)).spec
    assert spec.layers[1].type == "GroupRoute" and spec.layers[1].detach
    assert "onlyforward=1" in to_cfg(spec)[0]
    net = build(spec)
    x = torch.randn(1, 3, 9, 8)
    out = net(x)
    assert torch.equal(out, net.layers["0"](x)) and not out.requires_grad


def test_silu_is_read_as_darknet_reads_it(write):
    converted = convert_cfg(write("a.cfg", NET + "[convolutional]\nfilters=2\nsize=1\nactivation=silu\n"))
    assert converted.spec.layers[0].activation == "relu"
    assert any("get_activation falls back to ReLU" in w and "swish" in w for w in converted.warnings)


def test_yolo_masks_past_num_are_read_as_darknet_does(write):
    # cspx-p7-mish.cfg: num=16 and 20 anchor pairs, its last head's mask is 16..19
    text = (
        NET + "[convolutional]\nfilters=14\nsize=1\nactivation=linear\n\n[yolo]\nmask=2,3\nnum=2\nclasses=2\n"
    )
    converted = convert_cfg(write("y.cfg", text + "anchors=1,2,3,4,5,6,7,8\n"))
    assert converted.spec.layers[1].mask == [2, 3] and len(converted.spec.layers[1].anchors) == 2
    assert any("mask: [2, 3] ≥ num=2" in w for w in converted.warnings)
    short = convert_cfg(write("z.cfg", text.replace("num=2", "num=4") + "anchors=1,2,3,4,5,6\n"))
    assert short.spec.layers[1].anchors == [(1, 2), (3, 4), (5, 6), (0, 0)]


def test_implicit_with_a_negative_std_builds(write):
    spec = convert_cfg(write("i.cfg", NET + "[implicit]\nfilters=3\nstd=-1\n")).spec
    assert sum(p.numel() for p in build(spec).parameters()) == 3


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (
            "[net]\nheight=1000000\nwidth=416\nchannels=3\n[convolutional]\nfilters=3\n",
            2,
            ["height", "16384"],
        ),
        ("[net]\nheight=416\nwidth=416\nchannels=3\n", 1, ["no layers after [net]"]),
        (
            "[net]\nheight=8\nwidth=8\nchannels=3\n" + "[empty]\n" * 10_001,
            10_005,
            ["more than 10,000 layers"],
        ),
    ],
)
def test_hostile_cfgs_are_one_located_line(write, run_cli, text, line, words):
    path = write("h.cfg", text)
    with pytest.raises(SpecError) as caught:
        convert_cfg(path)
    assert str(caught.value).startswith(f"{path}:{line}"), str(caught.value)
    for word in words:
        assert word in str(caught.value)
    result = run_cli("validate", path)
    assert (
        result.exit_code == 1 and "\n" not in result.stderr.strip() and "internal error" not in result.stderr
    )


C8 = "[convolutional]\nfilters=8\nsize=1\nactivation=leaky\n\n"
# One small use of every section after an 8-channel 9×8 map; a new section file needs a line here.
SNIPPETS = {
    "activation": "[activation]\nactivation=tanh\n",
    "avgpool": "[avgpool]\n",
    "batchnorm": "[batchnorm]\n",
    "connected": "[connected]\noutput=4\nactivation=leaky\n",
    "contrastive": "[convolutional]\nfilters=14\nsize=1\n\n[yolo]\nmask=0,1\nnum=2\nclasses=2\n\n"
    "[contrastive]\nyolo_layer=-1\nclasses=2\n",
    "convolutional": "[convolutional]\nfilters=4\nsize=3\nstride_x=2\nstride_y=1\npad=1\nactivation=mish\n",
    "cost": "[connected]\noutput=4\n\n[cost]\ntype=sse\n",
    "crop": "[crop]\ncrop_height=4\ncrop_width=4\n",
    "detection": "[connected]\noutput=12\nactivation=linear\n\n[detection]\nclasses=2\ncoords=4\nside=1\nnum=2\n",
    "dropout": "[dropout]\nprobability=0.3\n",
    "empty": "[silence]\n",
    "Gaussian_yolo": "[convolutional]\nfilters=22\nsize=1\n\n[Gaussian_yolo]\nmask=0,1\nnum=2\nclasses=2\n",
    "implicit": "[implicit]\nfilters=4\n",
    "local": "[local]\nfilters=2\nsize=3\npad=1\n",
    "local_avgpool": "[local_avgpool]\nsize=2\nstride=2\n",
    "maxpool": "[maxpool]\nsize=2\nstride=1\n",
    "region": "[convolutional]\nfilters=14\nsize=1\n\n[region]\nclasses=2\ncoords=4\nnum=2\n",
    "reorg": "[convolutional]\nfilters=8\nsize=1\nstride=1\n\n[maxpool]\nsize=2\nstride=1\npadding=0\n\n"
    "[crop]\ncrop_height=8\ncrop_width=6\n\n[reorg]\nstride=2\n",
    "reorg3d": "[crop]\ncrop_height=8\ncrop_width=8\n\n[reorg3d]\nstride=2\n",
    "route": "[route]\nlayers=-1,0\ngroups=2\ngroup_id=1\n",
    "sam": "[convolutional]\nfilters=8\nsize=1\nactivation=logistic\n\n[sam]\nfrom=-2\n",
    "scale_channels": "[avgpool]\n\n[scale_channels]\nfrom=-2\n",
    "shortcut": "[convolutional]\nfilters=8\nsize=1\n\n[shortcut]\nfrom=-2\nactivation=linear\n",
    "softmax": "[softmax]\ngroups=2\n",
    "upsample": "[upsample]\nstride=2\n",
    "yolo": "[convolutional]\nfilters=14\nsize=1\n\n[yolo]\nmask=0,1\nnum=2\nclasses=2\nanchors=1,2,3,4\n",
}


def test_every_registered_section_has_a_use_here():
    readable = {name for name, section in catalog.sections().items() if section.read is not None}
    assert readable == set(SNIPPETS)
    for section in catalog.sections().values():
        assert (section.read is None) == bool(section.refusal), section.name
    registered = {str(spec.model_fields["type"].default) for spec, _ in catalog.layer_types()}
    assert registered <= set(catalog.writers())  # each Darknet layer type can be written back


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_every_section_reads_builds_and_writes_back(write, tmp_path, name):
    path = write("s.cfg", NET + C8 + SNIPPETS[name])
    spec = convert_cfg(path).spec
    text, _ = to_cfg(spec)
    again = write("again.cfg", text)
    assert convert_cfg(again).spec.model_dump(exclude={"name"}) == spec.model_dump(exclude={"name"})
    net = build(spec).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 9, 8))
    shapes = [tuple(o.shape[1:]) for o in (out if isinstance(out, tuple) else (out,))]
    assert shapes == [plan(spec).shape_of(i) for i in plan(spec).outputs]


@pytest.mark.parametrize("name", sorted(n for n, s in catalog.sections().items() if s.read is None))
def test_every_refused_section_says_why(write, name):
    with pytest.raises(SpecError) as caught:
        convert_cfg(write("r.cfg", NET + C8 + f"[{name}]\nfilters=2\n"))
    assert f"[{name}] (layer 1):" in str(caught.value) and catalog.sections()[name].refusal in str(
        caught.value
    )


def test_share_index_of_a_sharer_uses_the_first_weights(write):
    conv = "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
    text = (
        SHARE.split("[convolutional]")[0]
        + conv
        + "\n"
        + conv
        + "share_index=-1\n\n"
        + conv
        + "share_index=-1\n"
    )
    net = build(convert_cfg(write("c.cfg", text)).spec)
    assert net.layers["2"].source is net.layers["0"]
    assert sum(p.numel() for p in net.parameters()) == 4 * 4 * 9 + 4


def test_an_odd_anchor_list_ends_with_a_zero_as_in_darknet(write):
    # cspx-p7-mish_hp.cfg: "61,45    61,45" reads as 61,4561,45 (Darknet deletes the spaces): 31 numbers
    text = (
        NET + "[convolutional]\nfilters=14\nsize=1\nactivation=linear\n\n[yolo]\nmask=0,1\nnum=3\nclasses=2\n"
    )
    converted = convert_cfg(write("o.cfg", text + "anchors=1,2,  3,4    5,6\n"))
    assert converted.spec.layers[1].anchors == [(1, 2), (3, 45), (6, 0)]
    assert any("pairs the last one with 0" in w for w in converted.warnings)
