"""Detection batches: one seed gives the same batches in every cache mode; targets follow images."""

from __future__ import annotations

import torch
from detset import write_set

from darkforge.training.detection.data import BoxAugment, DetectionBatches, load_detection_data


def test_a_seed_gives_the_same_batches_in_every_cache_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("DARKFORGE_CACHE", str(tmp_path / "cache"))
    data_yaml, _ = write_set(tmp_path / "set")
    epochs = []
    for mode, workers in (("ram", 0), ("disk", 0), ("none", 0), ("none", 1)):
        data = load_detection_data(data_yaml, 32, cache_mode=mode, workers=workers)
        batches = DetectionBatches(data.train, 3, BoxAugment(), shuffle=True)
        assert len(batches) == 2  # 4 images: 3 + 1
        epochs.append(list(batches.epoch(seed=7, mosaic=True)))
    for other in epochs[1:]:
        for (x, t), (y, u) in zip(epochs[0], other, strict=True):
            assert torch.equal(x, y) and torch.equal(t, u)
    assert [x.shape[0] for x, _ in epochs[0]] == [3, 1]


def test_without_augmentation_a_batch_is_the_split_in_order(tmp_path):
    data_yaml, _ = write_set(tmp_path)
    data = load_detection_data(data_yaml, 32, cache_mode="none")
    (x, t), (_, u) = DetectionBatches(data.train, 2).epoch(seed=0)
    assert torch.equal(x, data.train.gather(torch.tensor([0, 1])))
    assert torch.equal(t, data.train.targets(torch.tensor([0, 1])))
    assert u.shape == (0, 6)  # c.jpg and d.png are background images


def test_a_subset_keeps_each_image_with_its_boxes(tmp_path):
    data_yaml, _ = write_set(tmp_path)
    train = load_detection_data(data_yaml, 32, cache_mode="ram").train
    rows = torch.tensor([1, 3, 0])
    part = train.subset(rows)
    assert len(part) == 3 and part.counts.tolist() == [1, 0, 2]
    assert torch.equal(part.gather(torch.arange(3)), train.gather(rows))
    assert torch.equal(part.targets(torch.arange(3)), train.targets(rows))
    assert [f.name for f in part.files] == ["b.png", "d.png", "a.jpg"]
    assert torch.equal(part.scale, train.scale[rows]) and torch.equal(part.pad, train.pad[rows])
