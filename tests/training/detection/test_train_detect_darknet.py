"""Darknet detectors train as converted: [yolo] heads follow the data's class count (a cfg
written for COCO's 80 classes), train with YOLOv3 matching and validate through YoloLoss.decode;
and a classification-trained backbone carried into a detector with --weights, and --freeze."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import SHARED
from detset import write_set
from tinydet import YOLO_CFG, shapes, train_args, val_map

import darkforge
from darkforge.spec.load import load_spec
from darkforge.spec.shapes import plan
from darkforge.training.detection.head import head_of
from darkforge.training.detection.loss import YoloLoss
from darkforge.training.detection.prepare import follow_classes
from darkforge.weights import checkpoint


def yolo_layers(arch_yaml: str) -> list[dict]:
    return [layer for layer in yaml.safe_load(arch_yaml)["layers"] if layer["type"] == "Yolo"]


def test_a_darknet_cfg_for_80_classes_trains_on_the_datas_3(run_cli, tmp_path):
    cfg = tmp_path / "tiny-yolo.cfg"
    cfg.write_text(YOLO_CFG)
    result = run_cli(*train_args(cfg, shapes(tmp_path), tmp_path / "runs", 3, "--lr", "0.02"))
    assert result.exit_code == 0, result.output
    assert "layer 3 ([yolo]): classes 80 -> 3 (the data's), layer 2 filters 255 -> 24" in result.output
    assert "layer 7 ([yolo]): classes 80 -> 3 (the data's), layer 6 filters 255 -> 24" in result.output
    run = tmp_path / "runs" / "train"
    arch = (run / "arch.yaml").read_text()
    assert [y["classes"] for y in yolo_layers(arch)] == [3, 3]
    model, _, _ = checkpoint.load_model(run / "weights" / "best.pt")
    assert [o.shape for o in model.eval()(torch.zeros(1, 3, 32, 32))] == [(1, 24, 8, 8), (1, 24, 4, 4)]
    head = head_of(model)
    assert head is not None and head.kind == "yolo" and isinstance(head.loss, YoloLoss)
    assert head.parts == ("box", "obj", "cls") and head.classes == 3
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert header.startswith("epoch,train_box,train_obj,train_cls,val_box,val_obj,val_cls,precision")
    report = (run / "report.json").read_text()
    best = yaml.safe_load(report)["best"]
    assert best > 0 and abs(val_map(run) - best) < 1e-6  # measured through YoloLoss.decode
    # --resume builds the run's network (arch.yaml), not the cfg's 80 classes
    assert run_cli("train", "--resume", run, "--epochs", "4").exit_code == 0


def test_darknets_own_yolov3_tiny_cfg_follows_the_data(run_cli, tmp_path):
    cfg = SHARED / "darknet-cfg" / "yolov3-tiny.cfg"
    if not cfg.exists():
        pytest.skip("../shared/darknet-cfg is not here")

    spec = load_spec(cfg)
    followed, notes = follow_classes(spec, 10, cfg)
    assert notes == [
        "layer 16 ([yolo]): classes 80 -> 10 (the data's), layer 15 filters 255 -> 45",
        "layer 23 ([yolo]): classes 80 -> 10 (the data's), layer 22 filters 255 -> 45",
    ]
    before, after = plan(spec.resolved()).params, plan(followed.resolved()).params
    assert before == 8_852_366  # Darknet's yolov3-tiny at 80 classes
    assert before - after == (512 + 1) * (255 - 45) + (256 + 1) * (255 - 45)  # the two 1×1 convs
    assert follow_classes(followed, 10, cfg) == (followed, [])  # already the data's: unchanged
    data, _ = write_set(tmp_path / "set")  # 4 train images of 3 classes at 416 (its [net] size)
    result = run_cli(
        "train", cfg, "--data", data, "--epochs", "1", "--batch-size", "4", "--project", tmp_path
    )
    assert result.exit_code == 0, result.output
    assert "layer 16 ([yolo]): classes 80 -> 3 (the data's), layer 15 filters 255 -> 24" in result.output
    model, _, _ = checkpoint.load_model(tmp_path / "train" / "weights" / "best.pt")
    assert model.plan.params == before - (512 + 1 + 256 + 1) * (255 - 24)


CLASSIFIER = """version: 1
name: tiny-backbone
input: {channels: 3, size: 32}
classes: 10
layers:
  - {type: ConvBnLeaky, filters: 8, id: stem}
  - {type: ResidualStage, filters: 16, blocks: 1, id: stage1}
  - {type: ResidualStage, filters: 16, blocks: 1, id: c3}
  - {type: ResidualStage, filters: 32, blocks: 1, id: c4}
  - {type: GlobalAvgPool, id: pool}
  - {type: Linear, id: fc}
"""
# the same backbone (same ids), then a neck and a Detect head over c3 (8×8) and c4 (4×4)
DETECTOR = (
    CLASSIFIER.split("  - {type: GlobalAvgPool")[0].replace("tiny-backbone", "tiny-yolo")
    + """\
  - {type: ConvBnLeaky, filters: 16, size: 1, id: neck}
  - {type: Detect, classes: classes, from: [c3, neck], id: head}
"""
)
BACKBONE = ("stem", "stage1", "c3", "c4")


def test_a_classification_backbone_carries_into_a_detector(tmp_path):
    (tmp_path / "cls.yaml").write_text(CLASSIFIER)
    (tmp_path / "det.yaml").write_text(DETECTOR)
    classifier = darkforge.train(
        tmp_path / "cls.yaml", data="fake:64,32", epochs=1, batch=32, project=tmp_path, name="cls"
    )
    trained = checkpoint.load(classifier.path / "weights" / "best.pt")["model"]
    seen = []
    run = darkforge.train(
        tmp_path / "det.yaml", data=str(shapes(tmp_path)), weights=classifier.path / "weights" / "best.pt",
        freeze="c4", epochs=2, batch=8, project=tmp_path, name="det", callbacks=[seen.append],
    )  # fmt: skip
    last = checkpoint.load(run.path / "weights" / "last.pt")["model"]
    backbone = [k for k in last if k.split(".")[1] in BACKBONE]
    assert run.transfer is not None and run.transfer.by_name == len(backbone) and run.transfer.by_order == 0
    kept = {k.split(".")[1] for k in run.transfer.kept}
    assert kept == {"neck", "head"}  # the head (and neck) stay as initialised
    assert {k.split(".")[1] for k in run.transfer.unused} == {"fc"}
    text = (run.path / "transfer.txt").read_text()
    assert text.startswith(f"transferred {len(backbone)}/{len(last)} tensors from ")
    assert all(torch.equal(last[k], trained[k]) for k in backbone)  # frozen through training
    model, _, _ = checkpoint.load_model(run.path / "weights" / "last.pt")
    frozen = sum(p.numel() for k, p in model.named_parameters() if k.split(".")[1] in BACKBONE)
    dfl = 16  # the DFL's fixed 1×16 conv, which never trains, counts as frozen too
    assert next(e for e in seen if e.kind == "start").values["frozen"] == frozen + dfl > dfl
