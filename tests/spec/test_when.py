"""`when:` a reader can predict: a left-out layer with several inputs says which one stands in."""

from __future__ import annotations

import pytest

import darkforge
from darkforge.errors import SpecError

REVERSED = """\
name: reversed
input: {channels: 8, size: 8}
blocks:
  Res:
    params: {add: bool}
    layers:
      - {type: Conv, filters: 8, size: 3, id: branch}
      - {type: Shortcut, from: [input, -1], when: $add}
      - {type: Conv, filters: 8, size: 1}
layers:
  - {type: Res, add: false}
"""


def test_a_left_out_add_with_two_inputs_is_refused_naming_the_place(write):
    spec = darkforge.load_spec(write("r.yaml", REVERSED))
    with pytest.raises(SpecError) as e:
        darkforge.plan(spec.resolved())
    text = str(e.value)
    assert "r.yaml:11:5: layers[0]: in block Res (" in text and "r.yaml:8:" in text
    assert "layers[1].when: Shortcut is left out by its `when` and reads 2 inputs (input, -1)" in text
    assert "e.g. `when_removed: input`" in text


@pytest.mark.parametrize("stand_in, convs", [("input", 1), ("-1", 2)])
def test_when_removed_picks_the_input_that_stands_in(write, stand_in, convs):
    text = REVERSED.replace("when: $add}", f"when: $add, when_removed: {stand_in}}}")
    p = darkforge.plan(darkforge.load_spec(write("r.yaml", text)).resolved())
    inner = p.layers[0].spec.instance([p.input])
    last = inner.infos[-1]
    # `input`: the last conv reads the block's input (the branch conv feeds nothing); -1: the branch
    assert last.sources == ((-1,) if stand_in == "input" else (0,))
    assert p.params == {1: 8 * 8 + 8 + 8 * 8 * 9 + 8, 2: 8 * 8 * 9 + 8 + 8 * 8 + 8}[convs]


def test_when_removed_must_name_one_of_the_layers_inputs(write):
    text = REVERSED.replace("when: $add}", "when: $add, when_removed: branch}")
    with pytest.raises(SpecError, match=r"`when_removed: branch` is not one of its inputs \(input, -1\)"):
        darkforge.plan(darkforge.load_spec(write("r.yaml", text)).resolved())


DEAD = """\
name: dead
input: {channels: 8, size: 8}
blocks:
  Strided:
    params: {stride: {type: int, default: 1}, width: int}
    layers:
      - {type: Conv, filters: $width, size: 3, id: lost}
      - {type: Conv, from: input, filters: $width, size: 1}
layers:
  - {type: Strided, width: 8, stride: 2}
  - {type: Conv, filters: 4, size: 1, id: side}
  - {type: Conv, from: 0, filters: 4, size: 1}
"""


def test_dead_branches_and_unused_parameters_are_warned_one_line_each(run_cli, write):
    path = write("dead.yaml", DEAD)
    result = run_cli("validate", path)
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        f"warning: {path}:11:5: layers[1] (Conv 'side'): nothing reads its output (a dead branch); "
        "use it, list it in `outputs`, or remove it",
        f"warning: {path}:10:5: layers[0]: `stride: 2` passed to block Strided (dead.yaml:4:3) and read by "
        "none of its layers here",
        f"warning: {path}:10:5: layers[0]: in block Strided (dead.yaml:7:9): layers[0] (Conv 'lost'): "
        "nothing reads its output (a dead branch); use it, list it in `outputs`, or remove it",
    ]
    assert "warning: " + warnings[0][9:] in run_cli("summary", path).output


def test_the_branch_a_stand_in_leaves_unread_is_warned(run_cli, write):
    path = write("r.yaml", REVERSED.replace("when: $add}", "when: $add, when_removed: input}"))
    result = run_cli("validate", path)
    assert result.exit_code == 0
    assert (
        f"warning: {path}:11:5: layers[0]: in block Res (r.yaml:7:9): layers[0] (Conv 'branch'): nothing reads"
        in result.stderr
    )


def test_a_default_the_use_never_wrote_is_not_warned_under_a_scale(run_cli, write):
    # a scale rewrites a use's parameters; one the use left at its default was not passed by it
    text = DEAD.replace("width: int}", "width: {type: int, scale: width}, spare: {type: int, default: 3}}")
    path = write("dead.yaml", text + "scales: {half: {width: 0.5}}\nscale: half\n")
    result = run_cli("validate", path)
    assert result.exit_code == 0
    assert "`stride: 2` passed" in result.stderr and "spare" not in result.stderr
