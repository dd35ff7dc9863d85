"""A run directory: runs/<name>, auto-incremented, never overwritten; every file written atomically."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from darkforge.errors import DataError, UsageError
from darkforge.files import write_text


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def create(cls, project: str | os.PathLike[str], name: str) -> RunDir:
        """project/name, or project/name2, name3… if taken (ultralytics' convention)."""
        root = Path(project)
        try:
            root.mkdir(parents=True, exist_ok=True)
            for n in range(1, 10_000):
                path = root / (name if n == 1 else f"{name}{n}")
                try:
                    path.mkdir()
                except FileExistsError:
                    continue
                (path / "weights").mkdir()
                return cls(path)
        except OSError as e:
            raise UsageError(
                f"--project {root}: cannot create a run directory ({e.strerror})",
                "choose a writable --project folder",
            ) from None
        raise UsageError(f"--project {root}: too many runs named {name!r}", "pick another --name")

    @classmethod
    def existing(cls, path: str | os.PathLike[str]) -> RunDir:
        p = Path(path)
        if p.is_file():  # a checkpoint inside runs/<name>/weights/
            p = p.parent.parent
        if not (p / "args.yaml").is_file():
            raise DataError(
                f"{p}: not a darkforge run directory (no args.yaml)",
                "give runs/<name> or its weights/last.pt",
            )
        return cls(p)

    @property
    def last(self) -> Path:
        return self.path / "weights" / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "weights" / "best.pt"

    def file(self, name: str) -> Path:
        return self.path / name

    def write_text(self, name: str, text: str) -> Path:
        target = self.path / name
        write_text(target, text)
        return target

    def write_yaml(self, name: str, data: Any) -> Path:
        return self.write_text(name, yaml.safe_dump(data, sort_keys=False))

    def read_yaml(self, name: str) -> Any:
        return yaml.safe_load((self.path / name).read_text())

    def write_metrics(self, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})
        self.write_text("metrics.csv", buffer.getvalue())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
