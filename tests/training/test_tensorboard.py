"""`train --tensorboard`: the run's TensorBoard scalars equal its metrics.csv, epoch for epoch."""

from __future__ import annotations

import csv

import pytest
from conftest import ROOT

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def test_tensorboard_scalars_equal_metrics_csv(run_cli, tmp_path):
    args = ["train", ROOT / "archs" / "darknet53.yaml", "--scale", "nano", "--data", "fake:128,32"]
    result = run_cli(*args, "--epochs", "2", "--batch-size", "64", "--tensorboard", "--project", tmp_path)
    assert result.exit_code == 0, result.output
    run = tmp_path / "train"
    with (run / "metrics.csv").open() as handle:
        table = list(csv.DictReader(handle))
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    numeric = {k for k, v in table[0].items() if k != "epoch" and v != ""}
    assert tags == numeric and {"train_loss", "test_acc", "lr", "img_s"} <= tags
    for tag in tags:
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == [1, 2]
        expected = [float(row[tag]) for row in table]
        # metrics.csv prints 6 significant digits; TensorBoard keeps float32
        assert [s.value for s in scalars] == pytest.approx(expected, rel=1e-5), tag
