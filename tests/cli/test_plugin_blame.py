"""A misbehaving plugin is blamed by name, in one line, exit 1 or 2 (issue 22): a shape rule that
raises, returns what is no cost, negative sizes or counts; a module that cannot be built; a forward
that raises or disagrees with its rule; a plugin that calls sys.exit at import. A YAML's `plugins:`
never imports anything. One subprocess runs every case (the plugin types stay out of this
process's registry)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PLUGIN = """
from typing import Literal
import darkforge
from darkforge import LayerCost, LayerSpec
from torch import nn

RULES = {
    "Garbage": lambda c, h, w: "not a cost",
    "Raises": lambda c, h, w: {}["oops"],
    "Negative": lambda c, h, w: LayerCost((-4, h, w)),
    "Params": lambda c, h, w: LayerCost((c, h, w), params=-10),
    "Words": lambda c, h, w: LayerCost(("a", h, w)),
    "Init": lambda c, h, w: LayerCost((c, h, w)),
    "Forward": lambda c, h, w: LayerCost((c, h, w)),
    "Crash": lambda c, h, w: LayerCost((c, h, w)),
}

for name, rule in RULES.items():
    spec = type(f"{name}Spec", (LayerSpec,), {
        "__annotations__": {"type": Literal[name]},
        "type": name,
        "infer": lambda self, inputs, rule=rule: rule(*inputs[0].shape),
        "__module__": __name__,
    })

    def init(self, spec, inputs, name=name):
        nn.Module.__init__(self)
        if name == "Init":
            raise RuntimeError("init broke")

    def forward(self, x, name=name):
        if name == "Crash":
            raise IndexError("forward broke")
        return x[:, :1] if name == "Forward" else x

    darkforge.register(spec)(type(name, (nn.Module,), {"__init__": init, "forward": forward}))
"""

RUNNER = """
import json, sys
from click.testing import CliRunner
from darkforge.cli import cli
for args in json.loads(sys.argv[1]):
    r = CliRunner().invoke(cli, args)
    print(json.dumps({"args": args, "code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr}), flush=True)
"""

ARCH = """name: n
input: {{channels: 3, size: 8}}
classes: 2
layers:
  - {{type: {kind}}}
  - {{type: Conv, filters: 4, size: 3}}
  - {{type: GlobalAvgPool}}
  - {{type: Linear}}
"""
BLAME = "a fault of the plugin: report it to its author"
CASES = {
    ("validate", "Garbage"): "plugin 'oddplug': the shape rule of Garbage returned a str, not a LayerCost",
    ("validate", "Raises"): "plugin 'oddplug': the shape rule of Raises failed (KeyError: 'oops')",
    ("validate", "Negative"): "the shape rule of Negative returned output shape (-4, 8, 8): sizes are whole",
    ("validate", "Params"): "the shape rule of Params returned params -10: counts are whole numbers ≥ 0",
    ("validate", "Words"): "the shape rule of Words returned output shape ('a', 8, 8)",
    ("summary", "Init"): "plugin 'oddplug': building its Init module failed (RuntimeError: init broke)",
    (
        "runtime",
        "Forward",
    ): "plugin 'oddplug': layers[0] (Forward) returned 1×8×8 where its shape rule says 3×8×8",
    (
        "train",
        "Forward",
    ): "plugin 'oddplug': layers[0] (Forward) returned 1×8×8 where its shape rule says 3×8×8",
    (
        "runtime",
        "Crash",
    ): "plugin 'oddplug': the forward of layers[0] (Crash) failed (IndexError: forward broke)",
}


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> dict[tuple[str, str], dict]:
    root = tmp_path_factory.mktemp("plugins")
    (root / "oddplug.py").write_text(PLUGIN)
    (root / "exitplug.py").write_text("import sys\nsys.exit(7)\n")
    (root / "marker.py").write_text(f"open({str(root / 'ran')!r}, 'w').write('ran')\n")
    runs, keys = [], []
    for (command, kind), _ in CASES.items():
        arch = root / f"{kind}.yaml"
        arch.write_text(ARCH.format(kind=kind))
        args = {
            "validate": ["validate", str(arch)],
            "summary": ["summary", "--runtime", str(arch)],
            "runtime": ["summary", "--runtime", str(arch)],
            "train": [
                "train",
                str(arch),
                "--data",
                "fake:8,8",
                "--epochs",
                "1",
                "--project",
                str(root / "runs"),
            ],
        }[command]
        runs.append([args[0], "--plugin", "oddplug", *args[1:]])
        keys.append((command, kind))
    named = root / "named.yaml"
    named.write_text(
        ARCH.format(kind="Conv, filters: 3").replace("classes: 2\n", "classes: 2\nplugins: [marker, os]\n")
    )
    runs += [["validate", "--plugin", "exitplug", str(named)], ["validate", str(named)]]
    keys += [("exit", ""), ("named", "")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(root), *sys.path])}
    env.pop("DARKFORGE_PLUGINS", None)
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(runs)],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=600,
    )
    found = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(found) == len(runs), done.stderr[-2000:]
    assert not (root / "ran").exists(), "a YAML's plugins: imported a module"
    return dict(zip(keys, found, strict=True))


@pytest.mark.parametrize(("command", "kind"), sorted(CASES))
def test_a_broken_plugin_is_blamed_by_name_in_one_line(records, command, kind):
    record = records[command, kind]
    lines = record["stderr"].strip().splitlines()
    assert record["code"] == 1, record
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert CASES[command, kind] in lines[0] and lines[0].endswith(BLAME), lines[0]
    assert "internal error" not in record["stdout"] + record["stderr"]


def test_a_plugin_that_exits_at_import_is_named(records):
    record = records["exit", ""]
    assert record["code"] == 2
    assert record["stderr"].strip() == "error: plugin 'exitplug' failed to load (SystemExit: 7)"


def test_plugins_in_a_yaml_import_nothing(records):
    record = records["named", ""]
    assert record["code"] == 1
    assert "needs plugin 'marker'" in record["stderr"] and len(record["stderr"].strip().splitlines()) == 1
