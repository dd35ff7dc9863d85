"""`darkforge convert yolov8.yaml` writes the native file (darkforge/ultralytics/native.py): every
scale in one file with the shipped block library, counting what Ultralytics counts."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ARCHS

import darkforge
from tests.ultralytics.test_oracle import COUNTS, ORACLE

needs_oracle = pytest.mark.skipif(not (ORACLE / "index.json").is_file(), reason="needs ../shared")
FILES = sorted({c["yaml"] for c in COUNTS.values()} - {"yolov8-cls.yaml", "yolo11-cls.yaml"})


def layers_of(path: Path) -> list[dict]:
    spec = darkforge.load_spec(path)
    return [layer.model_dump(by_alias=True) for layer in spec.layers]


@needs_oracle
def test_convert_writes_archs_yolov8_yaml(run_cli, tmp_path: Path) -> None:
    for name in ("yolov8", "yolo11"):
        out = tmp_path / f"{name}.yaml"
        result = run_cli("convert", str(ORACLE / f"{name}.yaml"), "-o", str(out))
        assert result.exit_code == 0 and "warning" not in result.output, result.output
        assert layers_of(out) == layers_of(ARCHS / f"{name}.yaml")  # the shipped file, comments aside
        ours, shipped = darkforge.load_spec(out), darkforge.load_spec(ARCHS / f"{name}.yaml")
        assert (ours.scales, ours.scale, ours.defaults, ours.include) == (
            shipped.scales,
            shipped.scale,
            shipped.defaults,
            shipped.include,
        )


@needs_oracle
@pytest.mark.parametrize("yaml", FILES or ["none"])
def test_every_converted_scale_counts_ultralytics(run_cli, tmp_path: Path, yaml: str) -> None:
    out = tmp_path / "native.yaml"
    result = run_cli("convert", str(ORACLE / yaml), "-o", str(out))
    assert result.exit_code == 0 and "warning" not in result.output, result.output
    spec = darkforge.load_spec(out)
    assert spec.include == ["ultralytics"] and spec._converted_from is None
    checked = 0
    for model, count in COUNTS.items():
        if count["yaml"] != yaml:
            continue
        scale = next(
            (s for s in spec.scales if model.replace("-p2", "").replace("-p6", "").rstrip("u").endswith(s)),
            None,
        )
        assert scale is not None or not spec.scales, model
        assert darkforge.plan(spec.resolved(scale)).params == count["params"], model
        checked += 1
    assert checked >= 1


@needs_oracle
def test_a_classifier_is_written_at_one_scale_with_the_built_in_types_and_says_why(
    run_cli, tmp_path: Path
) -> None:
    out = tmp_path / "cls.yaml"
    result = run_cli("convert", str(ORACLE / "yolov8n-cls.yaml"), "-o", str(out))
    assert result.exit_code == 0
    assert "warning: a classification model keeps torch's batch norm" in result.output
    assert (
        darkforge.plan(darkforge.load_spec(out).resolved(classes=10)).params
        == COUNTS["yolov8n-cls"]["params"]
    )
