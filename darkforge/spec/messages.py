"""Pydantic's errors as one located line (`describe(error, data).at(source)`, or `.line(...)`
without positions), the one converter every part uses: the most telling error first, the file's line and
column, the key path users write (`layers[3].filters`), "did you mean" for misspelt keys and types,
and never the (possibly alias-expanded, huge) input itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from darkforge.errors import DarkforgeError, SpecError, did_you_mean
from darkforge.spec import registry
from darkforge.spec.source import SourceMap


class BlockTable(Protocol):
    """What messages need of a file's blocks (spec.blocks.Library; a protocol, so that the
    block code can use this module without an import cycle)."""

    @property
    def blocks(self) -> Mapping[str, Any]: ...  # name -> Block (its `name`, `where`)

    @property
    def models(self) -> Mapping[str, type[BaseModel]]: ...  # name -> the model of its uses


@dataclass(frozen=True)
class Problem:
    """One validation error in users' words: where (a key path), what, and what to do."""

    loc: tuple[Any, ...]
    message: str
    hint: str

    def at(self, source: SourceMap) -> SpecError:
        """As one line at its place in a YAML file."""
        return source.error(self.message, self.hint, self.loc)

    def line(self, kind: type[DarkforgeError], file: str | None, hint: str = "") -> DarkforgeError:
        """For data without positions (args.yaml, a checkpoint's metadata): the file and the key
        path. `hint`, when given, replaces the one the error suggests."""
        return kind(self.message, hint or self.hint, file, path=self.loc)


def describe(
    error: ValidationError,
    data: Any,
    prefix: tuple[Any, ...] = (),
    model: type[BaseModel] | None = None,
    library: BlockTable | None = None,
) -> Problem:
    """Pydantic's most telling error. `include_input=False`: printing the input of an alias-heavy
    document would expand it. `prefix` and `model` locate a section validated on its own (the
    `train:` section is checked by darkforge.training against its Recipe); `library` holds the
    file's own blocks (an error in a block's use also names where the block is defined)."""
    types = [*registry.names(), *(library.models if library else ())]
    details = error.errors(include_input=False, include_url=False)
    # The most telling error first: a misspelt key also shows up as a missing one, and a union
    # such as `bn: bool | {momentum, eps}` reports one error per member.
    detail = min(details, key=lambda d: (_PRIORITY.get(d["type"], 9), -len(d["loc"])))
    loc = prefix + _strip_tags(tuple(detail["loc"]))
    message, hint = detail["msg"], ""
    kind = detail["type"]
    if kind == "union_tag_invalid":
        tag = _lookup(data, (*loc, "type"))
        message = f"unknown layer type {_short(tag)}"
        known = TYPE_NAMES.get(str(tag))  # another framework's name for one of ours
        hint = f"did you mean {known!r}?" if known in types else did_you_mean(str(tag), types)
        loc = (*loc, "type")
    elif kind == "union_tag_not_found":
        message = "layer has no `type`"
        hint = "add `type:` (`darkforge schema --markdown` lists the types)"
    elif kind == "extra_forbidden":
        message, hint = _unknown_key(data, loc, prefix, model, library)
    elif kind == "missing":
        message = f"missing required key {loc[-1]!r}"
        hint = "add it"
    elif kind == "value_error":  # darkforge's own validators say what is wrong in their words
        message = message.removeprefix("Value error, ")
    else:
        message = message.removeprefix("Value error, ")
        # what was written, unless the message quotes it already or it is a whole layer (a
        # model validator's refusal: "got dict" says nothing)
        shown = _has(data, loc) and kind != "exact_number" and not isinstance(_lookup(data, loc), dict)
        message = f"{message}; got {_short(_lookup(data, loc))}" if shown else message
    block = _block_of(data, loc, library)
    if block is not None:  # name both places: the use (located below) and the definition
        message = f"{message} (block {block.name} is defined at {block.where})"
    more = _more(detail, details, prefix) if len(details) > 1 else ""
    if more:
        hint = f"{hint}; {more}" if hint else more
    return Problem(loc, message, hint)


def _unknown_key(
    data: Any, loc: tuple[Any, ...], prefix: tuple[Any, ...], model: Any, library: BlockTable | None
) -> tuple[str, str]:
    if loc[-1] in ("when", "when_removed") and loc[:1] == ("layers",):
        return (
            f"`{loc[-1]}` works only inside a block's layers, where the block's parameters decide",
            "define a block (`blocks:`, docs/architecture.md) holding this layer, or remove the layer",
        )
    allowed = _allowed_keys(data, loc[:-1], prefix, model, library)
    known = KEY_NAMES.get(str(loc[-1]))
    hint = f"did you mean {known!r}?" if known in allowed else did_you_mean(str(loc[-1]), allowed)
    return f"unknown key {loc[-1]!r}", hint


def _more(shown: Any, details: list[Any], prefix: tuple[Any, ...]) -> str:
    """The other errors, briefly, one per key (a union's members all complain about one key):
    as many as fit in a line, then how many more."""
    first = _path(prefix + _strip_tags(tuple(shown["loc"])))
    others: dict[str, str] = {}
    for d in details:
        where = _path(prefix + _strip_tags(tuple(d["loc"])))
        if where != first and where not in others:
            others[where] = d["msg"].removeprefix("Value error, ")[:60]
    if not others:
        return ""  # the rest are the union's other members refusing the same value
    brief: list[str] = []
    used = 0
    for where, what in others.items():
        item = f"{where}: {what}"
        if brief and used + len(item) > 120:
            break
        brief.append(item)
        used += len(item)
    text = "also " + "; ".join(brief)
    if len(others) > len(brief):
        text += f"; and {len(others) - len(brief)} more (fix these and validate again)"
    return text


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the file"


# Other frameworks' names for darkforge's layer types and keys: a hint, never an alias (one name
# per thing in a file).
TYPE_NAMES = {
    "Concat": "Route",
    "Concatenate": "Route",
    "Cat": "Route",
    "Add": "Shortcut",
    "Sum": "Shortcut",
    "Conv2d": "Conv",
    "BatchNorm2d": "BatchNorm",
    "ReLU": "Activation",
    "SiLU": "Activation",
    "MaxPool2d": "MaxPool",
    "AvgPool2d": "AvgPool",
    "AdaptiveAvgPool2d": "AdaptiveAvgPool",
    "Upsampling": "Upsample",
    "Interpolate": "Upsample",
    "Dense": "Linear",
    "FullyConnected": "Linear",
    "Shuffle": "ChannelShuffle",
}
KEY_NAMES = {
    "rate": "p",
    "drop_rate": "p",
    "prob": "p",
    "kernel_size": "size",
    "kernel": "size",
    "out_channels": "filters",
    "channels": "filters",
    "padding": "pad",
    "out_features": "out",
    "scale_factor": "stride",
    "negative_slope": "slope",
    "act": "activation",
}


def _block_of(data: Any, loc: tuple[Any, ...], library: BlockTable | None) -> Any:
    if library is None or len(loc) < 2 or loc[0] != "layers" or not _has(data, (*loc[:2], "type")):
        return None
    return library.blocks.get(str(_lookup(data, (*loc[:2], "type"))))


_PRIORITY = {"extra_forbidden": 0, "union_tag_invalid": 1, "union_tag_not_found": 1, "missing": 2}
_UNION_MEMBERS = {"bool", "int", "float", "str"}


def _strip_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """('layers', 3, 'ConvBnLeaky', 'bn', 'BatchNorm', 'eps') -> ('layers', 3, 'bn', 'eps').

    Pydantic names the union member it tried (a type tag, a model class, `int`, `list[...]`);
    dialect keys are lower case, so anything capitalised or type-like is such a label.
    """
    return tuple(
        part
        for part in loc
        if not (
            isinstance(part, str)
            and (part[:1].isupper() or part in _UNION_MEMBERS or "[" in part or "-" in part)
        )
    )


def _has(data: Any, loc: tuple[Any, ...]) -> bool:
    try:
        _lookup(data, loc)
    except (KeyError, IndexError, TypeError):
        return False
    return True


def _lookup(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        data = data[part]
    return data


def _short(value: Any, limit: int = 60) -> str:
    """A value for an error message, never longer than `limit` (an alias-expanded input can be huge)."""
    text = (
        repr(value) if isinstance(value, str | int | float | bool) or value is None else type(value).__name__
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _allowed_keys(
    data: Any,
    loc: tuple[Any, ...],
    prefix: tuple[Any, ...] = (),
    root: type[BaseModel] | None = None,
    library: BlockTable | None = None,
) -> list[str]:
    model: Any = registry.network_model()
    if root is not None:
        model, loc = root, loc[len(prefix) :]
    elif len(loc) >= 2 and loc[0] == "layers" and isinstance(loc[1], int):
        tag = str(_lookup(data, (*loc[:2], "type"))) if _has(data, (*loc[:2], "type")) else ""
        if library is not None and tag in library.models:
            model = library.models[tag]
        else:
            try:
                model = registry.get(tag).spec
            except SpecError:
                return []
        loc = loc[2:]
    for part in loc:
        field_info = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field_info, "annotation", None)
        model = next(
            (a for a in getattr(annotation, "__args__", (annotation,)) if hasattr(a, "model_fields")),
            None,
        )
        if model is None:
            return []
    return [f.alias or name for name, f in model.model_fields.items()]
