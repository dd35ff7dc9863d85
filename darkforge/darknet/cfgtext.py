"""Darknet's cfg syntax: sections of `key=value` options, their typed values, and refusals
that name the file and line.

Darknet (src/parser.c read_cfg and option_list.c, in both Darknets) deletes every space and tab of
a line, skips lines that start with `#` or `;`, and splits `key=value` at the first `=`. Numbers are
read as atoi/atof read them (so `filters=40 #32` is 40); a repeated key counts once, the first time
(option_find walks from the front). A value Darknet would misread (`filters=eight` is 0 there) and
a key it does not know are errors here.
What the sections mean: darkforge/darknet/read.py and darkforge/darknet/sections/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from darkforge.errors import SpecError, did_you_mean
from darkforge.files import read_text

# Darknet activation name -> darkforge's (activations.c get_activation; swish/mish from AlexeyAB's fork).
ACTIVATIONS = {
    "linear": "linear",
    "leaky": "leaky",
    "relu": "relu",
    "logistic": "logistic",
    "ramp": "ramp",
    "tanh": "tanh",
    "elu": "elu",
    "relu6": "relu6",
    "mish": "mish",
    "swish": "silu",
}
# The fork's activations without an exact core equivalent (built by darkforge.darknet.fork).
FORK_ACTIVATIONS = {"loggy", "selu", "gelu", "relie", "plse", "hardtan", "lhtan", "stair", "hard_mish"}
FORK_ACTIVATIONS |= {"normalize_channels", "normalize_channels_softmax", "normalize_channels_softmax_maxval"}
# Activation names Darknet reads as ReLU ("Couldn't find activation function ..., going with ReLU"):
# WongKinYiu's yolov7 cfgs in the fork's cfg/ write `silu`, which the fork's C code does not know.
FALLBACK = {"silu": "write activation=swish for x·sigmoid(x)"}
NET_ALIASES = {"network": "net"}  # the layer sections' aliases: darkforge/darknet/catalog.py
# Keys every Darknet layer accepts (parse_network_cfg), with the only value darkforge can honour.
# A rule that reads one of them honours it ([route] onlyforward); stopbackward is read for every layer.
COMMON_KEYS = {"truth": 0, "onlyforward": 0, "dontsave": 0, "dontload": 0, "numload": 0}
COMMON_KEYS |= {"dontloadscales": 0, "learning_rate": 1, "smooth": 0, "clip": 0, "dont_update": 0}
COMMON_KEYS |= {"burnin_update": 0, "train_only_bn": 0}
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_REQUIRED = object()
_LONG_NUMBER = re.compile(r"(?<![.\d])\d{31,}")  # an integer part, not decimals


@dataclass
class Section:
    """One [section] of a cfg: its options with their lines, and which keys a rule looked at."""

    name: str  # canonical: "convolutional" for [conv] too
    header: str  # as written
    line: int
    file: str
    index: int  # Darknet's layer index; -1 for [net]
    options: dict[str, tuple[str, int]] = field(default_factory=dict)  # key -> (value, line)
    seen: set[str] = field(default_factory=set)
    repeated: list[tuple[str, str, int]] = field(default_factory=list)  # (key, value, line) Darknet skips
    notes: list[str] = field(default_factory=list)  # warnings: what Darknet ignores or cuts

    def error(self, message: str, hint: str = "", key: str | None = None) -> SpecError:
        line = self.options[key][1] if key in self.options else self.line
        where = f"[{self.header}]" + (f" (layer {self.index})" if self.index >= 0 else "")
        return SpecError(
            f"{where}: {key}: {message}" if key else f"{where}: {message}", hint, self.file, line
        )

    def get(self, key: str, kind: str, default: Any = _REQUIRED) -> Any:
        self.seen.add(key)
        if key not in self.options:
            if default is _REQUIRED:
                raise self.error("missing required key", f"add `{key}=`", key)
            return default
        return VALUES[kind](self, key, self.options[key][0])

    def read(self, keys: dict[str, tuple[str, str, Any]]) -> dict[str, Any]:
        """Spec fields from `keys` (cfg key -> (field, kind, Darknet's default))."""
        return {name: self.get(key, kind, default) for key, (name, kind, default) in keys.items()}

    def finish(self, unsupported: dict[str, Any], lenient: bool, warnings: list[str]) -> None:
        """Refuse Darknet keys set to what darkforge cannot do (always), and keys no rule read
        (under `lenient`: dropped, with a warning, since nothing is known about them)."""
        common = {k: v for k, v in COMMON_KEYS.items() if k not in self.seen} if self.index >= 0 else {}
        for key, honoured in (common | unsupported).items():
            if key in self.options:
                self.seen.add(key)
                value = self.options[key][0]
                if honoured is None or _number(value.split("#", 1)[0]) != honoured:
                    raise self.error(  # Darknet reads it and it changes the network: never dropped
                        f"`{key}={value}` has no darkforge equivalent",
                        f"remove it, or set {key}={honoured}" if honoured is not None else "remove it",
                        key,
                    )
        for key in self.options:
            if key not in self.seen:
                hint = did_you_mean(key, self.seen) if self.seen else ""
                self._refuse(f"unknown key {key!r}", key, lenient, warnings, hint)

    def _refuse(self, message: str, key: str, lenient: bool, warnings: list[str], hint: str = "") -> None:
        error = self.error(message, hint or "remove it (or convert with --lenient to ignore it)", key)
        if not lenient:
            raise error
        warnings.append(f"{error.file}:{error.line}: {error.message}: dropped (--lenient)")


def _number(text: str) -> float | None:
    return float(text) if _FLOAT.fullmatch(text) else None


def uncommented(s: Section, key: str, text: str) -> str:
    """A number's text without a trailing `#` comment: atoi/atof stop there, as Darknet reads
    `filters=40#32` (its strip() deletes the spaces first)."""
    head = text.split("#", 1)[0]
    if not head:
        raise s.error(f"no value before the comment in {text!r}", key=key)
    return head


def _text(s: Section, key: str, text: str) -> str:
    if "#" in text:
        raise s.error(
            f"comment after the value {text!r}: Darknet reads the whole text as the name",
            "put the comment on a line of its own",
            key,
        )
    return text


def _int(s: Section, key: str, text: str) -> int:
    """atoi's reading: an integer, or a number with nothing after the point (`32.0` is 32); a
    fraction atoi would cut (`4.5` → 4) is refused rather than read as Darknet would misread it."""
    text = uncommented(s, key, text)
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text) and float(text).is_integer() and "e" not in text.lower():
        return int(float(text))
    raise s.error(f"expected an integer, got {text!r}", key=key)


def _float(s: Section, key: str, text: str) -> float:
    text = uncommented(s, key, text)
    if not _FLOAT.fullmatch(text):
        raise s.error(f"expected a number, got {text!r}", key=key)
    return float(text)


def _flag(s: Section, key: str, text: str) -> bool:
    text = uncommented(s, key, text)
    if text not in ("0", "1"):
        raise s.error(f"expected 0 or 1, got {text!r}", key=key)
    return text == "1"


def _list(item: Callable[[Section, str, str], Any]) -> Callable[[Section, str, str], list[Any]]:
    return lambda s, key, text: [item(s, key, part) for part in uncommented(s, key, text).split(",")]


def _pairs(s: Section, key: str, text: str) -> list[tuple[int | float, int | float]]:
    text = uncommented(s, key, text).rstrip(",")
    values = [int(v) if _INT.fullmatch(v) else _float(s, key, v) for v in text.split(",")]
    if len(values) % 2:  # Darknet reads the numbers in order into zeroed anchors: the last one's partner is 0
        s.notes.append(
            f"{s.file}:{s.options[key][1]}: [{s.header}]: {key}: {len(values)} numbers, an odd count: "
            "Darknet pairs the last one with 0"
        )
        values.append(0)
    return list(zip(values[::2], values[1::2], strict=True))


def _activation(s: Section, key: str, text: str) -> str:
    """Darknet's name: the rule picks a core type where darkforge has the same function."""
    known = [*ACTIVATIONS, *FORK_ACTIVATIONS]
    if text == "revleaky":
        raise s.error("`revleaky` has no exact darkforge equivalent", "use leaky", key)
    if text in FALLBACK:  # names the fork's own cfgs use that get_activation does not know
        s.notes.append(
            f"{s.file}:{s.options[key][1]}: [{s.header}]: {key}: Darknet has no {text!r}: its "
            f"get_activation falls back to ReLU, so the network computes relu ({FALLBACK[text]})"
        )
        return "relu"
    if text not in known:
        raise s.error(f"unknown activation {_text(s, key, text)!r}", did_you_mean(text, known), key)
    return text


def _numeric(s: Section, key: str, text: str) -> int | float:
    head = uncommented(s, key, text)
    return int(head) if _INT.fullmatch(head) else _float(s, key, head)


def _carried(s: Section, key: str, text: str) -> int | float | str:
    """A key kept for the round trip only: a number, or the text as written."""
    head = text.split("#", 1)[0]
    if _INT.fullmatch(head):
        return int(head)
    return float(head) if _FLOAT.fullmatch(head) else text


def _choice(*names: str) -> Callable[[Section, str, str], str]:
    def parse(s: Section, key: str, text: str) -> str:
        text = _text(s, key, text)
        if text not in names:
            raise s.error(f"unknown value {text!r}", did_you_mean(text, names), key)
        return text

    return parse


VALUES: dict[str, Callable[[Section, str, str], Any]] = {
    "int": _int,
    "float": _float,
    "flag": _flag,
    "noflag": lambda s, key, text: not _flag(s, key, text),
    "flagnum": lambda s, key, text: _flag(s, key, text) if text in ("0", "1") else _float(s, key, text),
    "ints": _list(_int),
    "floats": _list(_float),
    "pairs": _pairs,
    "activation": _activation,
    "number": _numeric,
    "carried": _carried,
    "text": _text,
    "policy": _choice("constant", "step", "exp", "poly", "steps", "sigmoid", "random", "sgdr"),
    "cost": _choice("sse", "masked", "smooth", "L1", "seg", "wgan"),
}


def read_cfg(path: str | os.PathLike[str], aliases: Mapping[str, str] = NET_ALIASES) -> list[Section]:
    """Split a cfg into sections the way Darknet's read_cfg does, refusing what it would misread;
    `aliases` maps other headers to canonical names ([conv] -> convolutional)."""
    name = str(path)
    text = read_text(path, "give a .cfg file")
    sections: list[Section] = []
    for number, written in enumerate(text.splitlines(), 1):
        line = "".join(written.split())  # Darknet's strip(): every space and tab goes
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]") or len(line) < 3:
                raise SpecError(
                    f"bad section header {written.strip()!r}", "write e.g. [convolutional]", name, number
                )
            header = line[1:-1]
            index = len(sections) - 1
            canonical = aliases.get(header, NET_ALIASES.get(header, header))
            if (canonical == "net") != (index == -1):
                where = "the first section must be [net]" if index == -1 else "[net] must come first, once"
                raise SpecError(where, "Darknet reads the input size from it", name, number)
            sections.append(Section(canonical, header, number, name, index))
            continue
        key, eq, value = line.partition("=")
        if not sections:
            raise SpecError(f"{key!r} comes before any [section]", "start with [net]", name, number)
        section = sections[-1]
        if not eq or not key or not value:
            raise SpecError(
                f"[{section.header}]: expected key=value, got {written.strip()!r}", "", name, number
            )
        if _LONG_NUMBER.search(value):  # Darknet's atoi would overflow; Python's int() refuses 4,300 digits
            raise SpecError(
                f"[{section.header}]: {key}: a number of more than 30 digits",
                "no Darknet value needs one",
                name,
                number,
            )
        if key in section.options:  # option_find walks the list from the front: the first one counts
            section.repeated.append((key, value, number))
            continue
        section.options[key] = (value, number)
    if not sections:
        raise SpecError("no sections", "a .cfg starts with [net]", name, 1)
    return sections
