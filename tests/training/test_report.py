"""The per-class report against numbers worked out by hand (sklearn's definitions)."""

from __future__ import annotations

import pytest
import torch

from darkforge.training.report import class_report, confusion, report_text


def test_report_matches_hand_computed_scores():
    labels, predictions = torch.tensor([0, 1, 1, 2, 2, 2]), torch.tensor([0, 1, 2, 2, 2, 0])
    matrix = confusion(labels, predictions, 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 2]]
    report = class_report(matrix, ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(4 / 6)
    c = report["classes"]["c"]
    assert (c["precision"], c["recall"], c["support"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3), 3)
    assert report["classes"]["a"]["f1"] == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert report["macro avg"]["recall"] == pytest.approx((1 + 0.5 + 2 / 3) / 3)
    assert report["weighted avg"]["precision"] == pytest.approx((0.5 * 1 + 1 * 2 + 2 / 3 * 3) / 6)
    text = report_text(report)
    assert "accuracy" in text and "weighted avg" in text and text.count("\n") == 9


def test_a_class_never_predicted_scores_zero_not_nan():
    report = class_report(confusion(torch.tensor([0, 1]), torch.tensor([0, 0]), 2), ["a", "b"])
    assert report["classes"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
