"""`darkforge draw`: the architecture as a picture, from the spec alone (no torch, no forward pass).

`darkforge.views.draw` builds the graphviz graph; rendering happens here, and only here, because it needs
Graphviz's `dot` program: without it `--format dot` still writes the graph's source.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click
import graphviz

from darkforge.cli.app import cli
from darkforge.cli.options import ARCH, FEATURES, INPUT_SIZE, SCALE, arch_or_default, feature_list
from darkforge.errors import DarkforgeError, UsageError
from darkforge.files import replacing
from darkforge.spec import budget
from darkforge.spec.load import load_spec
from darkforge.spec.shapes import plan
from darkforge.views.draw import RANKDIRS
from darkforge.views.draw import draw as draw_graph

FORMATS = ("svg", "png", "pdf", "dot")
SUFFIXES = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
INSTALL = (
    "install Graphviz (Debian/Ubuntu: sudo apt install graphviz; Homebrew: brew install graphviz), "
    "or write the graph's source with --format dot"
)


@cli.command()
@ARCH
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="file to write (- for stdout)  [default: <arch name>.<format> in the current directory]",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="output format  [default: from the -o suffix, else svg]",
)
@click.option(
    "--expand", is_flag=True, help="draw every layer instead of collapsing repeated residual blocks"
)
@click.option(
    "--rankdir",
    type=click.Choice(RANKDIRS),
    default="TB",
    show_default=True,
    help="TB: top to bottom, LR: left to right",
)
@SCALE
@INPUT_SIZE
@FEATURES
def draw(
    arch: str | None,
    output: str | None,
    fmt: str | None,
    expand: bool,
    rankdir: str,
    scale: str | None,
    input_size: int | None,
    features: str | None,
) -> None:
    """Draw the network with Graphviz: stages, residual blocks ×N, shapes on the edges."""
    fmt = fmt or _format_of(output)
    p = plan(load_spec(arch_or_default(arch)).resolved(scale, input_size))
    drawn = budget.check(p, override="see `darkforge validate {flag}`").layers if expand else 0
    if drawn > MAX_EXPANDED:  # Graphviz lays out thousands of nodes for minutes, unreadably
        raise UsageError(
            f"--expand would draw {drawn:,} layers (at most {MAX_EXPANDED:,})", "draw without --expand"
        )
    try:
        graph = draw_graph(p, expand=expand, rankdir=rankdir, taps=feature_list(features))
    except ValueError as e:  # a tap that names no layer
        raise UsageError(f"--features: {e}", "give ids of layers, e.g. c3,c4,c5") from None
    data = _render(graph, fmt)
    if output == "-":
        sys.stdout.buffer.write(data)  # click's get_binary_stream is untyped in click 8.5
        return
    path = Path(output) if output else Path(f"{_file_name(p.spec.name)}.{fmt}")
    _write_atomically(path, data)
    click.echo(f"wrote {path}")


MAX_EXPANDED = 2_000  # layers: dot lays out 1,000 in 3 s but 4,500 in 96 s (measured, SVG)
MAX_STATEMENTS = 4 * MAX_EXPANDED  # lines of dot source: a node and two or three edges per layer


def _format_of(output: str | None) -> str:
    if output is None or output == "-":
        return "svg"
    suffix = Path(output).suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(
            f"cannot tell the format of {output!r} from its suffix",
            f"name it .svg, .png, .pdf or .dot, or give --format {'|'.join(FORMATS)}",
        )
    return SUFFIXES[suffix]


def _file_name(name: str) -> str:
    """The arch's name made safe as a file name ('yolo v3/tiny' -> 'yolo_v3_tiny')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "network"


def _render(graph: graphviz.Digraph, fmt: str) -> bytes:
    source = graph.source
    if fmt == "dot":
        return source.encode()
    statements = source.count("\n")
    if statements > MAX_STATEMENTS:  # nodes, edges and clusters: dot would lay them out for minutes
        raise UsageError(
            f"the drawing has {statements:,} nodes and edges, more than Graphviz lays out in reasonable "
            f"time ({MAX_STATEMENTS:,})",
            "write its source with --format dot, or draw a smaller network",
        )
    try:
        data: bytes = graph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise UsageError(f"cannot render {fmt}: Graphviz's `dot` program is not installed", INSTALL) from None
    except BrokenPipeError:  # dot quit before reading the whole graph (click would exit 1 silently)
        raise DarkforgeError(
            f"Graphviz's `dot` failed to render {fmt}: it stopped reading the graph",
            "write its source with --format dot",
        ) from None
    except graphviz.CalledProcessError as e:
        stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else str(e.stderr or "")
        reason = stderr.strip().splitlines()[0] if stderr.strip() else f"exit status {e.returncode}"
        raise DarkforgeError(f"Graphviz's `dot` failed to render {fmt}: {reason}") from None
    return data


def _write_atomically(path: Path, data: bytes) -> None:
    """A reader never sees half a picture (darkforge.files.replacing)."""
    with replacing(path, UsageError, "choose another -o") as temp:
        temp.write_bytes(data)
