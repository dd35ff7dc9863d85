"""Run control: extend, early stop, the run lock, names, resumable finishing, kills inside writes."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ARCHS

import darkforge
from darkforge.weights import checkpoint

NANO = [
    "train",
    str(ARCHS / "darknet53.yaml"),
    "--scale",
    "nano",
    "--data",
    "fake:128,64",
    "--batch-size",
    "32",
    "--val-split",  # best picked on test: its writes (improving epochs) are what the kills below count
    "0",
]
HERE = Path(__file__).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


def temps(run: Path) -> list[Path]:
    return [p for p in run.rglob(".*") if ".tmp" in p.name]


def test_resume_with_more_epochs_extends_and_fewer_is_refused(run_cli, tmp_path):
    assert run_cli(*NANO, "--epochs", "2", "--project", tmp_path).exit_code == 0
    run = tmp_path / "train"
    assert json.loads((run / "report.json").read_text())["final_epoch"] == 2
    result = run_cli("train", "--resume", run, "--epochs", "4")
    assert result.exit_code == 0, result.output
    assert "extended from 2 to 4 epochs" in result.output
    assert [r["epoch"] for r in rows(run)] == ["1", "2", "3", "4"]
    assert json.loads((run / "report.json").read_text())["final_epoch"] == 4
    result = run_cli("train", "--resume", run, "--epochs", "3")
    assert result.exit_code == 2 and "already trained 4 epochs" in result.stderr
    result = run_cli("train", "--resume", run, "--lr", "0.5")
    assert result.exit_code == 2 and "--lr cannot change when resuming" in result.stderr
    result = run_cli("train", "--resume", run, "--name", "other")  # never ignored
    assert result.exit_code == 2 and "--name cannot change when resuming" in result.stderr


def test_patience_stops_early_and_says_why(tmp_path):
    seen = []
    run = darkforge.train(
        ARCHS / "darknet53.yaml", scale="nano", data="fake:64,32", epochs=6, batch=32, lr=1e-9,
        patience=1, project=tmp_path, callbacks=[seen.append],
    )  # fmt: skip
    assert len(run.history) == 2 and run.stopped and "no better `best` in 1 epochs" in run.stopped
    report = json.loads((run.path / "report.json").read_text())
    assert report["stopped_early"] == run.stopped
    kinds = [e.kind for e in seen]
    assert kinds[0] == "run" and "stop" in kinds and kinds[-1] == "finish"
    assert [e.values["epoch"] for e in seen if e.kind == "epoch"] == [1, 2]
    assert darkforge.train(resume=run.path).history == run.history  # stopped is complete
    longer = darkforge.train(resume=run.path, epochs=7)  # extending lifts the stop: one more try
    assert len(longer.history) == 3 and longer.stopped and "stopped after 3" in longer.stopped


def test_name_is_one_path_component(run_cli, tmp_path):
    result = run_cli(*NANO, "--epochs", "1", "--project", tmp_path / "runs", "--name", "../../x")
    assert result.exit_code == 2 and "one folder name" in result.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path.parent / "x").exists()


def test_two_writers_of_one_run(run_cli, tmp_path):
    assert run_cli(*NANO, "--epochs", "1", "--project", tmp_path).exit_code == 0
    run = tmp_path / "train"
    (run / "args.yaml").write_text((run / "args.yaml").read_text().replace("epochs: 1", "epochs: 3"))
    cmd = [sys.executable, "-m", "darkforge", "train", "--resume", str(run)]
    first = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (run / ".lock").exists() or str(first.pid) not in (run / ".lock").read_text():
        assert first.poll() is None, first.communicate()
    os.kill(first.pid, signal.SIGSTOP)  # held: it still owns the run when the second arrives
    try:
        second = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 1, second.stderr
    assert f"another darkforge process (pid {first.pid}) is writing this run" in second.stderr
    assert second.stderr.count("\n") == 1
    assert first.wait(timeout=300) == 0
    assert [r["epoch"] for r in rows(run)] == ["1", "2", "3"]


def test_resume_of_a_complete_run_writes_missing_final_files(run_cli, tmp_path):
    assert run_cli(*NANO, "--epochs", "1", "--project", tmp_path).exit_code == 0
    run = tmp_path / "train"
    (run / "report.txt").unlink()
    (run / "weights" / "best.safetensors").unlink()
    result = run_cli("train", "--resume", run)
    assert result.exit_code == 0, result.output
    assert "wrote the missing final files: weights/best.safetensors, report.txt" in result.output
    assert (run / "report.txt").is_file() and (run / "weights" / "best.safetensors").is_file()
    result = run_cli("train", "--resume", run)
    assert "already complete" in result.output


@pytest.mark.parametrize(
    "target, nth",
    [
        ("best.pt", 2),
        ("metrics.csv", 3),  # after the last epoch's last.pt: the resume finds the run complete
        # the same for the other writes (benchmarks/kill_training.py kills inside all of them)
        pytest.param("report.json", 1, marks=pytest.mark.slow),
        pytest.param("last.pt", 2, marks=pytest.mark.slow),
    ],
)
def test_a_kill_inside_a_write_then_resume(tmp_path, target, nth):
    """SIGKILL inside the atomic writer (temp written, torn, not renamed): resume leaves every
    artifact, one row per epoch, best.pt the best epoch, no temp file."""
    args = [*NANO, "--epochs", "3", "--lr", "0.02", "--project", str(tmp_path)]
    killed = subprocess.run(
        [sys.executable, str(HERE / "kill_at.py"), target, str(nth), *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stdout + killed.stderr
    run = tmp_path / "train"
    assert temps(run)  # the torn temp is there
    resumed = subprocess.run(
        [sys.executable, "-m", "darkforge", "train", "--resume", str(run)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert not temps(run)
    table = rows(run)
    assert [r["epoch"] for r in table] == ["1", "2", "3"]
    for name in (
        "report.txt",
        "report.json",
        "results.png",
        "confusion_matrix.png",
        "predictions.png",
        "finished.json",
    ):
        assert (run / name).is_file(), name
    best = max(float(r["test_acc"]) for r in table)
    out = subprocess.run(
        [sys.executable, "-m", "darkforge", "eval", str(run / "weights" / "best.pt")],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert f"accuracy {100 * best:.2f}%" in out.stdout, (out.stdout, table)
    assert checkpoint.load(run / "weights" / "last.pt")["state"]["epoch"] == 3
