"""Reading detection sets: data.yaml + YOLO txt and COCO json give identical targets; letterbox
geometry maps boxes in and back; the cache modes serve identical pixels."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED
from detset import NAMES, write_images, write_set, write_yaml
from PIL import Image, ImageOps

from darkforge.training.detection.data import is_detection_source, load_detection_data, read_detection_labels
from darkforge.training.detection.data.coco import read_coco
from darkforge.training.detection.data.images import decode_upright
from darkforge.training.detection.data.yolo import label_path, list_images, read_yolo

CIFAR_DET = SHARED / "datasets" / "cifar-det-64.tar.gz"


def same_labels(a, b):
    assert a.files == b.files
    assert torch.equal(a.sizes, b.sizes)
    assert torch.equal(a.counts, b.counts)
    assert torch.equal(a.classes, b.classes)
    # YOLO rows are normalised text: equal to COCO's pixels up to the digits written (6 in cifar-det)
    torch.testing.assert_close(a.boxes, b.boxes, atol=1e-4, rtol=0)


def test_yolo_and_coco_give_identical_targets(tmp_path):
    data_yaml, train_json = write_set(tmp_path)
    names, yolo = read_detection_labels(data_yaml)
    coco_names, coco = read_detection_labels(train_json)  # val.json found beside it
    assert names == coco_names == NAMES
    assert sorted(yolo) == sorted(coco) == ["train", "val"]
    for split in yolo:
        same_labels(yolo[split], coco[split])


def test_boxes_are_the_pixels_written(tmp_path):
    data_yaml, _ = write_set(tmp_path)
    _, splits = read_detection_labels(data_yaml)
    train = splits["train"]
    assert [f.name for f in train.files] == ["a.jpg", "b.png", "c.jpg", "d.png"]
    assert train.sizes.tolist() == [[48, 64], [30, 40], [32, 32], [20, 50]]
    assert train.counts.tolist() == [2, 1, 0, 0]  # c: no label file, d: an empty one -> background
    boxes, classes = train.of(0)
    assert classes.tolist() == [0, 2]
    torch.testing.assert_close(boxes, torch.tensor([[4.0, 6, 20, 30], [30, 10, 64, 48]]))


def test_names_as_list_or_mapping_and_a_split_folder_layout(tmp_path):
    write_images(tmp_path, layout="split")  # train/images + train/labels
    listed = write_yaml(tmp_path, f"train: train\nval: val/images\nnames: {NAMES}\n")
    names, splits = read_detection_labels(listed)
    assert names == NAMES and splits["train"].counts.tolist() == [2, 1, 0, 0]
    mapped = write_yaml(tmp_path, "train: train\nval: val\nnames: {0: cat, 1: dog, 2: bird}\nnc: 3\n")
    assert read_detection_labels(mapped)[0] == NAMES


def test_a_txt_list_of_images(tmp_path):
    write_images(tmp_path)
    (tmp_path / "train.txt").write_text("./images/train/b.png\nimages/train/a.jpg\n\n")
    path = write_yaml(tmp_path, f"train: train.txt\nval: images/val\nnames: {NAMES}\n")
    train = read_detection_labels(path)[1]["train"]
    assert [f.name for f in train.files] == ["a.jpg", "b.png"] and train.counts.tolist() == [2, 1]


def test_label_path_maps_the_last_images_folder():
    assert label_path(Path("/d/images/train/x.jpg")) == Path("/d/labels/train/x.txt")
    assert label_path(Path("/images/d/images/x.png")) == Path("/images/d/labels/x.txt")
    assert label_path(Path("/d/train/x.jpg")) == Path("/d/train/x.txt")  # Darknet: beside the image


def test_coco_classes_follow_category_ids_in_sorted_order(tmp_path):
    _, train_json = write_set(tmp_path)
    names, labels = read_coco(train_json)
    assert names == NAMES  # ids 9, 1, 5 listed -> sorted 1, 5, 9 -> classes 0, 1, 2
    assert labels.classes.tolist() == [0, 2, 1]


def test_letterbox_maps_boxes_in_and_back(tmp_path):
    data_yaml, _ = write_set(tmp_path)
    data = load_detection_data(data_yaml, 32, cache_mode="none")
    train = data.train
    assert data.names == NAMES and train.images.shape == (4, 3, 32, 32)
    # a.jpg is 48×64: r = 0.5, resized to 24×32, centred: pad_y = 4
    assert train.scale[0].item() == 0.5 and train.pad[0].tolist() == [0.0, 4.0]
    targets = train.targets(torch.tensor([1, 0]))  # b.png first, a.jpg second in the batch
    assert targets[:, :2].tolist() == [[0, 1], [1, 0], [1, 2]]
    torch.testing.assert_close(targets[1:, 2:], torch.tensor([[2.0, 7, 10, 19], [15, 9, 32, 28]]))
    torch.testing.assert_close(
        train.to_original(targets[1:, 2:], 0), torch.tensor([[4.0, 6, 20, 30], [30, 10, 64, 48]])
    )
    _, labels = read_detection_labels(data_yaml)
    torch.testing.assert_close(train.original_boxes(), labels["train"].boxes)
    pixels = train.gather(torch.tensor([0]))[0]
    assert (pixels[:, :4] == 114).all() and (pixels[:, 28:] == 114).all()
    assert not (pixels[:, 4:28] == 114).all()


def test_every_cache_mode_serves_the_same_pixels(tmp_path, monkeypatch):
    monkeypatch.setenv("DARKFORGE_CACHE", str(tmp_path / "cache"))
    data_yaml, _ = write_set(tmp_path / "set")
    loads = {mode: load_detection_data(data_yaml, 40, cache_mode=mode) for mode in ("ram", "disk", "none")}
    rows = torch.tensor([3, 0, 2])
    expected = loads["none"].train.gather(rows)
    for mode, data in loads.items():
        assert data.cache == mode
        assert torch.equal(data.train.gather(rows), expected), mode
        assert torch.equal(data.val.targets(torch.tensor([0])), loads["none"].val.targets(torch.tensor([0])))
    assert isinstance(loads["ram"].train.images, torch.Tensor)
    assert list((tmp_path / "set/images/.darkforge-cache").glob("darkforge-det-*.u8"))  # beside the images


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pil_does(tmp_path, orientation):
    pixels = np.random.default_rng(orientation).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    Image.fromarray(pixels).save(path, exif=exif)
    with Image.open(path) as image:
        upright = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    assert decode_upright(path).permute(1, 2, 0).numpy().tolist() == upright.tolist()


def _extract(tmp_path: Path, members: tuple[str, ...]) -> Path:
    with tarfile.open(CIFAR_DET) as tar:
        wanted = [m for m in tar.getmembers() if m.name.startswith(members)]
        tar.extractall(tmp_path, members=wanted, filter="data")
    return tmp_path / "cifar-det-64"


@pytest.mark.skipif(not CIFAR_DET.is_file(), reason="needs ../shared/datasets/cifar-det-64.tar.gz")
def test_shared_cifar_det_val_reads_alike_in_both_forms(tmp_path):
    root = _extract(tmp_path, ("cifar-det-64/val/",))
    yolo = read_yolo(list_images(root / "val"), [str(i) for i in range(10)], "test")
    coco = read_coco(root / "val" / "annotations.json")[1]
    assert len(yolo) == 1000 and len(yolo.boxes) == 1944  # the README's counts
    same_labels(yolo, coco)


@pytest.mark.slow  # ~6 s: 13,000 label files and image headers, twice
@pytest.mark.skipif(not CIFAR_DET.is_file(), reason="needs ../shared/datasets/cifar-det-64.tar.gz")
def test_shared_cifar_det_reads_alike_in_both_forms(tmp_path):
    root = _extract(tmp_path, ("cifar-det-64/",))
    names, yolo = read_detection_labels(root / "data.yaml")
    coco_names, coco = read_detection_labels(root / "train" / "annotations.json")
    assert names == coco_names and len(names) == 10
    assert {s: (len(v), len(v.boxes)) for s, v in yolo.items()} == {
        "train": (12000, 23121),
        "val": (1000, 1944),
    }
    for split in yolo:
        same_labels(yolo[split], coco[split])


def test_both_label_forms_of_a_set_share_one_decoded_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DARKFORGE_CACHE", str(tmp_path / "cache"))
    data_yaml, train_json = write_set(tmp_path / "set")
    yolo = load_detection_data(data_yaml, 24, cache_mode="disk")
    coco = load_detection_data(train_json, 24, cache_mode="disk")
    assert len(list((tmp_path / "set").rglob("darkforge-det-*.u8"))) == 1
    assert torch.equal(yolo.train.gather(torch.arange(4)), coco.train.gather(torch.arange(4)))
    assert torch.equal(yolo.train.targets(torch.arange(4))[:, :2], coco.train.targets(torch.arange(4))[:, :2])


def test_which_data_arguments_are_detection_sets():
    assert [is_detection_source(s) for s in ("a/data.yaml", "x.YML", "t/instances_train2017.json")] == [
        True
    ] * 3
    assert [is_detection_source(s) for s in ("cifar10", "imagefolder:/d", "fake:10,10")] == [False] * 3
