"""Recipe settings from the command line: `key=value` words (`lr=0.05 optimizer=adamw
augment.cutout=8`) and a recipe file (`--recipe FILE`: a YAML mapping of recipe keys, or a file
with a `train:` section). Every key is checked against the Recipe before anything runs; a misspelt
one suggests the nearest (`lrr` -> `lr`). Torch-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from darkforge.errors import SpecError, UsageError, did_you_mean
from darkforge.spec.messages import describe
from darkforge.spec.source import read_yaml
from darkforge.training.recipe import Recipe, merge

RECIPE_FILE_SUFFIXES = (".yaml", ".yml")


def recipe_keys(model: type[BaseModel] = Recipe, prefix: str = "") -> list[str]:
    """Every settable key, sections dotted: epochs, ..., augment.cutout, boxes.mosaic."""
    keys = []
    for name, info in model.model_fields.items():
        keys.append(prefix + name)
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            keys += recipe_keys(kind, f"{prefix}{name}.")
    return keys


def is_setting(word: str) -> bool:
    """`key=value` (a path with `=` in it is not: it exists or has a slash before the `=`)."""
    key, eq, _ = word.partition("=")
    return bool(eq) and bool(key) and "/" not in key and not Path(word).exists()


def parse_settings(words: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """`["lr=0.05", "augment.cutout=8"]` -> {"lr": 0.05, "augment": {"cutout": 8}}; values read as
    YAML scalars (numbers, true/false, null, [lists]); unknown keys refused with a suggestion."""
    known = recipe_keys()
    settings: dict[str, Any] = {}
    for word in words:
        key, eq, text = word.partition("=")
        if not eq or not key:
            raise UsageError(f"train: {word[:60]!r} is neither a file nor key=value", "e.g. lr=0.05")
        if key not in known:
            raise UsageError(f"train: unknown recipe key {key[:60]!r}", did_you_mean(key, known))
        try:
            value = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            value = text  # a plain string (`schedule=cosine` reads as one anyway)
        *sections, last = key.split(".")
        nested: dict[str, Any] = {last: value}
        for section in reversed(sections):
            nested = {section: nested}
        settings = merge(settings, nested)
    return settings


def read_recipe_file(path: str) -> dict[str, Any]:
    """A recipe file's settings: a mapping of recipe keys, or the `train:` section of a file that
    has one (an architecture file's recipe reused). Errors at their line in the file."""
    data, source = read_yaml(Path(path))
    prefix: tuple[str, ...]
    if isinstance(data, dict) and "train" in data and isinstance(data["train"], dict):
        data, prefix = data["train"], ("train",)
    else:
        prefix = ()
    if not isinstance(data, dict):
        raise SpecError("a recipe file holds a mapping of recipe keys", "e.g. `lr: 0.05`", path)
    try:
        Recipe.model_validate(data)
    except ValidationError as e:
        whole = {"train": data} if prefix else data
        raise describe(e, whole, prefix, Recipe).at(source) from None
    return data


def is_recipe_file(preset: str) -> bool:
    return preset.endswith(RECIPE_FILE_SUFFIXES) or Path(preset).is_file()
