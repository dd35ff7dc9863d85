"""Block, expression and include evaluation is bounded before the work is done (issue 22): each
hostile file ends with one located line, and the work it caused is counted, not timed."""

from __future__ import annotations

import os
import textwrap

import pytest

import darkforge
from darkforge.errors import SpecError
from darkforge.spec import library as library_module
from darkforge.spec.expr import ExprError, evaluate
from darkforge.spec.shapes import plan

HEAD = "name: n\ninput: {channels: 3, size: 8}\n"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("round(1, -1000000000)", "round's digits must be an integer within ±12"),
        ("round(1.5, 10**8)", "round's digits must be an integer within ±12"),
        ("round(7, 1.5)", "round's digits must be an integer"),
        ('"a" * 10**8', "a string longer than 200 characters"),
        ('"ab" * (10**6 * 10**6)', "a string longer than 200 characters"),
        ('("a" * 150) + ("b" * 150)', "a string longer than 200 characters"),
        ('"%0999999999d" % 1', "strings cannot be formatted with %"),
        ('"a" < 1', "cannot compare 'a' with 1"),
        ("10**12 * 10", "powers are limited"),
        ("10**6 * 10**6 * 10", "a value beyond ±1e+12"),
        ("1" + " + 1" * 60, "expression longer than 200 characters"),
        ("1 +* 2", "is not an expression"),
        ("1\x00", "is not an expression"),
        ("max()", "cannot compute max()"),
        ('int("9" * 100)', "a value beyond ±1e+12"),
        ("1 / 0", "cannot compute 1 / 0"),
    ],
)
def test_a_costly_or_broken_expression_is_refused_before_it_runs(text, why):
    with pytest.raises(ExprError) as caught:
        evaluate(text, {"w": 4})
    assert why in str(caught.value)


@pytest.mark.parametrize(
    ("text", "value"),
    [("round(1234, -2)", 1200), ('"ab" * 3', "ababab"), ("2**8", 256), ("(" * 99 + "1" + ")" * 99, 1)],
)
def test_ordinary_expressions_still_compute(text, value):
    assert evaluate(text, {}) == value


def nested(levels: int, uses: int, when: bool = False) -> str:
    cond = ', when: "${in_channels > 0}"' if when else ""
    lines = [HEAD + "blocks:", "  B0:", f"    layers: [{{type: Conv, filters: 4, size: 1{cond}}}]"]
    for k in range(1, levels + 1):
        lines += [f"  B{k}:", "    layers: [" + ", ".join([f"{{type: B{k - 1}{cond}}}"] * uses) + "]"]
    return "\n".join([*lines, "layers:", f"  - {{type: B{levels}}}"]) + "\n"


def test_nested_blocks_are_counted_from_their_definitions_before_any_instance(write, monkeypatch):
    """6 levels of 20 uses in 3 KB: 6.4e7 instances, refused before the first is made."""
    from darkforge.spec.blocks import BlockUse

    text = nested(6, 20)
    assert len(text) < 3000
    spec = darkforge.load_spec(write("n.yaml", text))
    monkeypatch.setattr(BlockUse, "_instantiate", lambda *a: pytest.fail("instantiated"))
    with pytest.raises(SpecError) as caught:
        plan(spec)
    assert str(caught.value).endswith(
        "n.yaml:19:5: layers[0]: the network expands to at least 64,000,000 layers (64,000,000 from "
        "this one), over the limit of 100,000; make the network smaller (see `darkforge validate --max-layers`)"
    )


def test_blocks_hidden_behind_when_are_instantiated_once_per_distinct_use(write):
    """`when` hides the size from the definitions: every use asking the same (block, shapes,
    arguments) shares one instance, so 6.4e7 uses cost 13 instances (each block's first use reads
    3 channels, the others 4), and the size limit refuses it."""
    spec = darkforge.load_spec(write("n.yaml", nested(6, 20, when=True)))
    with pytest.raises(SpecError, match=r"expands to 64,000,000 layers .* over the limit of 100,000"):
        plan(spec)
    assert len(type(spec.layers[0]).library.instances) == 13


def test_distinct_instances_stop_at_the_layer_limit(write):
    """Uses that differ (by their arguments) each need an instance, and `when` hides their number
    from the definitions: the count stops them at the limit (2,000 here), not after all 1,640."""
    from darkforge.spec import budget

    inner = ", ".join(f"{{type: B0, w: '${{v * 40 + {k}}}'}}" for k in range(1, 41))
    outer = ", ".join(f"{{type: B1, v: {v}, when: '${{in_channels > 0}}'}}" for v in range(1, 41))
    text = HEAD + textwrap.dedent(
        f"""\
        blocks:
          B0:
            params: {{w: int}}
            layers: [{{type: Conv, filters: $w, size: 1}}]
          B1:
            params: {{v: int}}
            layers: [{inner}]
          B2:
            layers: [{outer}]
        layers:
          - {{type: B2}}
        """
    )
    spec = darkforge.load_spec(write("n.yaml", text))
    with budget.planning_within(budget.Budget(layers=2000)), pytest.raises(SpecError) as caught:
        plan(spec)
    assert "layers[0]: the network expands to more than 2,000 layers (block B" in str(caught.value)
    assert len(type(spec.layers[0]).library.instances) < 1100


def test_include_amplification_reads_each_file_once(write, tmp_path, monkeypatch):
    """15 files of 50 bytes each including the next twice: 15 reads, not 2**15."""
    for k in range(15):
        write(f"i{k}.yaml", f"include: [i{k + 1}.yaml, ./i{k + 1}.yaml]\n" if k < 14 else "blocks: {}\n")
    reads: list[str] = []
    real = library_module.read_yaml
    monkeypatch.setattr(library_module, "read_yaml", lambda p: (reads.append(str(p)), real(p))[1])
    path = write("n.yaml", HEAD + "include: [i0.yaml]\nlayers:\n  - {type: Conv, filters: 4}\n")
    assert darkforge.load_spec(path).name == "n"
    assert len(reads) == 15


def test_include_depth_and_count_are_bounded(write, run_cli):
    for k in range(22):
        write(f"i{k}.yaml", f"include: [i{k + 1}.yaml, i{k + 1}.yaml]\n" if k < 21 else "blocks: {}\n")
    path = write("n.yaml", HEAD + "include: [i0.yaml]\nlayers:\n  - {type: Conv, filters: 4}\n")
    result = run_cli("validate", path)
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("i15.yaml:1:11: include[0]: includes nest deeper than 16 files")
    for k in range(70):
        write(f"w{k}.yaml", "blocks: {}\n")
    wide = (
        HEAD
        + f"include: [{', '.join(f'w{k}.yaml' for k in range(70))}]\nlayers:\n  - {{type: Conv, filters: 4}}\n"
    )
    result = run_cli("validate", write("w.yaml", wide))
    assert result.exit_code == 1 and "a network may include at most 64 files" in result.stderr


@pytest.mark.parametrize("spelling", ["loop.yaml", "./loop.yaml", "sub/../loop.yaml"])
def test_an_include_cycle_is_refused_however_it_is_spelt(write, tmp_path, run_cli, spelling):
    (tmp_path / "sub").mkdir()
    write("loop.yaml", f"include: [{spelling}]\n")
    path = write("n.yaml", HEAD + "include: [loop.yaml]\nlayers:\n  - {type: Conv, filters: 4}\n")
    result = run_cli("validate", path)
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(
        f"loop.yaml:1:11: include[0]: {spelling} includes itself (n.yaml → loop.yaml → loop.yaml); remove the cycle"
    )


def test_an_include_reads_only_regular_files_and_never_prints_them(write, tmp_path, run_cli):
    secret = "hunter2-secret"
    write("key.txt", f"password: '{secret}\n\tx: *{secret}\n")
    write("cfg.txt", f"{secret}: 1\n{secret}: 2\n")
    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "pipe")
    for name, what in [
        ("key.txt", "invalid YAML"),
        ("cfg.txt", "duplicate key …; keep one"),
        ("/dev/zero", "is not a regular file"),
        ("pipe", "is not a regular file"),
        ("fifo", "is a directory"),
    ]:
        path = write("n.yaml", HEAD + f"include: [{name}]\nlayers:\n  - {{type: Conv, filters: 4}}\n")
        result = run_cli("validate", path)
        assert result.exit_code == 1, result.output
        assert what in result.stderr and secret not in result.output, result.output
        assert len(result.stderr.strip().splitlines()) == 1


def test_repeat_and_negative_repeat_parameters_are_refused(write, run_cli):
    for default in ("1000000000", "-5"):
        text = HEAD + textwrap.dedent(
            f"""\
            blocks:
              B:
                params: {{repeat: {{type: int, default: {default}}}}}
                layers: [{{type: Conv, filters: 4, size: 1}}]
            layers:
              - {{type: B}}
            """
        )
        result = run_cli("validate", write("r.yaml", text))
        assert result.exit_code == 1 and "parameter name 'repeat' is reserved" in result.stderr
    text = HEAD + textwrap.dedent(
        """\
        blocks:
          B:
            params: {n: int}
            layers: [{type: Conv, filters: 4, size: 1, repeat: $n}]
        layers:
          - {type: B, n: 1000000000}
        """
    )
    result = run_cli("validate", write("r.yaml", text))
    assert result.exit_code == 1 and "repeat: Input should be less than or equal to 1000" in result.stderr


def test_the_limit_follows_validate_max_layers(write, run_cli):
    path = write("n.yaml", nested(3, 20))
    assert run_cli("validate", path).exit_code == 0
    result = run_cli("validate", "--max-layers", "1000", path)
    assert result.exit_code == 1 and "at least 8,000 layers" in result.stderr
    assert run_cli("validate", "--no-budget", write("m.yaml", nested(5, 20))).exit_code == 0


def test_layers_left_out_by_when_still_count_as_read(write):
    """Each instance reads all its written layers, kept or not: bounded at twice the limit."""
    from darkforge.spec import budget

    whens = ", ".join(["{type: Conv, filters: 4, size: 1, when: '${in_channels < 0}'}"] * 50)
    uses = ", ".join(f"{{type: B0, w: {w}}}" for w in range(1, 41))
    text = HEAD + textwrap.dedent(
        f"""\
        blocks:
          B0:
            params: {{w: int}}
            layers: [{{type: Conv, filters: $w, size: 1}}, {whens}]
          B1:
            layers: [{uses}]
        layers:
          - {{type: B1}}
        """
    )
    spec = darkforge.load_spec(write("n.yaml", text))
    with budget.planning_within(budget.Budget(layers=500)), pytest.raises(SpecError) as caught:
        plan(spec)
    assert "blocks read more than 1,000 written layers (B0 leaves most out by `when`)" in str(caught.value)
    assert len(type(spec.layers[0]).library.instances) < 40


def test_a_repeated_use_counts_its_repeats_before_any_instance(write, monkeypatch):
    from darkforge.spec.blocks import BlockUse

    rows = ", ".join(["{type: Conv, filters: 4, size: 1}"] * 200)
    text = HEAD + f"blocks:\n  B:\n    layers: [{rows}]\nlayers:\n  - {{type: B, repeat: 1000}}\n"
    spec = darkforge.load_spec(write("n.yaml", text))
    monkeypatch.setattr(BlockUse, "_instantiate", lambda *a: pytest.fail("instantiated"))
    with pytest.raises(SpecError, match="expands to at least 200,000 layers"):
        plan(spec)
