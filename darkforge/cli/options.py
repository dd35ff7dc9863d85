"""Options and arguments several commands share."""

from __future__ import annotations

from typing import Any

import click

from darkforge.spec.load import default_arch
from darkforge.spec.registry import load_plugins

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
