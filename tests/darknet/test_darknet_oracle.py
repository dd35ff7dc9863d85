"""The numeric oracle (../shared/darknet-cfg/alexeyab-oracle): AlexeyAB Darknet's own forward
outputs on 26 tiny networks, one feature each. Built from the cfg with the .weights, in eval mode,
darkforge must match within the oracle's bound, and write the weights back byte for byte."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from darkforge.darknet.read import convert_cfg
from darkforge.darknet.weights import load_darknet_weights, save_darknet_weights
from darkforge.spec.base import NetworkSpec
from darkforge.spec.shapes import plan
from darkforge.views.darknet_table import fork_bflops, fork_total
from darkforge.weights.transfer import build
from tests.conftest import SHARED

ORACLE = SHARED / "darknet-cfg" / "alexeyab-oracle"
NAMES = sorted(p.stem for p in ORACLE.glob("*.json")) if ORACLE.is_dir() else []
needs_oracle = pytest.mark.skipif(not NAMES, reason="needs ../shared/darknet-cfg/alexeyab-oracle")


def _outputs_as_darknet(spec: NetworkSpec, decode: bool) -> NetworkSpec:
    """The two output switches set to what Darknet returns: the softmax's probabilities (darkforge
    returns logits by default, for the loss) and, with `decode`, [yolo]'s decoded boxes."""
    layers = []
    for layer in spec.layers:
        if layer.type == "Softmax":
            layer = layer.model_copy(update={"logits": False})
        if layer.type in ("Yolo", "GaussianYolo"):
            layer = layer.model_copy(update={"decode": decode})
        layers.append(layer)
    return spec.model_copy(update={"layers": layers})


def _run(name: str, decode: bool) -> tuple[list[torch.Tensor], dict]:
    meta = json.loads((ORACLE / f"{name}.json").read_text())
    net = build(_outputs_as_darknet(convert_cfg(ORACLE / f"{name}.cfg").spec, decode)).eval()
    load_darknet_weights(net, ORACLE / f"{name}.weights")
    shape = [meta["input"][k] for k in ("c", "h", "w")]
    x = torch.from_numpy(np.fromfile(ORACLE / f"{name}.input.bin", "<f4").reshape(1, *shape))
    with torch.no_grad():
        out = net(x)
    return list(out) if isinstance(out, tuple) else [out], meta


def _check(got: torch.Tensor, meta: dict, tensor: dict) -> None:
    data = np.fromfile(ORACLE / f"{meta['name']}.out.bin", "<f4")
    ref = data[tensor["offset"] // 4 : (tensor["offset"] + tensor["nbytes"]) // 4].reshape(tensor["shape"])
    mine = got[0].numpy().reshape(ref.shape)
    bound = 5e-6 * max(1.0, float(np.abs(ref).max()))
    diff = float(np.abs(mine - ref).max())
    assert diff <= bound, f"{meta['name']} {tensor['name']} (layer {tensor['layer']}): {diff} > {bound}"


@needs_oracle
@pytest.mark.parametrize("name", NAMES)
def test_darknets_outputs(name):
    for decode in (False, True):  # [yolo]: its input (the raw conv), then its decoded output
        outputs, meta = _run(name, decode)
        tensors = meta["outputs"]["tensors"]
        if name == "yolo":
            tensors = [t for t in tensors if t["name"] == ("yolo_output" if decode else "yolo_input")]
        assert len(outputs) == len(tensors)
        for got, tensor in zip(outputs, tensors, strict=True):
            _check(got, meta, tensor)
        if name != "yolo":
            break


@needs_oracle
@pytest.mark.parametrize("name", NAMES)
def test_weights_written_back_are_the_same_bytes(name, tmp_path):
    net = build(convert_cfg(ORACLE / f"{name}.cfg").spec)
    report = load_darknet_weights(net, ORACLE / f"{name}.weights")
    assert (report.version, report.seen) == ((0, 2, 5), 5_000_000_000)
    save_darknet_weights(net, tmp_path / "back.weights", seen=report.seen, version=report.version)
    assert (tmp_path / "back.weights").read_bytes() == (ORACLE / f"{name}.weights").read_bytes()


@needs_oracle
def test_cli_weights_through_safetensors_and_back_are_the_same_bytes(run_cli, tmp_path):
    cfg, weights = str(ORACLE / "shortcut_per_channel.cfg"), ORACLE / "shortcut_per_channel.weights"
    there = str(tmp_path / "w.safetensors")
    assert run_cli("convert", str(weights), "--cfg", cfg, "-o", there).exit_code == 0
    back = tmp_path / "back.weights"
    result = run_cli("convert", there, "--cfg", cfg, "-o", str(back))
    assert result.exit_code == 0, result.stderr
    assert back.read_bytes() == weights.read_bytes()


def test_batch_norm_as_each_darknet_computes_it(write):
    cfg = "[net]\nheight=4\nwidth=4\nchannels=2\n\n[convolutional]\nbatch_normalize=1\nfilters=3\n"
    cfg += "size=1\nactivation=linear\n"
    path = write("bn.cfg", cfg)
    torch.manual_seed(0)
    x = torch.randn(1, 2, 4, 4)
    outputs = {}
    for darknet in ("alexeyab", "pjreddie"):
        net = build(convert_cfg(path, darknet=darknet).spec)
        bn = net.layers["0"].bn
        assert bn.momentum == 0.01  # Darknet's rolling update, 0.99·old + 0.01·batch
        with torch.no_grad():
            bn.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3]))
            bn.running_var.copy_(torch.tensor([0.01, 0.5, 2.0]))
            bn.weight.copy_(torch.tensor([1.5, 0.5, 1.0]))
            bn.bias.copy_(torch.tensor([0.2, 0.0, -0.1]))
            outputs[darknet] = net.eval()(x)
        conv = net.layers["0"].conv(x).detach().numpy()[0]
        mean, var = bn.running_mean.numpy()[:, None, None], bn.running_var.numpy()[:, None, None]
        scale, shift = bn.weight.detach().numpy()[:, None, None], bn.bias.detach().numpy()[:, None, None]
        norm = np.sqrt(var + 1e-5) if darknet == "alexeyab" else np.sqrt(var) + 1e-6
        expected = (conv - mean) / norm * scale + shift
        np.testing.assert_allclose(outputs[darknet][0].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert (outputs["alexeyab"] - outputs["pjreddie"]).abs().max() > 1e-4  # var 0.01: visibly apart


@needs_oracle
@pytest.mark.parametrize("name", NAMES)
def test_every_layer_has_darknets_shape_params_and_bflops(name):
    meta = json.loads((ORACLE / f"{name}.json").read_text())
    p = plan(convert_cfg(ORACLE / f"{name}.cfg").spec)
    for info, layer in zip(p.layers, meta["layers"], strict=True):
        where = f"{name} layer {info.index} ({layer['section']} -> {info.spec.type})"
        if len(info.cost.output) == 3:
            assert info.cost.output == (layer["c"], layer["h"], layer["w"]), where
        assert info.cost.params == layer["params"], where
        bflops = fork_bflops(info.spec, [p.shape_of(s) for s in info.sources], info.cost)
        assert bflops == pytest.approx(layer["bflops"], abs=1e-9), where
    assert p.params == meta["total_params"]
    assert f"{fork_total(p):5.3f}".strip() == meta["total_bflops_printed"]


def test_gaussian_yolo_decodes_as_its_forward(write):
    """forward_gaussian_yolo_layer, written out entry by entry (no oracle has a Gaussian head)."""
    classes, s = 2, 1.1
    text = "[net]\nheight=4\nwidth=4\nchannels=22\n\n[Gaussian_yolo]\nmask=0,1\nnum=2\nclasses=2\n"
    spec = convert_cfg(write("g.cfg", text + f"scale_x_y={s}\n")).spec
    net = build(_outputs_as_darknet(spec, decode=True)).eval()
    torch.manual_seed(0)
    x = torch.randn(1, 22, 4, 4) * 3
    got = net(x)[0].view(2, classes + 9, 16).numpy()
    raw = x[0].view(2, classes + 9, 16).double().numpy()
    want = raw.copy()
    for n in range(2):
        for entries in ((0, 1), (2, 3), (5,), (7,), tuple(range(8, 9 + classes))):
            for e in entries:
                want[n, e] = 1 / (1 + np.exp(-raw[n, e]))
        for e in (0, 2):
            want[n, e] = want[n, e] * s - 0.5 * (s - 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
