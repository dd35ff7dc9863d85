"""The dialect's blocks against the built-in types: one YOLOv8n training step (forward, loss-free
sum, backward) of archs/yolov8.yaml (C2f/SPPF written in archs/blocks/ultralytics.yaml, run as
BlockModules) and of archs/yolov8n.yaml (the built-in C2f/SPPF modules), the same network,
interleaved rounds in one process, medians.

    python benchmarks/library_blocks.py [--size 256] [--batch 8] [--rounds 7] [--threads 2]
    python benchmarks/library_blocks.py --arch archs/yolo11.yaml --scale n   # against the reader's

Prints one JSON line: seconds per step of each (median and every round), the ratio
library / built-in, the machine.
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

ROOT = Path(__file__).resolve().parents[1]
ORACLE = ROOT.parent / "shared" / "ultralytics-oracle"


def step(net: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    out = net(x)
    total = sum(o.float().sum() for o in (out if isinstance(out, list | tuple) else [out]))
    total.backward()  # type: ignore[union-attr]
    net.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default=str(ROOT / "archs" / "yolov8.yaml"))
    parser.add_argument("--scale", default="n")
    parser.add_argument("--baseline", default=None, help="default: archs/yolov8n.yaml, or the oracle's YAML")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name = Path(args.arch).stem
    baseline = args.baseline or (
        str(ROOT / "archs" / "yolov8n.yaml") if name == "yolov8" else str(ORACLE / f"{name}{args.scale}.yaml")
    )
    library = darkforge.build(args.arch, scale=args.scale, input_size=args.size).train()
    built_in = darkforge.build(baseline, input_size=args.size).train()
    assert library.plan.params == built_in.plan.params, "not the same network"
    x = torch.randn(args.batch, 3, args.size, args.size)
    step(library, x), step(built_in, x)  # warm-up
    times: dict[str, list[float]] = {"library": [], "built_in": []}
    for _ in range(args.rounds):
        times["library"].append(step(library, x))
        times["built_in"].append(step(built_in, x))
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(
        json.dumps(
            {
                "arch": args.arch,
                "scale": args.scale,
                "baseline": baseline,
                "params": library.plan.params,
                "size": args.size,
                "batch": args.batch,
                "threads": args.threads,
                "median_s": medians,
                "rounds_s": times,
                "library_over_built_in": round(medians["library"] / medians["built_in"], 3),
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}",
            }
        )
    )


if __name__ == "__main__":
    main()
