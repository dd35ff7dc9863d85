"""Datasets and batched augmentation."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from darkforge.errors import DataError, UsageError
from darkforge.training.data.batches import Batches
from darkforge.training.data.datasets import load_dataset
from darkforge.training.data.splits import Split


def make_folder(root, classes=("cat", "dog"), per_class=3, size=8):
    for split in ("train", "test"):
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (size, size), (40 * k + i,) * 3).save(folder / f"{i}.png")
    return root


def test_imagefolder_decodes_once_then_reads_the_cache(tmp_path):
    root = make_folder(tmp_path / "data")
    first = load_dataset(f"imagefolder:{root}", None, (8, 8))
    assert first.classes == ["cat", "dog"]
    assert first.train.images.shape == (6, 3, 8, 8) and first.train.images.dtype == torch.uint8
    assert first.train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert int(first.train.images[3, 0, 0, 0]) == 40
    assert list((root / ".darkforge-cache").glob("darkforge-*.u8"))
    second = load_dataset(f"imagefolder:{root}", None, (8, 8))
    assert torch.equal(first.test.images, second.test.images)
    resized = load_dataset(f"imagefolder:{root}", None, (4, 4))  # another size: another cache entry
    assert resized.train.images.shape == (6, 3, 4, 4)


@pytest.mark.parametrize(
    "breakage, words",
    [
        (
            lambda root: (root / "test" / "dog").rename(root / "test" / "cow"),
            ["different classes", "cow", "dog"],
        ),
        (lambda root: [p.unlink() for p in (root / "train" / "cat").iterdir()], ["train/cat", "no images"]),
        (
            lambda root: (root / "train" / "cat" / "0.png").write_bytes(b"not a png"),
            ["train/cat/0.png", "cannot decode"],
        ),
        (
            lambda root: [p.unlink() for p in (root / "test").rglob("*.png")] and None,
            ["test/cat", "no images"],
        ),
    ],
    ids=["class mismatch", "empty class", "corrupt image", "empty test"],
)
def test_bad_image_folders_name_the_file(tmp_path, breakage, words):
    root = make_folder(tmp_path / "data")
    breakage(root)
    with pytest.raises(DataError) as info:
        load_dataset(f"imagefolder:{root}", None, (8, 8))
    for word in words:
        assert word in str(info.value)


def test_unknown_source_and_missing_folder(tmp_path):
    with pytest.raises(UsageError, match="not a dataset"):
        load_dataset("mnist", None, (8, 8))
    with pytest.raises(DataError, match="no such folder"):
        load_dataset(f"imagefolder:{tmp_path / 'nope'}", None, (8, 8))


@pytest.mark.parametrize(
    "source, archive, name",
    [("cifar10", "cifar-10-python.tar.gz", "CIFAR-10"), ("cifar100", "cifar-100-python.tar.gz", "CIFAR-100")],
)
def test_offline_cifar_says_what_to_do(tmp_path, monkeypatch, source, archive, name):
    import urllib.error

    import torchvision.datasets.utils as utils

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(utils, "urlopen", offline, raising=False)
    monkeypatch.setattr(utils, "download_url", offline)
    monkeypatch.setattr(utils, "download_and_extract_archive", offline)
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "download_and_extract_archive", offline)
    with pytest.raises(DataError) as info:
        load_dataset(source, str(tmp_path), (32, 32))
    text = str(info.value)
    assert archive in text and str(tmp_path) in text and "imagefolder" in text
    assert text.startswith(f"cannot get {name} into")


def test_batches_are_seeded_and_augmented_per_image():
    images = torch.arange(4 * 3 * 6 * 6, dtype=torch.int64).remainder(251).to(torch.uint8).view(4, 3, 6, 6)
    split = Split(images, torch.arange(4))
    batches = Batches(split, 2, [0, 0, 0], [1, 1, 1], crop=2, flip=True, shuffle=True)
    a = [(x.clone(), y.clone()) for x, y in batches.epoch(seed=7)]
    b = [(x.clone(), y.clone()) for x, y in batches.epoch(seed=7)]
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b, strict=True))
    assert sorted(torch.cat([y for _, y in a]).tolist()) == [0, 1, 2, 3]
    assert a[0][0].shape == (2, 3, 6, 6)
    plain = Batches(split, 4, [0, 0, 0], [1, 1, 1])
    x, _ = next(plain.epoch(0))
    torch.testing.assert_close(x, images.float() / 255)


def test_crop_is_a_shift_with_zero_padding():
    image = torch.arange(1, 17, dtype=torch.uint8).view(1, 1, 4, 4)
    batches = Batches(Split(image, torch.zeros(1, dtype=torch.long)), 1, [0], [1], crop=1)
    out = batches.augment(image, torch.Generator().manual_seed(3))
    # every output is a window of the zero-padded image
    padded = torch.nn.functional.pad(image, (1, 1, 1, 1))
    windows = [padded[..., i : i + 4, j : j + 4] for i in range(3) for j in range(3)]
    assert any(torch.equal(out, w) for w in windows)


def test_a_bare_folder_and_the_train_val_layout_load(tmp_path):
    root = make_folder(tmp_path / "data")
    (root / "test").rename(root / "val")  # ImageNet's (and Ultralytics') layout: train/ + val/
    data = load_dataset(str(root), None, (8, 8))  # a bare path: an image folder
    assert data.name == f"imagefolder:{root} (val/ as the test split)"
    assert len(data.test) == 6 and data.val is None  # best is then picked on a share of train
    (root / "val").rename(root / "other")
    with pytest.raises(DataError, match="no test/ or val/ folder"):
        load_dataset(str(root), None, (8, 8))


def test_eval_decodes_only_the_split_it_measures_and_writes_nothing(run_cli, tmp_path):
    from conftest import ROOT

    root = make_folder(tmp_path / "data", per_class=4, size=16)
    arch = ROOT / "archs" / "darknet53.yaml"
    train = ["train", arch, "--scale", "nano", "--data", root, "epochs=1", "--project", tmp_path / "runs"]
    assert run_cli(*train).exit_code == 0
    for p in (root / "train").rglob("*.png"):
        p.write_bytes(b"not an image")  # eval must not read train/
    for cache in root.rglob(".darkforge-cache"):
        for f in cache.iterdir():
            f.unlink()
        cache.rmdir()
    result = run_cli("eval", tmp_path / "runs" / "train" / "weights" / "best.pt")
    assert result.exit_code == 0, result.output
    assert "on 8 test images" in result.output and not list(root.rglob(".darkforge-cache"))


def test_the_cache_location_is_said_once_and_settable(run_cli, tmp_path):
    from conftest import ROOT

    root = make_folder(tmp_path / "data", per_class=4, size=16)
    arch = ROOT / "archs" / "darknet53.yaml"
    train = ["train", arch, "--scale", "nano", "--data", root, "epochs=1", "--project", tmp_path / "runs"]
    result = run_cli(*train, "--cache", "disk", "--cache-dir", tmp_path / "elsewhere")
    assert result.exit_code == 0, result.output
    said = [line for line in result.output.splitlines() if line.startswith("decoded images: ")]
    assert len(said) == 1 and str(tmp_path / "elsewhere") in said[0] and "--cache-dir moves it" in said[0]
    assert list((tmp_path / "elsewhere").glob("darkforge-*.u8")) and not (root / ".darkforge-cache").exists()
