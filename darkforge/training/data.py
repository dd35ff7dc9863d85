"""The data layer's public face: datasets, splits, batches and image decoding.

Images are decoded once into a uint8 cache (cache.py) and batches are a gather, a float conversion
and batched augmentation on the training device (batches.py, augment.py): no per-sample PIL work in
the hot loop. Where the decoded pixels live is the cache mode (datasets.py): `ram` (one tensor, as
fast as it gets), `disk` (the cache memory-mapped: data larger than memory) or `none` (files decoded
in DataLoader workers). Sources and modes: datasets.py; statistics in bounded memory: splits.py.
"""

from darkforge.training.batches import Batches
from darkforge.training.datasets import MODES, SOURCES, cache_dir, default_budget, load_dataset, parse_size
from darkforge.training.images import read_image
from darkforge.training.splits import Dataset, Split

__all__ = [
    "MODES",
    "SOURCES",
    "Batches",
    "Dataset",
    "Split",
    "cache_dir",
    "default_budget",
    "load_dataset",
    "parse_size",
    "read_image",
]
