"""A block parameter's own limits are checked where they are written (issue 22): NaN or infinite
bounds, empty or mistyped choices, a default outside its limits were pydantic schema errors
(exit 3) or silently accepted."""

from __future__ import annotations

import pytest

FILE = """name: n
input: {{channels: 3, size: 8}}
blocks:
  B:
    params: {{w: {{type: {kind}, {limits}}}, v: int}}
    layers: [{{type: Conv, filters: 4, size: 1}}]
layers:
  - {{type: B, w: {value}, v: 1}}
"""


@pytest.mark.parametrize(
    ("kind", "limits", "at", "what"),
    [
        ("int", "min: .nan", "5:29: blocks.B.params.w.min", "Input should be a finite number; got nan"),
        ("int", "max: .inf", "5:29: blocks.B.params.w.max", "Input should be a finite number; got inf"),
        ("float", "max: -.inf", "5:31: blocks.B.params.w.max", "Input should be a finite number; got -inf"),
        (
            "int",
            "choices: []",
            "5:29: blocks.B.params.w.choices",
            "List should have at least 1 item after validation, not 0; got list",
        ),
        ("int", "min: 5, max: 1", "5:14: blocks.B.params.w", "`min` 5 is above `max` 1"),
        ("int", "min: 1.5", "5:14: blocks.B.params.w", "the `min`/`max` of an int parameter are integers"),
        ("str", "min: 1", "5:14: blocks.B.params.w", "a str parameter has no `min`/`max`"),
        ("bool", "max: 1", "5:14: blocks.B.params.w", "a bool parameter has no `min`/`max`"),
        ("int", "choices: [1, a]", "5:14: blocks.B.params.w", "choice 'a' is no int"),
        ("int", "choices: [true]", "5:14: blocks.B.params.w", "choice True is no int"),
        ("float", "choices: [.nan]", "5:14: blocks.B.params.w", "choice nan is not a finite number"),
        ("int", "default: x", "5:14: blocks.B.params.w", "default 'x' is no int"),
        ("int", "default: 3, choices: [1, 2]", "5:14: blocks.B.params.w", "default 3 is none of the choices"),
        ("int", "default: 0, min: 1", "5:14: blocks.B.params.w", "default 0 lies outside `min`..`max`"),
        (
            "int",
            "min: -9223372036854775809",
            "5:29: blocks.B.params.w.min",
            "Input should be greater than or equal to -1000000000000; got -9223372036854775809",
        ),
        (
            "float",
            "max: 1.0e+300",
            "5:31: blocks.B.params.w.max",
            "Input should be less than or equal to 1000000000000; got 1e+300",
        ),
    ],
)
def test_bad_limits_are_one_located_line(run_cli, write, kind, limits, at, what):
    path = write("p.yaml", FILE.format(kind=kind, limits=limits, value=4))
    result = run_cli("validate", path)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [f"error: {path}:{at}: {what}"]


@pytest.mark.parametrize(
    ("kind", "limits", "value"),
    [
        ("int", "min: 1, max: 8", 4),
        ("float", "min: 0.5", 1.5),
        ("str", "choices: [a, b]", "b"),
        ("bool", "default: true", "false"),
    ],
)
def test_good_limits_still_validate(run_cli, write, kind, limits, value):
    result = run_cli("validate", write("p.yaml", FILE.format(kind=kind, limits=limits, value=value)))
    assert result.exit_code == 0, result.output


def test_a_use_outside_the_limits_is_refused_at_the_use(run_cli, write):
    path = write("p.yaml", FILE.format(kind="int", limits="min: 1, max: 8", value=9))
    result = run_cli("validate", path)
    assert result.exit_code == 1
    assert "p.yaml:8:15: layers[0].w: Input should be less than or equal to 8; got 9" in result.stderr
