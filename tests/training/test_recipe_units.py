"""Unit tests of the recipe's pieces: lr schedule, EMA warm-up, val split, zero-init residual,
the fp16 scaler, cutout, the logged lr and loss, stale temp files."""

from __future__ import annotations

import csv
import itertools
import math
import os

import pytest
import torch
from conftest import ARCHS

from darkforge.files import remove_stale_temps
from darkforge.nn.layers import ResidualBlock, Shortcut
from darkforge.training import ema, loop
from darkforge.training.data import mixing
from darkforge.training.data.splits import Split
from darkforge.training.optim import lr_factor
from darkforge.training.recipe import Recipe
from darkforge.training.rundir import RunDir


def trainer(tmp_path, **recipe):
    arch = (ARCHS / "darknet53.yaml").read_text()
    job = loop.Job(
        # val_split 0: every train image in train_split, the step counts below
        arch,
        "darknet53.yaml",
        "nano",
        Recipe(**{"epochs": 2, "batch": 32, "val_split": 0} | recipe),
        "fake:128,64",
    )
    return loop.setup(job, RunDir.create(tmp_path, "t"), lambda e: None)


def test_onecycle_warms_up_linearly_then_decays_to_zero():
    r = Recipe(schedule="onecycle", warmup=0.2)
    f = [lr_factor(r, s, 100) for s in range(100)]
    assert f[:3] == pytest.approx([1 / 20, 2 / 20, 3 / 20]) and f[19] == 1.0
    assert f[20] == 1.0 and f[60] == pytest.approx(0.5) and f[99] == pytest.approx(1 / 80)
    assert all(a >= b for a, b in itertools.pairwise(f[19:]))  # never rises after the peak


def test_cosine_and_constant():
    r = Recipe(schedule="cosine", warmup=0.1)
    assert lr_factor(r, 9, 100) == 1.0
    assert lr_factor(r, 10 + 45, 100) == pytest.approx(0.5)  # half-way down the cosine
    assert lr_factor(r, 10, 100) == 1.0 and lr_factor(r, 99, 100) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 89 / 90))
    )
    c = Recipe(schedule="constant", warmup=0.0)
    assert {lr_factor(c, s, 50) for s in range(50)} == {1.0}


def test_ema_decay_warms_up_as_timm():
    assert ema.decay_at(0.999, 0, True) == 0.0  # the first update takes the weights
    assert ema.decay_at(0.999, 9, True) == pytest.approx(1 - 10 ** (-2 / 3))
    assert ema.decay_at(0.999, 10**6, True) == 0.999 and ema.decay_at(0.999, 3, False) == 0.999
    model = torch.nn.Linear(2, 1)
    averaged = ema.make_ema(model, 0.999, warmup=True)
    with torch.no_grad():
        model.weight.fill_(1.0)
    averaged.update_parameters(model)  # copy
    with torch.no_grad():
        model.weight.fill_(3.0)
    averaged.update_parameters(model)  # decay 1 - 2^-2/3 = 0.37: the average moves most of the way
    expected = 1.0 + (1 - ema.decay_at(0.999, 1, True)) * 2.0
    assert averaged.module.weight.detach() == pytest.approx(torch.full((1, 2), expected))


def test_a_short_ema_run_is_warned(tmp_path):
    seen = []
    arch = (ARCHS / "darknet53.yaml").read_text()
    job = loop.Job(arch, "d.yaml", "nano", Recipe(epochs=1, batch=32, ema=0.999, val_split=0), "fake:128,64")
    loop.setup(job, RunDir.create(tmp_path, "t"), seen.append)
    assert "--ema 0.999 averages over ~1,000 steps, longer than this run's 4" in seen[0].values["message"]


def test_val_split_is_seeded_disjoint_and_complete():
    split = Split(torch.zeros(100, 3, 2, 2, dtype=torch.uint8), torch.arange(100))
    train, val = loop.split_off(split, 0.2, seed=5)
    _, val2 = loop.split_off(split, 0.2, seed=5)
    assert len(val) == 20 and len(train) == 80 and torch.equal(val.labels, val2.labels)
    assert sorted(train.labels.tolist() + val.labels.tolist()) == list(range(100))
    assert not torch.equal(loop.split_off(split, 0.2, seed=6)[1].labels, val.labels)


def test_zero_init_residual_starts_every_block_as_the_identity(tmp_path):
    t = trainer(tmp_path)
    blocks = [m for m in t.model.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 9  # nano (depth 0.34): 1 + 1 + 3 + 3 + 1 residual blocks
    block = blocks[0].eval()
    x = torch.randn(2, block.conv1.conv.in_channels, 8, 8)
    assert torch.equal(block(x), x)
    off = trainer(tmp_path, zero_init_residual=False)
    assert all(m.conv2.bn.weight.abs().sum() > 0 for m in off.model.modules() if isinstance(m, ResidualBlock))


def test_fp16_uses_a_loss_scaler_that_resumes(tmp_path):
    t = trainer(tmp_path, precision="16", epochs=1)
    assert t.dtype == torch.float16 and t.scaler.is_enabled()
    row = loop.train_epoch(t, 1, lambda e: None)
    assert math.isfinite(row["train_loss"])
    state = t.scaler.state_dict()
    assert state["scale"] > 0 and state["_growth_tracker"] >= 0
    assert not trainer(tmp_path, precision="32").scaler.is_enabled()


def test_cutout_is_an_exact_square_of_the_mean():
    x = torch.randn(64, 3, 16, 16)
    fill = torch.tensor([0.5, -1.0, 2.0])
    g = torch.Generator().manual_seed(0)
    out = mixing.cutout(x, 4, fill, g, 64, slice(None))
    changed = (out != x).any(1)  # (B, H, W)
    for b in range(64):
        rows, cols = changed[b].nonzero(as_tuple=True)
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert len(rows) == height * width  # a filled rectangle...
        if rows.min() > 0 and rows.max() < 15 and cols.min() > 0 and cols.max() < 15:
            assert (height, width) == (4, 4)  # ...of exactly 4×4 away from the border
        assert torch.equal(out[b][:, rows, cols], fill[:, None].expand(3, len(rows)))


def test_the_logged_lr_is_the_epochs_and_the_train_loss_has_no_smoothing(tmp_path):
    t = trainer(tmp_path, epochs=2, label_smoothing=0.3)
    steps = len(t.batches(t.train_split, True))
    rows = [loop.train_epoch(t, e, lambda e: None) for e in (1, 2)]
    for epoch, row in zip((1, 2), rows, strict=True):
        used = [0.1 * lr_factor(t.recipe, s, 2 * steps) for s in range((epoch - 1) * steps, epoch * steps)]
        assert row["lr"] == pytest.approx(sum(used) / steps)
    assert rows[-1]["lr"] > 0  # the last one-cycle epoch trained at a rate above zero


def test_the_logged_train_loss_has_no_label_smoothing(tmp_path):
    """With a learning rate of ~0 the weights stay put, so the logged train loss must equal the
    plain cross-entropy of the same batches (label smoothing 0.3 would add ~0.5)."""
    t = trainer(tmp_path, label_smoothing=0.3, lr=1e-12, augment={"crop": 0, "flip": False})
    with torch.no_grad():
        t.model.layers.fc.weight.mul_(300)  # confident logits: there smoothing weighs
    row = loop.train_epoch(t, 1, lambda e: None)
    total = smoothed = count = 0.0
    with torch.no_grad():
        for x, y in t.batches(t.train_split, True).epoch(t.recipe.seed * 1_000_003 + 1):
            logits = t.model(x)  # train mode, as during the epoch
            total += torch.nn.functional.cross_entropy(logits, y).item() * len(y)
            smoothed += torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.3).item() * len(y)
            count += len(y)
    assert row["train_loss"] == pytest.approx(total / count, rel=1e-4)
    assert abs(smoothed / count - total / count) > 0.1  # what the old log mixed in


def test_stale_temps_of_dead_writers_are_removed(tmp_path):
    dead = tmp_path / ".last.pt.999999-0.tmp.pt"
    alive = tmp_path / f".best.pt.{os.getppid()}-0.tmp.pt"
    other = tmp_path / ".notes.tmp"
    for p in (dead, alive, other):
        p.write_bytes(b"x")
    assert remove_stale_temps(tmp_path) == [dead]
    assert alive.exists() and other.exists()


def test_metrics_rows_match_history_after_a_run(tmp_path):
    import darkforge

    run = darkforge.train(
        ARCHS / "darknet53.yaml", scale="nano", data="fake:64,32", epochs=1, batch=32, project=tmp_path
    )
    with (run.path / "metrics.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [float(r["lr"]) for r in table] == pytest.approx([h["lr"] for h in run.history], rel=1e-5)
    # best is picked on the 10% of train held out by default, never on test
    assert run.best == max(h["val_acc"] for h in run.history) and run.best_epoch == 1


def test_mixup_and_cutmix_mix_whole_batches(tmp_path):
    mix = mixing.batch_mix(0.4, 1.0, 10)
    assert mix is not None and mixing.batch_mix(0.0, 0.0, 10) is None
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 16, 16), torch.arange(8)
    mixed, target = mix(x, y)
    assert mixed.shape == x.shape and target.shape == (8, 10)
    assert torch.allclose(target.sum(1), torch.ones(8))  # class probabilities
    assert (target > 0).sum(1).max() == 2  # each image is a blend of two
    t = trainer(tmp_path, epochs=1, augment={"mixup": 0.2, "cutmix": 1.0})
    row = loop.train_epoch(t, 1, lambda e: None)
    assert math.isfinite(row["train_loss"]) and 0 <= row["train_acc"] <= 1


def test_a_run_directory_appears_whole(tmp_path):
    """Built under a temp name and renamed: never a run folder without args.yaml. A creation
    killed half-way leaves a temp folder, removed by the next creation in that project."""
    killed = tmp_path / ".train.999999-5.tmp"
    (killed / "weights").mkdir(parents=True)
    (tmp_path / "train").mkdir()  # taken (say, by hand)
    run = RunDir.create(tmp_path, "train", {"args.yaml": "a: 1\n", "arch.yaml": "x\n"})
    assert run.path.name == "train2" and (run.path / "args.yaml").read_text() == "a: 1\n"
    assert (run.path / "weights").is_dir() and not killed.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train", "train2"]


def _zeroed_norms(model):
    return sum(
        1
        for m in model.modules()
        if isinstance(m, torch.nn.BatchNorm2d) and not m.weight.detach().abs().sum()
    )


@pytest.mark.parametrize("arch, adds", [("resnet18.yaml", 8), ("resnet50.yaml", 16)])
def test_zero_init_reaches_block_written_residuals(tmp_path, arch, adds):
    """The last batch norm of each residual branch (not the projection's) starts at 0: one per add."""
    job = loop.Job((ARCHS / arch).read_text(), arch, None, Recipe(epochs=1, batch=8), "fake:16,8")
    t = loop.setup(job, RunDir.create(tmp_path, "t"), lambda e: None)
    assert sum(isinstance(m, Shortcut) for m in t.model.modules()) == adds  # the residual adds
    assert _zeroed_norms(t.model) == adds
    first = (
        t.model.layers["layer1"][0]
        if arch == "resnet18.yaml"
        else t.model.layers["layer1"].get_submodule("0")
    )
    assert not first.residual.bn.weight.detach().abs().sum()  # the branch's last conv, not `down`'s
    off = loop.Job(job.arch_yaml, arch, None, Recipe(epochs=1, batch=8, zero_init_residual=False), job.data)
    assert _zeroed_norms(loop.setup(off, RunDir.create(tmp_path, "u"), lambda e: None).model) == 0


def test_a_callback_sees_the_model_and_can_stop_the_run(tmp_path):
    import darkforge

    seen = []

    def stop_after_two(event):
        if event.kind == "epoch":
            seen.append(sum(p.numel() for p in event.model.parameters()))
            if event.epoch == 2:
                event.stop = "good enough"

    run = darkforge.train(
        ARCHS / "darknet53.yaml", scale="nano", data="fake:64,32", epochs=5, batch=32, project=tmp_path,
        callbacks=[stop_after_two],
    )  # fmt: skip
    assert len(run.history) == 2 and seen == [262_154, 262_154]  # the nano network, both epochs
    assert run.stopped == "a callback stopped the run after epoch 2: good enough"
    resumed = darkforge.train(resume=run.path)  # a stopped run is complete
    assert len(resumed.history) == 2
