"""What a detection run refuses before anything exists: bad labels (one line naming the file and
the row, exit 1), classification-only recipe keys, and a [yolo] head that cannot follow the data."""

from __future__ import annotations

import pytest
from tinydet import YOLO_CFG, shapes, train_args, write_detector

import darkforge
from darkforge.errors import UsageError

BAD_ROWS = {
    "class 12 of 10": ("12 0.5 0.5 0.2 0.2\n", ":2: class 12 >= 3 classes"),
    "x = 1.7": ("0 1.7 0.5 0.2 0.2\n", ":2: cx = 1.7 is outside 0-1"),
    "a row of 4 numbers": ("0 0.5 0.5 0.2\n", ":2: a row of 4 numbers"),
}


@pytest.mark.parametrize("case", [*BAD_ROWS, "a directory"])
def test_bad_labels_stop_the_run_before_anything_exists(run_cli, tmp_path, case):
    data = shapes(tmp_path, train=8, val=4)
    label = data.parent / "labels" / "train" / "005.txt"
    if case == "a directory":
        label.unlink()
        label.mkdir()
        expected = "005.txt: is a directory, not a file"
    else:
        label.write_text(label.read_text().splitlines()[0] + "\n" + BAD_ROWS[case][0])
        expected = "005.txt" + BAD_ROWS[case][1]
    result = run_cli(*train_args(write_detector(tmp_path), data, tmp_path / "runs", 1))
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert str(label.relative_to(tmp_path)) in result.stderr and expected in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()  # no run directory, not even an empty project folder


@pytest.mark.parametrize(
    "train, expected",
    [
        (
            "train:\n  augment: {crop: 4}\n",
            ":11:13: train.augment.crop: a detector does not use `augment.crop`",
        ),
        ("train:\n  label_smoothing: 0.1\n", ":11:3: train.label_smoothing: a detector does not use"),
        ("train:\n  boxes: {mosaic: maybe}\n", ":11:11: train.boxes.mosaic: Input should be a valid boolean"),
    ],
)
def test_classification_keys_in_a_detectors_train_section_are_refused(run_cli, tmp_path, train, expected):
    arch = write_detector(tmp_path, train)
    result = run_cli(*train_args(arch, shapes(tmp_path, train=8, val=4), tmp_path / "runs", 1))
    assert result.exit_code == 1, result.output
    assert f"{arch}{expected}" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "runs").exists()


def test_classification_flags_are_refused_for_a_detector(run_cli, tmp_path):
    data = shapes(tmp_path, train=8, val=4)
    args = train_args(write_detector(tmp_path), data, tmp_path / "runs", 1)
    result = run_cli(*args, "--precision", "bf16")
    assert result.exit_code == 2 and "--precision bf16: not for a detector" in result.stderr
    result = run_cli(*train_args(write_detector(tmp_path), tmp_path / "none.yaml", tmp_path / "runs", 1))
    assert result.exit_code == 1 and "none.yaml: no such file" in result.stderr
    result = run_cli("train", write_detector(tmp_path), "--data", "fake:64,32", "--project", tmp_path)
    assert result.exit_code == 1 and "--data fake:64,32: a detector trains on boxes" in result.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "train").exists()
    with pytest.raises(
        UsageError, match=r"a detector does not use `augment.mixup` \(a classification setting\); box augm"
    ):
        darkforge.train(write_detector(tmp_path), data=str(data), augment={"mixup": 0.2}, project=tmp_path)


def test_a_yolo_head_that_cannot_follow_the_data_says_what_to_edit(run_cli, tmp_path):
    cfg = tmp_path / "odd.cfg"  # the first [yolo] reads a maxpool: no conv whose filters could follow
    cfg.write_text(YOLO_CFG.replace("[yolo]", "[maxpool]\nsize=1\nstride=1\n\n[yolo]", 1))
    result = run_cli(*train_args(cfg, shapes(tmp_path, train=8, val=4), tmp_path / "runs", 1))
    assert result.exit_code == 1, result.output
    assert "layer 4 ([yolo]) has classes=80, the data 3" in result.stderr
    assert "set classes=3 in each [yolo] and filters=24 in the [convolutional] before it" in result.stderr
