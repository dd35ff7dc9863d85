"""Errors a user can act on. Each one renders as a single line: where, what, what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field


def key_path(loc: tuple[object, ...]) -> str:
    """('layers', 3, 'filters') -> 'layers[3].filters' (the spelling users see in errors)."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass
class DarkforgeError(Exception):
    """Bad input. `exit_code` is 1 for a bad file, 2 for bad usage (click's convention)."""

    message: str
    hint: str = ""
    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    path: tuple[object, ...] = field(default_factory=tuple)
    exit_code: int = 1

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
        parts = [p for p in (where, key_path(self.path)) if p]
        text = ": ".join([*parts, self.message])
        if self.hint:
            text += f"; {self.hint}"
        return text


class SpecError(DarkforgeError):
    """The architecture file is wrong: syntax, a field, or the graph it describes."""


class UsageError(DarkforgeError):
    """A flag or argument is wrong (exit code 2)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint, exit_code=2)


class DataError(DarkforgeError):
    """A dataset, checkpoint or weights file cannot be used."""


class DiskFullError(DarkforgeError):
    """A write ran out of space; the file it replaces is intact."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A hint for a misspelt name: the closest choice, else the list of valid ones."""
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:  # case-insensitive second try: "convbnleaky" -> "ConvBnLeaky"
        lowered = {c.lower(): c for c in choices}
        close = [lowered[m] for m in difflib.get_close_matches(word.lower(), lowered, n=1)]
    if close:
        return f"did you mean {close[0]!r}?"
    shown = sorted(choices)
    more = f", … ({len(shown) - 8} more)" if len(shown) > 8 else ""
    return "valid: " + ", ".join(shown[:8]) + more
