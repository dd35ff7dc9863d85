"""report.json/report.txt, the run directory's pictures and boxes drawn on images."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from darkforge.training.detection.metrics.draw import PALETTE, TRUTH_COLOUR, draw_detections
from darkforge.training.detection.metrics.evaluation import evaluate
from darkforge.training.detection.metrics.plots import (
    DETECTION_COLUMNS,
    plot_labels,
    plot_pr_curves,
    plot_results,
    plot_val_predictions,
)
from darkforge.training.detection.metrics.report import report_text, write_report

NAMES = ["cat", "dog", "ship"]
TRUTH = [torch.tensor([[0.0, 4, 4, 24, 24], [1, 30, 30, 60, 50]]), torch.tensor([[0.0, 10, 10, 40, 40]])]
FOUND = [
    torch.tensor([[4.0, 4, 24, 24, 0.9, 0], [30, 30, 60, 50, 0.8, 0]]),  # the dog called a cat
    torch.tensor([[11.0, 10, 41, 40, 0.7, 0], [0, 0, 10, 10, 0.3, 2]]),  # and a false ship
]


def rgb(hex_colour: str) -> list[int]:
    return [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]


@pytest.fixture(scope="module")
def metrics():
    return evaluate(FOUND, TRUTH, NAMES)


def test_report_text_rows_and_totals(metrics):
    text = report_text(metrics)
    lines = text.splitlines()
    assert lines[0].split() == ["class", "instances", "P", "R", "mAP50", "mAP50-95"]
    assert lines[1].split()[:2] == ["all", "3"]
    cat, dog, ship = (line.split() for line in lines[3:6])
    assert cat[:2] == ["cat", "2"] and dog == ["dog", "1", "0.0000", "0.0000", "0.0000", "0.0000"]
    assert ship == ["ship", "0", "-", "-", "-", "-"]  # no true ships: nothing to measure
    assert f"class-agnostic mAP50 {metrics.map50_agnostic:.4f}" in text
    assert metrics.map50_agnostic == pytest.approx(1.0)  # every box was found, some misnamed


def test_report_files_are_json_and_text(metrics, tmp_path):
    json_path, text_path = write_report(tmp_path, metrics, best_epoch=7)
    data = json.loads(json_path.read_text())  # NaN written as null, so any JSON reader takes it
    assert data["best_epoch"] == 7 and data["classes"]["ship"]["ap"] is None
    assert data["map"] == pytest.approx(metrics.map) and data["classes"]["cat"]["instances"] == 2
    assert set(data) >= {"map", "map50", "map50_agnostic", "precision", "recall", "confidence"}
    assert text_path.read_text() == report_text(metrics)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.txt"]  # no temps left


def read_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        return image.size


def test_pictures_are_written(metrics, tmp_path):
    images = torch.full((2, 3, 64, 64), 114, dtype=torch.uint8)
    shapes = {
        "pr_curve.png": plot_pr_curves(metrics, tmp_path / "pr_curve.png"),
        "val_predictions.png": plot_val_predictions(
            images, FOUND, TRUTH, NAMES, tmp_path / "val_predictions.png"
        ),
        "labels.png": plot_labels(TRUTH, NAMES, tmp_path / "labels.png"),
    }
    for name, path in shapes.items():
        assert min(read_png(path)) > 150, name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(shapes)


def test_results_png_draws_the_rows_it_has(tmp_path):
    rows = [
        {
            "epoch": e,
            "train_box": 2 / e,
            "train_cls": 1 / e,
            "train_dfl": 1.2 / e,
            "lr": 0.01,
            "map50": 0.1 * e,
        }
        | {"val_box": None, "precision": 0.5, "recall": 0.4, "map50_95": 0.05 * e}
        for e in (1, 2, 3)
    ]
    assert set(rows[0]) <= set(DETECTION_COLUMNS)
    read_png(plot_results(rows, tmp_path / "results.png"))
    read_png(plot_results([], tmp_path / "empty.png"))  # before the first epoch ends


def test_draw_detections_boxes_in_class_colours_over_white_truth():
    image = torch.full((3, 64, 64), 114, dtype=torch.uint8)
    dets = torch.tensor([[10.0, 10, 30, 30, 0.9, 1], [40, 40, 60, 60, 0.1, 0]])
    truth = torch.tensor([[2.0, 2, 40, 60, 62]])
    out = draw_detections(image, dets, NAMES, truth=truth, conf=0.25)
    assert out.shape == (3, 256, 256) and out.dtype == torch.uint8  # enlarged x4 for legible labels
    assert out[:, 100, 40].tolist() == rgb(PALETTE[1])  # left edge of the dog box, 4 x (10, 25)
    assert out[:, 200, 8].tolist() == rgb(TRUTH_COLOUR)  # left edge of the true box
    assert out[:, 200, 160].tolist() == [114] * 3  # the box under conf is not drawn
    assert (out[:, 80:120, 60:110] != 114).any(dim=0).sum() < 800  # a label, not a filled box
    same = draw_detections(torch.zeros(3, 300, 400, dtype=torch.uint8), dets[:0], NAMES)
    assert same.shape == (3, 300, 400) and not same.any()  # big enough: kept as it is; nothing to draw
