"""Numbers are numbers: nothing the file says is coerced into something else."""

from __future__ import annotations

import pytest

HEAD = "name: t\ninput: {channels: 3, size: 8}\n"


@pytest.mark.parametrize(
    "layer, message",
    [
        (
            "{type: Conv, filters: '64'}",
            "layers[0].filters: '64' is a string, not a number: write it without quotes",
        ),
        ("{type: Conv, filters: 24.0}", "layers[0].filters: 24.0 is not a whole number"),
        ("{type: Conv, filters: true}", "layers[0].filters: True is not a number"),
        ("{type: Conv, filters: 8, bn: {momentum: '0.1'}}", "layers[0].bn.momentum: '0.1' is a string"),
        ("{type: Dropout, p: '0.5'}", "layers[0].p: '0.5' is a string, not a number"),
        ("{type: Conv, filters: 8, fixed_width: 1}", "layers[0].fixed_width: 1 is not true or false"),
    ],
)
def test_a_string_float_or_bool_is_never_coerced(run_cli, write, layer, message):
    result = run_cli("validate", write("t.yaml", f"{HEAD}layers:\n  - {layer}\n"))
    assert result.exit_code == 1, result.output
    assert "t.yaml:4:" in result.output and message in result.output, result.output


def test_a_computed_float_in_a_block_is_refused_where_it_is_computed(run_cli, write):
    text = HEAD + (
        "blocks:\n  Half:\n    layers:\n      - {type: Conv, filters: '${in_channels * 8 / 1}'}\n"
        "layers:\n  - {type: Half}\n"
    )
    result = run_cli("validate", write("t.yaml", text))
    assert result.exit_code == 1
    assert "in block Half (" in result.output and "t.yaml:6:" in result.output
    assert (
        "layers[0].filters: 24.0 is not a whole number (computed in a block? use // or int())"
        in result.output
    )


def test_floats_take_whole_numbers(run_cli, write):
    result = run_cli(
        "validate", write("t.yaml", f"{HEAD}layers:\n  - {{type: Dropout, p: 0}}\n  - {{type: Flatten}}\n")
    )
    assert result.exit_code == 0, result.output
