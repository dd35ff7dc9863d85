"""TensorBoard scalars of a run, as a callback (`darkforge train --tensorboard`, or
`darkforge.train(..., callbacks=[TensorBoard()])`): every number of each epoch's metrics.csv row,
under RUN/tensorboard/, stepped by epoch. Optional: `pip install darkforge[tensorboard]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from darkforge.errors import UsageError


class TensorBoard:
    """Writes each epoch's row when the epoch ends; the writer opens when the run directory exists."""

    def __init__(self, logdir: str | Path | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
        except ImportError:
            raise UsageError(
                "--tensorboard needs the tensorboard package", "pip install 'darkforge[tensorboard]'"
            ) from None
        self._writer_class = SummaryWriter
        self.logdir = Path(logdir) if logdir is not None else None
        self.writer: Any = None

    def __call__(self, event: Any) -> None:
        if event.kind == "run" and self.writer is None:
            path = self.logdir or Path(event.values["path"]) / "tensorboard"
            self.writer = self._writer_class(log_dir=str(path))
        elif event.kind == "epoch" and self.writer is not None:
            row = event.values
            for key, value in row.items():
                if (
                    key not in ("epoch", "best")
                    and isinstance(value, int | float)
                    and not isinstance(value, bool)
                ):
                    self.writer.add_scalar(key, value, row["epoch"])
            self.writer.flush()  # a kill loses nothing that metrics.csv has
        elif event.kind == "finish" and self.writer is not None:
            self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
