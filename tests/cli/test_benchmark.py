"""`darkforge benchmark`: both networks, their ratio, a stable JSON, one-line errors."""

from __future__ import annotations

import importlib.util
import json

import pytest

from darkforge.benchmark import measure, modes

TINY = """
name: {name}
input: {{channels: 3, size: 16}}
layers:
  - {{type: ConvBnLeaky, filters: {width}, size: 3}}
  - {{type: GlobalAvgPool}}
  - {{type: Linear, out: 10}}
"""
QUICK = ("--rounds", "2", "--steps", "1", "--latency", "2", "--batch", "4", "--device", "cpu")


@pytest.fixture
def tiny(write):
    return write("a.yaml", TINY.format(name="a", width=8)), write("b.yaml", TINY.format(name="b", width=16))


def test_compare_prints_both_and_their_ratio(run_cli, tiny):
    a, b = tiny
    result = run_cli("benchmark", a, "--compare", b, *QUICK)
    assert result.exit_code == 0, result.output
    assert str(a) in result.output and str(b) in result.output
    assert f"{a} / {b} (eager): train " in result.output and "latency" in result.output


def test_json_is_the_documented_format(run_cli, tiny):
    a, b = tiny
    data = json.loads(run_cli("benchmark", a, "--compare", b, *QUICK, "--json").output)
    assert data["format"] == 1 and data["device"] == "cpu" and data["batch"] == 4
    assert data["latency_samples"] == 4 and data["rounds"] == 2
    first, second = data["models"]
    assert (first["name"], first["params"], second["params"]) == ("a", 8 * 27 + 16 + 90, 16 * 27 + 32 + 170)
    assert first["input"] == [3, 16, 16] and first["macs"] == 8 * 27 * 256 + 80
    eager = first["modes"]["eager"]
    assert set(eager) == {"train_img_s", "infer_img_s", "latency_ms", "peak_memory_bytes"}
    assert eager["train_img_s"] > 0 and eager["infer_img_s"] > 0 and eager["peak_memory_bytes"] is None
    assert 0 < eager["latency_ms"]["median"] <= eager["latency_ms"]["p90"]
    ratio = data["ratios"]["eager"]
    assert ratio["train_img_s"] == pytest.approx(
        eager["train_img_s"] / second["modes"]["eager"]["train_img_s"]
    )
    single = json.loads(run_cli("benchmark", a, *QUICK, "--json").output)
    assert single["ratios"] is None and len(single["models"]) == 1


@pytest.mark.parametrize(
    "args, words",
    [
        (["--batch", "0"], "--batch"),
        (["--device", "tpu"], "--device 'tpu' is not a device"),
        (["--mode", "fast"], "--mode"),
        (["--rounds", "0"], "--rounds"),
        (["--scale", "huge"], "huge"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(run_cli, tiny, args, words):
    result = run_cli("benchmark", tiny[0], *args)
    assert result.exit_code == 2, result.output
    assert words in result.output and len(result.output.strip().splitlines()) == 1


def test_a_mode_that_cannot_run_is_reported_not_fatal(run_cli, tiny, monkeypatch):
    def broken(x):
        raise RuntimeError("no C++ compiler\nsecond line")

    monkeypatch.setitem(modes.MODES, "compile", lambda model, setup: modes.Runner(broken, broken))
    data = json.loads(
        run_cli("benchmark", tiny[0], *QUICK, "--mode", "eager", "--mode", "compile", "--json").output
    )
    assert data["models"][0]["modes"]["compile"] == {"error": "RuntimeError: no C++ compiler"}
    assert data["models"][0]["modes"]["eager"]["infer_img_s"] > 0


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="needs darkforge[onnx]")
def test_onnxruntime_infers_and_does_not_train(run_cli, tiny):
    data = json.loads(run_cli("benchmark", tiny[0], *QUICK, "--mode", "onnxruntime", "--json").output)
    ort = data["models"][0]["modes"]["onnxruntime"]
    assert ort["train_img_s"] is None and ort["infer_img_s"] > 0


def test_percentile_matches_numpy():
    import numpy as np

    values = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0]
    for q in (0, 50, 90, 100):
        assert measure.percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_a_scale_applies_to_both_networks_or_is_refused(run_cli, write):
    scaled = TINY + "scales:\n  half: {{width: 0.5}}\n"
    a = write("a.yaml", scaled.format(name="a", width=16))
    b = write("b.yaml", scaled.format(name="b", width=16))
    data = json.loads(run_cli("benchmark", a, "--compare", b, "--scale", "half", *QUICK, "--json").output)
    assert [m["params"] for m in data["models"]] == [8 * 27 + 16 + 90] * 2  # both at half width
    plain = write("c.yaml", TINY.format(name="c", width=16))
    result = run_cli("benchmark", a, "--compare", plain, "--scale", "half", *QUICK)
    assert result.exit_code == 2 and "c has no scale 'half'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_input_past_the_size_limits_is_refused_before_anything_runs(run_cli, tiny):
    result = run_cli("benchmark", tiny[0], *QUICK, "--input-size", "16384")
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "of activations per image" in lines[0] and "over the 4 GB limit" in lines[0]


def test_a_benchmark_that_measured_nothing_is_an_error(run_cli, tiny, monkeypatch):
    def broken(x):
        raise RuntimeError(
            "DefaultCPUAllocator: can't allocate memory: you tried to allocate 25769803776 bytes"
        )

    monkeypatch.setitem(modes.MODES, "eager", lambda model, setup: modes.Runner(broken, broken))
    result = run_cli("benchmark", tiny[0], *QUICK)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: nothing was measured: {tiny[0]} eager: out of memory; try a smaller --batch or --input-size"
    ]
