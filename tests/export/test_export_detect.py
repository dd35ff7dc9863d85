"""Export of a detector: the decoded output through onnxruntime and torch.export equals PyTorch's,
and the `--nms` graph keeps exactly what torchvision's batched_nms keeps of the same boxes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from tiny_detector import save_tiny_detector
from torchvision.ops import batched_nms, box_convert

from darkforge.export import run as export
from darkforge.export.detect import Nms, check_nms, nms_rows
from darkforge.weights import checkpoint

HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="onnx, onnxscript and onnxruntime are not installed")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("det")
    return save_tiny_detector(folder / "best.pt", str(folder / "set" / "data.yaml"))


def torch_decoded(path: Path, x: torch.Tensor) -> torch.Tensor:
    model, _, _ = checkpoint.load_model(path)
    with torch.no_grad():
        decoded, _ = model.eval()(x)
    return decoded


def batched_nms_of(decoded: torch.Tensor, conf: float, iou: float) -> list[torch.Tensor]:
    """The trusted reference, spelled out: per image, each anchor's best class above conf, then
    torchvision's batched_nms; rows x1, y1, x2, y2, score, class."""
    out = []
    for image in decoded:
        scores, classes = image[4:].max(0)
        keep = scores > conf
        boxes = box_convert(image[:4, keep].T, "cxcywh", "xyxy")
        kept = batched_nms(boxes, scores[keep], classes[keep], iou)
        out.append(torch.cat([boxes[kept], scores[keep][kept, None], classes[keep][kept, None].float()], 1))
    return out


@needs_onnx
def test_onnx_outputs_the_decoded_boxes_of_pytorch(run_cli, ckpt, tmp_path):
    import onnx
    import onnxruntime

    path = tmp_path / "det.onnx"
    result = run_cli("export", ckpt, "--format", "onnx", "-o", path, "--dynamic-batch", "--verify")
    assert result.exit_code == 0, result.output
    assert "verified with onnxruntime on batch 2, 3" in result.output
    model = onnx.load(path)
    assert [o.name for o in model.graph.output] == ["decoded"]
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert (
        meta["task"] == "detect"
        and meta["classes"] == ["cat", "dog", "bird"]
        and "decoded" in meta["outputs"]
    )
    # no folder of this machine in the file: names only
    assert meta["arch_name"] == "tinydet.yaml" and meta["data"] == "data.yaml" and "data_dir" not in meta
    assert str(tmp_path.parent) not in json.dumps(meta)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(4, 3, 32, 32)  # a batch size the export never saw
    (y,) = session.run(None, {"input": x.numpy()})
    assert y.shape == (4, 4 + 3, 8 * 8 + 4 * 4)
    assert (torch.from_numpy(y) - torch_decoded(ckpt, x)).abs().max().item() < 1e-4


@needs_onnx
def test_onnx_nms_keeps_what_batched_nms_keeps(run_cli, ckpt, tmp_path):
    import onnxruntime

    path = tmp_path / "nms.onnx"
    result = run_cli("export", ckpt, "--format", "onnx", "-o", path, "--dynamic-batch", "--nms", "--verify")
    assert result.exit_code == 0, result.output
    assert "boxes kept equal torchvision's batched_nms on the same boxes" in result.output
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["detections", "decoded"]
    x = torch.rand(3, 3, 32, 32)
    detections, decoded = (torch.from_numpy(a) for a in session.run(None, {"input": x.numpy()}))
    assert (decoded - torch_decoded(ckpt, x)).abs().max().item() < 1e-4
    expected = batched_nms_of(decoded, 0.25, 0.7)
    candidates = (decoded[:, 4:].max(1).values > 0.25).sum().item()
    assert 0 < len(detections) < candidates  # boxes in, and NMS suppressed some
    for i, want in enumerate(expected):
        got = detections[detections[:, 0] == i, 1:]
        assert len(want) > 0 and len(got) == len(want)
        assert torch.equal(got[:, 5], want[:, 5])  # the same boxes, in the same order, exactly
        assert (got[:, :5] - want[:, :5]).abs().max().item() < 1e-4


@needs_onnx
def test_onnx_nms_settings_are_in_the_graph(ckpt, tmp_path):
    import onnxruntime

    done = export.export(ckpt, "onnx", tmp_path / "few.onnx", nms=Nms(conf=0.4, iou=0.3, max_det=2), batch=2)
    session = onnxruntime.InferenceSession(str(done.path), providers=["CPUExecutionProvider"])
    x = torch.rand(2, 3, 32, 32)
    detections, decoded = (torch.from_numpy(a) for a in session.run(None, {"input": x.numpy()}))
    for i, want in enumerate(batched_nms_of(decoded, 0.4, 0.3)):
        got = detections[detections[:, 0] == i, 1:]
        assert len(want) > 2 and len(got) == 2  # max_det per image
        assert torch.equal(got[:, 5], want[:2, 5]) and (got[:, :5] - want[:2, :5]).abs().max() < 1e-4
    assert export.verify(done).ok


def test_pt2_decoded_and_nms_verify(run_cli, ckpt, tmp_path):
    result = run_cli("export", ckpt, "--format", "pt2", "-o", tmp_path / "d.pt2", "--nms", "--verify")
    assert result.exit_code == 0, result.output
    assert "verified with torch.export.load on batch 1" in result.output and "NMS: the " in result.output
    program = torch.export.load(tmp_path / "d.pt2").module()
    x = torch.rand(1, 3, 32, 32)
    detections, decoded = program(x)
    assert (decoded - torch_decoded(ckpt, x)).abs().max().item() < 1e-4
    assert len(detections) == len(batched_nms_of(decoded, 0.25, 0.7)[0]) > 0


def test_check_nms_finds_a_missing_or_moved_box():
    g = torch.Generator().manual_seed(0)
    decoded = torch.rand(2, 7, 80, generator=g)
    decoded[:, :2] *= 32
    decoded[:, 2:4] *= 12
    settings = Nms(0.25, 0.5, 300)
    rows = nms_rows(decoded, settings.conf, settings.iou, settings.max_det)
    assert check_nms(rows, decoded, settings, 1e-4) is None and len(rows) > 10
    assert "boxes after NMS" in str(check_nms(rows[1:], decoded, settings, 1e-4))
    moved = rows.clone()
    moved[0, 1] += 0.01
    assert "differ from batched_nms' by 1.00e-02" in str(check_nms(moved, decoded, settings, 1e-4))


def test_nms_flags_that_do_not_apply(run_cli, ckpt, tmp_path):
    cases = [
        (["--format", "onnx", "--conf", "0.3"], "--conf sets the NMS of the exported graph; add --nms"),
        (["--format", "safetensors", "--nms"], "--nms does not apply to safetensors"),
    ]
    for args, text in cases:
        result = run_cli("export", ckpt, *args, "-o", tmp_path / "x.out")
        assert result.exit_code == 2 and text in result.output, result.output
    classifier = tmp_path / "cls.pt"
    info = checkpoint.Inference(
        "version: 1\nname: c\ninput: {channels: 3, size: 8}\nclasses: 2\nlayers:\n"
        "  - {type: Conv, filters: 4, size: 3}\n  - {type: GlobalAvgPool}\n  - {type: Linear}\n",
        "c.yaml", None, ["a", "b"], [3, 8, 8], [0.0] * 3, [1.0] * 3,
    )  # fmt: skip
    checkpoint.save(classifier, info.build(), info)
    result = run_cli("export", classifier, "--format", "pt2", "--nms")
    assert result.exit_code == 2 and "has no Detect head as its output" in result.output, result.output


def test_verify_holds_boxes_in_stride_units_and_probabilities_as_they_are():
    from darkforge.export.detect import differences

    strides = torch.tensor([8.0] * 4 + [32.0] * 2)
    a = torch.rand(1, 7, 6)
    b = a.clone()
    b[0, 0, 5] += 1e-3  # a box coordinate of a stride-32 anchor: 1e-3 px is 3.1e-5 strides
    worst, pixels = differences((a,), (b,), strides)
    assert worst == pytest.approx(1e-3 / 32, rel=1e-2) and pixels == pytest.approx(1e-3, rel=1e-2)
    b[0, 0, 0] += 1e-3  # the same at stride 8: 1.25e-4, over the tolerance
    assert differences((a,), (b,), strides)[0] == pytest.approx(1e-3 / 8, rel=1e-2)
    b = a.clone()
    b[0, 5, 2] += 2e-4  # a class probability: held as it is
    assert differences((a,), (b,), strides)[0] == pytest.approx(2e-4, rel=1e-2)
    rows = torch.tensor([[0.0, 1, 2, 3, 4, 0.9, 1]])
    moved = rows.clone()
    moved[0, 6] = 2  # another class is never within tolerance
    assert differences((rows,), (moved,), strides)[0] == float("inf")
