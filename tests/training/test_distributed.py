"""DDP under torchrun: two CPU processes with gloo take the same steps as one process, count every
test image once, fail fast when a rank dies, and resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from darkforge.training import distributed
from darkforge.training.data.batches import Batches
from darkforge.training.data.datasets import load_dataset
from darkforge.training.data.splits import Split
from darkforge.training.evaluate import logits_of, score
from darkforge.weights import checkpoint

# No batch norm: each rank would normalize over its own 16 images, one process over all 32
# (by design, DESIGN.md §5), and the runs would differ for that reason alone.
PLAIN = """\
version: 1
name: plain
input: {channels: 3, size: 16}
classes: 10
layers:
  - {type: Conv, filters: 16, size: 3, stride: 2, activation: leaky}
  - {type: Conv, filters: 32, size: 3, stride: 2, activation: leaky}
  - {type: GlobalAvgPool}
  - {type: Linear}
"""
DATA = "fake:2000,101"  # 101 test images: 51 + 50 on two ranks
# The default recipe (SGD-Nesterov, one-cycle, label smoothing, random crop and flip), global batch
# 32: 62 steps an epoch, 186 in all.
RECIPE = ["--data", DATA, "--epochs", "3", "--batch-size", "32"]
# The runs differ only in float summation order (two 16-image gradients all-reduced against one
# 32-image gradient), noise that the steps then amplify. Measured (x86-64, one thread per process):
# losses 1.2e-7, 2.3e-7, 4.5e-7 apart after epochs 1-3 (62, 124, 186 steps); with the single process
# on two threads, 3e-5 after epoch 3. A wrong slice or augmentation shows at the first step, as 1e-2.
FIRST_EPOCH, TOLERANCE = 1e-5, 1e-4


def rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


def history(run: Path) -> list[dict[str, float]]:
    """metrics.csv at full precision, from the last checkpoint."""
    return checkpoint.load(run / "weights" / "last.pt")["state"]["history"]


def torchrun(*args: object) -> subprocess.Popen[str]:
    """`torchrun --standalone --nproc_per_node=2 -m darkforge ARGS` (torchrun is torch.distributed.run)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return subprocess.Popen(
        [*command, "-m", "darkforge", *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def worker(launcher: int, rank: int) -> int | None:
    """The pid of the worker of `rank` that `launcher` (torchrun) started, from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            environ = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == launcher and f"RANK={rank}".encode() in environ:
            return int(stat.parent.name)
    return None


@pytest.fixture(scope="module")
def arch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("arch") / "plain.yaml"
    path.write_text(PLAIN)
    return path


@pytest.fixture(scope="module")
def ddp(arch: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One uninterrupted two-process run: (project folder, its output)."""
    project = tmp_path_factory.mktemp("ddp")
    launched = torchrun("train", arch, *RECIPE, "--project", project)
    output = launched.communicate(timeout=300)[0]
    assert launched.returncode == 0, output
    return project, output


def test_two_ranks_step_as_one_process_with_the_global_batch(ddp, arch, run_cli, tmp_path):
    project, output = ddp
    assert [p.name for p in project.iterdir()] == ["train"]  # rank 0 alone made a run directory
    assert output.count("run directory:") == 1 and output.count("done:") == 1  # rank 0 alone prints
    assert "× 2 processes (DDP)" in output
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank runs (OMP_NUM_THREADS=1); tiny ops on 2 threads crawl
    try:
        single = run_cli("train", arch, *RECIPE, "--project", tmp_path)
    finally:
        torch.set_num_threads(threads)
    assert single.exit_code == 0, single.output
    got, want = history(project / "train"), history(tmp_path / "train")
    assert [g["lr"] for g in got] == [w["lr"] for w in want]
    gaps = [
        max(abs(g[k] - w[k]) for k in ("train_loss", "test_loss")) for g, w in zip(got, want, strict=True)
    ]
    print(f"DDP vs single-process loss gaps by epoch: {', '.join(f'{gap:.1e}' for gap in gaps)}")
    assert gaps[0] <= FIRST_EPOCH and max(gaps) <= TOLERANCE
    assert got[-1]["train_loss"] < 1.8  # it learned: this is no comparison of two flat lines
    for g, w in zip(got, want, strict=True):  # an argmax may flip on float noise: an image or two
        assert (
            abs(g["train_acc"] - w["train_acc"]) <= 2 / 1984 and abs(g["test_acc"] - w["test_acc"]) <= 1 / 101
        )


def test_evaluation_counts_every_test_image_once(ddp):
    project, _ = ddp
    run = project / "train"
    report = json.loads((run / "report.json").read_text())
    assert report["macro avg"]["support"] == 101
    assert sum(c["support"] for c in report["classes"].values()) == 101
    # the same checkpoint evaluated by one process, on all 101 images at once
    model, info, _ = checkpoint.load_model(run / "weights" / "last.pt")
    test = load_dataset(DATA, None, (16, 16)).test
    loss, accuracy, predictions = score(logits_of(model, Batches(test, 256, info.mean, info.std), True))
    assert report["accuracy"] == accuracy
    assert float(rows(run)[-1]["test_acc"]) == pytest.approx(accuracy, abs=1e-6)
    assert float(rows(run)[-1]["test_loss"]) == pytest.approx(loss, rel=1e-5)
    recall = [(predictions[test.labels == k] == k).double().mean().item() for k in range(10)]
    assert [c["recall"] for c in report["classes"].values()] == recall  # gathered in order


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the worker through /proc")
def test_a_killed_rank_fails_the_job_then_it_resumes(ddp, arch, tmp_path):
    launched = torchrun("train", arch, *RECIPE, "--project", tmp_path)
    metrics = tmp_path / "train" / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not metrics.exists():
        time.sleep(0.02)
    pid = worker(launched.pid, rank=1)
    assert pid is not None, "no rank-1 worker found"
    os.kill(pid, signal.SIGKILL)
    killed = time.time()
    output = launched.communicate(timeout=120)[0]
    print(f"torchrun exited {time.time() - killed:.1f} s after the kill")
    assert launched.returncode != 0
    assert "SIGKILL" in output  # torchrun names the root cause
    assert "internal error" not in output
    assert 1 <= len(rows(tmp_path / "train")) < 3
    # every rank loads last.pt and the run continues as the uninterrupted one did
    resumed = torchrun("train", "--resume", tmp_path / "train")
    output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, output
    assert output.count("resuming") == 1
    got, want = rows(tmp_path / "train"), rows(ddp[0] / "train")
    assert [r["epoch"] for r in got] == ["1", "2", "3"]
    for key in ("train_loss", "test_loss", "test_acc"):
        assert float(got[-1][key]) == pytest.approx(float(want[-1][key]), abs=TOLERANCE)


@pytest.mark.parametrize("n, world", [(101, 2), (7, 3), (2, 4), (256, 8)])
def test_shards_cover_every_item_once(n, world):
    pieces = [range(n)[distributed.shard(n, r, world)] for r in range(world)]
    assert [i for piece in pieces for i in piece] == list(range(n))
    assert max(map(len, pieces)) - min(map(len, pieces)) <= 1


def test_rank_slices_of_an_augmented_batch_make_the_whole_batch():
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    split = Split(images, torch.arange(10))
    options = {"crop": 2, "flip": True, "shuffle": True}
    whole = list(Batches(split, 4, [0.5] * 3, [0.25] * 3, **options).epoch(seed=3))
    ranks = [
        list(Batches(split, 4, [0.5] * 3, [0.25] * 3, **options, rank=r, world=2).epoch(seed=3))
        for r in (0, 1)
    ]
    assert len(whole) == len(ranks[0]) == len(ranks[1]) == 3  # 4 + 4 + 2: the last batch 1 + 1
    for (x, y), (x0, y0), (x1, y1) in zip(whole, *ranks, strict=True):
        assert torch.equal(torch.cat([x0, x1]), x) and torch.equal(torch.cat([y0, y1]), y)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--batch-size", "33"], ["--batch-size 33", "2 processes", "e.g. 32"]),
        (["--sync-bn", "--device", "cpu"], ["--sync-bn", "CUDA"]),
    ],
)
def test_jobs_that_do_not_divide_among_ranks_stop_in_one_line(
    run_cli, arch, tmp_path, monkeypatch, args, words
):
    # rank 0 of 2 as torchrun starts it; the check comes before the process group is joined
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    result = run_cli("train", arch, "--data", DATA, "--project", tmp_path / "runs", *args)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert all(word in result.stderr for word in words)
    assert not (tmp_path / "runs").exists()
