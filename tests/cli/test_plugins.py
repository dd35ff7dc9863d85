"""Plugins from the command line: docs/architecture.md's `Scaled` layer, installed as a package with a
`darkforge.layers` entry point, works in every command; a file naming a missing plugin says how to get it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = '''
from typing import Literal
import darkforge
from darkforge import LayerCost, LayerSpec
from torch import nn

class ScaledSpec(LayerSpec):
    """Multiplies its input by `factor`."""
    type: Literal["Scaled"] = "Scaled"
    factor: float = 2.0

    def infer(self, inputs):
        return LayerCost(inputs[0].shape)

@darkforge.register(ScaledSpec)
class Scaled(nn.Module):
    def __init__(self, spec, inputs):
        super().__init__()
        self.factor = spec.factor

    def forward(self, x):
        return x * self.factor
'''

PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "darkforge-scaled"
version = "1.0"

[project.entry-points."darkforge.layers"]
scaled = "darkforge_scaled"

[tool.setuptools]
py-modules = ["darkforge_scaled"]
"""

ARCH = """
name: scaled
input: {channels: 3, size: 16}
classes: 10
plugins: [darkforge-scaled]
layers:
  - {type: ConvBnLeaky, filters: 8, stride: 2}
  - {type: Scaled, factor: 0.5}
  - {type: GlobalAvgPool}
  - {type: Linear}
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """darkforge-scaled, pip-installed into a folder of its own."""
    root = tmp_path_factory.mktemp("plugin")
    (root / "proj").mkdir()
    (root / "proj" / "pyproject.toml").write_text(PYPROJECT)
    (root / "proj" / "darkforge_scaled.py").write_text(PLUGIN)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
         str(root / "site"), str(root / "proj")],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return root / "site"


def darkforge(*args: object, cwd: Path, site: Path | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("DARKFORGE_PLUGINS", None)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    code = "from darkforge.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def test_an_installed_plugin_works_in_every_command(site, tmp_path):
    arch = tmp_path / "scaled.yaml"
    arch.write_text(textwrap.dedent(ARCH))
    out = darkforge("validate", arch, cwd=tmp_path, site=site)
    assert out.returncode == 0 and "ok:" in out.stdout, out.stderr
    out = darkforge("summary", arch, cwd=tmp_path, site=site)
    assert out.returncode == 0 and "Scaled" in out.stdout, out.stderr
    out = darkforge("draw", arch, "--format", "dot", "-o", tmp_path / "s.dot", cwd=tmp_path, site=site)
    assert out.returncode == 0 and "Scaled" in (tmp_path / "s.dot").read_text(), out.stderr
    out = darkforge(
        "train", arch, "--data", "fake:256,64", "--epochs", "1", "--batch-size", "64", "--project", tmp_path / "runs",
        cwd=tmp_path, site=site,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    best = tmp_path / "runs" / "train" / "weights" / "best.pt"
    out = darkforge("export", best, "--format", "pt2", "--verify", cwd=tmp_path, site=site)
    assert out.returncode == 0 and "verified" in out.stdout, out.stderr


def test_a_missing_plugin_says_how_to_install_it(tmp_path):
    arch = tmp_path / "scaled.yaml"
    arch.write_text(textwrap.dedent(ARCH))
    out = darkforge("validate", arch, cwd=tmp_path, site=None)
    assert out.returncode == 1
    line = out.stderr.strip()
    assert (
        "\n" not in line
        and "needs plugin 'darkforge-scaled'" in line
        and "pip install darkforge-scaled" in line
    )


def test_plugin_flag_loads_a_module(tmp_path, site):
    arch = tmp_path / "scaled.yaml"
    arch.write_text(textwrap.dedent(ARCH).replace("plugins: [darkforge-scaled]\n", ""))
    # the module on the path but not installed (no entry point): --plugin imports it
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "my_scaled.py").write_text(PLUGIN)
    out = darkforge("summary", arch, cwd=tmp_path, site=tmp_path / "mod")
    assert out.returncode == 1 and "unknown layer type 'Scaled'" in out.stderr
    out = darkforge("summary", "--plugin", "my_scaled", arch, cwd=tmp_path, site=tmp_path / "mod")
    assert out.returncode == 0, out.stderr
