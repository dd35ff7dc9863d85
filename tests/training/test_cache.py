"""Cache modes (ram, disk, none): same batches, header checks, one builder, no partial cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from darkforge.errors import UsageError
from darkforge.training.data import cache, datasets
from darkforge.training.data.batches import Batches
from darkforge.training.data.datasets import load_dataset
from darkforge.training.data.splits import Split, channel_stats


def make_folder(root, splits=("train", "test"), classes=("cat", "dog"), per_class=5, size=10):
    g = torch.Generator().manual_seed(0)
    for split in splits:
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8).numpy()
                suffix = ".jpg" if i % 2 else ".png"  # both decoders
                Image.fromarray(pixels).save(folder / f"{i}{suffix}")
    return root


def first_batches(dataset, n=2):
    batches = Batches(dataset.train, 4, [0.5] * 3, [0.25] * 3, crop=2, flip=True, shuffle=True)
    out = []
    for k, (x, y) in enumerate(batches.epoch(seed=11)):
        out.append((x, y))
        if k + 1 == n:
            break
    return out


@pytest.mark.parametrize("workers", [0, 2])
def test_the_three_cache_modes_give_identical_batches(tmp_path, workers):
    root = make_folder(tmp_path / "data")
    modes = {
        m: load_dataset(f"imagefolder:{root}", None, (8, 8), m, workers=workers)
        for m in ("ram", "disk", "none")
    }
    assert {m: d.cache for m, d in modes.items()} == {"ram": "ram", "disk": "disk", "none": "none"}
    assert isinstance(modes["ram"].train.images, torch.Tensor)
    assert not isinstance(modes["disk"].train.images, torch.Tensor)  # memory-mapped
    reference = first_batches(modes["ram"])
    for mode in ("disk", "none"):
        for (x, y), (rx, ry) in zip(first_batches(modes[mode]), reference, strict=True):
            assert torch.equal(x, rx) and torch.equal(y, ry), mode
    assert torch.equal(modes["none"].test.images[torch.arange(10)], modes["ram"].test.images)
    assert channel_stats(modes["disk"].train) == channel_stats(modes["ram"].train)


def test_auto_picks_by_the_decoded_size_and_the_budget(tmp_path):
    root = make_folder(tmp_path / "data")  # 20 images of 3×8×8 = 3,840 bytes decoded
    assert load_dataset(f"imagefolder:{root}", None, (8, 8), budget=3840).cache == "ram"
    assert load_dataset(f"imagefolder:{root}", None, (8, 8), budget=3839).cache == "disk"
    assert datasets.choose_cache(10, 5, free_disk=1000) == "disk"
    assert datasets.choose_cache(10, 5, free_disk=10) == "none"
    assert datasets.parse_size("1.5G") == 3 * 2**29 and datasets.parse_size("512MiB") == 2**29
    assert datasets.parse_size("1000") == 1000
    for bad in ("lots", "-1G", "0"):
        with pytest.raises(UsageError, match="--cache-budget"):
            datasets.parse_size(bad)
    with pytest.raises(UsageError, match="not a cache mode"):
        load_dataset(f"imagefolder:{root}", None, (8, 8), "swap")
    with pytest.raises(UsageError, match="applies to imagefolder"):
        load_dataset("fake", None, (8, 8), "disk")


def test_a_val_folder_is_the_third_split(tmp_path):
    root = make_folder(tmp_path / "data", splits=("train", "val", "test"), per_class=3)
    for mode in ("ram", "disk", "none"):
        data = load_dataset(f"imagefolder:{root}", None, (8, 8), mode)
        assert data.val is not None and len(data.val) == 6 and data.val.labels.tolist() == [0, 0, 0, 1, 1, 1]
        assert torch.equal(data.val.images[torch.arange(6)], data.train.images[torch.arange(6)]) is False
    assert load_dataset(f"imagefolder:{make_folder(tmp_path / 'b')}", None, (8, 8)).val is None
    (root / "val" / "dog").rename(root / "val" / "cow")
    with pytest.raises(Exception, match="train and val have different classes"):
        load_dataset(f"imagefolder:{root}", None, (8, 8))


def test_mean_std_in_chunks_equals_the_float_reference(monkeypatch):
    images = torch.randint(
        0, 256, (37, 3, 5, 7), generator=torch.Generator().manual_seed(1), dtype=torch.uint8
    )
    monkeypatch.setattr("darkforge.training.data.splits.STATS_CHUNK_BYTES", 3 * 5 * 7 * 4)  # 4 images a chunk
    mean, std = channel_stats(Split(images, torch.zeros(37, dtype=torch.long)))
    x = images.double() / 255
    torch.testing.assert_close(torch.tensor(mean), x.mean((0, 2, 3)).float())
    torch.testing.assert_close(torch.tensor(std), x.std((0, 2, 3)).float())
    sampled, _ = channel_stats(Split(images, torch.zeros(37, dtype=torch.long)), limit=10)
    assert sampled != mean  # at most `limit` images, evenly spread


def cache_file(root):
    (path,) = (root / ".darkforge-cache").glob("darkforge-*.u8")
    return path


def test_a_changed_or_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "data")
    first = load_dataset(f"imagefolder:{root}", None, (8, 8), "ram")
    path = cache_file(root)
    builds = []
    real_build = cache.build
    monkeypatch.setattr(cache, "build", lambda *a: builds.append(1) or real_build(*a))
    load_dataset(f"imagefolder:{root}", None, (8, 8), "ram")
    assert builds == []  # valid: read, not rebuilt
    head = cache.read_header(path)
    labels_at = head["start"] + head["splits"]["train"]["labels"]
    damages = {
        "torn": lambda raw: raw[: len(raw) // 2],
        "label out of range": lambda raw: raw[:labels_at] + (99).to_bytes(8, "little") + raw[labels_at + 8 :],
        "foreign header": lambda raw: raw.replace(b'"cat"', b'"cow"', 1),
        "not a cache": lambda raw: b"junk" + raw[4:],
    }
    for name, damage in damages.items():
        path.write_bytes(damage(path.read_bytes()))
        with pytest.warns(UserWarning, match="rebuilding it"):  # one line says why
            again = load_dataset(f"imagefolder:{root}", None, (8, 8), "ram")
        assert torch.equal(again.train.images, first.train.images) and again.classes == ["cat", "dog"], name
    assert len(builds) == len(damages)
    (root / "train" / "cat" / "0.png").unlink()  # another file list: another fingerprint
    assert len(load_dataset(f"imagefolder:{root}", None, (8, 8), "disk").train) == 9
    assert len(builds) == len(damages) + 1


def test_one_builder_the_others_wait_then_read(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "data")
    load_dataset(f"imagefolder:{root}", None, (8, 8), "ram")
    path = cache_file(root)
    saved = path.read_bytes()
    path.unlink()
    builds = []
    monkeypatch.setattr(cache, "build", lambda *a: builds.append(1))
    result = {}
    with cache.locked(path):  # another builder holds the lock
        thread = threading.Thread(
            target=lambda: result.update(d=load_dataset(f"imagefolder:{root}", None, (8, 8)))
        )
        thread.start()
        time.sleep(0.3)
        assert thread.is_alive()  # waiting for the builder
        path.write_bytes(saved)  # the builder finishes
    thread.join(10)
    assert builds == [] and len(result["d"].train) == 10


def test_a_cache_that_passes_every_header_check_but_not_its_checksum_is_rebuilt(tmp_path):
    """A flipped label (still a valid class) or zeroed pixels: same header, same length; the
    checksum tells, the cache is rebuilt with one warning line, the data set is the source's."""
    root = make_folder(tmp_path / "data")
    first = load_dataset(f"imagefolder:{root}", None, (8, 8), "ram")
    path = cache_file(root)
    head = cache.read_header(path)
    labels_at = head["start"] + head["splits"]["train"]["labels"]
    damages = {
        "flipped label": lambda raw: raw[:labels_at] + (1).to_bytes(8, "little") + raw[labels_at + 8 :],
        "zeroed pixels": lambda raw: raw[: head["start"]] + bytes(192) + raw[head["start"] + 192 :],
    }
    for name, damage in damages.items():
        raw = path.read_bytes()
        path.write_bytes(damage(raw))
        assert path.stat().st_size == len(raw) and not cache.valid(path, expected_head(root)), name
        with pytest.warns(UserWarning, match="do not match their checksum.*rebuilding it"):
            again = load_dataset(f"imagefolder:{root}", None, (8, 8), "ram")
        assert torch.equal(again.train.images, first.train.images), name
        assert torch.equal(again.train.labels, first.train.labels), name


def expected_head(root):
    """The header the cache of `root` must carry (what the file's says, less length and checksum)."""
    head = cache.read_header(cache_file(root))
    del head["_length"], head["checksum"]
    return head


@pytest.mark.parametrize("kind", ["nested JSON", "fifo"])
def test_a_hostile_cache_file_is_rebuilt_never_a_crash_or_a_hang(tmp_path, kind):
    import struct

    root = make_folder(tmp_path / "data")
    first = load_dataset(f"imagefolder:{root}", None, (8, 8), "ram")
    path = cache_file(root)
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        text = ("[" * 100_000 + "]" * 100_000).encode()
        path.write_bytes(cache.MAGIC + struct.pack("<Q", len(text)) + text)
    with pytest.warns(UserWarning, match="not a darkforge cache file"):
        again = load_dataset(f"imagefolder:{root}", None, (8, 8), "ram")
    assert torch.equal(again.train.images, first.train.images)
    assert path.is_file() and cache.read_header(path)["version"] == cache.VERSION
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the next run reads it without a word
        load_dataset(f"imagefolder:{root}", None, (8, 8), "ram")


KILLED_BUILD = """
import sys, time
from darkforge.training.data import cache, datasets
real = cache.decode_file
def slow(*a):
    time.sleep(0.05)
    return real(*a)
cache.decode_file = slow
datasets.load_dataset("imagefolder:" + sys.argv[1], None, (8, 8), "disk")
"""


def test_a_killed_build_leaves_no_cache_and_its_temp_is_removed(tmp_path):
    root = make_folder(tmp_path / "data", per_class=40)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, str(root)])
    folder = root / ".darkforge-cache"
    deadline = time.time() + 60
    while not list(folder.glob(".*.tmp*")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(folder.glob(".*.tmp*")) and not list(folder.glob("darkforge-*.u8"))  # a temp, never a cache
    data = load_dataset(f"imagefolder:{root}", None, (8, 8), "disk")
    assert len(data.train) == 80 and not list(folder.glob(".*.tmp*"))
    assert cache.valid(cache_file(root), data.train.images.head)


TINY_NET = """
name: tiny
input: {channels: 3, size: 8}
layers:
  - {type: ConvBnLeaky, filters: 4, size: 3}
  - {type: GlobalAvgPool}
  - {type: Linear, out: 2}
"""


@pytest.mark.parametrize("mode", ["disk", "none"])
def test_train_runs_from_disk_and_from_files(run_cli, write, tmp_path, mode):
    root = make_folder(tmp_path / "data", splits=("train", "val", "test"), per_class=4)
    arch = write("tiny.yaml", TINY_NET)
    project = tmp_path / "runs"
    result = run_cli(
        "train", arch, "--data", f"imagefolder:{root}", "--cache", mode, "--epochs", "1",
        "--batch-size", "4", "--device", "cpu", "--project", project,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "done: best epoch 1 (" in result.output and "final epoch 1: test acc" in result.output
    args = (project / "train" / "args.yaml").read_text()
    assert f"cache: {mode}" in args
    bad = run_cli(
        "train", arch, "--data", f"imagefolder:{root}", "--cache-budget", "lots", "--project", project
    )
    assert bad.exit_code == 2 and "--cache-budget 'lots' is not a size" in bad.output


def mapped_rss_kib(path):
    """Resident KiB of this process's mappings of `path` (Linux smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if line[0] in "0123456789abcdef" and "-" in line.split()[0]:
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="Linux smaps")
def test_disk_mode_keeps_no_pages_of_the_file_resident(tmp_path):
    import hashlib
    import json
    import struct

    n, size = 4000, (32, 32)  # 12 MiB of pixels
    items = {"train": [(tmp_path / f"{i}.png", i % 2) for i in range(n)]}
    head = cache.header_for("f", size, 3, ["a", "b"], items)
    path = tmp_path / "c.u8"
    payload = torch.randint(0, 256, (n * 3 * 32 * 32,), dtype=torch.uint8).numpy().tobytes()
    payload += torch.tensor([i % 2 for i in range(n)], dtype=torch.int64).numpy().tobytes()
    checksum = hashlib.blake2b(payload, digest_size=16).hexdigest()
    text = json.dumps(head | {"checksum": checksum}).encode()
    with path.open("wb") as f:  # a cache written by hand: random pixels, no decoding
        f.write(cache.MAGIC + struct.pack("<Q", len(text)) + text)
        f.write(b"\0" * (head["start"] - f.tell()))
        f.write(payload)
    assert cache.valid(path, head)
    mapped = cache.Mapped(path, head, "train")
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        rows = torch.randint(0, n, (256,), generator=g)
        batch = mapped[rows]
        assert mapped_rss_kib(path) == 0  # dropped right after the gather
    everything = mapped[torch.arange(n)]
    assert torch.equal(batch, everything[rows])
    reference = torch.from_numpy(np.fromfile(path, dtype=np.uint8, count=n * 3072, offset=head["start"]))
    assert torch.equal(everything.reshape(-1), reference)
