"""Bad input: every malformed file ends with one clear line, exit 1 (bad file) or 2 (bad usage)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from conftest import ARCHS

GOOD = "name: t\ninput: {size: 8}\nclasses: 3\nlayers:\n  - {type: ConvBnLeaky, filters: 4}\n"


def arch(*layer_lines: str, top: str = "name: t\ninput: {size: 8}\nclasses: 3\n") -> str:
    return top + "layers:\n" + "".join(f"  - {line}\n" for line in layer_lines)


BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=False)
    )
    + "name: t\n"
)

# (case id, file content, words the one-line message must contain)
BAD_FILES = [
    ("syntax", "name: t\ninput: {size: 8\nlayers: []\n", ["t.yaml:3:", "invalid YAML"]),
    ("tab", "name: t\n\tinput: {size: 8}\n", ["t.yaml:2:", "tab"]),
    ("empty", "", ["t.yaml:1", "empty"]),
    ("comments only", "# nothing\n", ["empty"]),
    ("a list", "- 1\n- 2\n", ["expected a mapping"]),
    ("a scalar", "hello\n", ["expected a mapping"]),
    (
        "python tag",
        "name: !!python/object/apply:os.system ['echo pwned']\n",
        ["t.yaml:1:", "python/object"],
    ),
    ("python name tag", "name: !!python/name:os.system\n", ["python/name"]),
    ("alias bomb", BOMB, ["alias bomb"]),
    ("deep nesting", "a: " + "[" * 200 + "]" * 200 + "\n", ["nesting deeper"]),
    ("recursive alias", "a: &a [*a]\nname: t\n", ["alias"]),
    ("duplicate key", "name: t\nname: u\n", ["t.yaml:2:1", "duplicate key 'name'"]),
    (
        "missing name",
        "input: {size: 8}\nlayers:\n  - {type: Flatten}\n",
        ["missing required key 'name'"],
    ),
    ("missing layers", "name: t\ninput: {size: 8}\n", ["'layers'"]),
    ("no layers", "name: t\ninput: {size: 8}\nlayers: []\n", ["t.yaml:3:", "layers"]),
    (
        "unknown top key",
        GOOD + "clases: 3\n",
        ["t.yaml:6:1", "unknown key 'clases'", "did you mean 'classes'"],
    ),
    (
        "unknown type",
        arch("{type: ConvBnLeakyy, filters: 4}"),
        ["t.yaml:5:6", "layers[0].type", "did you mean 'ConvBnLeaky'"],
    ),
    ("lowercase type", arch("{type: convbnleaky, filters: 4}"), ["did you mean 'ConvBnLeaky'"]),
    ("no type", arch("{filters: 4}"), ["layers[0]", "no `type`"]),
    (
        "misspelt key",
        arch("{type: ConvBnLeaky, filtres: 4}"),
        ["t.yaml:5:", "layers[0]", "filtres", "did you mean 'filters'"],
    ),
    (
        "zero filters",
        arch("{type: ConvBnLeaky, filters: 0}"),
        ["t.yaml:5:", "layers[0].filters", "greater than or equal to 1"],
    ),
    ("negative filters", arch("{type: ConvBnLeaky, filters: -32}"), ["layers[0].filters", "-32"]),
    ("string filters", arch("{type: ConvBnLeaky, filters: many}"), ["layers[0].filters", "many"]),
    ("float filters", arch("{type: ConvBnLeaky, filters: 3.5}"), ["layers[0].filters"]),
    (
        "bad activation",
        arch("{type: Conv, filters: 4, activation: swishy}"),
        ["layers[0].activation", "swishy"],
    ),
    (
        "zero channels",
        "name: t\ninput: {channels: 0, size: 8}\nlayers:\n  - {type: Flatten}\n",
        ["input.channels"],
    ),
    (
        "size and height",
        "name: t\ninput: {size: 8, height: 4, width: 4}\nlayers:\n  - {type: Flatten}\n",
        ["input", "not both"],
    ),
    ("no size", "name: t\ninput: {channels: 3}\nlayers:\n  - {type: Flatten}\n", ["input", "size"]),
    ("bad id", arch("{type: Flatten, id: 3x}"), ["layers[0].id", "3x"]),
    (
        "bad reference",
        arch("{type: ConvBnLeaky, filters: 4}", "{type: Route, from: [c9]}"),
        ["t.yaml:6:", "no layer has id 'c9'"],
    ),
    (
        "forward reference",
        arch("{type: Route, from: [1]}", "{type: Flatten}"),
        ["t.yaml:5:", "layers[0]", "layers[1]"],
    ),
    (
        "shape mismatch",
        arch(
            "{type: ConvBnLeaky, filters: 4}",
            "{type: ConvBnLeaky, filters: 8}",
            "{type: Shortcut, from: -2}",
        ),
        ["t.yaml:7:", "layers[2]", "layers[0]", "layers[1]", "shapes differ"],
    ),
    ("below 1x1", arch(*["{type: MaxPool, size: 2}"] * 4), ["t.yaml:8:", "below 1×1", "layers[2]"]),
    (
        "route spatial",
        arch("{type: ConvBnLeaky, filters: 4, stride: 2}", "{type: Route, from: [-1, input]}"),
        ["spatial sizes differ"],
    ),
    (
        "shortcut without from",
        arch("{type: ConvBnLeaky, filters: 4}", "{type: Shortcut}"),
        ["layers[1]", "from"],
    ),
    ("bad version", "version: 9\n" + GOOD, ["version"]),
    ("unknown output", GOOD + "outputs: [zzz]\n", ["t.yaml:6:", "outputs[0]", "zzz"]),
    ("bad scale value", GOOD + "scales: {tiny: {width: 0}}\n", ["scales.tiny.width"]),
    (
        "bn typo",
        arch("{type: ConvBnLeaky, filters: 4, bn: {momentom: 0.1}}"),
        ["layers[0].bn", "momentom", "did you mean 'momentum'"],
    ),
]


@pytest.mark.parametrize("content, words", [pytest.param(c, w, id=i) for i, c, w in BAD_FILES])
def test_bad_file_gives_one_clear_line(run_cli, write, content, words):
    path = write("t.yaml", content)
    start = time.process_time()
    result = run_cli("validate", path)
    # bombs fail fast: a hang guard in CPU time, generous (a loaded machine does not stretch it)
    assert time.process_time() - start < 30
    assert result.exit_code == 1, result.output
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in result.output
    assert message.startswith(f"error: {path}")
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda tmp: tmp / "missing.yaml", ["no such file"]),
        (lambda tmp: tmp, ["is a directory"]),
        (
            lambda tmp: (tmp / "bin.yaml").write_bytes(b"name: t\n\xff\xfe\n") and tmp / "bin.yaml",
            ["bin.yaml:2", "not UTF-8"],
        ),
        (
            lambda tmp: (tmp / "huge.yaml").write_text("# x\n" * 2_000_000) and tmp / "huge.yaml",
            ["larger than"],
        ),
    ],
    ids=["missing file", "directory", "non-UTF-8", "huge"],
)
def test_unreadable_files(run_cli, tmp_path, make, words):
    path = make(tmp_path)
    result = run_cli("summary", path)
    assert result.exit_code == 1
    assert "Traceback" not in result.output and result.stderr.count("\n") == 1
    for word in words:
        assert word in result.stderr


@pytest.mark.parametrize(
    "args, words",
    [
        (
            ["summary", ARCHS / "darknet53.yaml", "--scale", "huge"],
            ["no scale 'huge'", "tiny, nano"],
        ),
        (["summary", ARCHS / "darknet53.yaml", "--input-size", "0"], ["--input-size"]),
        (["summary", ARCHS / "darknet53.yaml", "--style", "fancy"], ["--style", "fancy"]),
        (
            ["summary", ARCHS / "darknet53.yaml", "--nope"],
            ["No such option", "--nope", "darkforge summary --help"],
        ),
        (["frobnicate"], ["No such command"]),
    ],
)
def test_bad_usage_exits_2(run_cli, args, words):
    result = run_cli(*args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    for word in words:
        assert word in result.stderr


def test_the_tag_never_runs(run_cli, write, tmp_path):
    marker = tmp_path / "pwned"
    path = write("t.yaml", f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    assert run_cli("validate", path).exit_code == 1
    assert not marker.exists()


def test_validate_does_not_import_torch():
    code = (
        "import sys, runpy; sys.argv = ['darkforge', 'validate', {!r}]\n"
        "try:\n    runpy.run_module('darkforge', run_name='__main__')\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    ).format(str(ARCHS / "darknet53.yaml"))
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)
