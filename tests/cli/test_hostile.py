"""Hostile input, as an attacker or an unlucky user would give it (issue 14): every case ends with
exit 1 or 2 and one line under 300 characters, no traceback, within 30 s of CPU time (an alarm stops
a case blocked for 120 s) under an 8 GB address-space limit. The cases live in hostile_cases.py; one worker process runs them all (one torch import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import hostile_cases
import pytest
from conftest import ARCHS, ROOT
from hostile_cases import CASES, CFG_PARSER, CPU_SECONDS, WALL_SECONDS


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("hostile")
    env = os.environ | {"OMP_NUM_THREADS": "1", "DARKFORGE_CACHE": str(root / "cache")}
    done = subprocess.run(
        [sys.executable, hostile_cases.__file__, str(root)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
    )
    found = {r["name"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert found, done.stderr[-2000:]
    return found


def test_the_table_is_big_enough() -> None:
    commands = {name.split("-")[0] for name in CASES}
    assert len(CASES) >= 80
    assert {"validate", "summary", "train", "predict", "eval", "convert", "export"} <= commands
    assert any("resume" in name for name in CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_is_one_line_and_a_clean_exit(records: dict[str, dict], name: str) -> None:
    if name in CFG_PARSER:
        pytest.xfail("the Darknet .cfg parser's integers past 4,300 digits (its rewrite is pending)")
    record = records[name]
    output = record["stdout"] + record["stderr"]
    assert record["code"] != -1, f"{name} still ran after {WALL_SECONDS} s"
    assert record["cpu"] < CPU_SECONDS, f"{name} took {record['cpu']:.1f} s of CPU"
    assert "Traceback" not in output and "internal error" not in output, output
    assert record["code"] in (1, 2), output
    lines = record["stderr"].strip().splitlines()
    errors = [line for line in lines if not line.startswith("warning: ")]
    assert len(errors) == 1 and errors[0].startswith("error: "), lines
    assert all(len(line) < 300 for line in lines), lines


def test_no_case_ran_foreign_code(records: dict[str, dict], tmp_path: Path) -> None:
    assert records["predict-pickle-code"]["code"] == 1
    assert not list(Path(tmp_path.parent).glob("**/pwned"))


def test_a_fifo_is_refused_at_once(records: dict[str, dict]) -> None:
    fifos = [name for name in CASES if "fifo" in name]
    assert len(fifos) >= 6
    # a FIFO blocks without using CPU: a generous wall bound tells a refusal from a wait
    assert all(records[name]["seconds"] < 30 for name in fifos), {n: records[n]["seconds"] for n in fifos}


def python_calls(run) -> int:
    """Python function calls made by `run()`: a count of work that a loaded machine cannot skew."""
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        run()
    finally:
        sys.setprofile(None)
    return calls


def test_validate_is_linear_in_the_file(run_cli, tmp_path: Path) -> None:
    """A guard against quadratic behaviour, not a benchmark (benchmarks/validate_1mb.py times a
    1 MB file): validating 4× the rows of the costliest layers (residual stages of 1000 blocks,
    each referring back) makes about 4× the Python calls, never 16×."""

    def file(rows: int) -> Path:
        lines = ["  - {type: ConvBnLeaky, filters: 8, size: 1, id: l0}"]
        lines += [
            f"  - {{type: ResidualStage, filters: 8, blocks: 1000, stride: 1, hidden: 4, slope: 0.1, from: l{i - 1}, id: l{i}}}"
            for i in range(1, rows)
        ]
        path = tmp_path / f"big{rows}.yaml"
        path.write_text("name: big\ninput: {channels: 3, size: 8}\nlayers:\n" + "\n".join(lines) + "\n")
        return path

    run_cli("validate", ARCHS / "darknet53.yaml")  # imports done before counting
    results = {}
    calls = {}
    for rows in (500, 2000):
        path = file(rows)
        calls[rows] = python_calls(
            lambda p=path, r=rows: results.update({r: run_cli("validate", "--no-budget", p)})
        )
        assert results[rows].exit_code == 0 and f"{rows} layers" in results[rows].output, results[rows].output
    # linear: 4× (less the fixed cost of a command); quadratic would be 16×
    assert calls[2000] < 5 * calls[500], calls
