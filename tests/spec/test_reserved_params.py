"""Block parameters named like darkforge's or pydantic's internals are refused by name, with the
line of the parameter: a parameter is an attribute of the use's model, so `module`, `type`,
`infer`, `model_config`... would replace what darkforge reads there (issue 22: `module` chose the
class `build` imported)."""

from __future__ import annotations

import textwrap

import pytest

import darkforge
from darkforge.spec.library import internal_name

INTERNALS = [
    "module",
    "type",
    "arity",
    "block",
    "library",
    "infer",
    "sources",
    "model_config",
    "model_fields",
    "model_anything",
    "__class__",
    "__init__",
    "_scale",
    "_cache",
    "repeat",
    "id",
    "from",
    "from_",
    "in_channels",
    "expand",
    "scaled",
    "composition",
    "instance",
    "arguments",
    "copy",
    "validate",
    "json",
]


def block_file(pname: str) -> str:
    return textwrap.dedent(
        f"""\
        name: t
        input: {{channels: 3, size: 8}}
        blocks:
          B:
            params: {{{pname}: {{type: str, default: x}}, width: int}}
            layers:
              - {{type: Conv, filters: $width, size: 1}}
        layers:
          - {{type: B, width: 4}}
        """
    )


@pytest.mark.parametrize("pname", INTERNALS)
def test_an_internal_name_is_refused_at_its_line(run_cli, write, pname):
    path = write("t.yaml", block_file(pname))
    result = run_cli("validate", path)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"error: {path}:5:14: blocks.B.params.{pname}: parameter name {pname!r} is reserved "
        "(darkforge uses it internally); rename the parameter (e.g. add a suffix) and its $references"
    ]


@pytest.mark.parametrize(
    "pname", ["width", "out", "stride", "t", "k", "n", "filters", "classes", "act", "exp"]
)
def test_ordinary_names_stay_usable(pname):
    assert not internal_name(pname)


def test_every_attribute_of_a_use_model_is_internal(write):
    """What the rule must cover, read from a real use model rather than listed by hand."""
    spec = darkforge.load_spec(write("t.yaml", block_file("width2")))
    use = type(spec.layers[0])
    names = set(dir(use)) | set(vars(use)) | set(use.model_fields)
    assert "block" in names and "infer" in names and "model_config" in names
    assert [n for n in sorted(names - {"width", "width2"}) if not internal_name(n)] == []
