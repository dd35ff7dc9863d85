"""Tiny detectors for the training tests (a few Conv layers and a head at 32 px), written as the
tests need them, and the commands that train them on detset's generated squares."""

from __future__ import annotations

from pathlib import Path

from detset import write_shapes

# two levels (strides 8 and 16) into an anchor-free Detect head
DETECT = """version: 1
name: tiny-det
input: {channels: 3, size: 32}
classes: 3
layers:
  - {type: Conv, filters: 8, stride: 2, activation: silu, id: stem}
  - {type: Conv, filters: 16, stride: 2, activation: silu, id: c3}
  - {type: Conv, filters: 16, stride: 2, activation: silu, id: c4}
  - {type: Detect, classes: classes, from: [c3, c4], id: head}
"""

# Darknet's layout: a conv of anchors × (5 + classes) filters, then [yolo], at two scales; written
# for COCO (classes=80, filters=255) as a downloaded cfg is
YOLO_CFG = """[net]
width=32
height=32
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=255
activation=linear

[yolo]
mask = 3,4,5
anchors = 4,4, 8,8, 12,12, 16,16, 20,20, 28,28
classes=80
num=6

[route]
layers = -3

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=255
activation=linear

[yolo]
mask = 0,1,2
anchors = 4,4, 8,8, 12,12, 16,16, 20,20, 28,28
classes=80
num=6
"""


def write_detector(tmp: Path, train: str = "", text: str = DETECT, name: str = "tiny-det.yaml") -> Path:
    """The detector file (with `train` appended: a `train:` section) in tmp."""
    path = tmp / name
    path.write_text(text + train)
    return path


def shapes(tmp: Path, **counts: int) -> Path:
    """The generated squares set under tmp/data (once per test); its data.yaml."""
    root = tmp / "data"
    if (root / "data.yaml").exists():
        return root / "data.yaml"
    root.mkdir()
    return write_shapes(root, **counts)


def train_args(arch: Path, data: Path, project: Path, epochs: int = 3, *more: str) -> list[str]:
    return ["train", str(arch), "--data", str(data), "--epochs", str(epochs), "--batch-size", "8",
            "--project", str(project), *more]  # fmt: skip


def val_map(run: Path) -> float:
    """mAP@[.5:.95] on val of RUN/weights/best.pt, measured afresh as the run measures it."""
    from darkforge.training.detection.data import DetectionBatches, load_detection_data
    from darkforge.training.detection.fit import predict_split, truth_of
    from darkforge.training.detection.head import head_of
    from darkforge.training.detection.metrics import evaluate
    from darkforge.training.job import read_job
    from darkforge.training.rundir import RunDir
    from darkforge.weights import checkpoint

    job = read_job(RunDir(run))
    model, info, _ = checkpoint.load_model(run / "weights" / "best.pt")
    head = head_of(model)
    assert head is not None
    data = load_detection_data(job.data, int(info.input[1]))
    assert data.val is not None
    batches = DetectionBatches(data.val, 64, None, shuffle=False, drop_last=False)
    found, _, _ = predict_split(model, head, batches, int(info.input[1]), job.recipe)
    return evaluate(found, truth_of(data.val), data.names).map
