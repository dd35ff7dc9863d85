"""Training data: datasets, splits, batches and image decoding (import the module you need).

Images are decoded once into a uint8 cache (cache.py) and batches are a gather, a float conversion
and batched augmentation on the training device (batches.py, augment.py, mixing.py): no per-sample
PIL work in the hot loop. Where the decoded pixels live is the cache mode (datasets.py): `ram` (one
tensor, as fast as it gets), `disk` (the cache memory-mapped: data larger than memory) or `none`
(files decoded in DataLoader workers). Sources and modes: datasets.py; statistics in bounded
memory: splits.py.
"""
