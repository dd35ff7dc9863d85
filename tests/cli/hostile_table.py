"""The registry of tests/cli/test_hostile.py's hostile inputs: each case builds its files under a
folder and returns the command line (hostile_specs.py: architecture files; hostile_runs.py:
checkpoints, images, weights, training runs; hostile_cases.py runs them)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

# Darknet's .cfg parser is being rewritten (the Darknet helper); these still end as exit 3 there.
CFG_PARSER: set[str] = set()  # cases the .cfg parser failed (none now)
ADDRESS_SPACE = 8 * 2**30  # bytes: a case that tries to allocate past it fails, it does not swap
CPU_SECONDS = 30  # a case's CPU time: a hang guard, not a benchmark (a loaded machine does not stretch it)
WALL_SECONDS = 120  # the alarm that stops a case blocked without using CPU (a FIFO opened for reading)

TINY = """name: tiny
input: {channels: 3, size: 8}
classes: 2
layers:
  - {type: Conv, filters: 4, size: 3}
  - {type: GlobalAvgPool}
  - {type: Linear}
"""
HEAD = "name: h\ninput: {channels: 3, size: 8}\nclasses: 2\nlayers:\n"

Case = Callable[[Path], list[str]]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def register(make: Case) -> Case:
        CASES[name] = make
        return make

    return register


def text(name: str, body: str | bytes) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        path = root / name
        path.write_bytes(body if isinstance(body, bytes) else body.encode())
        return path

    return make


def yaml_case(name: str, body: str | bytes, command: str = "validate") -> None:
    file = text(f"{name}.yaml", body)
    CASES[f"{command}-{name}"] = lambda root: [command, str(file(root))]


def layers(*rows: str) -> str:
    return HEAD + "".join(f"  - {row}\n" for row in rows)
