"""Hostile blocks, expressions, includes and plugins (issue 22), for tests/cli/test_hostile.py:
every case ends with one line, exit 1 or 2, no traceback, and no code of the file runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hostile_table import CASES, HEAD, TINY, case, yaml_case

TAIL = "layers:\n  - {type: B}\n  - {type: GlobalAvgPool}\n  - {type: Linear}\n"


def block(
    params: str = "{}", layers: str = "[{type: Conv, filters: 4, size: 1}]", use: str = "{type: B}"
) -> str:
    return HEAD.replace("layers:\n", "") + (
        f"blocks:\n  B:\n    params: {params}\n    layers: {layers}\nlayers:\n  - {use}\n  - {{type: GlobalAvgPool}}\n"
        "  - {type: Linear}\n"
    )


def expr(text: str) -> str:
    """A block whose one layer's filters are the expression `text` (quoted for YAML)."""
    quoted = text.replace("'", "''")
    return block("{w: {type: int, default: 4}}", f"[{{type: Conv, filters: '${{{quoted}}}', size: 1}}]")


def nested(levels: int, uses: int, when: str = "") -> str:
    extra = f", when: '{when}'" if when else ""
    text = HEAD.replace("layers:\n", "") + "blocks:\n  B0:\n    layers: [{type: Conv, filters: 4, size: 1}]\n"
    for k in range(1, levels + 1):
        text += f"  B{k}:\n    layers: [" + ", ".join([f"{{type: B{k - 1}{extra}}}"] * uses) + "]\n"
    return text + f"layers:\n  - {{type: B{levels}}}\n"


BLOCKS: dict[str, str] = {
    **{
        f"block-param-{name.strip('_') or 'dunder'}": block(f"{{{name}: {{type: {kind}, default: {value}}}}}")
        for name, kind, value in [
            ("module", "str", "'os:system'"),
            ("type", "str", "Conv"),
            ("arity", "int", "3"),
            ("block", "str", "x"),
            ("library", "str", "x"),
            ("infer", "int", "1"),
            ("sources", "int", "1"),
            ("model_config", "str", "x"),
            ("__class__", "str", "x"),
            ("_cache", "int", "1"),
            ("repeat", "int", "1000000000"),
            ("from", "int", "-1"),
            ("in_channels", "int", "3"),
        ]
    },
    "block-param-repeat-negative": block("{repeat: {type: int, default: -5}}"),
    "block-param-min-nan": block("{w: {type: int, default: 4, min: .nan}}"),
    "block-param-max-inf": block("{w: {type: float, default: 4, max: .inf}}"),
    "block-param-choices-empty": block("{w: {type: int, default: 4, choices: []}}"),
    "block-param-min-past-int64": block("{w: {type: int, default: 4, min: -9223372036854775809}}"),
    "block-param-max-1e300": block("{w: {type: float, default: 4, max: 1.0e+300}}"),
    "block-param-min-a-string": block("{w: {type: int, default: 4, min: lots}}"),
    "block-param-choices-mixed": block("{w: {type: int, default: 4, choices: [4, four]}}"),
    "block-param-min-above-max": block("{w: {type: int, default: 4, min: 9, max: 1}}"),
    "block-param-type-unknown": block("{w: {type: tensor}}"),
    "block-repeat-expression-1e9": block(
        "{n: {type: int, default: 1000000000}}", "[{type: Conv, filters: 4, repeat: $n}]"
    ),
    "block-uses-itself": block(layers="[{type: B}]"),
    "block-name-lowercase": HEAD.replace("layers:\n", "")
    + "blocks:\n  b:\n    layers: [{type: Linear}]\n"
    + TAIL,
    "block-name-of-a-type": HEAD.replace("layers:\n", "")
    + "blocks:\n  Conv:\n    layers: [{type: Linear}]\n"
    + TAIL,
    "block-layers-not-dicts": block(layers="[Conv, 3]"),
    "block-when-not-bool": block(layers="[{type: Conv, filters: 4, when: '${1}'}]"),
    "block-all-when-false": block(layers="[{type: Conv, filters: 4, when: '${in_channels < 0}'}]"),
    "block-from-leaves": block(layers="[{type: Conv, filters: 4, from: -5}]"),
    "block-output-missing": block(layers="[{type: Conv, filters: 4}]").replace(
        "    layers:", "    output: nowhere\n    layers:"
    ),
    "block-17-inputs": block().replace(
        "    layers:", "    inputs: [" + ", ".join(f"i{k}" for k in range(17)) + "]\n    layers:"
    ),
    "block-nested-6x20": nested(6, 20),
    "block-nested-6x20-when": nested(6, 20, "${in_channels > 0}"),
    "block-nested-17-deep": nested(17, 1, "${in_channels > 0}"),
    "block-when-read-bomb": HEAD.replace("layers:\n", "")
    + "blocks:\n  B0:\n    params: {w: int}\n    layers: [{type: Conv, filters: $w, size: 1}, "
    + ", ".join(["{type: Conv, filters: 4, size: 1, when: '${in_channels < 0}'}"] * 1000)
    + "]\n  B1:\n    params: {v: int}\n    layers: ["
    + ", ".join(f"{{type: B0, w: '${{v * 40 + {k}}}'}}" for k in range(1, 41))
    + "]\n  B2:\n    layers: ["
    + ", ".join(f"{{type: B1, v: {v}, when: '${{in_channels > 0}}'}}" for v in range(1, 41))
    + "]\nlayers:\n  - {type: B2}\n",
    "expr-round-huge": expr("round(1, -1000000000)"),
    "expr-string-times-1e12": expr('"a" * 10**12'),
    "expr-string-times-product": expr('"a" * (10**6 * 10**6)'),
    "expr-string-format": expr('"%0999999999d" % 1'),
    "expr-string-less-than-int": expr('"a" < 1'),
    "expr-power-tower": expr("w ** w ** w"),
    "expr-product-beyond": expr("10**6 * 10**6 * 10**6"),
    "expr-too-long": expr("1" + " + 1" * 100),
    "expr-nul": block("{w: int}", '[{type: Conv, filters: "${1\\0}", size: 1}]', "{type: B, w: 4}"),
    "expr-import": expr("__import__('os').system('true')"),
    "expr-attribute": expr("w.__class__"),
    "expr-lambda": expr("(lambda: 1)()"),
    "expr-list-bomb": expr("[1] * 10**9"),
    "expr-dict": expr("{}"),
    "expr-unknown-name": expr("width"),
    "expr-divide-by-zero": expr("in_channels / 0"),
    "expr-float-filters": expr("w / 3"),
    "expr-syntax": expr("1 +* 2"),
}
for _name, _body in BLOCKS.items():
    yaml_case(_name, _body)
for _name in ("block-param-module", "block-nested-6x20", "expr-round-huge"):
    yaml_case(_name, BLOCKS[_name], "summary")


def include_case(name: str, files: dict[str, str | bytes], include: str) -> None:
    def make(root: Path) -> list[str]:
        for file, body in files.items():
            (root / file).write_bytes(body if isinstance(body, bytes) else body.encode())
        network = root / "net.yaml"
        network.write_text(TINY.replace("classes: 2\n", f"classes: 2\ninclude: {include}\n"))
        return ["validate", str(network)]

    CASES[f"validate-include-{name}"] = make


CHAIN = {f"i{k}.yaml": f"include: [i{k + 1}.yaml, i{k + 1}.yaml]\n" for k in range(21)} | {
    "i21.yaml": "blocks: {}\n"
}
include_case("amplification-22x2", CHAIN, "[i0.yaml]")
include_case("itself", {"a.yaml": "include: [a.yaml]\n"}, "[a.yaml]")
include_case(
    "cycle-spelt-differently",
    {"a.yaml": "include: [./b.yaml]\n", "b.yaml": "include: [x/../a.yaml]\n"},
    "[a.yaml]",
)
include_case("dev-zero", {}, "[/dev/zero]")
include_case("etc-passwd", {}, "[/etc/passwd]")
include_case("missing", {}, "[nope.yaml]")
include_case("nul-in-path", {}, '["a\\0b.yaml"]')
include_case("path-5000-long", {}, "[" + "a" * 5000 + "]")
include_case("a-network", {"n.yaml": TINY}, "[n.yaml]")
include_case("not-a-list", {}, "lib.yaml")
include_case("ints", {}, "[1, 2]")
include_case(
    "70-files",
    {f"w{k}.yaml": "blocks: {}\n" for k in range(70)},
    "[" + ", ".join(f"w{k}.yaml" for k in range(70)) + "]",
)
include_case("secret-in-yaml-error", {"key.txt": "password: 'hunter2\n\tx: *hunter2\n"}, "[key.txt]")
include_case("not-utf8", {"bin.yaml": b"blocks: \xff\xfe\n"}, "[bin.yaml]")
include_case("nul-byte", {"nul.yaml": b"blocks: {}\x00\n"}, "[nul.yaml]")
include_case(
    "defines-twice",
    {
        "a.yaml": "blocks: {B: {layers: [{type: Linear}]}}\n",
        "b.yaml": "blocks: {B: {layers: [{type: Linear}]}}\n",
    },
    "[a.yaml, b.yaml]",
)


@case("validate-include-fifo")
def _include_fifo(root: Path) -> list[str]:
    os.mkfifo(root / "lib.yaml")
    include_case("fifo-inner", {}, "[lib.yaml]")
    return CASES.pop("validate-include-fifo-inner")(root)


@case("validate-include-folder")
def _include_folder(root: Path) -> list[str]:
    (root / "lib.yaml").mkdir()
    include_case("folder-inner", {}, "[lib.yaml]")
    return CASES.pop("validate-include-folder-inner")(root)


# --- plugins: a YAML's `plugins:` never imports; --plugin imports and a broken one is named ------
yaml_case("plugins-names-a-module", TINY.replace("classes: 2\n", "classes: 2\nplugins: [os, subprocess]\n"))
yaml_case("plugins-not-a-list", TINY.replace("classes: 2\n", "classes: 2\nplugins: os\n"))


def plugin_case(name: str, body: str, kind: str = "") -> None:
    def make(root: Path) -> list[str]:
        module = f"hostile_plugin_{name.replace('-', '_')}"
        (root / f"{module}.py").write_text(body)
        sys.path.insert(0, str(root))  # the worker imports it as --plugin would from the user's path
        arch = root / "a.yaml"
        arch.write_text(TINY.replace("layers:\n", f"layers:\n  - {{type: {kind}}}\n") if kind else TINY)
        return ["summary", "--runtime", "--plugin", module, str(arch)]

    CASES[f"summary-plugin-{name}"] = make


PLUGIN = """from typing import Literal
import darkforge
from darkforge import LayerCost, LayerSpec
from torch import nn
class {kind}Spec(LayerSpec):
    type: Literal["{kind}"] = "{kind}"
    def infer(self, inputs):
        c, h, w = inputs[0].shape
        return {rule}
@darkforge.register({kind}Spec)
class {kind}(nn.Module):
    def __init__(self, spec, inputs):
        super().__init__()
        {init}
    def forward(self, x):
        return {forward}
"""


def plugin(kind: str, rule: str = "LayerCost((c, h, w))", init: str = "pass", forward: str = "x") -> str:
    return PLUGIN.format(kind=kind, rule=rule, init=init, forward=forward)


plugin_case("exits", "import sys\nsys.exit(7)\n")
plugin_case("raises-at-import", "raise RuntimeError('broken plugin')\n")
plugin_case("missing", "import darkforge_no_such_module\n")
plugin_case("rule-garbage", plugin("HostileGarbage", rule="[c, h, w]"), "HostileGarbage")
plugin_case("rule-raises", plugin("HostileRaises", rule="{}['oops']"), "HostileRaises")
plugin_case("rule-negative", plugin("HostileNegative", rule="LayerCost((-c, h, w))"), "HostileNegative")
plugin_case(
    "rule-negative-params", plugin("HostileParams", rule="LayerCost((c, h, w), params=-1)"), "HostileParams"
)
plugin_case("rule-float-shape", plugin("HostileFloat", rule="LayerCost((c / 2, h, w))"), "HostileFloat")
plugin_case("rule-none", plugin("HostileNone", rule="None"), "HostileNone")
plugin_case("init-raises", plugin("HostileInit", init="raise KeyError('init')"), "HostileInit")
plugin_case("forward-disagrees", plugin("HostileForward", forward="x[:, :1]"), "HostileForward")
plugin_case("forward-raises", plugin("HostileCrash", forward="x.no_such_method()"), "HostileCrash")
plugin_case("forward-returns-none", plugin("HostileForwardNone", forward="None"), "HostileForwardNone")
plugin_case("rule-exits", plugin("HostileRuleExit", rule="__import__('sys').exit(7)"), "HostileRuleExit")
plugin_case("init-exits", plugin("HostileInitExit", init="__import__('sys').exit(7)"), "HostileInitExit")
plugin_case(
    "forward-exits", plugin("HostileForwardExit", forward="__import__('sys').exit(7)"), "HostileForwardExit"
)
