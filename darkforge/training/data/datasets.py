"""Sources (`--data`) -> a Dataset, and where its decoded pixels live (`--cache`).

Sources: `cifar10` and `cifar100` (torchvision download), `imagefolder:DIR` (DIR/train/<class>/*,
DIR/test/<class>/*, and DIR/val/<class>/* when present), `fake` (generated, learnable).

Cache modes of an image folder (docs/performance.md):
- `ram`: every decoded image in one uint8 tensor (on the training device); fastest.
- `disk`: a decoded uint8 file beside the data, memory-mapped; rows are copied out per batch.
- `none`: files decoded per batch in DataLoader workers; nothing decoded is kept.
`auto` picks `ram` when the decoded size fits the budget (`--cache-budget`, default half the
machine's memory), else `disk` when the cache folder has room for it, else `none`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from darkforge.errors import DataError, UsageError
from darkforge.training.data import cache
from darkforge.training.data.images import IMAGE_SUFFIXES, Files, reason, resize
from darkforge.training.data.splits import Dataset, Split

MODES = ("auto", "ram", "disk", "none")
FOLDER_SPLITS = ("train", "val", "test")  # val is optional
CIFAR = {
    "cifar10": ("CIFAR10", "cifar-10-python.tar.gz"),
    "cifar100": ("CIFAR100", "cifar-100-python.tar.gz"),
}


def cache_dir() -> Path:
    return Path(os.environ.get("DARKFORGE_CACHE", Path.home() / ".cache" / "darkforge"))


def default_budget() -> int:
    """Half the machine's physical memory: what `auto` lets the decoded images take."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError):  # not POSIX: assume 8 GiB of memory
        return 4 * 2**30


def parse_size(text: str) -> int:
    """'512M', '4G', '1.5GiB' or a number of bytes -> bytes."""
    units = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = value[-1:] if value[-1:] in units else ""
    try:
        number = float(value[: len(value) - len(unit)])
    except ValueError:
        raise UsageError(f"--cache-budget {text!r} is not a size", "e.g. 512M, 4G or 1000000") from None
    if number <= 0:
        raise UsageError(f"--cache-budget {text!r} must be positive", "e.g. 512M, 4G")
    return int(number * units[unit])


def choose_cache(decoded: int, budget: int, free_disk: int) -> str:
    """The `auto` mode for `decoded` bytes of images."""
    if decoded <= budget:
        return "ram"
    return "disk" if decoded < free_disk * 0.9 else "none"


def load_dataset(
    source: str,
    data_dir: str | None,
    size: tuple[int, int],
    cache_mode: str = "auto",
    budget: int | None = None,
    workers: int | None = None,
) -> Dataset:
    """`source` is cifar10, cifar100, fake, or imagefolder:DIR; images come out at `size` (H, W).
    `cache_mode` and `budget` (bytes) choose where an image folder's pixels live; `workers` decode
    files in `none` mode (default: up to 4, one per CPU)."""
    kind, _, arg = source.partition(":")
    if kind not in SOURCES:
        raise UsageError(
            f"--data {source!r} is not a dataset", "use cifar10, cifar100, imagefolder:DIR or fake"
        )
    if cache_mode not in MODES:
        raise UsageError(f"--cache {cache_mode!r} is not a cache mode", f"use one of {', '.join(MODES)}")
    if kind != "imagefolder":
        if cache_mode in ("disk", "none"):
            raise UsageError(f"--cache {cache_mode} applies to imagefolder: data", "use --cache ram or auto")
        return SOURCES[kind](arg, data_dir, size)
    workers = min(4, os.cpu_count() or 1) if workers is None else workers
    return imagefolder(arg, size, cache_mode, budget or default_budget(), workers)


def _cifar(kind: str) -> Callable[[str, str | None, tuple[int, int]], Dataset]:
    def load(arg: str, data_dir: str | None, size: tuple[int, int]) -> Dataset:
        import torchvision

        klass, archive = CIFAR[kind]
        root = Path(data_dir) if data_dir else cache_dir() / kind
        try:
            root.mkdir(parents=True, exist_ok=True)
            splits = [
                getattr(torchvision.datasets, klass)(str(root), train=train, download=True)
                for train in (True, False)
            ]
        except (OSError, RuntimeError) as e:  # URLError is an OSError; a bad archive a RuntimeError
            raise DataError(
                f"cannot get {klass[:5]}-{klass[5:]} into {root} ({reason(e)})",
                f"offline? put {archive} in {root} (or pass --data-dir), "
                "or train from image folders with --data imagefolder:DIR",
            ) from None
        parts = [
            Split(
                resize(torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(), size),
                torch.tensor(s.targets),
            )
            for s in splits
        ]
        return Dataset(kind, parts[0], parts[1], list(splits[0].classes))

    return load


def imagefolder(arg: str, size: tuple[int, int], mode: str, budget: int, workers: int) -> Dataset:
    if not arg:
        raise UsageError("--data imagefolder needs a folder", "e.g. --data imagefolder:/data/cifar10-jpeg")
    root = Path(arg).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder", "it must hold train/<class>/ and test/<class>/")
    names = [s for s in FOLDER_SPLITS if s != "val" or (root / "val").is_dir()]
    files = {split: _class_files(root / split) for split in names}
    classes = list(files["train"])
    for split in names[1:]:
        if list(files[split]) != classes:
            only = sorted(set(classes) ^ set(files[split]))
            raise DataError(
                f"{root}: train and {split} have different classes ({', '.join(only)})",
                f"train and {split} need the same class folders",
            )
    items = {s: [(p, label) for label, paths in enumerate(files[s].values()) for p in paths] for s in names}
    decoded = sum(len(v) for v in items.values()) * 3 * size[0] * size[1]
    if mode == "auto":
        mode = choose_cache(decoded, budget, _free_space(root))
    if mode == "none":
        splits = {s: Split(Files([p for p, _ in v], size, 3, workers), _labels(v)) for s, v in items.items()}
    else:
        splits = _cached(root, size, classes, items, mode)
    val = splits.get("val")
    return Dataset(f"imagefolder:{root}", splits["train"], splits["test"], classes, val, mode)


def _labels(items: list[tuple[Path, int]]) -> torch.Tensor:
    return torch.tensor([label for _, label in items], dtype=torch.long)


def _cached(
    root: Path, size: tuple[int, int], classes: list[str], items: cache.Items, mode: str
) -> dict[str, Split]:
    fingerprint = hashlib.sha256(repr((size, sorted(_stat_key(items)))).encode()).hexdigest()[:16]
    head = cache.header_for(fingerprint, size, 3, classes, items)
    name = f"darkforge-{fingerprint}.u8"
    places = [root / ".darkforge-cache" / name, cache_dir() / "imagefolder" / name]
    try:
        path = cache.ensure(places, head, items)
    except OSError as e:
        raise DataError(
            f"cannot write the decoded-image cache in {places[0].parent} or {places[1].parent} ({reason(e)})",
            "free some disk space, set DARKFORGE_CACHE to a writable folder, or use --cache none",
        ) from None
    splits = {}
    for s in items:
        images = cache.read_images(path, head, s) if mode == "ram" else cache.Mapped(path, head, s)
        splits[s] = Split(images, cache.read_labels(path, head, s))
    return splits


def _free_space(root: Path) -> int:
    try:
        return shutil.disk_usage(root).free
    except OSError:
        return 0


def _class_files(folder: Path) -> dict[str, list[Path]]:
    if not folder.is_dir():
        raise DataError(f"{folder}: missing", "an image folder needs train/<class>/ and test/<class>/")
    classes: dict[str, list[Path]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        images = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DataError(f"{sub}: no images (.jpg, .jpeg, .png)", "remove the folder or add images")
        classes[sub.name] = images
    if not classes:
        raise DataError(f"{folder}: no class folders", "put each class's images in folder/<class>/")
    return classes


def _stat_key(items: cache.Items) -> Iterator[tuple[str, int, int]]:
    for files in items.values():
        for path, _ in files:
            stat = path.stat()
            yield str(path), stat.st_size, stat.st_mtime_ns


def _fake(arg: str, data_dir: str | None, size: tuple[int, int]) -> Dataset:
    """Learnable synthetic data: each class is a colour and stripe pattern plus noise."""
    if arg and not re.fullmatch(r"[1-9]\d{0,6},[1-9]\d{0,6}", arg):
        raise UsageError(
            f"--data fake:{arg[:40]}: give two counts", "e.g. fake:1000,200 (train, test images)"
        )
    counts = [int(n) for n in arg.split(",")] if arg else [1000, 200]
    g = torch.Generator().manual_seed(1234)
    classes = [f"class{i}" for i in range(10)]
    prototypes = torch.rand(len(classes), 3, *size, generator=g)
    stripes = torch.arange(size[1]).float().div(3).sin()
    prototypes += (torch.arange(len(classes)) % 3).view(-1, 1, 1, 1) * stripes * 0.3

    def split(n: int) -> Split:
        labels = torch.arange(n) % len(classes)
        noise = torch.rand(n, 3, *size, generator=g) * 0.8
        images = (prototypes[labels] * 0.6 + noise * 0.5).clamp(0, 1).mul(255).to(torch.uint8)
        return Split(images, labels)

    return Dataset("fake", split(counts[0]), split(counts[1]), classes)


# `--data KIND[:ARG]` -> loader. load_dataset calls `imagefolder` itself, with the cache options;
# its entry here serves callers of the plain (arg, data_dir, size) signature.
SOURCES: dict[str, Callable[[str, str | None, tuple[int, int]], Dataset]] = {
    "cifar10": _cifar("cifar10"),
    "cifar100": _cifar("cifar100"),
    "imagefolder": lambda arg, data_dir, size: imagefolder(arg, size, "auto", default_budget(), 0),
    "fake": _fake,
}
