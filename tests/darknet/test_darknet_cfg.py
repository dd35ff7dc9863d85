"""Darknet .cfg -> spec -> .cfg: Darknet's numbers, Darknet's layer semantics, errors at the cfg line.

Small hand-written cfgs pin the rules; when ../shared/darknet-cfg exists, every original cfg in it
must convert, round-trip, and (where Darknet publishes them) give Darknet's own figures.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import ARCHS, SHARED
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import darkforge
from darkforge.darknet.read import convert_cfg, load_cfg
from darkforge.darknet.write import to_cfg
from darkforge.errors import SpecError
from darkforge.spec.dump import dump_spec
from darkforge.spec.load import load_spec
from darkforge.spec.shapes import flatten, plan

DARKNET_CFG = SHARED / "darknet-cfg"
needs_cfgs = pytest.mark.skipif(not DARKNET_CFG.is_dir(), reason="../shared/darknet-cfg is not here")


def cfg(text: str) -> str:
    return textwrap.dedent(text).lstrip()


NET = "[net]\nheight=32\nwidth=32\nchannels=3\n\n"

# A yolov3-tiny in miniature: every rule that matters once.
TINY = cfg(
    """
    [net]
    # Training
    batch=64
    subdivisions=2
    width=32
    height=32
    channels=3
    learning_rate=0.001
    burn_in=100
    max_batches = 500
    policy=steps
    steps=400,450
    scales=.1,.1

    [convolutional]
    batch_normalize=1
    filters=8
    size=3
    stride=1
    pad=1
    activation=leaky

    [maxpool]
    size=2
    stride=2

    [convolutional]
    batch_normalize=1
    filters=16
    size=3
    stride=1
    pad=1
    activation=leaky

    # Darknet's default padding is size-1: 2x2/1 keeps 16x16
    [maxpool]
    size=2
    stride=1

    [convolutional]
    batch_normalize=1
    filters=8
    size=1
    stride=1
    pad=1
    activation=leaky

    [convolutional]
    batch_normalize=1
    filters=16
    size=3
    stride=1
    pad=1
    activation=leaky

    [shortcut]
    from=-3
    activation=linear

    [convolutional]
    size=1
    stride=1
    pad=1
    filters=18
    activation=linear

    [yolo]
    mask = 2,3
    anchors = 10,14,  23,27,  37,58,  81,82
    classes=4
    num=4
    jitter=.3
    ignore_thresh = .7
    random=1

    [route]
    layers = -4

    [upsample]
    stride=2

    [route]
    layers = -1, 0

    [convolutional]
    size=1
    stride=1
    pad=1
    filters=18
    activation=linear

    [yolo]
    mask = 0,1
    anchors = 10,14,  23,27,  37,58,  81,82
    classes=4
    num=4
    """
)
# conv: weights (+ bias without BN, + gamma/beta with BN); nothing else has parameters
TINY_PARAMS = (
    (8 * 3 * 9 + 16) + (16 * 8 * 9 + 32) + (8 * 16 + 16) + (16 * 8 * 9 + 32) + (18 * 16 + 18) + (18 * 24 + 18)
)
TINY_MACS = (
    8 * 27 * 32 * 32
    + 16 * 72 * 16 * 16
    + 8 * 16 * 16 * 16
    + 16 * 72 * 16 * 16
    + 18 * 16 * 16 * 16
    + 18 * 24 * 32 * 32
)


@pytest.fixture
def tiny(write) -> Path:
    return write("tiny.cfg", TINY)


def test_tiny_cfg_has_darknets_shapes_and_counts(tiny):
    spec = load_cfg(tiny)
    p = plan(spec.resolved())
    assert spec.name == "tiny" and spec.input.shape == (3, 32, 32)
    assert [layer.type for layer in spec.layers] == [
        "ConvBnLeaky", "MaxPool", "ConvBnLeaky", "MaxPool", "ConvBnLeaky", "ConvBnLeaky", "Shortcut",
        "Conv", "Yolo", "Route", "Upsample", "Route", "Conv", "Yolo",
    ]  # fmt: skip
    assert [info.output for info in p.layers][:4] == [(8, 32, 32), (8, 16, 16), (16, 16, 16), (16, 16, 16)]
    assert p.params == TINY_PARAMS == 3500
    assert p.macs == TINY_MACS
    assert p.output_shapes == [(18, 16, 16), (18, 32, 32)]
    assert spec.outputs == [8, 13]  # the [yolo] layers, by Darknet's layer number
    assert spec.layers[11].from_ == [-1, 0]  # references keep Darknet's numbering


def test_net_section_becomes_input_and_train_darknet(tiny, write):
    spec = load_cfg(tiny)
    assert spec.train == {
        "darknet": {
            "batch": 64,
            "subdivisions": 2,
            "learning_rate": 0.001,
            "burn_in": 100,
            "max_batches": 500,
            "policy": "steps",
            "steps": [400, 450],
            "scales": [0.1, 0.1],
        }
    }
    rect = load_cfg(write("r.cfg", TINY.replace("width=32", "width=64")))
    assert rect.input.shape == (3, 32, 64)


def test_yolo_keeps_its_metadata(tiny):
    yolo = load_cfg(tiny).layers[8]
    assert yolo.mask == [2, 3] and yolo.classes == 4 and yolo.num == 4
    assert yolo.anchors == [(10, 14), (23, 27), (37, 58), (81, 82)]
    assert (yolo.jitter, yolo.ignore_thresh, yolo.random) == (0.3, 0.7, True)


def test_tiny_builds_and_runs_like_its_plan(tiny):
    torch.manual_seed(0)
    model = darkforge.build(tiny).eval()
    assert sum(p.numel() for p in model.parameters()) == TINY_PARAMS
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert [o.shape for o in out] == [(2, 18, 16, 16), (2, 18, 32, 32)]
    assert counter.get_total_flops() == 2 * 2 * TINY_MACS  # a batch of two
    assert model.layers["0"].conv.bias is None and model.layers["7"].conv.bias is not None
    assert model.layers["0"].act.negative_slope == 0.1


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            "filters=4\nsize=3\nstride=1\npad=1\nactivation=leaky\nbatch_normalize=1",
            {"type": "ConvBnLeaky", "filters": 4, "bn": {"momentum": 0.01}},  # Darknet's momentum
        ),
        (
            "filters=4\nsize=3\nstride=2\npad=0\nactivation=linear",
            {"type": "Conv", "filters": 4, "stride": 2, "pad": 0},
        ),
        (
            "filters=4\nsize=5\npadding=1\nactivation=relu",
            {"type": "Conv", "filters": 4, "size": 5, "pad": 1, "activation": "relu"},
        ),
        (
            "filters=4\nsize=3\npad=1\npadding=0\nactivation=linear",
            {"type": "Conv", "filters": 4},
        ),  # pad wins
        (
            "filters=4\nsize=3\npad=1",
            {"type": "Conv", "filters": 4, "activation": "logistic"},
        ),  # Darknet's default
        (
            "filters=6\nsize=3\npad=1\ngroups=3\nactivation=swish",
            {"type": "Conv", "filters": 6, "groups": 3, "activation": "silu"},
        ),
        (
            "filters=4\nsize=1\nactivation=mish",
            {"type": "Conv", "filters": 4, "size": 1, "activation": "mish"},
        ),
    ],
)
def test_convolutional_options(write, options, expected):
    spec = load_cfg(write("c.cfg", NET + "[convolutional]\n" + options + "\n"))
    layer = spec.layers[0]
    dumped = {"type": layer.type, **layer.model_dump(exclude_defaults=True, by_alias=True)}
    assert dumped == expected


def test_sections_map_to_these_types(write):
    text = NET + cfg(
        """
        [crop]
        crop_height=24
        crop_width=24
        flip=1
        [conv]
        filters=8
        size=3
        stride=2
        pad=1
        activation=ramp
        [max]
        size=3
        stride=3
        [reorg]
        stride=2
        [avg]
        [connected]
        output=16
        activation=leaky
        batch_normalize=1
        [dropout]
        probability=.25
        [conn]
        output=10
        activation=linear
        [soft]
        groups=1
        [cost]
        type=sse
        """
    )
    spec = load_cfg(write("k.cfg", text))
    assert [layer.type for layer in spec.layers] == [
        "Crop", "Conv", "MaxPool", "Reorg", "GlobalAvgPool", "Connected", "Dropout", "Linear", "Softmax", "Cost",
    ]  # fmt: skip
    p = plan(spec.resolved())
    # crop 24 -> conv/2: 12 -> max 3/3, Darknet's padding 2: (12 + 2 - 3)/3 + 1 = 4 -> reorg: 32×2×2
    assert [i.output for i in p.layers[:4]] == [(3, 24, 24), (8, 12, 12), (8, 4, 4), (32, 2, 2)]
    assert p.output_shapes == [(10,)]


def test_reorg_needs_divisible_maps(write):
    text = NET + "[conv]\nfilters=8\nsize=3\nstride=4\npad=1\n[conv]\nfilters=6\n[reorg]\nstride=2\n"
    with pytest.raises(SpecError, match=r"k\.cfg:13: \[reorg\] \(layer 2\): stride 2 needs .* 6×8×8"):
        load_cfg(write("k.cfg", text))


def test_resnet_shortcut_between_different_shapes_follows_darknet(write):
    # resnet50.cfg: [shortcut] from=-4 adds a 64×8×8 map to a 256×4×4 one: no projection conv;
    # Darknet's shortcut_cpu subsamples `from` and adds it to the channels both have.
    text = NET + cfg(
        """
        [convolutional]
        filters=64
        size=3
        stride=4
        pad=1
        activation=linear
        [convolutional]
        filters=32
        size=1
        activation=linear
        [convolutional]
        filters=32
        size=3
        stride=2
        pad=1
        activation=linear
        [convolutional]
        filters=128
        size=1
        activation=linear
        [shortcut]
        from=-4
        activation=leaky
        """
    )
    for darknet in ("pjreddie", "alexeyab"):
        spec = convert_cfg(write("r.cfg", text), darknet=darknet).spec
        assert spec.layers[4].type == "DarknetShortcut"
        assert plan(spec.resolved()).layers[4].output == (128, 4, 4)
        model = darkforge.build(spec).eval()
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            add = model.layers["0"](x)
            prev = model.layers["3"](model.layers["2"](model.layers["1"](add)))
            got = model.layers["4"](prev, add)
        if darknet == "pjreddie":
            torch.testing.assert_close(got, reference_shortcut(add, prev, nn.LeakyReLU(0.1)))
        else:  # the fork's shortcut_multilayer_cpu: flat buffers, over the shorter one
            flat = prev.flatten(1) + add.flatten(1)[:, : prev[0].numel()]
            torch.testing.assert_close(got, nn.functional.leaky_relu(flat, 0.1).view_as(prev))


def reference_shortcut(add, prev, act, alpha=1.0, beta=1.0):
    """blas.c shortcut_cpu, loop for loop."""
    (b, c1, h1, w1), (_, c2, h2, w2) = add.shape, prev.shape
    stride, sample = max(w1 // w2, 1), max(w2 // w1, 1)
    out = prev.clone().flatten()
    a = add.flatten()
    for n in range(b):
        for k in range(min(c1, c2)):
            for j in range(min(h1, h2)):
                for i in range(min(w1, w2)):
                    o = i * sample + w2 * (j * sample + h2 * (k + c2 * n))
                    s = i * stride + w1 * (j * stride + h1 * (k + c1 * n))
                    out[o] = alpha * out[o] + beta * a[s]
    return act(out.view(prev.shape))


def test_shortcut_onto_a_larger_map_and_with_weights():
    from darkforge.darknet.layers import DarknetShortcut as Spec
    from darkforge.darknet.modules import DarknetShortcut

    add, prev = torch.randn(2, 4, 3, 3), torch.randn(2, 6, 6, 6)
    layer = DarknetShortcut(Spec(from_=-3, alpha=0.5, beta=2.0), [(6, 6, 6), (4, 3, 3)])
    torch.testing.assert_close(layer(prev, add), reference_shortcut(add, prev, nn.Identity(), 0.5, 2.0))


def test_reorg_follows_darknets_memory_order():
    from darkforge.darknet.layers import Reorg as Spec
    from darkforge.darknet.modules import Reorg

    x = torch.randn(2, 8, 6, 4)
    s = 2
    # reorg_cpu(x, w, h, c, batch, stride, forward=0, out): out[in_index] = x[out_index]
    b_, c, h, w = x.shape
    flat, out = x.flatten(), torch.empty(x.numel())
    out_c = c // (s * s)
    for b in range(b_):
        for k in range(c):
            for j in range(h):
                for i in range(w):
                    c2, offset = k % out_c, k // out_c
                    w2, h2 = i * s + offset % s, j * s + offset // s
                    out[i + w * (j + h * (k + c * b))] = flat[w2 + w * s * (h2 + h * s * (c2 + out_c * b))]
    got = Reorg(Spec(stride=2), [(8, 6, 4)])(x)
    assert got.shape == (2, 32, 3, 2)
    torch.testing.assert_close(got, out.view(2, 32, 3, 2), rtol=0, atol=0)


def test_crop_softmax_connected_and_ramp():
    from darkforge.darknet import layers as specs
    from darkforge.darknet import modules as layers
    from darkforge.nn.activations import ACTIVATIONS

    x = torch.rand(1, 3, 6, 6)
    crop = layers.Crop(specs.Crop(height=4, width=2), [(3, 6, 6)]).eval()
    torch.testing.assert_close(crop(x), x[..., 1:5, 2:4] * 2 - 1)  # centred, rescaled to [-1, 1]
    keep = layers.Crop(specs.Crop(height=4, width=2, rescale=False), [(3, 6, 6)]).eval()
    torch.testing.assert_close(keep(x), x[..., 1:5, 2:4])
    logits = layers.Softmax(specs.Softmax(), [(3, 6, 6)])
    torch.testing.assert_close(logits(x), x.flatten(1))
    probs = layers.Softmax(specs.Softmax(groups=3, logits=False), [(3, 6, 6)])(x).view(1, 3, 36)
    torch.testing.assert_close(probs, x.view(1, 3, 36).softmax(-1))
    connected = layers.Connected(specs.Connected(out=5, bn=True, activation="leaky"), [(3, 6, 6)])
    assert connected.linear.bias is None and sum(p.numel() for p in connected.parameters()) == 108 * 5 + 10
    assert specs.Connected(out=5, bn=True).infer([darkforge.Operand((3, 6, 6), "x")]).params == 108 * 5 + 10
    ramp = ACTIVATIONS["ramp"](0.1)
    torch.testing.assert_close(ramp(torch.tensor([-1.0, 2.0])), torch.tensor([-0.1, 2.2]))


# --- errors: one line, the cfg's file and line, what to do ---------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (
            NET + "[convolutional]\nfilters=8\nactivation=leaky # the usual\n",
            8,
            ["comment", "leaky#theusual", "own"],
        ),
        (NET + "[convolutional]\nfilter=8\n", 7, ["unknown key 'filter'", "did you mean 'filters'"]),
        (NET + "[convolutional]\nfilters=eight\n", 7, ["filters", "expected an integer", "'eight'"]),
        (
            NET + "[convolutional]\nfilters=8\nactivation=leakey\n",
            8,
            ["unknown activation 'leakey'", "'leaky'"],
        ),
        (NET + "[convolutional]\nfilters=0\n", 7, ["filters", "greater than or equal to 1"]),
        (NET + "[convolutional]\nfilters=8\nbinary=1\n", 8, ["binary=1", "no darkforge equivalent"]),
        (NET + "[convolutional]\nfilters=8\nactivation=leaky#x\n", 8, ["comment after the value"]),
        (NET + "[convolutional]\nfilters=8\nsway=1\n", 8, ["sway=1", "no darkforge equivalent"]),
        (NET + "[convolutonal]\nfilters=8\n", 6, ["unknown section", "'convolutional'"]),
        (NET + "[lstm]\noutput=8\n", 6, ["[lstm]", "recurrent layer", "cannot compute it"]),
        (NET + "[deconvolutional]\nfilters=8\n", 6, ["[deconvolutional]", "no darkforge layer"]),
        (NET + "[route]\nlayers=-1\n", 7, ["layers", "before the first layer"]),
        (NET + "[conv]\nfilters=8\n[route]\nlayers=1\n", 9, ["to layer 1, not an earlier one"]),
        (NET + "[conv]\nfilters=8\n[yolo]\nmask=0\nnum=1\nclasses=2\n", 8, ["needs 7 channels", "gives 8"]),
        (NET + "[conv]\nfilters=8\n[yolo]\nmask=0,-1\nnum=3\n", 8, ["mask indices must be 0 or more"]),
        (NET + "[conv]\nfilters=8\n[shortcut]\n", 8, ["from", "missing required key"]),
        (
            NET + "[conv]\nfilters=8\n[conv]\nfilters=8\nsize=3\nstride=2\n[route]\nlayers=-1,-2\n",
            12,
            ["spatial sizes differ"],
        ),
        ("[net]\nheight=32\nwidth=32\n", 1, ["channels, height and width"]),
        ("[net]\nheight=32\nwidth=32\nchannels=3\npolicy=stepz\n", 5, ["unknown value 'stepz'", "'step'"]),
        ("[convolutional]\nfilters=8\n", 1, ["first section must be [net]"]),
        ("filters=8\n[net]\n", 1, ["before any [section]"]),
        (NET + "[conv]\nfilters 8\n", 7, ["expected key=value"]),
        (NET + "[net]\nbatch=1\n", 6, ["[net] must come first, once"]),
        ("", 1, ["no sections"]),
    ],
)
def test_bad_cfg_is_one_located_line(write, run_cli, text, line, words):
    path = write("bad.cfg", text)
    with pytest.raises(SpecError) as caught:
        load_cfg(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}:"), message
    assert "\n" not in message
    for word in words:
        assert word in message, message
    result = run_cli("validate", path)
    assert result.exit_code == 1 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_lenient_turns_unknown_keys_into_warnings(write, run_cli):
    path = write("l.cfg", NET + "[convolutional]\nfilters=8\nsize=3\nmystery=1\n")
    converted = convert_cfg(path, lenient=True)
    assert [layer.type for layer in converted.spec.layers] == ["Conv"]
    assert len(converted.warnings) == 1 and "mystery" in converted.warnings[0]
    assert run_cli("convert", path).exit_code == 1
    result = run_cli("convert", path, "--lenient")
    assert result.exit_code == 0 and "warning:" in result.stderr and "type: Conv" in result.stdout


# --- round trips ---------------------------------------------------------------------------------


def round_trip(path: Path, tmp: Path) -> tuple[str, str]:
    """cfg -> YAML -> cfg -> YAML, through files, as a user would."""
    first = dump_spec(load_cfg(path))
    (tmp / "a").mkdir(exist_ok=True)
    (tmp / "b").mkdir(exist_ok=True)
    yaml_file = tmp / "a" / f"{path.stem}.yaml"
    yaml_file.write_text(first)
    text, _ = to_cfg(load_spec(yaml_file))
    cfg_file = tmp / "b" / f"{path.stem}.cfg"  # same stem: the name comes from the file
    cfg_file.write_text(text)
    return first, dump_spec(load_cfg(cfg_file))


def test_tiny_round_trip_is_stable(tiny, tmp_path):
    first, second = round_trip(tiny, tmp_path)
    assert first == second
    assert "maxpool]\nsize=2\nstride=1\n\n" in to_cfg(load_cfg(tiny))[0]  # default padding left out


def test_staged_yaml_writes_darknets_flat_cfg(tmp_path):
    text, warnings = to_cfg(load_spec(ARCHS / "darknet53.yaml"))
    assert warnings == []
    assert text.count("[convolutional]") == 52 and text.count("[shortcut]") == 23
    assert text.endswith("[avgpool]\n\n[connected]\noutput=10\nactivation=linear\n")
    path = tmp_path / "d53.cfg"
    path.write_text(text)
    back = load_cfg(path)
    flat = flatten(load_spec(ARCHS / "darknet53.yaml").resolved())
    assert [layer.type for layer in back.layers] == [layer.type for layer in flat.layers]
    assert plan(back.resolved()).params == 40_595_178


def test_a_layer_reading_an_earlier_layer_gets_a_route(tmp_path):
    spec = load_spec(ARCHS / "yolo-mini.yaml")  # `Upsample from: lateral` reads layer 4, not the previous
    text, warnings = to_cfg(spec)
    path = tmp_path / "mini.cfg"
    path.write_text(text)
    back = load_cfg(path)
    assert "[route]\nlayers=-2\n\n[upsample]" in text
    assert plan(back.resolved()).params == plan(spec.resolved()).params
    assert warnings and "not in the cfg" in warnings[0]  # Darknet returns its last layer only


@pytest.mark.parametrize(
    ("yaml_layers", "words"),
    [
        ("- {type: Flatten}", ["Flatten", "Darknet has no such layer"]),
        ("- {type: ConvBnLeaky, filters: 4, slope: 0.2}", ["slope 0.1"]),
        ("- {type: ConvBnLeaky, filters: 4, bias: true}", ["a bias and batch norm"]),
        ("- {type: Conv, filters: 4, activation: gelu}", ["no activation 'gelu'"]),
    ],
)
def test_what_darknet_cannot_say_is_an_error(write, yaml_layers, words):
    path = write("n.yaml", f"name: n\ninput: {{size: 8}}\nlayers:\n  {yaml_layers}\n")
    with pytest.raises(SpecError) as caught:
        to_cfg(load_spec(path))
    for word in words:
        assert word in str(caught.value)


def test_cli_converts_both_ways_and_summarises_cfgs(tiny, run_cli, tmp_path):
    out = tmp_path / "tiny.yaml"
    assert run_cli("convert", tiny, "-o", out).exit_code == 0
    assert out.read_text().startswith("# Converted from tiny.cfg")
    back = run_cli("convert", out, "--to", "cfg")
    assert back.exit_code == 0 and back.stdout.count("[yolo]") == 2
    summary = run_cli("summary", tiny, "--json")
    assert summary.exit_code == 0 and '"params": 3500' in summary.stdout
    assert run_cli("validate", tiny).exit_code == 0
    assert darkforge.build(tiny, input_size=64)(torch.randn(1, 3, 64, 64))[1].shape == (1, 18, 64, 64)
    bad = run_cli("convert", out, "--to", "weights")
    assert bad.exit_code == 2 and "yaml -> cfg" in bad.stderr


# --- the originals (../shared/darknet-cfg), when present -------------------------------------------

# Darknet's figures: BFLOPs at the [net] size (or the size given), outputs, and parameters where known.
FIGURES = {
    "darknet53.cfg": (None, 18.57, [(1000,)], 41_609_928),
    "darknet53_448.cfg": (None, 56.87, [(1000,)], 41_609_928),
    "darknet19.cfg": (None, 7.29, [(1000,)], None),
    "resnet50.cfg": (None, 9.74, [(1000,)], None),
    "densenet201.cfg": (None, 10.85, [(1000,)], None),
    "yolov3.cfg": (416, 65.86, [(255, 13, 13), (255, 26, 26), (255, 52, 52)], 61_949_149),
    "yolov3-tiny.cfg": (416, 5.56, [(255, 13, 13), (255, 26, 26)], None),
}
FIGURES["yolov3.cfg@608"] = (None, 140.69, [(255, 19, 19), (255, 38, 38), (255, 76, 76)], 61_949_149)
ALL_CFGS = sorted(p.name for p in DARKNET_CFG.glob("*.cfg")) if DARKNET_CFG.is_dir() else ["(none)"]


@needs_cfgs
@pytest.mark.parametrize("key", sorted(FIGURES))
def test_darknets_own_figures(key):
    size, bflops, outputs, params = FIGURES[key]
    p = plan(load_cfg(DARKNET_CFG / key.split("@")[0]).resolved(input_size=size))
    assert round(p.bflops, 2) == bflops
    assert p.output_shapes == outputs
    if params is not None:
        assert p.params == params


@needs_cfgs
@pytest.mark.parametrize("name", ALL_CFGS)
def test_every_original_cfg_converts_and_round_trips(name, tmp_path):
    first, second = round_trip(DARKNET_CFG / name, tmp_path)
    assert first == second
    assert plan(load_cfg(DARKNET_CFG / name).resolved()).params > 0


@needs_cfgs
@pytest.mark.parametrize(
    "name", ["yolov3-tiny.cfg", "yolov2-tiny.cfg", "resnet18.cfg", "yolov2.cfg", "tiny.cfg"]
)
def test_small_originals_build_and_run_as_planned(name):
    model = darkforge.build(DARKNET_CFG / name, input_size=64).eval()
    p = model.plan
    assert sum(x.numel() for x in model.parameters()) == p.params
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    outs = out if isinstance(out, tuple) else (out,)
    assert [tuple(o.shape[1:]) for o in outs] == p.output_shapes
    assert counter.get_total_flops() == 2 * p.macs


def test_validating_a_cfg_does_not_import_torch(tiny):
    code = (
        f"import sys, runpy; sys.argv = ['darkforge', 'validate', {str(tiny)!r}]\n"
        "try:\n    runpy.run_module('darkforge', run_name='__main__')\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)
