""".weights: a file written by hand from the format lands tensor by tensor; our writer and reader
round-trip; sizes are checked before reading; darknet53.cfg and the staged darknet53.yaml read the
same file to the same outputs."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ARCHS, SHARED
from torch import nn

import darkforge
from darkforge.darknet.weights import load_darknet_weights, save_darknet_weights
from darkforge.errors import DataError

DARKNET_CFG = SHARED / "darknet-cfg"

# conv+BN, grouped conv without BN, a 1×1 conv with BN and a stride, connected+BN, plain connected
SMALL = """[net]
height=8
width=8
channels=3

[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky

[convolutional]
filters=6
size=3
stride=1
pad=1
groups=2
activation=relu

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=5
size=1
stride=2
activation=leaky

[connected]
batch_normalize=1
output=7
activation=leaky

[connected]
output=3
activation=linear
"""


@pytest.fixture
def small(write) -> Path:
    return write("small.cfg", SMALL)


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter and batch-norm statistic random, so nothing passes by accident."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            for p in m.parameters(recurse=False):
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model


def randomize_bn(model: nn.Module) -> nn.Module:
    """torch's initial weights (activations stay finite through 53 layers), random batch norms."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model


def hand_written(path: Path, major: int, minor: int, seen: int, arrays: list[np.ndarray]) -> None:
    """A .weights file from the format description alone: int32 major, minor, revision; `seen` as
    int64 when major*10+minor >= 2 (and both < 1000), else int32; then float32 arrays."""
    wide = major * 10 + minor >= 2 and major < 1000 and minor < 1000
    with path.open("wb") as f:
        f.write(struct.pack("<iii", major, minor, 0))
        f.write(struct.pack("<q" if wide else "<i", seen))
        for a in arrays:
            f.write(np.asarray(a, dtype="<f4").tobytes())


@pytest.mark.parametrize(("major", "minor"), [(0, 1), (0, 2), (1, 0)])
def test_a_hand_written_file_lands_tensor_by_tensor(small, tmp_path, major, minor):
    rng = np.random.default_rng(0)

    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    # Darknet's order per layer. conv: biases, [scales, mean, var], weights (out, in/groups, kh, kw);
    # connected: biases, weights (out, in), [scales, mean, var]. The maxpool has none.
    c0 = {"biases": r(4), "scales": r(4), "mean": r(4), "var": np.abs(r(4)) + 0.5, "weights": r(4, 3, 3, 3)}
    c1 = {"biases": r(6), "weights": r(6, 2, 3, 3)}
    c3 = {"biases": r(5), "scales": r(5), "mean": r(5), "var": np.abs(r(5)) + 0.5, "weights": r(5, 6, 1, 1)}
    f4 = {"biases": r(7), "weights": r(7, 5 * 2 * 2), "scales": r(7), "mean": r(7), "var": np.abs(r(7)) + 0.5}
    f5 = {"biases": r(3), "weights": r(3, 7)}
    arrays = [*c0.values(), *c1.values(), *c3.values(), *f4.values(), *f5.values()]
    path = tmp_path / "hand.weights"
    hand_written(path, major, minor, 123_456, arrays)

    model = darkforge.build(small)
    report = load_darknet_weights(model, path)
    assert str(report) == f"loaded 5 of 5 layers, {sum(p.numel() for p in model.parameters()):,} parameters"
    assert report.seen == 123_456 and report.version == (major, minor, 0)
    layers = model.layers
    expect = {
        "0.bn.bias": c0["biases"], "0.bn.weight": c0["scales"], "0.bn.running_mean": c0["mean"],
        "0.bn.running_var": c0["var"], "0.conv.weight": c0["weights"],
        "1.conv.bias": c1["biases"], "1.conv.weight": c1["weights"],
        "3.bn.bias": c3["biases"], "3.bn.weight": c3["scales"], "3.bn.running_mean": c3["mean"],
        "3.bn.running_var": c3["var"], "3.conv.weight": c3["weights"],
        "4.bn.bias": f4["biases"], "4.linear.weight": f4["weights"], "4.bn.weight": f4["scales"],
        "4.bn.running_mean": f4["mean"], "4.bn.running_var": f4["var"],
        "5.bias": f5["biases"], "5.weight": f5["weights"],
    }  # fmt: skip
    state = layers.state_dict()
    for name, value in expect.items():
        torch.testing.assert_close(state[name], torch.from_numpy(value), rtol=0, atol=0, msg=name)
    assert layers["0"].conv.bias is None and layers["4"].linear.bias is None


def test_connected_weights_stored_transposed_by_old_versions(small, tmp_path):
    # Darknet reads [connected] weights as (in, out) when major or minor > 1000 (then `seen` is int32).
    model = randomize(darkforge.build(small))
    t = {name: v.detach().numpy() for name, v in model.layers.state_dict().items()}
    arrays = [
        t[f"0.{k}"] for k in ("bn.bias", "bn.weight", "bn.running_mean", "bn.running_var", "conv.weight")
    ]
    arrays += [t["1.conv.bias"], t["1.conv.weight"]]
    arrays += [
        t[f"3.{k}"] for k in ("bn.bias", "bn.weight", "bn.running_mean", "bn.running_var", "conv.weight")
    ]
    arrays += [t["4.bn.bias"], t["4.linear.weight"].T.copy()]
    arrays += [t[f"4.bn.{k}"] for k in ("weight", "running_mean", "running_var")]
    arrays += [t["5.bias"], t["5.weight"].T.copy()]
    hand_written(tmp_path / "t.weights", 0, 1001, 7, arrays)
    fresh = darkforge.build(small)
    assert load_darknet_weights(fresh, tmp_path / "t.weights").seen == 7
    for name, value in fresh.layers.state_dict().items():
        if "num_batches" not in name:
            torch.testing.assert_close(value, model.layers.state_dict()[name], rtol=0, atol=0, msg=name)


def test_round_trip_gives_identical_outputs_and_bytes(small, tmp_path):
    model = randomize(darkforge.build(small)).eval()
    report = save_darknet_weights(model, tmp_path / "w.weights", seen=64_000)
    assert report.version == (0, 2, 0) and str(report).startswith("saved 5 of 5 layers")
    fresh = darkforge.build(small).eval()
    load_darknet_weights(fresh, tmp_path / "w.weights")
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)
    save_darknet_weights(fresh, tmp_path / "again.weights", seen=64_000)
    assert (tmp_path / "again.weights").read_bytes() == (tmp_path / "w.weights").read_bytes()
    header = struct.unpack("<iiiq", (tmp_path / "w.weights").read_bytes()[:20])
    assert header == (0, 2, 0, 64_000)


def test_size_is_checked_before_reading(small, tmp_path):
    model = randomize(darkforge.build(small))
    save_darknet_weights(model, tmp_path / "w.weights")
    good = (tmp_path / "w.weights").read_bytes()
    (tmp_path / "short.weights").write_bytes(good[:-10])
    (tmp_path / "long.weights").write_bytes(good + b"\0" * 12)
    fresh = darkforge.build(small)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(DataError) as short:
        load_darknet_weights(fresh, tmp_path / "short.weights")
    message = str(short.value)
    assert "\n" not in message and "too short" in message and "layer 5 (layers.5)" in message
    assert f"the file has {len(good) - 10:,} bytes" in message and f"{len(good):,} expected" in message
    with pytest.raises(DataError) as long:
        load_darknet_weights(fresh, tmp_path / "long.weights")
    message = str(long.value)
    assert (
        "too long: 12 bytes left over after layer 5 (layers.5)" in message
        and f"{len(good) + 12:,}" in message
    )
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())  # nothing was read
    (tmp_path / "tiny.weights").write_bytes(b"\0" * 10)
    with pytest.raises(DataError, match="10 bytes is too short for a Darknet weights header"):
        load_darknet_weights(fresh, tmp_path / "tiny.weights")


def test_partial_files_and_cutoff(small, tmp_path):
    model = randomize(darkforge.build(small))
    report = save_darknet_weights(model, tmp_path / "small.conv.3", cutoff=3)  # layers 0-2: two convs
    assert (report.layers, report.total) == (2, 5)
    fresh = darkforge.build(small)
    (tmp_path / "plain.weights").write_bytes((tmp_path / "small.conv.3").read_bytes())
    with pytest.raises(DataError, match=r"holds exactly the layers up to layer 1: pass cutoff=2"):
        load_darknet_weights(fresh, tmp_path / "plain.weights")
    report = load_darknet_weights(fresh, tmp_path / "small.conv.3")  # the name says cutoff=3
    assert str(report) == f"loaded 2 of 5 layers, {4 * 27 + 8 + 6 * 18 + 6} parameters"
    torch.testing.assert_close(fresh.layers["1"].conv.weight, model.layers["1"].conv.weight)
    assert not torch.equal(fresh.layers["3"].conv.weight, model.layers["3"].conv.weight)
    full = tmp_path / "full.weights"
    save_darknet_weights(model, full)
    report = load_darknet_weights(darkforge.build(small), full, cutoff=4)  # extra bytes allowed
    assert report.layers == 3


def test_conv_bias_under_batch_norm_is_folded_exactly(tmp_path, write):
    # The tutorial's Darknet-53 has a bias before every batch norm; Darknet has none: the bias
    # moves into the rolling mean, and the bias-free network computes the same function.
    arch = "name: b\ninput: {size: 8}\nlayers:\n  - {type: ConvBnLeaky, filters: 4, bias: BIAS}\n"
    with_bias = randomize(darkforge.build(write("a.yaml", arch.replace("BIAS", "true")))).eval()
    save_darknet_weights(with_bias, tmp_path / "b.weights")
    without = darkforge.build(write("b.yaml", arch.replace("BIAS", "false"))).eval()
    load_darknet_weights(without, tmp_path / "b.weights")
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(without(x), with_bias(x), rtol=1e-5, atol=1e-5)


def test_public_api_and_cli(small, tmp_path, run_cli):
    from safetensors.torch import load_file

    assert darkforge.load_darknet_weights is load_darknet_weights
    model = randomize(darkforge.build(small))
    darkforge.save_darknet_weights(model, tmp_path / "w.weights")
    result = run_cli("convert", tmp_path / "w.weights", "--cfg", small, "-o", tmp_path / "w.safetensors")
    assert result.exit_code == 0 and result.stdout.startswith("loaded 5 of 5 layers")
    state = load_file(tmp_path / "w.safetensors")
    torch.testing.assert_close(state["layers.4.linear.weight"], model.layers["4"].linear.weight)
    result = run_cli("convert", tmp_path / "w.safetensors", "--cfg", small, "-o", tmp_path / "back.weights")
    assert result.exit_code == 0
    assert (tmp_path / "back.weights").read_bytes() == (tmp_path / "w.weights").read_bytes()
    assert run_cli("convert", tmp_path / "w.weights", "-o", tmp_path / "x.safetensors").exit_code == 2
    bad = run_cli(
        "convert", tmp_path / "w.weights", "--cfg", ARCHS / "yolo-mini.yaml", "-o", tmp_path / "y.safetensors"
    )
    assert bad.exit_code == 1 and "too short" in bad.stderr and "\n" not in bad.stderr.strip()


@pytest.mark.skipif(not DARKNET_CFG.is_dir(), reason="../shared/darknet-cfg is not here")
def test_darknet53_cfg_and_staged_yaml_read_the_same_file(tmp_path):
    # darknet53.cfg ends avgpool -> 1×1 conv 1000 (bias) -> softmax (logits here); the staged yaml
    # ends GlobalAvgPool -> Linear: the conv's (1000, 1024, 1, 1) floats are the Linear's (1000, 1024).
    # 64×64 inputs keep this fast; the weights do not depend on the input size.
    cfg = randomize_bn(darkforge.build(DARKNET_CFG / "darknet53.cfg", input_size=64)).eval()
    save_darknet_weights(cfg, tmp_path / "darknet53.weights")
    staged = darkforge.build(ARCHS / "darknet53.yaml", input_size=64, classes=1000).eval()
    report = load_darknet_weights(staged, tmp_path / "darknet53.weights")
    assert str(report) == "loaded 53 of 53 layers, 41,609,928 parameters"
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = cfg(x), staged(x)
    assert a.shape == b.shape == (2, 1000)
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    # darknet53.conv.74: the backbone's first 74 layers (52 convs) load into the staged network too
    save_darknet_weights(cfg, tmp_path / "darknet53.conv.74", cutoff=74)
    report = load_darknet_weights(darkforge.build(ARCHS / "darknet53.yaml"), tmp_path / "darknet53.conv.74")
    assert (report.layers, report.params) == (52, 40_584_928)
