"""What `darkforge train` prints while it runs: an early estimate, lines when piped, Ctrl-C's hint."""

from __future__ import annotations

from types import SimpleNamespace

from darkforge.cli import progress as progress_module
from darkforge.cli.progress import Progress

START = {"epochs": 30, "from_epoch": 1, "device": "cpu", "params": 40_595_178, "train": 50_000}


def _step(step: int, seconds: float, steps: int = 196, loss: float | None = None) -> SimpleNamespace:
    values = {"seconds": seconds, "images": 256 * step} | ({"loss": loss} if loss is not None else {})
    return SimpleNamespace(kind="step", epoch=1, step=step, steps=steps, values=values)


def _piped(monkeypatch) -> Progress:
    p = Progress()
    p.tty = False
    p.info = dict(START)
    return p


def test_a_slow_network_is_estimated_after_its_second_step_with_the_hint(monkeypatch, capsys):
    p = _piped(monkeypatch)
    p(_step(1, 10.0))
    assert "estimated" not in capsys.readouterr().out  # the first step pays the warm-up
    p(_step(2, 20.0))
    out = capsys.readouterr().out
    # 10 s a step × 196 steps × 30 epochs × 1.1 for evaluation
    assert "estimated time: 17h 58m for 30 epoch(s) (32m 40s of training per epoch)" in out
    assert "tip: this takes hours on a CPU; try a smaller --scale (tiny, nano)" in out


def test_piped_output_gets_a_line_at_least_every_30_seconds(monkeypatch, capsys):
    clock = [1000.0]
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: clock[0])
    p = _piped(monkeypatch)
    p.estimated = True
    p(_step(1, 1.0, loss=2.5))
    assert capsys.readouterr().out == ""
    clock[0] += 31
    p(_step(2, 31.0))
    out = capsys.readouterr().out
    assert out.startswith("epoch 1: step 2/196  loss 2.5000  17 img/s") and "left" in out


def test_ctrl_c_says_how_to_resume(tmp_path):
    p = Progress()
    assert "no run directory was created" in p.interrupted()
    run = tmp_path / "runs" / "train"
    (run / "weights").mkdir(parents=True)
    p.run_path = str(run)
    assert "nothing was trained" in p.interrupted()
    (run / "weights" / "last.pt").write_bytes(b"x")
    assert p.interrupted().endswith(f"continue with `darkforge train --resume {run}`")
