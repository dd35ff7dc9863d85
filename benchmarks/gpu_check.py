"""One call on a CUDA machine (at most 8 minutes): does every GPU path run, and how fast?

Prints one JSON line (format in docs/performance.md):
- train images/s of the full Darknet-53 at 32 px, batch 256, in fp32 / bf16 / bf16 + channels_last
  / bf16 + channels_last + compile (darkforge.benchmark, interleaved rounds, medians);
- the default recipe's test accuracy after a fixed short schedule (--epochs) and its wall time;
- peak GPU memory of that run;
- a one-GPU `torchrun` (NCCL) smoke run of `darkforge train`.

    python benchmarks/gpu_check.py --data imagefolder:/tmp/cifar10-jpeg   # the GPU machine is offline
    python benchmarks/gpu_check.py --data /work/shared/datasets/cifar10-jpeg.tar.gz  # extracted to /tmp
    python benchmarks/gpu_check.py --dry-run    # CPU, tiny network, a few steps: the tests run this

A part that fails is reported in the JSON (its error, one line) and the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from darkforge.benchmark.measure import Settings, benchmark
from darkforge.benchmark.modes import Setup
from darkforge.training import loop
from darkforge.training.recipe import resolve
from darkforge.training.rundir import RunDir

ROOT = Path(__file__).resolve().parent.parent
ARCH = ROOT / "archs" / "darknet53.yaml"
FORMAT = 1
DRY_DATA = "fake:64,32"  # the dry run's data (generated), and the torchrun smoke run's everywhere
# name -> (autocast dtype, channels_last, benchmark mode)
VARIANTS = {
    "fp32": (None, False, "eager"),
    "bf16": (torch.bfloat16, False, "eager"),
    "bf16_channels_last": (torch.bfloat16, True, "eager"),
    "bf16_channels_last_compile": (torch.bfloat16, True, "compile"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny network, a few steps")
    parser.add_argument("--data", default="cifar10", help="a --data source, or a .tar.gz of an image folder")
    parser.add_argument("--epochs", type=int, default=10, help="the short schedule of the accuracy run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="timed batches per variant per round")
    args = parser.parse_args()
    began = time.perf_counter()
    dry = args.dry_run
    if not dry and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA GPU here (use --dry-run to check the script on a CPU)")
    device = torch.device("cpu" if dry else "cuda")
    with tempfile.TemporaryDirectory() as scratch:
        data = DRY_DATA if dry else _data(args.data, Path(scratch))
        result: dict[str, Any] = {"gpu_check": FORMAT, "dry_run": dry, "device": _device_name(device)}
        result |= {"torch": torch.__version__, "cuda": torch.version.cuda}
        result["train_img_s"], result["errors"] = _speeds(device, dry, args)
        result["recipe"] = _guard(lambda: _recipe_run(device, data, dry, args.epochs, Path(scratch)))
        result["peak_gpu_memory_bytes"] = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
        result["torchrun"] = _guard(lambda: _torchrun(dry, Path(scratch)))
    result["wall_s"] = round(time.perf_counter() - began, 1)
    print(json.dumps(result))


def _data(source: str, scratch: Path) -> str:
    if not source.endswith(".tar.gz"):
        return source
    with tarfile.open(source) as archive:
        archive.extractall(scratch, filter="data")
    (folder,) = [p for p in scratch.iterdir() if p.is_dir()]
    return f"imagefolder:{folder}"


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def _guard(part: Any) -> dict[str, Any]:
    try:
        return part()
    except Exception as e:  # one broken part must not hide the others' numbers
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}


def _speeds(
    device: torch.device, dry: bool, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, str]]:
    speeds: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, (dtype, channels_last, mode) in VARIANTS.items():
        if dry and mode == "compile":
            mode = "eager"  # compiling on a CPU takes minutes; the wiring is what the dry run checks
        settings = Settings(
            batch=4 if dry else 256,
            rounds=1 if dry else args.rounds,
            steps=1 if dry else args.steps,
            latency=1,
            modes=(mode,),
            scale="nano" if dry else None,
            input_size=16 if dry else None,
            setup=Setup(device, dtype, channels_last),
        )
        numbers = benchmark([str(ARCH)], settings)["models"][0]["modes"][mode]
        if "error" in numbers:
            errors[name] = numbers["error"]
        speeds[name] = numbers.get("train_img_s")
    return speeds, errors


def _recipe_run(device: torch.device, data: str, dry: bool, epochs: int, scratch: Path) -> dict[str, Any]:
    recipe = resolve("default", overrides={"epochs": 1 if dry else epochs, "batch": 16 if dry else None})
    job = loop.Job(ARCH.read_text(), str(ARCH), "nano" if dry else None, recipe, data, None, str(device))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    trainer = loop.fit(job, RunDir.create(scratch / "runs", "check"), lambda event: None)
    if device.type == "cuda":
        torch.cuda.synchronize()
    last = trainer.history[-1]
    return {
        "data": data,
        "arch": "darknet53" + (" --scale nano" if dry else ""),
        "epochs": recipe.epochs,
        "batch": recipe.batch,
        "test_acc": last["test_acc"],
        "best": trainer.best,
        "img_s": last["img_s"],
        "wall_s": round(time.perf_counter() - start, 1),
    }


def _torchrun(dry: bool, scratch: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
    command += ["-m", "darkforge", "train", str(ARCH), "--scale", "nano", "--data", DRY_DATA]
    command += ["--epochs", "1", "--batch-size", "16", "--project", str(scratch / "ddp"), "--device"]
    command += ["cpu" if dry else "cuda"]
    start = time.perf_counter()
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] if done.returncode else []
    return {
        "backend": "gloo" if dry else "nccl",
        "ok": done.returncode == 0,
        "rc": done.returncode,
        "wall_s": round(time.perf_counter() - start, 1),
        "error": tail[0][:300] if tail else None,
    }


if __name__ == "__main__":
    main()
