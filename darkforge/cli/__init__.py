"""The `darkforge` command: a click group (cli/app.py) whose subcommands live in one module each."""

from darkforge.cli import benchmark, darknet, draw, export, inspect, train, zoo
from darkforge.cli.app import cli
from darkforge.cli.options import with_plugins

# the modules above register their subcommands on `cli` when imported
COMMANDS = (benchmark, darknet, draw, export, inspect, train, zoo)
for _command in cli.commands.values():
    with_plugins(_command)  # `--plugin MODULE` on every command


def main() -> None:
    cli()


__all__ = ["COMMANDS", "cli", "main"]
