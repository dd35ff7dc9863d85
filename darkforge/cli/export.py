"""`darkforge export`: a checkpoint as ONNX, a torch.export program, Darknet .weights or safetensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    "--nms",
    is_flag=True,
    help="a detector's onnx/pt2: NMS in the graph too; outputs detections (K, 7) and decoded",
)
@click.option(
    "--conf", type=click.FloatRange(0, 1, max_open=True), help="with --nms: boxes scoring above this [0.25]"
)
@click.option("--iou", type=click.FloatRange(0, 1), help="with --nms: the NMS IoU threshold [0.7]")
@click.option("--max-det", type=click.IntRange(1), help="with --nms: boxes kept per image at most [300]")
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
    **nms_flags: Any,
) -> None:
    """Export checkpoint CKPT (a .pt, .safetensors or run directory) for another runtime: onnx
    (onnxruntime, Netron, TensorRT), pt2 (torch.export), weights (Darknet, with its .cfg) or
    safetensors (the weights plus what rebuilds the network). A detector (a Detect head) exports
    its decoded boxes (batch, 4 + classes, anchors), and with --nms its detections as well."""
    from darkforge.export import run as exporting  # torch: imported on use, so --help stays fast

    fmt = _format_of(fmt, output)
    done = exporting.export(ckpt, fmt, output, input_size, batch, dynamic_batch, _nms(**nms_flags))
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
    if check.box_pixels is not None:
        line += f" (boxes in stride units; {check.box_pixels:.2e} px)"
    if not check.ok:
        raise DataError(f"{done.path}: verification failed: {line} > {check.tolerance:g}", "the file is kept")
    if check.problem:
        raise DataError(f"{done.path}: verification failed: {check.problem}", "the file is kept")
    click.echo(f"verified with {line} (tolerance {check.tolerance:g}, {check.seconds:.1f} s)")
    if check.detections == 0:
        click.echo("warning: no box scored above --conf on the random inputs: NMS was not compared", err=True)
    elif check.detections is not None:
        click.echo(
            f"NMS: the {check.detections} boxes kept equal torchvision's batched_nms on the same boxes"
        )


def _nms(nms: bool, conf: float | None, iou: float | None, max_det: int | None) -> Any:
    """--nms and its settings (darkforge.export.detect.Nms), or None; a setting alone is refused."""
    given = {"--conf": conf, "--iou": iou, "--max-det": max_det}
    if not nms:
        flag = next((k for k, v in given.items() if v is not None), None)
        if flag:
            raise UsageError(f"{flag} sets the NMS of the exported graph", "add --nms")
        return None
    from darkforge.export.detect import Nms

    default = Nms()
    return Nms(
        default.conf if conf is None else conf,
        default.iou if iou is None else iou,
        default.max_det if max_det is None else max_det,
    )
