"""Box augmentation throughput: darkforge's batched pipeline (darkforge.training.detection.data.augment) vs a
per-image torchvision.transforms.v2 pipeline with tv_tensors.BoundingBoxes, interleaved rounds in
one process, medians.

Both do the same work on the same uint8 letterboxed images: horizontal flip (p 0.5), random scale
(0.5-1.5) and translation (±10%) filled with grey 114, HSV-like colour jitter (hue 0.015, saturation
0.7, value/brightness 0.4), boxes clipped and thin ones dropped, and end with a batch: (B, 3, S, S)
uint8 and (M, 6) targets (the v2 side stacks its images and concatenates its boxes). darkforge's
mosaic has no v2 counterpart; its throughput with mosaic on is reported beside.

    python benchmarks/detection_augment.py /tmp/cifar-det-64/data.yaml [--images 2048] [--batch 64]
        [--rounds 5] [--threads 1] [--size 64]
    python benchmarks/detection_augment.py --fake        # random images and boxes, no data needed

Prints one JSON line: img/s of each pipeline (median over rounds, and every round), the ratio, the
machine, the load.
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

from darkforge.training.detection.data import BoxAugment, augment, load_detection_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", type=Path, help="a data.yaml or COCO json")
    parser.add_argument("--fake", action="store_true", help="random images and boxes instead of data")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", type=int, default=2048, help="images per pipeline per round")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images, targets = _fake(args) if args.fake or args.data is None else _real(args)
    batches = _batches(images, targets, args.batch)
    pipelines = {
        "darkforge_batched": lambda g: [augment(x, t, g, mosaic=False) for x, t in batches],
        "darkforge_batched_mosaic": lambda g: [augment(x, t, g, mosaic=True) for x, t in batches],
        "torchvision_v2_per_image": _v2_pipeline(args.size, batches),
    }
    rounds: dict[str, list[float]] = {name: [] for name in pipelines}
    for k in range(args.rounds):
        for name, run in pipelines.items():  # interleaved: a busier machine slows each alike
            g = torch.Generator().manual_seed(k)
            torch.manual_seed(k)  # transforms v2 draws from torch's global generator
            start = time.perf_counter()
            run(g)
            rounds[name].append(len(images) / (time.perf_counter() - start))
    median = {name: statistics.median(v) for name, v in rounds.items()}
    print(
        json.dumps(
            {
                "benchmark": "detection_augment",
                "data": "fake" if args.fake or args.data is None else str(args.data),
                "size": args.size,
                "images": len(images),
                "batch": args.batch,
                "rounds": args.rounds,
                "img_s": median,
                "img_s_rounds": rounds,
                "batched_over_v2": median["darkforge_batched"] / median["torchvision_v2_per_image"],
                "mosaic_over_v2": median["darkforge_batched_mosaic"] / median["torchvision_v2_per_image"],
                "threads": torch.get_num_threads(),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                "load_average": os.getloadavg(),
                "torch": torch.__version__,
            }
        )
    )


def _real(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    train = load_detection_data(args.data, args.size, cache_mode="ram").train
    rows = torch.arange(min(args.images, len(train)))
    return train.gather(rows), train.targets(rows)


def _fake(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    n, s = args.images, args.size
    images = torch.randint(0, 256, (n, 3, s, s), dtype=torch.uint8, generator=g)
    xy = torch.rand(n * 2, 2, generator=g) * s * 0.6
    wh = torch.rand(n * 2, 2, generator=g) * s * 0.3 + s * 0.1
    index = torch.arange(n * 2) // 2
    classes = torch.randint(0, 10, (n * 2,), generator=g)
    return images, torch.cat([index[:, None].float(), classes[:, None].float(), xy, xy + wh], 1)


def _batches(
    images: torch.Tensor, targets: torch.Tensor, batch: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out = []
    for start in range(0, len(images), batch):
        rows = targets[(targets[:, 0] >= start) & (targets[:, 0] < start + batch)].clone()
        rows[:, 0] -= start
        out.append((images[start : start + batch], rows))
    return out


def _v2_pipeline(size: int, batches: list[tuple[torch.Tensor, torch.Tensor]]):
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    config = BoxAugment()
    transform = v2.Compose(
        [
            v2.RandomHorizontalFlip(config.flip),
            v2.RandomAffine(
                degrees=0.0,
                translate=(config.translate, config.translate),
                scale=(1 - config.scale, 1 + config.scale),
                fill=114,
            ),
            v2.ColorJitter(brightness=config.hsv_v, saturation=config.hsv_s, hue=config.hsv_h),
            v2.ClampBoundingBoxes(),
            v2.SanitizeBoundingBoxes(min_size=config.min_side),
        ]
    )

    def run(_: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        for x, t in batches:
            images, rows = [], []
            for i in range(len(x)):
                mine = t[t[:, 0] == i]
                sample = {
                    "image": tv_tensors.Image(x[i]),
                    "boxes": tv_tensors.BoundingBoxes(mine[:, 2:], format="XYXY", canvas_size=(size, size)),
                    "labels": mine[:, 1].long(),
                }
                result = transform(sample)
                images.append(result["image"])
                n = len(result["labels"])
                rows.append(
                    torch.cat(
                        [torch.full((n, 1), float(i)), result["labels"][:, None].float(), result["boxes"]], 1
                    )
                )
            out.append((torch.stack(images), torch.cat(rows)))
        return out

    return run


if __name__ == "__main__":
    main()
