"""Hostile architecture files (YAML and Darknet .cfg) for validate, summary, draw and convert."""

from __future__ import annotations

import os
from pathlib import Path

from hostile_table import CASES, HEAD, case, layers, text, yaml_case

# --- architecture files: validate and summary ----------------------------------------------------
ALIAS_BOMB = (
    "a: &a ["
    + ",".join(["x"] * 9)
    + "]\n"
    + "".join(
        f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=False)
    )
)
HOSTILE_YAML: dict[str, str | bytes] = {
    "empty": "",
    "nul-byte": HEAD + "  - {type: Conv, filters: 4}\x00\n",
    "not-utf8": b"name: \xff\xfe\n",
    "huge-int": HEAD + "  - {type: Conv, filters: " + "9" * 5000 + "}\n",
    "huge-int-key": "9" * 5000 + ": 1\n",
    "huge-float": HEAD + "  - {type: Conv, filters: 1e400}\n",
    "alias-bomb": ALIAS_BOMB,
    "alias-bomb-in-field": ALIAS_BOMB + HEAD.replace("name: h", "name: *i"),
    "alias-bomb-as-layer": ALIAS_BOMB + HEAD + "  - *i\n",
    "deep-nesting": "a: " + "[" * 200 + "]" * 200 + "\n",
    "python-tag": "!!python/object/apply:os.system ['true']\n",
    "scalar-document": "42\n",
    "list-document": "- 1\n- 2\n",
    "duplicate-key": HEAD.replace("classes: 2", "classes: 2\nclasses: 3") + "  - {type: Linear}\n",
    "unknown-type": layers("{type: Conv2D, filters: 4}"),
    "no-type": layers("{filters: 4}"),
    "unknown-key": layers("{type: Conv, filters: 4, filtres: 3}"),
    "linear-out-negative": layers("{type: Linear, out: -3}"),
    "linear-out-zero": layers("{type: Linear, out: 0}"),
    "linear-out-1e30": layers("{type: Linear, out: 1e30}"),
    "linear-huge": layers("{type: Linear, out: 1000000}").replace("size: 8", "size: 4096"),
    "upsample-bomb": layers(*["{type: Upsample, stride: 64}"] * 4),
    "route-explosion": layers(
        "{type: Conv, filters: 4, id: a}",
        *[f"{{type: Route, from: [{', '.join(['-1'] * 64)}]}}"] * 12,
        "{type: Linear}",
    ),
    "conv-1e9-params": layers(*["{type: Conv, filters: 65536, size: 31}"] * 2),
    "blocks-explosion": layers(*["{type: ResidualStage, filters: 8, blocks: 1000, stride: 1}"] * 200),
    "reserved-id-keys": layers("{type: Conv, filters: 4, id: keys}"),
    "reserved-id-training": layers("{type: Conv, filters: 4, id: training}"),
    "filters-string": layers("{type: Conv, filters: many}"),
    "filters-list-bomb": ALIAS_BOMB + HEAD + "  - {type: Conv, filters: *i}\n",
    "name-too-long": HEAD.replace("name: h", "name: " + "n" * 100_000) + "  - {type: Linear}\n",
    "id-pattern": layers("{type: Conv, filters: 4, id: 'a b'}"),
    "from-forward": layers("{type: Conv, filters: 4, from: 5}"),
    "from-huge": layers("{type: Conv, filters: 4, from: -" + "9" * 40 + "}"),
    "input-huge": HEAD.replace("size: 8", "size: 100000") + "  - {type: Linear}\n",
    "input-zero-channels": HEAD.replace("channels: 3", "channels: 0") + "  - {type: Linear}\n",
    "classes-huge": HEAD.replace("classes: 2", "classes: 99999999999") + "  - {type: Linear}\n",
    "shrinks-below-1": layers(*["{type: Conv, filters: 4, stride: 2, pad: 0}"] * 6),
    "shortcut-mismatch": layers(
        "{type: Conv, filters: 4}", "{type: Conv, filters: 8}", "{type: Shortcut, from: -2}"
    ),
    "bad-scale": HEAD + "  - {type: Linear}\nscales: {tiny: {width: 0}}\n",
    "bad-recipe": HEAD + "  - {type: Linear}\ntrain: {epochs: -1}\n",
    "recipe-huge-int": HEAD + "  - {type: Linear}\ntrain: {epochs: " + "9" * 5000 + "}\n",
    "tabs": "name:\th\n\tinput: 3\n",
    "residual-past-field-caps": layers(
        "{type: Conv, filters: 40000, size: 1}", "{type: Route, from: [-1, -1]}", "{type: ResidualBlock}"
    ),
    "unknown-type-huge": layers("{type: " + "C" * 100_000 + "}"),
    "unknown-key-huge": layers("{type: Conv, filters: 4, " + "k" * 100_000 + ": 1}"),
    "id-huge": layers("{type: Conv, filters: 4, id: " + "i" * 100_000 + "}"),
    "from-unknown-id-huge": layers("{type: Conv, filters: 4, from: " + "f" * 100_000 + "}"),
    "scale-name-huge": HEAD + "  - {type: Linear}\nscales: {" + "s" * 100_000 + ": {width: 0.5}}\n",
    "layers-not-list": HEAD + "  type: Conv\n",
    "version-2": "version: 2\n" + layers("{type: Linear}"),
}
for _name, _body in HOSTILE_YAML.items():
    yaml_case(_name, _body)
for _name in ("alias-bomb-as-layer", "upsample-bomb", "huge-int", "reserved-id-keys", "linear-huge"):
    yaml_case(_name, HOSTILE_YAML[_name], "summary")


CASES["summary-input-size-bomb"] = lambda root: ["summary", "darknet53", "--input-size", "16384"]
CASES["draw-expand-bomb"] = lambda root: [
    "draw", str(text("s.yaml", layers(*["{type: ResidualStage, filters: 8, blocks: 1000, stride: 1}"] * 10))(root)),
    "--expand", "-o", str(root / "s.dot"),
]  # fmt: skip


CASES["summary-classes-bomb"] = lambda root: ["summary", "darknet53", "--classes", "999999999999"]


@case("validate-fifo")
def _fifo(root: Path) -> list[str]:
    os.mkfifo(root / "arch.yaml")
    return ["validate", str(root / "arch.yaml")]


@case("validate-folder")
def _folder(root: Path) -> list[str]:
    (root / "arch.yaml").mkdir()
    return ["validate", str(root / "arch.yaml")]


@case("validate-dev-zero")
def _dev_zero(root: Path) -> list[str]:
    return ["validate", "/dev/zero"]


@case("validate-missing")
def _missing(root: Path) -> list[str]:
    return ["validate", str(root / "nope.yaml")]


@case("validate-too-big")
def _too_big(root: Path) -> list[str]:
    path = root / "big.yaml"
    with path.open("wb") as handle:
        handle.truncate(64 * 2**20)  # sparse: costs no disk
    return ["validate", str(path)]


# --- Darknet .cfg files --------------------------------------------------------------------------
HOSTILE_CFG: dict[str, str | bytes] = {
    "cfg-huge-int": "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=" + "9" * 5000 + "\n",
    "cfg-nul": "[net]\nwidth=8\nheight=8\x00\n",
    "cfg-empty": "",
    "cfg-no-net": "[convolutional]\nfilters=4\n",
    "cfg-bad-value": "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=abc\nsize=3\n",
    "cfg-negative": "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=-4\nsize=3\n",
    "cfg-route-bad": "[net]\nwidth=8\nheight=8\nchannels=3\n[route]\nlayers=-5\n",
    "cfg-unknown-section": "[net]\nwidth=8\nheight=8\nchannels=3\n[bogus]\n",
}
for _name, _body in HOSTILE_CFG.items():
    _file = text(f"{_name}.cfg", _body)
    CASES[f"validate-{_name}"] = lambda root, f=_file: ["validate", str(f(root))]
    CASES[f"convert-{_name}"] = lambda root, f=_file: ["convert", str(f(root)), "-o", str(root / "out.yaml")]
