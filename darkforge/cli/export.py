"""`darkforge export`: a checkpoint as ONNX, a torch.export program, Darknet .weights or safetensors."""

from __future__ import annotations

from pathlib import Path

import click

from darkforge.cli.app import cli
from darkforge.errors import DataError, UsageError
from darkforge.export import SUFFIXES as FORMATS
from darkforge.export import TOLERANCE

SUFFIXES = {suffix: name for name, suffix in FORMATS.items()}


def _format_of(fmt: str | None, output: str | None) -> str:
    if fmt is not None:
        return fmt
    if output is not None and Path(output).suffix.lower() in SUFFIXES:
        return SUFFIXES[Path(output).suffix.lower()]
    raise UsageError(
        "which format?", f"give --format {'|'.join(FORMATS)} (or an -o named {', '.join(SUFFIXES)})"
    )


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


@cli.command()
@click.argument("ckpt", type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    help="what to write; default: from -o's suffix",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="default: beside CKPT, same stem, the format's suffix",
)
@click.option(
    "--input-size",
    type=click.IntRange(1, 16384),
    help="square input size of onnx/pt2 (default: the checkpoint's)",
)
@click.option("--batch", type=click.IntRange(1), help="fixed batch size of onnx/pt2  [default: 1]")
@click.option("--dynamic-batch", is_flag=True, help="onnx/pt2 accept any batch size")
@click.option(
    "--verify", is_flag=True, help=f"run the file on random inputs; fail if it differs by > {TOLERANCE:g}"
)
def export(
    ckpt: str,
    fmt: str | None,
    output: str | None,
    input_size: int | None,
    batch: int | None,
    dynamic_batch: bool,
    verify: bool,
) -> None:
    """Export checkpoint CKPT (a .pt, .safetensors or run directory) for another runtime: onnx
    (onnxruntime, Netron, TensorRT), pt2 (torch.export), weights (Darknet, with its .cfg) or
    safetensors (the weights plus what rebuilds the network)."""
    from darkforge.export import run as exporting  # torch: imported on use, so --help stays fast

    fmt = _format_of(fmt, output)
    done = exporting.export(ckpt, fmt, output, input_size, batch, dynamic_batch)
    shape = "×".join(map(str, done.input))
    what = f"{fmt}, input {shape}, {_size(done.size)}, {done.seconds:.1f} s"
    click.echo(f"{done.job.checkpoint} -> {done.path} ({what})")
    for extra in done.files[1:]:
        click.echo(f"also wrote {extra}")
    for warning in done.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not verify:
        return
    check = exporting.verify(done)
    batches = ", ".join(map(str, check.batches))
    line = f"{check.runner} on batch {batches}: max abs difference {check.max_diff:.2e}"
    if not check.ok:
        raise DataError(f"{done.path}: verification failed: {line} > {check.tolerance:g}", "the file is kept")
    click.echo(f"verified with {line} (tolerance {check.tolerance:g}, {check.seconds:.1f} s)")
