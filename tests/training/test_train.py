"""Training end to end on generated data: artifacts, checkpoints, resume, errors."""

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
from conftest import ARCHS
from PIL import Image

from darkforge.training import recipe
from darkforge.weights import checkpoint

NANO = ["train", str(ARCHS / "darknet53.yaml"), "--scale", "nano", "--data", "fake"]


def rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_a_run_writes_every_artifact(run_cli, tmp_path):
    result = run_cli(*NANO, "--epochs", "2", "--batch-size", "64", "--project", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "train"
    expected = [
        "args.yaml", "arch.yaml", "metrics.csv", "results.png", "confusion_matrix.png", "predictions.png",
        "report.txt", "report.json", "weights/last.pt", "weights/best.pt", "weights/best.safetensors",
    ]  # fmt: skip
    for name in expected:
        assert (run / name).is_file(), name
    table = rows(run)
    assert ",".join(list(table[0])[:8]) == "epoch,train_loss,train_acc,test_loss,test_acc,lr,img_s,seconds"
    assert [r["epoch"] for r in table] == ["1", "2"]
    for name in ("results.png", "confusion_matrix.png", "predictions.png"):
        with Image.open(run / name) as image:
            image.load()
            assert image.width > 300 and image.height > 200
    report = (run / "report.txt").read_text()
    assert "precision" in report and "class9" in report and "weighted avg" in report
    # best is picked on 10% of train held out (the data has no val split), test reported apart
    assert "picked on the validation split); final epoch 2: test acc" in result.output
    summary = json.loads((run / "report.json").read_text())
    assert summary["best_picked_on"] == "validation split" and summary["val"]["best"] == summary["best"]
    assert summary["test"]["accuracy"] == summary["accuracy"] and summary["test"]["images"] > 0
    assert summary["val"]["final_accuracy"] == float(table[-1]["val_acc"]) or summary["val"]["images"] > 0
    # a second run never overwrites the first
    assert run_cli(*NANO, "--epochs", "1", "--project", tmp_path / "runs").exit_code == 0
    assert (tmp_path / "runs" / "train2" / "metrics.csv").exists()
    assert len(rows(run)) == 2


def test_checkpoints_reload_with_the_same_accuracy(run_cli, tmp_path):
    assert run_cli(*NANO, "--epochs", "2", "--batch-size", "64", "--project", tmp_path).exit_code == 0
    run = tmp_path / "train"
    payload = torch.load(run / "weights" / "last.pt", weights_only=True)
    assert payload["inference"]["classes"][0] == "class0" and payload["inference"]["input"] == [3, 32, 32]
    final = float(rows(run)[-1]["test_acc"])
    result = run_cli("eval", run / "weights" / "last.pt", "--data", "fake")
    assert result.exit_code == 0, result.output
    assert f"accuracy {100 * final:.2f}%" in result.output
    # safetensors alone rebuilds the model
    model, info, _ = checkpoint.load_model(run / "weights" / "best.safetensors")
    assert info.classes[:2] == ["class0", "class1"] and model.plan.params == 262_154
    image = tmp_path / "x.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(image)
    result = run_cli("predict", run / "weights" / "best.pt", image, "--top", "2")
    assert result.exit_code == 0 and result.output.startswith(f"{image}: class")


def test_resume_of_a_complete_run_exits_0(run_cli, tmp_path):
    assert run_cli(*NANO, "--epochs", "1", "--project", tmp_path).exit_code == 0
    result = run_cli("train", "--resume", tmp_path / "train")
    assert result.exit_code == 0 and "already complete" in result.output


def _train_process(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "darkforge", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    args = [
        *NANO,
        "--data",
        "fake:3000,300",
        "--epochs",
        "4",
        "--batch-size",
        "32",
        "--project",
        str(tmp_path),
    ]
    whole = _train_process(*args, "--name", "whole")
    assert whole.wait(timeout=600) == 0, whole.stdout.read().decode() if whole.stdout else ""
    killed = _train_process(*args, "--name", "killed")
    metrics = tmp_path / "killed" / "metrics.csv"
    deadline = time.time() + 300
    while time.time() < deadline and not (metrics.exists() and len(rows(metrics.parent)) >= 2):
        time.sleep(0.05)
    time.sleep(0.5)  # into epoch 3
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert len(rows(metrics.parent)) in (2, 3)  # at most the current epoch is lost
    resumed = _train_process("train", "--resume", str(tmp_path / "killed"))
    output = resumed.communicate(timeout=600)[0].decode()
    assert resumed.returncode == 0, output
    assert "resuming" in output
    got, want = rows(tmp_path / "killed"), rows(tmp_path / "whole")
    assert [r["epoch"] for r in got] == ["1", "2", "3", "4"]
    # epoch-seeded batches and restored optimizer state: the same run, up to float noise
    assert abs(float(got[-1]["test_acc"]) - float(want[-1]["test_acc"])) <= 0.02
    assert abs(float(got[-1]["train_loss"]) - float(want[-1]["train_loss"])) <= 0.02


def test_a_failed_checkpoint_write_leaves_the_last_good_one(run_cli, tmp_path, monkeypatch):
    """A write that fails inside the atomic writer (half the temp written, then an error) keeps
    the previous last.pt and leaves no temp file."""
    import darkforge.files as files

    real = files.os.fsync
    calls = {"last.pt": 0}

    def torn(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if ".last.pt." in name:
            calls["last.pt"] += 1
            if calls["last.pt"] == 2:
                os.ftruncate(fd, os.fstat(fd).st_size // 2)
                raise OSError(28, "No space left on device")
        return real(fd)

    monkeypatch.setattr(files.os, "fsync", torn)
    result = run_cli(*NANO, "--epochs", "2", "--project", tmp_path)
    assert result.exit_code != 0 and calls["last.pt"] == 2
    weights = tmp_path / "train" / "weights"
    assert checkpoint.load(weights / "last.pt")["state"]["epoch"] == 1
    assert not [p for p in weights.iterdir() if ".tmp" in p.name]


def test_divergence_stops_with_a_clear_message(run_cli, tmp_path, monkeypatch):
    from darkforge.nn import layers

    calls = {"n": 0}
    forward = layers.Linear.forward

    def blow_up_in_epoch_2(self, x):  # 4 steps per epoch at batch 256 on 1,000 images
        calls["n"] += 1
        out = forward(self, x)
        return out * float("inf") if self.training and calls["n"] > 6 else out

    monkeypatch.setattr(layers.Linear, "forward", blow_up_in_epoch_2)
    result = run_cli(*NANO, "--epochs", "3", "--project", tmp_path)
    assert result.exit_code == 1
    assert (
        "diverged in epoch 2" in result.stderr
        and "--lr" in result.stderr
        and "Traceback" not in result.output
    )
    assert "train/weights/last.pt" in result.stderr  # epoch 1's checkpoint is kept
    assert checkpoint.load(tmp_path / "train")["state"]["epoch"] == 1


def test_recipe_precedence_preset_then_file_then_flags():
    r = recipe.resolve("tutorial", {"epochs": 3, "lr": 0.01}, {"lr": 0.5, "batch": None})
    assert (r.optimizer, r.batch, r.epochs, r.lr) == ("adam", 64, 3, 0.5)
    assert recipe.resolve().optimizer == "sgd"


@pytest.mark.parametrize(
    "args, words, code",
    [
        (["--epochs", "0"], ["--epochs"], 2),
        (["--lr", "-1"], ["--lr"], 2),
        (["--precision", "8"], ["--precision"], 2),
        (["--device", "tpu"], ["--device", "tpu"], 2),
        (["--device", "cuda"], ["no CUDA"], 2),
        (["--preset", "fast"], ["no preset 'fast'", "tutorial"], 2),
        (["--recipe", "fast"], ["no preset 'fast'", "tutorial"], 2),  # the old name still works
        (["--scale", "huge"], ["no scale 'huge'"], 2),
        (["--data", "imagefolder:/nonexistent"], ["/nonexistent", "no such folder"], 1),
        (["--data", "svhn"], ["not a dataset"], 2),
    ],
)
def test_bad_flags_end_in_one_line(run_cli, tmp_path, args, words, code):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run_cli(*NANO, "--epochs", "1", "--project", tmp_path, *args)
    assert result.exit_code == code, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    for word in words:
        assert word in result.stderr
    assert not list(tmp_path.glob("train*"))  # bad input leaves no run directory behind
    assert "run directory" not in result.output  # nor announces one


def test_unwritable_project(run_cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli(*NANO, "--epochs", "1", "--project", blocker / "runs")
    assert result.exit_code == 2 and "--project" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda tmp: tmp / "missing", ["missing", "not a darkforge run"]),
        (lambda tmp: (tmp / "junk.pt").write_bytes(b"junk") and tmp / "junk.pt", ["not a darkforge run"]),
    ],
)
def test_resume_from_missing_or_foreign(run_cli, tmp_path, make, words):
    result = run_cli("train", "--resume", make(tmp_path))
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    for word in words:
        assert word in result.stderr


def test_foreign_checkpoint_is_refused(run_cli, tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    result = run_cli("eval", tmp_path / "other.pt", "--data", "fake")
    assert result.exit_code == 1 and "not a darkforge checkpoint" in result.stderr
    (tmp_path / "torn.pt").write_bytes(b"\x80\x02garbage")
    result = run_cli("predict", tmp_path / "torn.pt", tmp_path / "other.pt")
    assert result.exit_code == 1 and "not a readable checkpoint" in result.stderr


def test_train_with_a_bad_arch(run_cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    result = run_cli("train", bad, "--project", tmp_path / "runs")
    assert result.exit_code == 1 and not (tmp_path / "runs").exists()  # nothing created for a bad file


def test_train_from_a_darknet_cfg_keeps_it_as_yaml(run_cli, write, tmp_path):
    cfg = write(
        "small.cfg",
        "[net]\nheight=16\nwidth=16\nchannels=3\n"
        "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n"
        "[avgpool]\n[connected]\noutput=10\nactivation=linear\n",
    )
    result = run_cli("train", cfg, "--data", "fake", "--epochs", "1", "--project", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "train"
    assert "Converted from small.cfg" in (run / "arch.yaml").read_text()
    model, info, _ = checkpoint.load_model(run / "weights" / "last.pt")  # rebuilds from the stored YAML
    assert info.input == [3, 16, 16] and model.plan.output_shapes == [(10,)]


@pytest.mark.parametrize("preset", list(recipe.PRESETS))
def test_one_nested_key_keeps_the_presets_others(preset):
    """A file's `augment: {cutout: 8}` changes cutout alone: the preset's crop and flip stay."""
    base = recipe.resolve(preset).augment
    r = recipe.resolve(preset, {"augment": {"cutout": 8}})
    assert r.augment == base.model_copy(update={"cutout": 8})
    flags = recipe.resolve(preset, {"augment": {"crop": 2}}, {"augment": {"flip": not base.flip}})
    assert (flags.augment.crop, flags.augment.flip, flags.augment.cutout) == (2, not base.flip, base.cutout)


def test_a_recipe_flag_is_one_field():
    """Each Recipe field marked as a flag is a `train` option (its limits from the field) and a
    keyword of darkforge.train; nothing else lists them."""
    from darkforge.cli import cli
    from darkforge.training import session

    params = {p.name: p for p in cli.commands["train"].params}
    marked = set(recipe.flags())
    assert marked == {"epochs", "batch", "lr", "precision", "seed", "val_split", "ema", "patience", "freeze"}
    assert marked <= set(params) and set(session.RECIPE_KEYS) == marked
    assert params["batch"].opts == ["--batch-size"] and params["lr"].type.min_open
    assert list(params["precision"].type.choices) == ["auto", "32", "bf16", "16"]
    assert recipe.Recipe(freeze="stem,c3").freeze == ["stem", "c3"] and recipe.Recipe(freeze="3").freeze == 3
