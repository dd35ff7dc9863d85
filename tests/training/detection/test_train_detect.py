"""`darkforge train DETECTOR --data data.yaml` end to end: the run directory a user opens."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch
from PIL import Image
from tinydet import shapes, train_args, write_detector

from darkforge.weights import checkpoint

COLUMNS = [
    "epoch", "train_box", "train_cls", "train_dfl", "val_box", "val_cls", "val_dfl",
    "precision", "recall", "map50", "map50_95", "map50_agnostic", "map50_95_agnostic", "lr", "img_s", "seconds",
]  # fmt: skip
PICTURES = ["results.png", "pr_curve.png", "val_predictions.png", "labels.png"]


def read_rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_a_detection_run_writes_the_run_directory_people_expect(run_cli, tmp_path):
    data = shapes(tmp_path)
    args = train_args(write_detector(tmp_path), data, tmp_path / "runs", 12, "--lr", "0.02")
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "train"
    with (run / "metrics.csv").open() as handle:
        assert next(csv.reader(handle)) == COLUMNS
    rows = read_rows(run)
    assert [int(r["epoch"]) for r in rows] == list(range(1, 13))
    for r in rows:
        assert all(v != "" for v in r.values()), r
        assert 0 <= float(r["map50_95"]) <= float(r["map50"]) <= 1
        assert float(r["img_s"]) > 0 and float(r["seconds"]) > 0 and float(r["lr"]) > 0
    scores = [float(r["map50_95"]) for r in rows]
    assert max(scores) > 0.01, scores  # it learned something: `best` is a real choice
    report = json.loads((run / "report.json").read_text())
    best_epoch = scores.index(max(scores)) + 1  # the first epoch of the best val mAP@[.5:.95]
    assert report["best_epoch"] == best_epoch and abs(report["best"] - max(scores)) < 1e-6
    assert report["task"] == "detect" and report["final_epoch"] == 12 and report["val_images"] == 16
    assert set(report["classes"]) == {"cat", "dog", "bird"}
    final = rows[-1]
    assert abs(report["map"] - float(final["map50_95"])) < 1e-5  # the report is the final model's
    text = (run / "report.txt").read_text()
    for name in ("cat", "dog", "bird", "all", "mAP50-95"):
        assert name in text
    for name in PICTURES:
        with Image.open(run / name) as image:
            assert image.format == "PNG" and min(image.size) >= 300, name
    for name in ("best.pt", "last.pt", "best.safetensors"):
        assert (run / "weights" / name).is_file(), name
    last = checkpoint.load(run / "weights" / "last.pt")
    assert last["state"]["epoch"] == 12 and last["state"]["best_epoch"] == best_epoch
    assert last["inference"]["classes"] == ["cat", "dog", "bird"]
    best = checkpoint.load(run / "weights" / "best.pt")
    assert "state" not in best and set(best["model"]) == set(last["model"])
    assert any(not torch.equal(best["model"][k], last["model"][k]) for k in best["model"])
    assert "mAP50-95" in result.output and "results in" in result.output


def test_a_native_ultralytics_file_trains_and_its_checkpoint_predicts_at_the_trained_size(run_cli, tmp_path):
    # archs/yolo11.yaml: the shipped library's blocks, inlined into the run's arch.yaml (`shadows`)
    from conftest import ARCHS

    data = shapes(tmp_path)
    args = train_args(ARCHS / "yolo11.yaml", data, tmp_path / "runs", 1, "--input-size", "32")
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "train"
    assert "\ninclude:" not in (run / "arch.yaml").read_text()
    model, _, _ = checkpoint.load_model(run / "weights" / "best.pt")
    assert model.plan.input == (3, 32, 32) and model.plan.params < 2_624_080  # 3 classes, not 80
    image = next((data.parent / "images" / "val").iterdir())
    result = run_cli("predict", str(run / "weights" / "best.pt"), str(image), "-o", str(tmp_path / "p"))
    assert result.exit_code == 0, result.output
