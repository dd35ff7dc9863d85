"""benchmarks/gpu_check.py --dry-run on the CPU, so the GPU check cannot rot between GPU runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT


def test_gpu_check_dry_run_prints_the_documented_json_line():
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    script = ROOT / "benchmarks" / "gpu_check.py"
    done = subprocess.run(
        [sys.executable, str(script), "--dry-run"], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["gpu_check"] == 1 and result["dry_run"] is True and result["device"] == "cpu"
    assert set(result["train_img_s"]) == {"fp32", "bf16", "bf16_channels_last", "bf16_channels_last_compile"}
    assert all(v > 0 for v in result["train_img_s"].values()) and result["errors"] == {}
    recipe = result["recipe"]
    assert recipe["epochs"] == 1 and 0 <= recipe["test_acc"] <= 1 and recipe["wall_s"] > 0
    assert result["peak_gpu_memory_bytes"] is None
    assert result["torchrun"]["ok"] is True and result["torchrun"]["backend"] == "gloo", result["torchrun"]
