"""The click group every command registers on, and its one-line error handling.

The cli package is the only place that prints. Every DarkforgeError and click usage error ends as
one line on stderr with exit code 1 (bad file) or 2 (bad usage); no traceback reaches the user.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

from darkforge.errors import DarkforgeError


class DarkforgeGroup(click.Group):
    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        extra.pop("standalone_mode", None)
        try:
            return super().main(args, "darkforge", standalone_mode=False, **extra)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.exceptions.NoArgsIsHelpError as e:  # `darkforge` alone: show the help
            click.echo(e.ctx.get_help() if e.ctx else str(e))
            sys.exit(2)
        except click.ClickException as e:
            command = e.ctx.command_path if getattr(e, "ctx", None) else "darkforge"  # type: ignore[attr-defined]
            message = e.format_message().rstrip(".")
            click.echo(f"error: {message} (see '{command} --help')", err=True)
            sys.exit(e.exit_code)
        except DarkforgeError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(130)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as e:  # a bug of ours, not bad input: say so, in one line
            if os.environ.get("DARKFORGE_DEBUG"):
                traceback.print_exc()
            click.echo(
                f"internal error: {type(e).__name__}: {e} (set DARKFORGE_DEBUG=1 for the traceback "
                "and please report it)",
                err=True,
            )
            sys.exit(3)


@click.group(cls=DarkforgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="darkforge")
def cli() -> None:
    """Compile a YAML graph of layers into a PyTorch network: validate it, print it, draw it,
    train it."""
