"""Training throughput: the tutorial's pipeline against darkforge's default one, same data, same
machine, interleaved in one process (median over rounds).

tutorial:  hand-written Darknet-53 (tests/reference.py, conv biases), torchvision ImageFolder
           with PIL decoding + ToTensor per sample, DataLoader(batch 64, shuffle, 2 workers),
           Adam lr 1e-3, fp32.
darkforge: the YAML-built network, images decoded once into a uint8 tensor, batches gathered and
           augmented (crop + flip) as whole tensors, SGD-Nesterov batch 256, as `darkforge train`.

    python benchmarks/train_throughput.py /tmp/cifar10-jpeg [--scale tiny] [--rounds 3]

Images per second count every image that went through a training step, loading included.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from reference import Darknet53

import darkforge
from darkforge.training.data.batches import Batches
from darkforge.training.data.datasets import load_dataset
from darkforge.training.optim import make_optimizer
from darkforge.training.recipe import resolve


def tutorial(folder: Path, scale: str | None) -> tuple[Callable[[int], float], int]:
    import torchvision
    from torchvision import transforms

    data = torchvision.datasets.ImageFolder(str(folder / "train"), transform=transforms.ToTensor())
    loader = torch.utils.data.DataLoader(
        data, batch_size=64, shuffle=True, num_workers=2, persistent_workers=True
    )
    model = Darknet53() if scale is None else darkforge.build(ROOT / "archs" / "darknet53.yaml", scale=scale)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = itertools.cycle(loader)  # keeps the workers alive between rounds
    return _stepper(model, optimizer, batches), 64


def darkforge_default(folder: Path, scale: str | None) -> tuple[Callable[[int], float], int]:
    recipe = resolve()
    dataset = load_dataset(f"imagefolder:{folder}", None, (32, 32))
    mean, std = dataset.mean_std
    model = darkforge.build(ROOT / "archs" / "darknet53.yaml", scale=scale)
    optimizer = make_optimizer(model, recipe)
    batches = Batches(dataset.train, recipe.batch, mean, std, crop=4, flip=True, shuffle=True, drop_last=True)
    stream = (b for epoch in itertools.count() for b in batches.epoch(epoch))
    return _stepper(model, optimizer, stream, label_smoothing=recipe.label_smoothing), recipe.batch


def _stepper(
    model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterator, label_smoothing: float = 0.0
) -> Callable[[int], float]:
    criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    model.train()

    def run(steps: int) -> float:
        start = time.perf_counter()
        images = 0
        for _ in range(steps):
            x, y = next(batches)
            optimizer.zero_grad(set_to_none=True)
            criterion(model(x), y).backward()
            optimizer.step()
            images += len(y)
        return images / (time.perf_counter() - start)

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path, help="the CIFAR-10 JPEG copy (train/<class>/...)")
    parser.add_argument("--scale", default=None, help="a scale of archs/darknet53.yaml (default: full)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=2048, help="images per measurement")
    args = parser.parse_args()
    torch.manual_seed(0)
    pipelines = {
        "tutorial": tutorial(args.folder, args.scale),
        "darkforge": darkforge_default(args.folder, args.scale),
    }
    for run, _ in pipelines.values():  # warm-up: workers started, caches hot
        run(2)
    rates: dict[str, list[float]] = {name: [] for name in pipelines}
    for r in range(args.rounds):
        order = list(pipelines) if r % 2 == 0 else list(reversed(pipelines))
        for name in order:
            run, batch = pipelines[name]
            rates[name].append(run(max(1, args.images // batch)))
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"network: darknet53{'' if args.scale is None else ' --scale ' + args.scale}")
    for name, values in rates.items():
        print(
            f"{name:9s} median {statistics.median(values):7.1f} img/s  (rounds: {', '.join(f'{v:.1f}' for v in values)})"
        )
    ratio = statistics.median(rates["darkforge"]) / statistics.median(rates["tutorial"])
    print(f"speed-up darkforge/tutorial: {ratio:.2f}x")


if __name__ == "__main__":
    main()
