"""Bad labels: one located line each (file:row: what; what to do), exit code 1, before any decode."""

from __future__ import annotations

import json

import pytest
from detset import NAMES, write_coco, write_images, write_set, write_yaml

from darkforge.errors import DataError
from darkforge.training.detection.data import load_detection_data, read_detection_labels

TEN = "names:\n" + "".join(f"  {i}: c{i}\n" for i in range(10))


def bad_row(tmp_path, row: str, line: int = 2) -> str:
    """The error text of a set whose a.txt has `row` as line `line`."""
    write_images(tmp_path)
    label = tmp_path / "labels/train/a.txt"
    rows = label.read_text().splitlines()
    rows.insert(line - 1, row)
    label.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError) as caught:
        read_detection_labels(write_yaml(tmp_path, f"train: images/train\nval: images/val\n{TEN}"))
    assert caught.value.exit_code == 1
    assert "\n" not in str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "12 0.5 0.5 0.2 0.2",
            "a.txt:2: class 12 >= 10 classes (names in data.yaml); fix the row or add the class name",
        ),
        (
            "3 1.7 0.5 0.2 0.2",
            "a.txt:2: cx = 1.7 is outside 0-1; a row is `class cx cy w h`, coordinates 0-1",
        ),
        ("3 0.5 -0.1 0.2 0.2", "a.txt:2: cy = -0.1 is outside 0-1"),
        ("3 0.5 0.5 0.2", "a.txt:2: a row of 4 numbers; a row is `class cx cy w h` (5 numbers)"),
        ("3 0.5 0.5 0.2 0.2 0.1", "a.txt:2: a row of 6 numbers"),
        ("3 0.5 nan 0.2 0.2", "a.txt:2: cy is nan"),
        ("3 0.5 0.5 inf 0.2", "a.txt:2: w is inf"),
        ("3 0.5 0.5 0 0.2", "a.txt:2: w = 0: a box needs a positive size"),
        ("3 0.5 0.5 0.2 -0.3", "a.txt:2: h = -0.3 is outside 0-1"),
        ("1.5 0.5 0.5 0.2 0.2", "a.txt:2: class 1.5 is not a class index; classes are 0..9"),
        ("-1 0.5 0.5 0.2 0.2", "a.txt:2: class -1 is not a class index"),
        ("cat 0.5 0.5 0.2 0.2", "a.txt:2: 'cat' is not a number"),
        ("1 0.1 0.1 0.9 0.1 0.5 1.2", "a.txt:2: point 3 y = 1.2 is outside 0-1"),
    ],
)
def test_a_bad_row_is_one_line_naming_file_and_row(tmp_path, row, message):
    text = bad_row(tmp_path, row)
    assert text.startswith(str(tmp_path / "labels/train")), text
    assert message in text


def test_the_row_number_counts_blank_lines(tmp_path):
    assert "a.txt:4: class 12 >= 10" in bad_row(tmp_path, "\n\n12 0.5 0.5 0.2 0.2", line=2)


def test_a_polygon_row_stands_for_its_bounding_box(tmp_path):
    write_images(tmp_path)
    (tmp_path / "labels/train/d.txt").write_text("1 0.1 0.2 0.6 0.25 0.3 0.9\n")  # d.png is 50×20
    _, splits = read_detection_labels(write_yaml(tmp_path))
    boxes, classes = splits["train"].of(3)
    assert classes.tolist() == [1]
    assert [round(v, 4) for v in boxes[0].tolist()] == [5.0, 4.0, 30.0, 18.0]


def test_corners_past_the_edge_are_clipped_to_the_image(tmp_path):
    write_images(tmp_path)
    (tmp_path / "labels/train/d.txt").write_text("0 0.9 0.5 0.4 1.0\n")  # x from 0.7 to 1.1 of 50 px
    _, splits = read_detection_labels(write_yaml(tmp_path))
    assert splits["train"].of(3)[0].tolist() == [[35.0, 0.0, 50.0, 20.0]]


def test_a_label_file_that_is_a_directory(tmp_path):
    write_images(tmp_path)
    (tmp_path / "labels/train/c.txt").mkdir()
    with pytest.raises(DataError) as caught:
        read_detection_labels(write_yaml(tmp_path))
    assert str(caught.value).startswith(f"{tmp_path}/labels/train/c.txt: is a directory, not a file")
    assert caught.value.exit_code == 1


def test_a_split_without_any_label_file_is_refused(tmp_path):
    write_images(tmp_path)
    (tmp_path / "labels/val/e.txt").unlink()  # an empty file would be a background image: fine
    with pytest.raises(DataError) as caught:
        read_detection_labels(write_yaml(tmp_path))
    assert str(caught.value) == (
        f"{tmp_path}/images/val: no label file for any of the 1 images (the first would be "
        f"{tmp_path}/labels/val/e.txt); the labels of .../images/X.jpg are .../labels/X.txt"
    )


def test_bad_labels_stop_before_any_pixel_is_decoded(tmp_path, monkeypatch):
    write_images(tmp_path)
    (tmp_path / "labels/val/e.txt").write_text("7 0.5 0.5 0.2 0.2\n")
    monkeypatch.setattr(
        "darkforge.training.detection.data.load.place_pixels", lambda *a: pytest.fail("decoded")
    )
    with pytest.raises(DataError, match=r"e\.txt:1: class 7 >= 3 classes \(names in data\.yaml\)"):
        load_detection_data(write_yaml(tmp_path), 32)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train: images/train\nnames: [a]\n", "data.yaml:1:1: no `val` split; add `val: <folder of images>`"),
        ("train: images/train\nval: images/nope\nnames: [a]\n", "data.yaml:2:1: val: "),
        (
            "train: images/train\nval: images/val\nnames: {0: a, 2: b}\n",
            "data.yaml:3:1: names: keys [0, 2] are not 0..1",
        ),
        (
            "train: images/train\nval: images/val\nnames: [a, b]\nnc: 3\n",
            "data.yaml:4:1: nc: nc 3 but 2 names",
        ),
        (
            "train: images/train\nval: images/val\nnames: [a]\nkpt_shape: [17, 3]\n",
            "data.yaml:4:1: kpt_shape: unknown key 'kpt_shape'",
        ),
        ("- train\n", "data.yaml:1:1: a dataset file is a mapping"),
    ],
)
def test_a_bad_data_yaml_is_one_located_line(tmp_path, text, message):
    write_images(tmp_path)
    with pytest.raises(DataError) as caught:
        read_detection_labels(write_yaml(tmp_path, text))
    assert message in str(caught.value), str(caught.value)


def coco_error(tmp_path, change) -> str:
    write_set(tmp_path)
    path = tmp_path / "train.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as caught:
        read_detection_labels(path)
    return str(caught.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["annotations"][1].update(category_id=4),
            "train.json: annotations[1].category_id: 4 is not a category id",
        ),
        (
            lambda d: d["annotations"][0].update(bbox=[4, 6, 16]),
            "annotations[0].bbox: [4, 6, 16] is not [x, y, w, h] (4 numbers)",
        ),
        (
            lambda d: d["annotations"][0].update(bbox=[4, 6, 0, 5]),
            "annotations[0].bbox: [4, 6, 0, 5]: a box needs a positive width",
        ),
        (
            lambda d: d["annotations"][0].update(bbox=[60, 6, 10, 5]),
            "annotations[0].bbox: [60, 6, 10, 5] reaches outside the 64×48 image",
        ),
        (
            lambda d: d["annotations"][0].update(image_id=7),
            "annotations[0].image_id: 7 is not the id of an image",
        ),
        (lambda d: d["images"][1].update(width=41), "images[1]: 41×30 here, but"),
        (lambda d: d["images"][0].update(file_name="images/train/zz.jpg"), "images[0].file_name: "),
        (lambda d: d.pop("categories"), "categories: missing or not a list"),
    ],
)
def test_a_bad_coco_entry_is_one_line_with_its_key_path(tmp_path, change, message):
    assert message in coco_error(tmp_path, change)


def test_coco_crowd_regions_are_not_objects_and_a_one_pixel_overrun_is_clipped(tmp_path):
    write_set(tmp_path)
    path = tmp_path / "train.json"
    data = json.loads(path.read_text())
    data["annotations"][0]["iscrowd"] = 1
    data["annotations"][1]["bbox"] = [30, 10, 34.6, 38.5]  # to 64.6, 48.5 of a 64×48 image
    path.write_text(json.dumps(data))
    _, splits = read_detection_labels(path)
    assert splits["train"].counts.tolist() == [1, 1, 0, 0]
    assert splits["train"].of(0)[0].tolist() == [[30.0, 10.0, 64.0, 48.0]]


def test_coco_names_must_agree_with_data_yaml(tmp_path):
    write_set(tmp_path)
    path = write_yaml(tmp_path, "train: train.json\nval: val.json\nnames: [cat, bird, dog]\n")
    with pytest.raises(DataError, match=r"train\.json: categories: names \['cat', 'dog', 'bird'\]"):
        read_detection_labels(path)
    write_coco(tmp_path, "train")
    ok = write_yaml(tmp_path, f"train: train.json\nval: val.json\nnames: {NAMES}\n")
    assert read_detection_labels(ok)[1]["train"].counts.tolist() == [2, 1, 0, 0]


def test_invalid_json_names_its_line(tmp_path):
    (tmp_path / "x.json").write_text('{"images": [\n  1,,\n]}')
    with pytest.raises(DataError, match=r"x\.json:2:5: invalid JSON"):
        read_detection_labels(tmp_path / "x.json")
