"""Training throughput of the three cache modes on one image folder, interleaved in one process
(median over rounds): `ram` (decoded images in memory), `disk` (the decoded cache memory-mapped),
`none` (files decoded per batch in DataLoader workers).

Each mode trains the same network (darknet53 --scale nano by default) from the same start with the
default recipe's batch, augmentation (crop 4, flip) and SGD, exactly as `darkforge train` builds its
batches (darkforge.training.data.batches). It also times the data path alone (fetch + augment, no model).

    python benchmarks/cache_modes.py /tmp/cifar10-jpeg [--rounds 5] [--steps 10] [--modes ram,disk]

Prints one JSON line: images/s per mode (median), the disk/ram ratio, the machine, the load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

import darkforge
from darkforge.training.data.batches import Batches
from darkforge.training.data.datasets import load_dataset
from darkforge.training.optim import make_optimizer
from darkforge.training.recipe import resolve

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--scale", default="nano")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="training batches per mode per round")
    parser.add_argument("--modes", default="ram,disk,none")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of `none`")
    args = parser.parse_args()
    modes = args.modes.split(",")
    recipe = resolve()
    arch = ROOT / "archs" / "darknet53.yaml"
    start = darkforge.build(arch, scale=args.scale).state_dict()
    runs = {}
    for mode in modes:
        data = load_dataset(f"imagefolder:{args.folder}", None, (32, 32), mode, workers=args.workers)
        mean, std = data.mean_std
        model = darkforge.build(arch, scale=args.scale)
        model.load_state_dict(start)
        batches = Batches(
            data.train, recipe.batch, mean, std, crop=4, flip=True, shuffle=True, drop_last=True
        )
        runs[mode] = (model, make_optimizer(model, recipe), batches)
    train = {m: [] for m in modes}
    loading = {m: [] for m in modes}
    for k in range(args.rounds):
        for mode in modes:  # interleaved: a busier machine slows every mode alike
            model, optimizer, batches = runs[mode]
            train[mode].append(_train(model, optimizer, batches, seed=k, steps=args.steps))
            loading[mode].append(_load(batches, seed=1000 + k, steps=args.steps))
    median = {m: statistics.median(v) for m, v in train.items()}
    result = {
        "benchmark": "cache_modes",
        "folder": str(args.folder),
        "arch": f"darknet53 --scale {args.scale}",
        "batch": recipe.batch,
        "rounds": args.rounds,
        "steps": args.steps,
        "train_img_s": median,
        "train_img_s_rounds": train,
        "data_only_img_s": {m: statistics.median(v) for m, v in loading.items()},
        "disk_over_ram": median["disk"] / median["ram"] if {"disk", "ram"} <= set(median) else None,
        "none_over_ram": median["none"] / median["ram"] if {"none", "ram"} <= set(median) else None,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, no GPU"
        if not torch.cuda.is_available()
        else "cuda",
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result))


def _train(model, optimizer, batches, seed: int, steps: int) -> float:
    model.train()
    criterion = torch.nn.CrossEntropyLoss()
    seen, start = 0, time.perf_counter()
    for step, (x, y) in enumerate(batches.epoch(seed)):
        if step == steps:
            break
        loss = criterion(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(y)
    return seen / (time.perf_counter() - start)


def _load(batches, seed: int, steps: int) -> float:
    seen, start = 0, time.perf_counter()
    for step, (_, y) in enumerate(batches.epoch(seed)):
        if step == steps:
            break
        seen += len(y)
    return seen / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
