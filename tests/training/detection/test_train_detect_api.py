"""`darkforge.train` of a detector from Python: the Run it returns is the run directory's, the
callbacks see every epoch, patience stops early, and the file's `train:` section sets the
detection recipe (box augmentation, loss gains, evaluation NMS)."""

from __future__ import annotations

import csv
import json

import pytest
import yaml
from tinydet import shapes, write_detector

import darkforge
from darkforge.training import recipe


def test_train_from_python_returns_the_run_the_files_hold(tmp_path):
    seen = []
    run = darkforge.train(
        write_detector(tmp_path, "train:\n  boxes: {mosaic: false}\n"), data=str(shapes(tmp_path)),
        epochs=4, batch=8, lr=0.05, ema=0.0, project=tmp_path, callbacks=[seen.append],
    )  # fmt: skip
    with (run.path / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(run.history) == len(rows) == 4
    for kept, row in zip(run.history, rows, strict=True):
        assert set(kept) == set(row)
        for key, value in row.items():
            assert float(value) == pytest.approx(kept[key], rel=1e-5, abs=1e-9), key
    scores = [r["map50_95"] for r in run.history]
    assert max(scores) > 0.005, scores
    assert run.best == max(scores) and run.best_epoch == scores.index(max(scores)) + 1
    assert run.summary == json.loads((run.path / "report.json").read_text())
    assert run.summary["best_epoch"] == run.best_epoch and run.stopped is None
    kinds = [e.kind for e in seen]
    assert kinds[:2] == ["run", "start"] and kinds[-1] == "finish"
    epochs = [e for e in seen if e.kind == "epoch"]
    assert [e.epoch for e in epochs] == [1, 2, 3, 4]
    assert [e.values["map50_95"] for e in epochs] == scores
    assert seen[1].values["task"] == "detect" and seen[1].values["classes"] == 3
    assert sum(e.kind == "step" for e in seen) == 4 * 6  # 48 images, batches of 8


def test_patience_stops_a_detection_run_and_says_why(tmp_path):
    run = darkforge.train(
        write_detector(tmp_path), data=str(shapes(tmp_path, train=16, val=8)), epochs=5, batch=8,
        lr=1e-9, patience=1, project=tmp_path,
    )  # fmt: skip
    assert len(run.history) == 2 and run.stopped and "no better `best` in 1 epochs" in run.stopped
    assert json.loads((run.path / "report.json").read_text())["stopped_early"] == run.stopped
    assert darkforge.train(resume=run.path).history == run.history  # a stopped run is complete


TRAIN = """train:
  epochs: 2
  batch: 8
  boxes: {mosaic: false, close_mosaic: 0, flip: 0.0, scale: 0.2, hsv_s: 0.0, box: 0.0, cls: 2.0,
          conf: 0.0, max_det: 2}
"""


def test_the_files_train_section_sets_the_detection_recipe(tmp_path):
    run = darkforge.train(write_detector(tmp_path, TRAIN), data=str(shapes(tmp_path)), project=tmp_path)
    boxes = yaml.safe_load((run.path / "args.yaml").read_text())["recipe"]["boxes"]
    assert boxes | {"mosaic": False, "close_mosaic": 0, "flip": 0.0, "scale": 0.2, "hsv_s": 0.0} == boxes
    assert boxes["translate"] == recipe.Boxes().translate  # what the file leaves is the preset's
    assert len(run.history) == 2  # epochs and batch from the file; the detect preset for the rest
    assert all(r["train_box"] == 0.0 and r["val_box"] == 0.0 for r in run.history)  # gain 0
    assert all(r["train_cls"] > 0 and r["train_dfl"] > 0 for r in run.history)
    assert run.summary["detections"] == 2 * 16  # max_det 2 on 16 val images, every score kept
    preset = recipe.resolve("detect")
    assert (preset.batch, preset.lr, preset.momentum, preset.label_smoothing) == (64, 0.01, 0.937, 0.0)


def test_a_gain_of_another_head_is_refused(run_cli, tmp_path):
    arch = write_detector(tmp_path, "train:\n  boxes: {obj: 2.0}\n")
    result = run_cli("train", arch, "--data", shapes(tmp_path, train=8, val=4), "--project", tmp_path)
    assert result.exit_code == 1
    assert f"{arch}:11:11: train.boxes.obj: a Detect head has no `obj` loss term" in result.stderr
