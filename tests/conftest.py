from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parent.parent
ARCHS = ROOT / "archs"
# ../shared beside the clone; DARKFORGE_SHARED names it for a checkout elsewhere (a git worktree)
SHARED = Path(os.environ.get("DARKFORGE_SHARED", ROOT.parent / "shared"))


@pytest.fixture
def run_cli():
    """Run `darkforge ARGS...` in-process; returns click's Result (exit_code, stdout, stderr)."""
    from darkforge.cli import cli

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, [str(a) for a in args])

    return run


@pytest.fixture
def write(tmp_path: Path):
    """Write a text file under tmp_path and return its path."""

    def write(name: str, text: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    return write


def python() -> str:
    return sys.executable
