"""The click group every command registers on, and its one-line error handling.

The cli package is the only place that prints. Every DarkforgeError and click usage error ends as
one line on stderr with exit code 1 (bad file) or 2 (bad usage); no traceback reaches the user.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from typing import Any, NoReturn

import click

from darkforge.errors import DarkforgeError

MAX_LINE = 1000  # characters: a message never floods the terminal, whatever the input held


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """`text` on one line (newlines from libraries folded), at most `limit` characters."""
    text = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Library warnings (PIL's decompression-bomb check, torch's UserWarnings) as one line each,
    never the multi-line `file:line: Category: text` plus source that Python prints."""
    click.echo(f"warning: {one_line(str(message), 300)}", err=True)


def _out_of_memory(e: Exception) -> bool:
    text = str(e)
    return (
        type(e).__name__ == "OutOfMemoryError" or "can't allocate memory" in text or "out of memory" in text
    )


def _wrapped(e: BaseException) -> DarkforgeError | None:
    """The DarkforgeError another library's exception was raised from, if any."""
    seen: set[int] = set()
    cause = e.__cause__ or e.__context__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, DarkforgeError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


class DarkforgeGroup(click.Group):
    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        extra.pop("standalone_mode", None)
        shown = warnings.showwarning
        warnings.showwarning = _show_warning
        try:
            return self._main(args, **extra)
        finally:
            warnings.showwarning = shown

    def _main(self, args: Any, **extra: Any) -> Any:
        try:
            return super().main(args, "darkforge", standalone_mode=False, **extra)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.exceptions.NoArgsIsHelpError as e:  # `darkforge` alone: show the help
            click.echo(e.ctx.get_help() if e.ctx else str(e))
            sys.exit(2)
        except click.ClickException as e:
            command = e.ctx.command_path if getattr(e, "ctx", None) else "darkforge"  # type: ignore[attr-defined]
            message = one_line(e.format_message().rstrip("."), 300)
            click.echo(f"error: {message} (see '{command} --help')", err=True)
            sys.exit(e.exit_code)
        except DarkforgeError as e:
            click.echo(f"error: {one_line(str(e))}", err=True)
            sys.exit(e.exit_code)
        except MemoryError:  # past the size limits (darkforge.spec.budget), or a small machine
            self._no_memory()
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(130)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except ValueError as e:
            if "null byte" not in str(e):  # os.* refuses a NUL in a path wherever it is used
                self._internal(e)
            click.echo("error: a path or argument holds a NUL byte; remove it", err=True)
            sys.exit(2)
        except Exception as e:
            if _out_of_memory(e):  # torch's allocator says so in a RuntimeError
                self._no_memory()
            cause = _wrapped(e)
            if cause is not None:  # a library (torchinfo) re-raised our error as its own
                click.echo(f"error: {one_line(str(cause))}", err=True)
                sys.exit(cause.exit_code)
            self._internal(e)

    @staticmethod
    def _no_memory() -> NoReturn:
        click.echo(
            "error: out of memory; the network or its input is too large for this machine "
            "(`darkforge validate` shows its size)",
            err=True,
        )
        sys.exit(1)

    @staticmethod
    def _internal(e: Exception) -> NoReturn:
        """A bug of ours, not bad input: say so, in one line."""
        if os.environ.get("DARKFORGE_DEBUG"):
            traceback.print_exc()
        click.echo(
            f"internal error: {type(e).__name__}: {one_line(str(e), 300)} "
            "(set DARKFORGE_DEBUG=1 for the traceback and please report it)",
            err=True,
        )
        sys.exit(3)


@click.group(cls=DarkforgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="darkforge")
def cli() -> None:
    """Compile a YAML graph of layers into a PyTorch network: validate it, print it, draw it,
    train it."""
