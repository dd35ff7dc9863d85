"""Training progress on the terminal: a tqdm bar on a TTY, one plain line per epoch otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

import click
from tqdm import tqdm


class Progress:
    """A tqdm bar on a terminal; one plain line per epoch otherwise."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet  # a torchrun rank other than 0: rank 0 alone prints
        self.bar: Any = None
        self.tty = sys.stderr.isatty()
        self.started = time.perf_counter()
        self.estimated = False
        self.info: dict[str, Any] = {}

    def __call__(self, event: Any) -> None:
        if not self.quiet:
            getattr(self, f"on_{event.kind}")(event)

    def on_run(self, event: Any) -> None:
        """The run directory exists (announced only then: a failing start leaves none to name)."""
        v = event.values
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
        click.echo(
            f"done: final epoch {summary['final_epoch']} test acc {100 * summary['accuracy']:.2f}%; "
            f"best {100 * v['best']:.2f}% (picked on the {summary['best_picked_on']}); results in {v['path']}"
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
        if v.get("frozen"):
            click.echo(f"frozen: {v['frozen']:,} of {v['params']:,} params")

    def on_step(self, event: Any) -> None:
        if self.tty:
            if self.bar is None:
                self.bar = tqdm(
                    total=event.steps,
                    desc=f"epoch {event.epoch}",
                    unit="batch",
                    leave=False,
                    dynamic_ncols=True,
                )
            self.bar.update(1)
            images = event.values["images"] * self.info.get("world", 1)  # all ranks, as in metrics.csv
            self.bar.set_postfix_str(f"{images / max(event.values['seconds'], 1e-9):.0f} img/s")
        if not self.estimated and event.step == min(20, event.steps):
            self.estimated = True
            per_step = event.values["seconds"] / event.step
            epochs = self.info["epochs"] - self.info["from_epoch"] + 1
            total = per_step * event.steps * epochs * 1.1  # + evaluation
            epoch = _duration(per_step * event.steps)
            self.say(
                f"estimated time: {_duration(total)} for {epochs} epoch(s) ({epoch} of training per epoch)"
            )
            if self.info["device"] == "cpu" and self.info["params"] > 10_000_000 and total > 3600:
                self.say("tip: this is a large network for a CPU; try --scale tiny, or a GPU (--device cuda)")

    def say(self, text: str) -> None:
        """A line that does not tear the progress bar (tqdm clears and redraws it)."""
        if self.bar is not None:
            self.bar.write(text, file=sys.stdout)
        else:
            click.echo(text)

    def on_epoch(self, event: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        r = event.values
        val = f" val {100 * r['val_acc']:.2f}%" if r.get("val_acc") is not None else ""
        elapsed = _duration(time.perf_counter() - self.started)
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
