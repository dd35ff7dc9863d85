"""Export: each format written from a checkpoint, run again, and compared with the torch model."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ARCHS

from darkforge.darknet.weights import load_darknet_weights
from darkforge.export import run as export
from darkforge.nn.network import Network
from darkforge.weights import checkpoint
from darkforge.weights.transfer import build

HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))
needs_onnx = pytest.mark.skipif(
    not HAVE_ONNX, reason="onnx, onnxscript and onnxruntime are not installed (pip install 'darkforge[onnx]')"
)
MEAN, STD = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The test machine's cores are shared: two torch threads contending run nano convs ~100× slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def trained_looking(model: Network, seed: int = 0) -> Network:
    """Batch-norm statistics and affine terms away from their defaults, so an export that drops or
    misplaces them shows up as a difference."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(1 + 0.2 * torch.randn(n, generator=g))
                module.bias.copy_(0.1 * torch.randn(n, generator=g))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                module.running_var.copy_(0.5 + torch.rand(n, generator=g))
    return model.eval()


def make_checkpoint(path: Path, arch: Path, scale: str | None, classes: int) -> Path:
    spec_text = arch.read_text()
    names = [f"class{i}" for i in range(classes)]
    info = checkpoint.Inference(spec_text, str(arch), scale, names, [], MEAN, STD)
    info.input = list(info.spec().resolved(scale).input.shape)
    checkpoint.save(path, trained_looking(info.build()), info)
    return path


@pytest.fixture(scope="module")
def darknet_ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("d53") / "best.pt", ARCHS / "darknet53.yaml", "nano", 10)


@pytest.fixture(scope="module")
def yolo_ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("yolo") / "last.pt", ARCHS / "yolo-mini.yaml", "nano", 4)


def torch_outputs(ckpt: Path, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    model, _, _ = checkpoint.load_model(ckpt)
    with torch.no_grad():
        out = model(x)
    return out if isinstance(out, tuple) else (out,)


def max_diff(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> float:
    assert [t.shape for t in a] == [t.shape for t in b]
    return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp" in p.name]


@needs_onnx
def test_onnx_matches_torch_with_a_dynamic_batch(run_cli, darknet_ckpt):
    import onnx
    import onnxruntime

    result = run_cli("export", darknet_ckpt, "--format", "onnx", "--dynamic-batch", "--verify")
    assert result.exit_code == 0, result.output
    path = darknet_ckpt.with_suffix(".onnx")  # default: beside the checkpoint, same stem
    assert f"-> {path} (onnx, input batch×3×32×32" in result.output
    assert "verified with onnxruntime on batch 2, 3: max abs difference" in result.output
    model = onnx.load(path)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert model.graph.input[0].name == "input" and dims == ["batch", 3, 32, 32]
    assert [o.name for o in model.graph.output] == ["fc"]
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert (
        meta["classes"][:2] == ["class0", "class1"] and meta["mean"] == MEAN and meta["input"] == [3, 32, 32]
    )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):  # sizes the export never saw
        x = torch.randn(batch, 3, 32, 32)
        (y,) = session.run(None, {"input": x.numpy()})
        assert y.shape == (batch, 10)
        assert max_diff((torch.from_numpy(y),), torch_outputs(darknet_ckpt, x)) < 1e-4
    assert leftovers(path.parent) == []


@needs_onnx
def test_onnx_of_a_two_output_graph_is_static_by_default(yolo_ckpt, tmp_path, monkeypatch):
    import onnx

    done = export.export(yolo_ckpt, "onnx", tmp_path / "yolo.onnx")
    assert done.input == (1, 3, 64, 64)
    model = onnx.load(done.path)
    shapes = {
        o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output
    }
    assert shapes == {"head5": [1, 27, 8, 8], "head4": [1, 27, 16, 16]}  # in `outputs` order
    check = export.verify(done)
    assert check.ok and check.batches == (1,) and check.runner == "onnxruntime"
    # without onnxruntime, --verify falls back on onnx's own NumPy interpreter
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    check = export.verify(done)
    assert check.runner == "onnx.reference" and check.ok, check


def test_onnx_without_its_packages_says_what_to_install(run_cli, darknet_ckpt, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # find_spec: not installed
    result = run_cli("export", darknet_ckpt, "--format", "onnx", "-o", tmp_path / "x.onnx")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "pip install 'darkforge[onnx]'" in result.output
    assert not (tmp_path / "x.onnx").exists()


def test_pt2_reloads_and_runs_a_two_output_graph_at_any_batch(run_cli, yolo_ckpt, tmp_path):
    out = tmp_path / "yolo.pt2"
    result = run_cli("export", yolo_ckpt, "--format", "pt2", "-o", out, "--dynamic-batch", "--verify")
    assert result.exit_code == 0, result.output
    assert "verified with torch.export.load on batch 2, 3" in result.output
    extra = {"darkforge.json": ""}
    module = torch.export.load(out, extra_files=extra).module()
    assert json.loads(extra["darkforge.json"])["classes"] == ["class0", "class1", "class2", "class3"]
    for batch in (1, 4):
        x = torch.randn(batch, 3, 64, 64)
        with torch.no_grad():
            got = tuple(module(x))
        assert [tuple(t.shape) for t in got] == [(batch, 27, 8, 8), (batch, 27, 16, 16)]
        assert max_diff(got, torch_outputs(yolo_ckpt, x)) < 1e-5


def test_pt2_at_another_input_size(darknet_ckpt, tmp_path):
    done = export.export(darknet_ckpt, "pt2", tmp_path / "d.pt2", input_size=64, batch=2)
    assert done.input == (2, 3, 64, 64)
    module = torch.export.load(done.path).module()
    x = torch.randn(2, 3, 64, 64)  # global average pooling makes the weights size-independent
    with torch.no_grad():
        assert max_diff((module(x),), torch_outputs(darknet_ckpt, x)) < 1e-5
    assert export.verify(done).batches == (2,)


def test_weights_reload_into_a_fresh_network_identically(run_cli, darknet_ckpt, tmp_path):
    out = tmp_path / "d53.weights"
    result = run_cli("export", darknet_ckpt, "--format", "weights", "-o", out, "--verify")
    assert result.exit_code == 0, result.output
    assert f"also wrote {tmp_path / 'd53.cfg'}" in result.output
    assert "Darknet feeds pixels in [0, 1]" in result.output  # the checkpoint normalizes its inputs
    assert "max abs difference 0.00e+00" in result.output
    fresh = build(ARCHS / "darknet53.yaml", scale="nano").eval()
    report = load_darknet_weights(fresh, out)
    assert report.layers == report.total == 25
    original, _, _ = checkpoint.load_model(darknet_ckpt)
    theirs = original.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in fresh.state_dict().items() if "num_batches" not in k)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(fresh(x), original(x))
    # the .cfg beside it is what Darknet reads the file with: the two alone give the same network
    from darkforge.darknet.read import convert_cfg

    darknet = build(convert_cfg(tmp_path / "d53.cfg").spec).eval()
    assert load_darknet_weights(darknet, out).layers == 25
    with torch.no_grad():
        assert torch.equal(darknet(x), original(x))


def test_weights_refuse_a_network_darknet_cannot_express(run_cli, tmp_path):
    arch = tmp_path / "steep.yaml"
    arch.write_text(
        "name: steep\ninput: {channels: 3, size: 16}\nclasses: 3\nlayers:\n"
        "  - {type: ConvBnLeaky, filters: 8, slope: 0.2}\n  - {type: GlobalAvgPool}\n  - {type: Linear}\n"
    )
    ckpt = make_checkpoint(tmp_path / "steep.pt", arch, None, 3)
    result = run_cli("export", ckpt, "--format", "weights")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "Darknet cannot express steep" in result.output
    assert "slope 0.1" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["steep.pt", "steep.yaml"]  # nothing written


def test_safetensors_alone_rebuilds_the_model(run_cli, darknet_ckpt, tmp_path):
    out = tmp_path / "d53.safetensors"
    result = run_cli("export", darknet_ckpt, "-o", out, "--verify")  # format from the suffix
    assert result.exit_code == 0, result.output
    model, info, _ = checkpoint.load_model(out)
    assert info.classes[-1] == "class9" and info.mean == MEAN and info.scale == "nano"
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), torch_outputs(darknet_ckpt, x)[0])


def test_verify_fails_past_the_tolerance(run_cli, darknet_ckpt, tmp_path, monkeypatch):
    form = export.FORMATS["safetensors"]

    def drifting(path, source):
        run, _ = form.load(path, source)
        return (lambda x: tuple(t + 1e-3 for t in run(x))), "a drifting runtime"

    monkeypatch.setitem(export.FORMATS, "safetensors", dataclasses.replace(form, load=drifting))
    result = run_cli("export", darknet_ckpt, "-o", tmp_path / "d.safetensors", "--verify")
    assert result.exit_code == 1
    assert "verification failed: a drifting runtime on batch 2, 3: max abs difference 1.00e-03 > 0.0001" in (
        result.output
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["{missing}", "--format", "pt2"], 1, "no such checkpoint"),
        (["{foreign}", "--format", "pt2"], 1, "not a readable checkpoint"),
        (["{ckpt}", "--format", "pt2", "-o", "{tmp}/no/such/folder/x.pt2"], 2, "does not exist"),
        (["{ckpt}", "--format", "tflite"], 2, "'tflite' is not one of"),
        (["{ckpt}", "-o", "{tmp}/x.bin"], 2, "which format?"),
        (
            ["{ckpt}", "--format", "weights", "--input-size", "64"],
            2,
            "--input-size does not apply to weights",
        ),
        (["{ckpt}", "--format", "pt2", "--batch", "2", "--dynamic-batch"], 2, "give one"),
        (["{ckpt}", "--format", "pt2", "--input-size", "0"], 2, "0 is not in the range"),
        (["{tmp}/d.safetensors", "--format", "safetensors"], 2, "is the checkpoint being exported"),
    ],
)
def test_bad_input_ends_in_one_line(run_cli, darknet_ckpt, tmp_path, args, code, message):
    (tmp_path / "foreign.pt").write_bytes(b"not a checkpoint at all")
    export.export(darknet_ckpt, "safetensors", tmp_path / "d.safetensors")
    names = {
        "missing": tmp_path / "none.pt",
        "foreign": tmp_path / "foreign.pt",
        "ckpt": darknet_ckpt,
        "tmp": tmp_path,
    }
    result = run_cli("export", *[a.format(**names) for a in args])
    assert result.exit_code == code, result.output
    assert result.output.count("\n") == 1 and message in result.output, result.output
    assert "Traceback" not in result.output and leftovers(tmp_path) == []


@needs_onnx
@pytest.mark.slow  # ~20 s on two shared cores: the 40.6 M-parameter graph, 162 MB of ONNX
def test_full_size_darknet53_onnx(tmp_path):
    ckpt = make_checkpoint(tmp_path / "full.pt", ARCHS / "darknet53.yaml", None, 10)
    start = time.perf_counter()
    done = export.export(ckpt, "onnx", dynamic_batch=True)
    check = export.verify(done)
    assert check.ok and check.max_diff < 1e-4, check
    assert time.perf_counter() - start < 120


def test_a_checkpoint_trained_at_another_input_size_loads_and_exports_at_that_size(run_cli, tmp_path):
    # `train --input-size 48` keeps the file's own size in arch_yaml and the trained one in `input`
    spec_text = (ARCHS / "yolo-mini.yaml").read_text()
    info = checkpoint.Inference(
        spec_text, "yolo-mini.yaml", "nano", ["a", "b", "c", "d"], [3, 48, 48], MEAN, STD
    )
    path = checkpoint.save(tmp_path / "best.pt", trained_looking(info.build()), info) or tmp_path / "best.pt"
    model, loaded, _ = checkpoint.load_model(path)
    assert model.plan.input == (3, 48, 48) and loaded.input_size == 48
    result = run_cli("export", path, "--format", "onnx")
    assert result.exit_code == 0, result.output
    assert "input 1×3×48×48" in result.output
