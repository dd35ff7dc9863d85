"""Options and arguments several commands share."""

from __future__ import annotations

import click

from darkforge.spec.load import default_arch

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
