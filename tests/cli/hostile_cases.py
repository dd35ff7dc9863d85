"""Runs the hostile inputs of tests/cli/test_hostile.py: every case in-process through click (one
torch import for all), under an address-space limit and an alarm, one JSON record per case.
`python tests/cli/hostile_cases.py DIR [NAME...]` runs them (all by default).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hostile_blocks  # noqa: F401  (registers its cases)
import hostile_runs  # noqa: F401  (registers its cases)
import hostile_specs  # noqa: F401  (registers its cases)
from hostile_runs import checkpoint
from hostile_table import ADDRESS_SPACE, CASES, CFG_PARSER, CPU_SECONDS, TINY, WALL_SECONDS

__all__ = [
    "ADDRESS_SPACE",
    "CASES",
    "CFG_PARSER",
    "CPU_SECONDS",
    "TINY",
    "WALL_SECONDS",
    "checkpoint",
    "run_all",
]


# --- the worker ----------------------------------------------------------------------------------
class Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Timeout


def _warm_up() -> None:
    """Import what the commands import on use, so a case's time is its own, not torch's import."""
    import safetensors.torch  # noqa: F401
    import torchvision.transforms.v2.functional  # noqa: F401
    from PIL import Image  # noqa: F401

    import darkforge.export.run
    import darkforge.training.loop  # noqa: F401


def run_all(root: Path, names: list[str]) -> Iterator[dict[str, Any]]:
    from click.testing import CliRunner

    from darkforge.cli import cli

    _warm_up()
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    signal.signal(signal.SIGALRM, _alarm)
    for name in names:
        folder = root / name
        folder.mkdir(parents=True)
        os.chdir(folder)
        args = CASES[name](folder)
        start, cpu = time.perf_counter(), time.process_time()
        signal.alarm(WALL_SECONDS)  # only stops a hang; the test bounds CPU time
        try:
            result = CliRunner().invoke(cli, args)
            code, out, err = result.exit_code, result.stdout, result.stderr
        except Timeout:
            code, out, err = -1, "", f"timed out after {WALL_SECONDS} s"
        finally:
            signal.alarm(0)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        yield {"name": name, "code": code, "stdout": out, "stderr": err, "seconds": seconds, "cpu": cpu}


if __name__ == "__main__":
    wanted = sys.argv[2:] or list(CASES)
    for record in run_all(Path(sys.argv[1]), wanted):
        print(json.dumps(record), flush=True)
