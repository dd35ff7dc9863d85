"""Messages that point the way: other frameworks' names, libraries, includes, `when` at the top
level, and every error of a file shown (not only counted)."""

from __future__ import annotations

import pytest

HEAD = "name: m\ninput: {channels: 3, size: 8}\n"


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            HEAD + "layers:\n  - {type: Conv, filters: 4, id: a}\n  - {type: Concat, from: [a, -1]}\n",
            "m.yaml:5:6: layers[1].type: unknown layer type 'Concat'; did you mean 'Route'?",
        ),
        (
            HEAD + "layers:\n  - {type: Conv, filters: 4}\n  - {type: Dropout, rate: 0.5}\n",
            "m.yaml:5:21: layers[1].rate: unknown key 'rate'; did you mean 'p'?",
        ),
        (
            "blocks:\n  B:\n    layers:\n      - {type: Conv, filters: 4}\n",
            "m.yaml:1:1: this is a block library (blocks: B), not a network; use it from a network "
            "file: include: [m.yaml]",
        ),
        (
            HEAD + "include: [nowhere.yaml]\nlayers:\n  - {type: Conv, filters: 4}\n",
            "m.yaml:3:11: include[0]: nowhere.yaml: no such file",
        ),
        (
            HEAD + "layers:\n  - {type: Conv, filters: 4, when: false}\n",
            "m.yaml:4:30: layers[0].when: `when` works only inside a block's layers, where the block's "
            "parameters decide; define a block",
        ),
        (
            HEAD + "layers:\n  - {type: Conv, filters: 4, size: 0, stride: 0}\n",
            "m.yaml:4:30: layers[0].size: Input should be greater than or equal to 1; got 0; also "
            "layers[0].stride: Input should be greater than or equal to 1",
        ),
    ],
)
def test_messages_point_the_way(run_cli, write, text, expected):
    result = run_cli("validate", write("m.yaml", text))
    assert result.exit_code == 1
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_many_errors_are_shown_three_then_counted(run_cli, write):
    layers = "".join(f"  - {{type: Conv, filters: 0, size: {k}}}\n" for k in range(1, 6))
    result = run_cli("validate", write("m.yaml", HEAD + "layers:\n" + layers))
    line = result.stderr.strip()
    # the first, the next that fits the line, then the count of the rest
    assert "layers[0].filters: Input should be greater than or equal to 1; got 0" in line
    assert "; also layers[1].filters: Input should be greater than or equal to 1; and 3 more" in line
    assert line.endswith("(fix these and validate again)") and len(line) < 300
