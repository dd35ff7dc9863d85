"""Does the YAML builder cost anything? A training step of the YAML-built Darknet-53 against the
hand-written reference module (tests/reference.py, bias-free convs so both are the same network),
interleaved in one process, median over rounds.

    python benchmarks/builder_overhead.py [--rounds 7] [--steps 3] [--batch 64]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from reference import Darknet53

import darkforge
from darkforge.nn.network import forward_order_copy


def step_time(
    model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, steps: int
) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    built = darkforge.build(ROOT / "archs" / "darknet53.yaml")
    reference = Darknet53(bias=False)
    forward_order_copy(reference, built)
    x, y = torch.randn(args.batch, 3, 32, 32), torch.randint(0, 10, (args.batch,))
    models = {"yaml": built, "reference": reference}
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for k, m in models.items()}
    for name, model in models.items():  # warm-up
        step_time(model, opts[name], x, y, 1)
    times: dict[str, list[float]] = {name: [] for name in models}
    for r in range(args.rounds):
        order = list(models) if r % 2 == 0 else list(reversed(models))  # alternate who goes first
        for name in order:
            times[name].append(step_time(models[name], opts[name], x, y, args.steps))
    ratios = [a / b for a, b in zip(times["yaml"], times["reference"], strict=True)]
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    for name, ts in times.items():
        print(
            f"{name:9s} median step {statistics.median(ts) * 1e3:7.1f} ms  ({args.batch / statistics.median(ts):.0f} img/s)"
        )
    print(
        f"ratio yaml/reference: median {statistics.median(ratios):.3f} (rounds: {', '.join(f'{r:.3f}' for r in ratios)})"
    )


if __name__ == "__main__":
    main()
