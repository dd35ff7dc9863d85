"""Options and arguments several commands share."""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

import click
from pydantic.fields import FieldInfo

from darkforge.spec.load import default_arch
from darkforge.spec.registry import load_plugins
from darkforge.training.recipe import flags

# No ARCH: ./archs/darknet53.yaml when it exists, else the shipped darknet53 (the mission's usage
# line, `darkforge summary`, works as written); the command says which file it used.
ARCH = click.argument("arch", required=False, type=click.Path(dir_okay=True))
SCALE = click.option("--scale", help="a scale from the file's `scales:` section, e.g. tiny")
INPUT_SIZE = click.option(
    "--input-size", type=click.IntRange(1, 16384), help="square input size (overrides the file)"
)


def arch_or_default(arch: str | None) -> str:
    """ARCH as given, or the default architecture, announced on stderr."""
    if arch is not None:
        return arch
    path = default_arch()
    click.echo(f"no ARCH given: using {path}", err=True)
    return str(path)


def _load_plugins(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    load_plugins([name for item in value for name in item.replace(",", " ").split()])


# Added to every command by darkforge.cli: loads the plugin modules before anything is read.
PLUGIN = click.Option(
    ["--plugin"],
    multiple=True,
    envvar="DARKFORGE_PLUGINS",
    is_eager=True,
    expose_value=False,
    callback=_load_plugins,
    metavar="MODULE",
    help="import MODULE's layer types first (repeatable; env DARKFORGE_PLUGINS; installed plugins load "
    "by themselves)",
)


def with_plugins(command: Any) -> None:
    # last in the help: a command leads with its own options; is_eager still loads plugins first
    command.params.append(PLUGIN)


# Layer ids a feature extractor returns (darkforge.build(..., features=...)): marked in the view.
FEATURES = click.option(
    "--features",
    metavar="ID,ID",
    help="mark these layers as feature taps, e.g. c3,c4,c5 (as build(..., features=...) returns them)",
)


def feature_list(text: str | None) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()] if text else []


def recipe_options(command: Any) -> Any:
    """One option per Recipe field marked as a flag (darkforge.training.recipe.flag): its name,
    type, limits, help and default come from the field, so a training option is one field."""
    for name, info in reversed(list(flags().items())):
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        flag = str(extra.get("flag") or "--" + name.replace("_", "-"))
        shown = f" [recipe: {info.default}]" if info.default is not None else ""
        text = f"{extra.get('help') or info.description or ''}{shown}".strip()
        options: dict[str, Any] = {"help": text, "default": None}
        if info.annotation is bool:
            decls = [f"{flag}/--no-{flag[2:]}", name]
        else:
            decls = [flag, name]
            options |= {"type": _click_type(info), "metavar": extra.get("metavar") or None}
        command = click.option(*decls, **options)(command)
    return command


def _click_type(info: FieldInfo) -> Any:
    """click's type for a recipe field: a Literal's choices, a number's range (pydantic checks
    the rest, with the same limits); anything else (freeze's N|ID|ID,ID) as text."""
    if get_origin(info.annotation) is Literal:
        return click.Choice([str(a) for a in get_args(info.annotation)])
    if info.annotation not in (int, float):
        return str
    low = high = None
    low_open = high_open = False
    for rule in info.metadata:
        low, low_open = (rule.ge, False) if hasattr(rule, "ge") else (low, low_open)
        low, low_open = (rule.gt, True) if hasattr(rule, "gt") else (low, low_open)
        high, high_open = (rule.le, False) if hasattr(rule, "le") else (high, high_open)
        high, high_open = (rule.lt, True) if hasattr(rule, "lt") else (high, high_open)
    kind = click.IntRange if info.annotation is int else click.FloatRange
    return kind(low, high, min_open=low_open, max_open=high_open)
