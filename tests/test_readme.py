"""The README's sample output is the real output: each `$ darkforge ...` line of its console
blocks that shows output is run, and every line it shows (`...` elides) must appear, in order."""

from __future__ import annotations

import os
import re
import shlex

import pytest
from conftest import ROOT

SAMPLE = re.compile(r"```console\n(.*?)```", re.S)


def samples() -> list[tuple[str, list[str]]]:
    found = []
    for block in SAMPLE.findall((ROOT / "README.md").read_text()):
        command, shown = None, []
        for line in [*block.splitlines(), "$"]:
            if line.startswith("$"):
                if command and shown:
                    found.append((command, shown))
                command, shown = line[1:].split("#")[0].strip(), []
            elif line.strip() and line.strip() != "...":
                shown.append(line.rstrip())
    return found


@pytest.mark.parametrize("command, shown", samples(), ids=lambda v: v if isinstance(v, str) else "")
def test_readme_samples_are_what_the_commands_print(run_cli, command, shown, monkeypatch):
    monkeypatch.chdir(ROOT)
    words = shlex.split(command)
    assert words[0] == "darkforge"
    args = [
        w
        for pattern in words[1:]
        for w in (
            sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(pattern)) if "*" in pattern else [pattern]
        )
    ]
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    at = 0
    for want in shown:
        while at < len(lines) and lines[at].rstrip() != want:
            at += 1
        assert at < len(lines), f"README shows {want!r}, `{command}` prints:\n{result.output}"
        at += 1


def test_the_readme_has_samples():
    assert len(samples()) >= 2 and os.path.exists(ROOT / "README.md")
