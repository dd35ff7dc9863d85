"""`darkforge eval` and `darkforge predict` on a detector checkpoint, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_detector import NAMES, save_tiny_detector
from torchvision.ops import batched_nms, box_convert

from darkforge.weights import checkpoint

# val images of several shapes (letterbox pads x, pads y, shrinks, keeps), named by number as COCO's
SIZES = {"1.jpg": (48, 64), "2.png": (30, 40), "3.png": (32, 32), "4.jpg": (64, 32), "5.png": (20, 50)}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_data(
    root: Path, labels: dict[str, list[tuple[int, float, float, float, float]]] | None = None
) -> Path:
    """images/{train,val}/ + labels/ and data.yaml; `labels`: val file -> (class, x1, y1, x2, y2) pixels."""
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for name, (h, w) in SIZES.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            root / "images/val" / name, quality=95
        )
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            root / "images/train" / name, quality=95
        )
        rows = (labels or {}).get(name, [(0, 2, 3, w - 4, h - 2)])
        text = "".join(
            f"{c} {(x1 + x2) / 2 / w!r} {(y1 + y2) / 2 / h!r} {(x2 - x1) / w!r} {(y2 - y1) / h!r}\n"
            for c, x1, y1, x2, y2 in rows
        )
        for split in ("train", "val"):
            (root / "labels" / split / name).with_suffix(".txt").write_text(text)
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(NAMES))
    path = root / "data.yaml"
    path.write_text(f"path: .\ntrain: images/train\nval: images/val\nnames:\n{names}")
    return path


@pytest.fixture
def detector(tmp_path: Path) -> tuple[Path, Path]:
    data = write_data(tmp_path / "set")
    return save_tiny_detector(tmp_path / "best.pt", str(data)), data


def test_predict_writes_coco_results_drawings_and_a_line_per_image(run_cli, detector, tmp_path):
    ckpt, data = detector
    out = tmp_path / "out"
    result = run_cli("predict", ckpt, data.parent / "images/val", "--conf", "0.5", "-o", out)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == len(SIZES) + 1 and f"in {out}/: predictions.json" in lines[-1]
    found = json.loads((out / "predictions.json").read_text())
    assert found and set(found[0]) == {"image_id", "category_id", "bbox", "score"}
    for name, (h, w) in SIZES.items():
        mine = [r for r in found if r["image_id"] == int(Path(name).stem)]  # numeric stems: numbers
        line = next(x for x in lines if x.startswith(str(data.parent / "images/val" / name)))
        assert f": {len(mine)} box" in line  # "3 boxes: 2 cat, 1 bird (best 0.71)"
        for r in mine:
            x, y, bw, bh = r["bbox"]
            assert x >= 0 and y >= 0 and x + bw <= w + 1e-3 and y + bh <= h + 1e-3 and r["score"] > 0.5
            assert r["category_id"] in (0, 1, 2)
        drawn = Image.open(out / f"{Path(name).stem}.jpg")
        factor = -(-256 // min(h, w))  # draw_detections enlarges small images by a whole factor
        assert drawn.size == (w * factor, h * factor)
    # a 32×32 image is the network's input as it is: the boxes are batched_nms' on its own output
    model, _, _ = checkpoint.load_model(ckpt)
    pixels = torch.from_numpy(np.array(Image.open(data.parent / "images/val/3.png"))).permute(2, 0, 1)
    with torch.no_grad():
        decoded = model.eval()(pixels[None].float() / 255)[0][0]
    scores, classes = decoded[4:].max(0)
    keep = scores > 0.5
    boxes = box_convert(decoded[:4, keep].T, "cxcywh", "xyxy").clamp(0, 32)
    kept = batched_nms(box_convert(decoded[:4, keep].T, "cxcywh", "xyxy"), scores[keep], classes[keep], 0.7)
    mine = [r for r in found if r["image_id"] == 3]
    assert len(mine) == len(kept) > 0
    for r, k in zip(mine, kept.tolist(), strict=True):
        xyxy = boxes[k].tolist()
        assert r["bbox"] == pytest.approx([xyxy[0], xyxy[1], xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]], abs=2e-3)
        assert r["category_id"] == classes[keep][k].item()


def test_eval_of_its_own_predictions_as_labels_is_perfect(run_cli, detector, tmp_path):
    """Boxes predicted on each image's own pixels, written as its labels, must score mAP 1: predict
    and eval letterbox and map back independently, so a wrong pad or scale on either side shows."""
    ckpt, data = detector
    result = run_cli("predict", ckpt, data.parent / "images/val", "--conf", "0.5", "-o", tmp_path / "p")
    assert result.exit_code == 0, result.output
    found = json.loads((tmp_path / "p/predictions.json").read_text())
    labels: dict[str, list[tuple[int, float, float, float, float]]] = {n: [] for n in SIZES}
    file_of = {int(Path(n).stem): n for n in SIZES}
    for r in found:
        x, y, w, h = r["bbox"]
        if w > 4 and h > 4:  # (the shrunk copy below stays a box)
            labels[file_of[r["image_id"]]].append((r["category_id"], x, y, x + w, y + h))
    assert sum(map(len, labels.values())) >= 5 and len({r["category_id"] for r in found}) >= 2
    write_data(data.parent, labels)
    result = run_cli("eval", ckpt, "-o", tmp_path / "report.json")  # the checkpoint's data.yaml
    assert result.exit_code == 0, result.output
    assert "mAP50-95 1.0000, mAP50 1.0000 on 5 val images" in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["map"] == 1.0 and report["map50_agnostic"] == 1.0 and report["split"] == "val"
    # the same labels a pixel smaller on every side: no longer perfect, so the check can fail
    shrunk = {
        n: [(c, x1 + 1, y1 + 1, x2 - 1, y2 - 1) for c, x1, y1, x2, y2 in rows] for n, rows in labels.items()
    }
    write_data(data.parent, shrunk)
    result = run_cli("eval", ckpt, "--data", data)
    assert result.exit_code == 0, result.output
    assert "mAP50-95 1.0000" not in result.output and "mAP50 1.0000" in result.output


def test_eval_refuses_what_does_not_apply(run_cli, detector, tmp_path):
    ckpt, data = detector
    cases = [
        (["--split", "test"], 2, "--split test: "),
        (["--tta"], 2, "--tta applies to a classifier"),
        (["--data", "cifar10"], 2, "is a detector: --data cifar10 is not a detection set"),
    ]
    for args, code, text in cases:
        result = run_cli("eval", ckpt, *args)
        assert result.exit_code == code and text in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    other = tmp_path / "other.yaml"
    other.write_text(data.read_text().replace("cat", "lion").replace("path: .", f"path: {data.parent}"))
    result = run_cli("eval", ckpt, "--data", other)
    assert result.exit_code == 1 and "differ from the checkpoint's (cat, dog, bird)" in result.output


def test_predict_bad_images_are_one_line_exit_1_and_nothing_written(run_cli, detector, tmp_path, monkeypatch):
    ckpt, data = detector
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(tmp_path)
    for args, text in [
        ([data.parent / "images/val/1.jpg", bad], "bad.jpg: cannot read image"),
        ([tmp_path / "missing.png"], "missing.png: no such file"),
        ([empty], "empty: no image files in this folder"),
    ]:
        result = run_cli("predict", ckpt, *args)
        assert result.exit_code == 1 and text in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
    result = run_cli("predict", ckpt, data.parent / "images/val/1.jpg", "--top", "1")
    assert result.exit_code == 0 and "in runs/predict/" in result.output, result.output
    assert run_cli("predict", ckpt, data.parent / "images/val/1.jpg").output.endswith("drawn images\n")
    assert (tmp_path / "runs/predict2/predictions.json").is_file()  # the next free folder, as train's runs
