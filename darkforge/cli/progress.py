"""Training progress on the terminal: a tqdm bar on a TTY, one plain line per epoch otherwise."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

# tqdm's bar without its own rate: its first reading (a step that took microseconds) is nonsense
BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"


class Progress:
    """A tqdm bar on a terminal; one plain line per epoch otherwise."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet  # a torchrun rank other than 0: rank 0 alone prints
        self.bar: Any = None
        self.tty = sys.stderr.isatty()
        self.started = time.perf_counter()
        self.estimated = False
        self.info: dict[str, Any] = {}
        self.run_path: str | None = None  # for the resume hint after Ctrl-C
        self.loss: float | None = None  # the epoch's running mean
        self.last_line = time.perf_counter()  # piped output: a progress line at least every 30 s

    def __call__(self, event: Any) -> None:
        if not self.quiet:
            getattr(self, f"on_{event.kind}")(event)

    def on_run(self, event: Any) -> None:
        """The run directory exists (announced only then: a failing start leaves none to name)."""
        v = event.values
        self.run_path = v["path"]
        if "resume" not in v:
            click.echo(f"run directory: {v['path']}")
        elif v.get("extended_from"):
            extended = f"extended from {v['extended_from']} to {v['epochs']} epochs"
            click.echo(f"resuming {v['path']} after epoch {v['resume']}, {extended}")
        else:
            click.echo(f"resuming {v['path']} after epoch {v['resume']}")

    def on_transfer(self, event: Any) -> None:
        report = event.values["report"]
        for line in report.lines():
            self.say(line)

    def on_warning(self, event: Any) -> None:
        self.say(f"warning: {event.values['message']}")

    def on_stop(self, event: Any) -> None:
        self.say(f"early stop: {event.values['reason']}")

    def on_finish(self, event: Any) -> None:
        v = event.values
        if v.get("complete"):
            click.echo(f"{v['path']}: already complete ({v['epochs']} epochs; every final file present)")
            return
        if v.get("wrote"):
            click.echo(f"{v['path']}: complete; wrote the missing final files: {', '.join(v['wrote'])}")
        if v.get("best_from"):
            click.echo(f"best.pt/best.safetensors rewritten from {v['best_from']}")
        summary = v["summary"]
        if summary.get("task") == "detect":
            click.echo(
                f"done: best epoch {summary['best_epoch']} (val mAP50-95 {v['best']:.4f}); final epoch "
                f"{summary['final_epoch']} on val: mAP50 {summary['map50']:.4f}, mAP50-95 "
                f"{summary['map']:.4f}, class-agnostic mAP50 {summary['map50_agnostic']:.4f}; "
                f"results in {v['path']}"
            )
            with open(f"{v['path']}/report.txt", encoding="utf-8") as handle:
                click.echo(handle.read().rstrip())
            return
        split = "val" if summary["best_picked_on"] == "validation split" else "test"
        click.echo(
            f"done: best epoch {summary['best_epoch']} ({split} acc {100 * v['best']:.2f}%, picked on the "
            f"{summary['best_picked_on']}); final epoch {summary['final_epoch']}: test acc "
            f"{100 * summary['accuracy']:.2f}%; results in {v['path']}"
        )
        with open(f"{v['path']}/report.txt", encoding="utf-8") as handle:
            click.echo(handle.read().rstrip())

    def on_start(self, event: Any) -> None:
        v = self.info = event.values
        val = f", val {v['val']:,}" if v["val"] else ""
        ddp = f" × {v['world']} processes (DDP)" if v.get("world", 1) > 1 else ""
        click.echo(
            f"device {v['device']}{ddp}, precision {v['precision']}, {v['params']:,} params; "
            f"train {v['train']:,}{val}, test {v['test']:,} images, {v['classes']} classes; "
            f"epochs {v['from_epoch']}-{v['epochs']}"
        )
        if v.get("cache_file"):  # said once: a file darkforge wrote beside (or for) the user's images
            size = Path(v["cache_file"]).stat().st_size if Path(v["cache_file"]).exists() else 0
            click.echo(f"decoded images: {v['cache_file']} ({size / 2**20:,.0f} MiB; --cache-dir moves it)")
        if v.get("frozen"):
            click.echo(f"frozen: {v['frozen']:,} of {v['params']:,} params")

    def on_step(self, event: Any) -> None:
        v = event.values
        images = v["images"] * self.info.get("world", 1)  # all ranks, as in metrics.csv
        rate = images / max(v["seconds"], 1e-9)
        self.loss = v.get("loss", self.loss)  # the loop reports it every few steps
        loss = f"loss {self.loss:.4f}  " if self.loss is not None else ""
        if self.tty:
            if self.bar is None:
                self.bar = tqdm(
                    total=event.steps,
                    desc=f"epoch {event.epoch}",
                    unit="batch",
                    leave=False,
                    dynamic_ncols=True,
                    bar_format=BAR,
                )
            self.bar.update(1)
            self.bar.set_postfix_str(f"{loss}{rate:.0f} img/s")
        elif time.perf_counter() - self.last_line >= 30:
            self.last_line = time.perf_counter()
            left = _duration(v["seconds"] / event.step * (event.steps - event.step))
            self.say(
                f"epoch {event.epoch}: step {event.step}/{event.steps}  {loss}{rate:.0f} img/s  {left} left"
            )
        if not self.estimated and self._timed_enough(event):
            self._estimate(event)

    @staticmethod
    def _timed_enough(event: Any) -> bool:
        """The estimate comes after the second step (the first pays warm-up) once 5 s are timed,
        so a slow network is estimated within seconds, not after 20 of its minute-long steps."""
        return event.step == min(20, event.steps) or (event.step >= 2 and event.values["seconds"] >= 5)

    def _estimate(self, event: Any) -> None:
        self.estimated = True
        per_step = event.values["seconds"] / event.step
        epochs = self.info["epochs"] - self.info["from_epoch"] + 1
        total = per_step * event.steps * epochs * 1.1  # + evaluation
        epoch = _duration(per_step * event.steps)
        self.say(f"estimated time: {_duration(total)} for {epochs} epoch(s) ({epoch} of training per epoch)")
        if self.info["device"] == "cpu" and total > 3600:
            self.say(
                "tip: this takes hours on a CPU; try a smaller --scale (tiny, nano), or a GPU (--device cuda)"
            )

    def interrupted(self) -> str:
        """What Ctrl-C leaves, and how to go on."""
        if self.run_path is None:
            return "interrupted before training started: no run directory was created"
        if not (Path(self.run_path) / "weights" / "last.pt").exists():
            return "interrupted in the first epoch: nothing was trained, the run directory was removed"
        resume = f"darkforge train --resume {self.run_path}"
        return f"interrupted: {self.run_path} keeps its completed epochs; continue with `{resume}`"

    def say(self, text: str) -> None:
        """A line that does not tear the progress bar (tqdm clears and redraws it)."""
        if self.bar is not None:
            self.bar.write(text, file=sys.stdout)
        else:
            click.echo(text)

    def on_epoch(self, event: Any) -> None:
        self.loss = None
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        r = event.values
        elapsed = _duration(time.perf_counter() - self.started)
        if "map50_95" in r:  # a detector
            losses = " ".join(f"{k[6:]} {v:.3f}" for k, v in r.items() if k.startswith("train_"))
            click.echo(
                f"epoch {r['epoch']:3d}/{self.info['epochs']}  train {losses}  val P {r['precision']:.3f} "
                f"R {r['recall']:.3f} mAP50 {r['map50']:.4f} mAP50-95 {r['map50_95']:.4f} (agnostic mAP50 "
                f"{r['map50_agnostic']:.4f})  lr {r['lr']:.4g}  {r['img_s']:.0f} img/s  {r['seconds']:.0f}s  "
                f"[{elapsed} elapsed]"
            )
            return
        val = f" val {100 * r['val_acc']:.2f}%" if r.get("val_acc") is not None else ""
        click.echo(
            f"epoch {r['epoch']:3d}/{self.info['epochs']}  "
            f"train loss {r['train_loss']:.4f} acc {100 * r['train_acc']:.2f}%  "
            f"test loss {r['test_loss']:.4f} acc {100 * r['test_acc']:.2f}%{val}  lr {r['lr']:.4g}  "
            f"{r['img_s']:.0f} img/s  {r['seconds']:.0f}s  [{elapsed} elapsed]"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
