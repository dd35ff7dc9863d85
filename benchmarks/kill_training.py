"""SIGKILL training at random moments and inside each kind of write, then resume; check that
nothing is lost or torn. Result recorded in docs/training.md.

    OMP_NUM_THREADS=1 python benchmarks/kill_training.py --kills 40

Each round starts `train` (a new run) or `train --resume` (the current one) and kills it: half
the time at a random moment from outside, half the time inside the atomic writer of one
artifact (tests/training/kill_at.py: the temp written, cut in half, then SIGKILL before the
rename). After every kill the run must hold a loadable last.pt whose history matches
metrics.csv row for row (the CSV may lag one epoch; resume rewrites it). A run that completes
is checked whole: every artifact present and readable, one row per epoch, best.pt scoring the
best epoch's accuracy, no temp file; then a new run starts.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
KILL_AT = ROOT / "tests" / "training" / "kill_at.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
EPOCHS = 4
ARGS = ["--scale", "nano", "--data", "fake:256,64", "--batch-size", "32", "--lr", "0.02"]
TARGETS = [  # every kind of write a run makes, with how many times it is written per process
    ("last.pt", EPOCHS), ("best.pt", 2), ("best.safetensors", 2), ("metrics.csv", EPOCHS),
    ("transfer.txt", 1), ("report.txt", 1), ("report.json", 1), ("results.png", 1),
    ("confusion_matrix.png", 1), ("predictions.png", 1), ("finished.json", 1),
]  # fmt: skip
FINAL = [
    "report.txt",
    "report.json",
    "results.png",
    "confusion_matrix.png",
    "predictions.png",
    "finished.json",
]


def rows(run: Path) -> list[dict[str, str]]:
    if not (run / "metrics.csv").exists():
        return []
    with (run / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


def temps(run: Path) -> list[Path]:
    return [p for p in run.rglob(".*") if ".tmp" in p.name]


def check_after_kill(run: Path) -> str | None:
    """None when the killed run is consistent, else what is wrong."""
    last = run / "weights" / "last.pt"
    if not last.exists():
        return None if not rows(run) else "metrics.csv without last.pt"
    history = torch.load(last, weights_only=True)["state"]["history"]
    epochs = [r["epoch"] for r in rows(run)]
    want = [str(h["epoch"]) for h in history]
    if epochs not in (want, want[:-1]):
        return f"metrics.csv epochs {epochs} vs last.pt {want}"
    if not (run / "weights" / "best.pt").exists():
        return "last.pt without best.pt"
    return None


def check_complete(run: Path) -> str | None:
    table = rows(run)
    if [r["epoch"] for r in table] != [str(e) for e in range(1, EPOCHS + 1)]:
        return f"epochs {[r['epoch'] for r in table]}"
    if temps(run):
        return f"temp files left: {temps(run)}"
    for name in FINAL:
        if not (run / name).is_file():
            return f"{name} missing"
    json.loads((run / "report.json").read_text())
    json.loads((run / "finished.json").read_text())
    for name in FINAL:
        if name.endswith(".png"):
            with Image.open(run / name) as image:
                image.load()
    eval_ = subprocess.run(
        [sys.executable, "-m", "darkforge", "eval", str(run / "weights" / "best.pt")],
        env=ENV, capture_output=True, text=True, check=False,
    )  # fmt: skip
    best = max(float(r["test_acc"]) for r in table)
    if f"accuracy {100 * best:.2f}%" not in eval_.stdout:
        return f"best.pt does not score the best epoch's {100 * best:.2f}%: {eval_.stdout[:80]}"
    from safetensors.torch import load_file

    load_file(run / "weights" / "best.safetensors")
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    rng = random.Random(options.seed)
    project = Path(tempfile.mkdtemp(prefix="kill-training-"))
    pretrained = project / "pre.pt"  # a --weights file, so transfer.txt is one of the writes
    subprocess.run(
        [sys.executable, "-m", "darkforge", "train", str(ROOT / "archs" / "darknet53.yaml"), *ARGS,
         "--epochs", "1", "--project", str(project), "--name", "pre"],
        env=ENV, check=True, capture_output=True,
    )  # fmt: skip
    (project / "pre" / "weights" / "best.pt").rename(pretrained)
    kills = inside = runs = 0
    failures: list[str] = []
    run_index = 0
    run: Path | None = None
    started = time.time()
    while kills < options.kills:
        if run is None:
            run_index += 1
            run = project / f"r{run_index}"
            command = ["train", str(ROOT / "archs" / "darknet53.yaml"), *ARGS, "--epochs", str(EPOCHS)]
            command += ["--weights", str(pretrained), "--project", str(project), "--name", run.name]
        else:
            command = ["train", "--resume", str(run)]
        if rng.random() < 0.5:
            target, times = rng.choice(TARGETS)
            argv = [sys.executable, str(KILL_AT), target, str(rng.randint(1, times)), *command]
            done = subprocess.run(argv, env=ENV, capture_output=True, text=True, check=False)
            killed = done.returncode == -signal.SIGKILL
            inside += killed
            code, output = done.returncode, done.stdout + done.stderr
        else:
            process = subprocess.Popen(
                [sys.executable, "-m", "darkforge", *command], env=ENV,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            try:
                output, _ = process.communicate(timeout=rng.uniform(1.0, 12.0))
                killed = False
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                output, _ = process.communicate()
                killed = True
            code = process.returncode
        if killed:
            kills += 1
            if not run.exists():  # killed before the run directory was made: start again
                run = None
                continue
            if problem := check_after_kill(run):
                failures.append(f"kill {kills} ({run.name}): {problem}")
            continue
        if code != 0:
            failures.append(f"{run.name}: exit {code}: {output.strip().splitlines()[-1:]}")
            run = None
            continue
        if "already complete" in output or "done:" in output:
            if problem := check_complete(run):
                failures.append(f"{run.name} complete: {problem}")
            runs += 1
            run = None
    if run is not None:  # finish the last one
        subprocess.run(
            [sys.executable, "-m", "darkforge", "train", "--resume", str(run)],
            env=ENV,
            check=False,
            capture_output=True,
        )
        if problem := check_complete(run):
            failures.append(f"{run.name} complete: {problem}")
        runs += 1
    minutes = (time.time() - started) / 60
    print(
        f"{kills} SIGKILLs ({inside} inside a write, {kills - inside} at random moments), {runs} runs completed "
        f"by resume, {len(failures)} problems, {minutes:.1f} min"
    )
    for failure in failures:
        print("  " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
