"""`darkforge train`: placeholder until training lands."""

from __future__ import annotations

import click

from darkforge.cli import cli
from darkforge.errors import UsageError


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def train(args: tuple[str, ...]) -> None:
    """Train an architecture on CIFAR-10 (not yet available)."""
    raise UsageError("training is not implemented yet", "see the open training issue")
