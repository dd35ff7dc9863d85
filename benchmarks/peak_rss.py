"""Peak resident memory of `darkforge train`, measured with /usr/bin/time -v (one JSON line).

python benchmarks/peak_rss.py budget [--budget 64M] [--keep /tmp/big]
    An image folder generated so that its decoded size (at the network's 32 px) is 3× the
    budget trains one epoch with `--cache-budget BUDGET` (auto: disk) and with `--cache none`;
    each peak must stay below BUDGET + the peak of the same training on a tiny folder (the
    model's own memory: torch, the network, optimizer, activations). `--cache ram` is measured
    too, for contrast.
python benchmarks/peak_rss.py cifar FOLDER [--before SRC]
    `darkforge train archs/darknet53.yaml --scale nano --data imagefolder:FOLDER --epochs 1`,
    with this tree's code and, given --before, with the darkforge package at SRC (e.g. an older
    commit's `git archive` unpacked there).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCH = ROOT / "archs" / "darknet53.yaml"


def peak_rss(args: list[str], src: Path = ROOT, cwd: Path | None = None) -> dict[str, object]:
    """Run `darkforge ARGS` with the darkforge package found at `src`; its peak RSS and wall time."""
    launcher = f"import sys; sys.path.insert(0, {str(src)!r}); from darkforge.cli import main; main()"
    command = ["/usr/bin/time", "-v", sys.executable, "-c", launcher, *args]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:  # cwd: never the repository (its package would win)
        done = subprocess.run(command, capture_output=True, text=True, cwd=cwd or scratch, env=os.environ)
    kib = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    if done.returncode != 0 or kib is None:
        sys.exit(f"failed ({done.returncode}): {' '.join(args)}\n{done.stderr[-3000:]}")
    return {
        "peak_rss_mib": round(int(kib.group(1)) / 1024, 1),
        "wall_s": round(time.perf_counter() - start, 1),
    }


def train_args(folder: Path, project: Path, *extra: str) -> list[str]:
    return [
        "train", str(ARCH), "--scale", "nano", "--data", f"imagefolder:{folder}", "--epochs", "1",
        "--project", str(project), *extra,
    ]  # fmt: skip


def generate(folder: Path, images: int, classes: int = 10, size: int = 32) -> None:
    """`images` JPEGs (85% train, 15% test) of random blocks, `size` px, in `classes` classes."""
    import torch
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for k in range(images):
        split = "test" if k % 100 < 15 else "train"
        target = folder / split / f"class{k % classes}"
        target.mkdir(parents=True, exist_ok=True)
        blocks = torch.randint(0, 256, (size // 8, size // 8, 3), generator=g, dtype=torch.uint8)
        pixels = blocks.repeat_interleave(8, 0).repeat_interleave(8, 1).numpy()
        Image.fromarray(pixels).save(target / f"{k:06d}.jpg", quality=90)


def parse_size(text: str) -> int:
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def budget_check(args: argparse.Namespace) -> dict[str, object]:
    budget = parse_size(args.budget)
    images = 3 * budget // (3 * 32 * 32) + 1  # decoded at 32 px: 3,072 bytes an image
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        big = Path(args.keep) if args.keep else work / "big"
        if not (big / "train").is_dir():
            generate(big, images)
        generate(work / "tiny", 700)  # enough for full batches of 256: the same activations
        runs = {"tiny folder (the model's own memory)": peak_rss(train_args(work / "tiny", work / "runs"))}
        for name, extra in (
            ("auto (disk)", ("--cache-budget", args.budget)),
            ("none", ("--cache", "none", "--cache-budget", args.budget)),
            *((("ram", ("--cache", "ram")),) if args.with_ram else ()),
        ):
            runs[name] = peak_rss(train_args(big, work / "runs", *extra))
    model = runs["tiny folder (the model's own memory)"]["peak_rss_mib"]
    limit = budget / 2**20 + float(model)  # type: ignore[arg-type]
    return {
        "benchmark": "peak_rss budget",
        "budget_mib": budget / 2**20,
        "images": images,
        "decoded_mib": round(images * 3072 / 2**20, 1),
        "limit_mib": round(limit, 1),
        "runs": runs,
        "below_limit": {k: float(v["peak_rss_mib"]) < limit for k, v in runs.items()},  # type: ignore[arg-type]
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }


def cifar(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as scratch:
        runs = {"after": peak_rss(train_args(args.folder, Path(scratch) / "runs"))}
        if args.before:
            runs["before"] = peak_rss(train_args(args.folder, Path(scratch) / "runs"), src=args.before)
    return {
        "benchmark": "peak_rss cifar",
        "folder": str(args.folder),
        "runs": runs,
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    b = sub.add_parser("budget")
    b.add_argument("--budget", default="64M")
    b.add_argument("--keep", help="generate the big folder here (kept for reruns)")
    b.add_argument("--with-ram", action="store_true", help="also train with --cache ram")
    c = sub.add_parser("cifar")
    c.add_argument("folder", type=Path)
    c.add_argument("--before", type=Path, help="a tree holding an older darkforge package")
    args = parser.parse_args()
    print(json.dumps(budget_check(args) if args.what == "budget" else cifar(args)))


if __name__ == "__main__":
    main()
