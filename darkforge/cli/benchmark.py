"""`darkforge benchmark`: how fast a network trains and answers, beside another one."""

from __future__ import annotations

import json
from typing import Any

import click

from darkforge.benchmark.text import table
from darkforge.cli.app import cli
from darkforge.cli.options import ARCH, INPUT_SIZE, SCALE, arch_or_default
from darkforge.errors import DataError
from darkforge.spec import budget
from darkforge.spec.load import load_spec
from darkforge.spec.shapes import plan

OVERRIDE = "see `darkforge validate {flag}`"

MODE_NAMES = ("eager", "compile", "onnxruntime")  # darkforge.benchmark.modes.MODES (imports torch)


@cli.command()
@ARCH
@click.option(
    "--compare", "other", type=click.Path(), help="a second ARCH, measured interleaved with the first"
)
@SCALE
@INPUT_SIZE
@click.option("--batch", type=click.IntRange(1, 65536), default=8, show_default=True, help="images per batch")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps")
@click.option(
    "--mode",
    "modes",
    type=click.Choice(MODE_NAMES),
    multiple=True,
    help="how the network runs; repeat for several [default: eager]",
)
@click.option("--precision", type=click.Choice(["32", "bf16", "16"]), default="32", show_default=True)
@click.option("--channels-last", is_flag=True, help="NHWC memory format (fast on GPUs)")
@click.option(
    "--rounds", type=click.IntRange(1, 1000), default=3, show_default=True, help="interleaved rounds"
)
@click.option(
    "--steps", type=click.IntRange(1, 10000), default=2, show_default=True, help="timed batches per round"
)
@click.option(
    "--latency", type=click.IntRange(1, 10000), default=5, show_default=True, help="batch-1 samples per round"
)
@click.option("--json", "as_json", is_flag=True, help="one JSON object (format in docs/cli.md)")
def benchmark(
    arch: str | None,
    other: str | None,
    scale: str | None,
    input_size: int | None,
    batch: int,
    device: str,
    modes: tuple[str, ...],
    precision: str,
    channels_last: bool,
    rounds: int,
    steps: int,
    latency: int,
    as_json: bool,
) -> None:
    """Training-step and inference images/s, batch-1 latency (median, p90) and peak memory of
    ARCH (and --compare ARCH2, with ratios), measured interleaved in one process."""
    # torch: imported on use, so `validate` and `--help` stay fast
    import torch

    from darkforge.benchmark.measure import Settings, benchmark
    from darkforge.benchmark.modes import Setup
    from darkforge.training.device import pick_device

    archs = [arch_or_default(arch), *([other] if other else [])]
    # a bad file, a --scale either network lacks, or a size past the limits fails here, before
    # anything is built: a scale applies to both networks, or the ratio would compare two sizes
    for path in archs:
        budget.check(plan(load_spec(path).resolved(scale, input_size)), override=OVERRIDE)
    dtype = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}[precision]
    setup = Setup(pick_device(device), dtype, channels_last)
    settings = Settings(batch, rounds, steps, latency, 1, modes or ("eager",), input_size, scale, setup)
    result = benchmark(archs, settings)
    _some_measured(result)
    click.echo(json.dumps(result, indent=2) if as_json else table(result))


def _some_measured(result: dict[str, Any]) -> None:
    """A benchmark where every mode of every network failed measured nothing: an error, not a table
    of dashes (a mode that fails beside one that runs is a note of the table)."""
    failed = [
        (entry["arch"], mode, numbers["error"])
        for entry in result["models"]
        for mode, numbers in entry["modes"].items()
        if "error" in numbers
    ]
    if failed and len(failed) == sum(len(entry["modes"]) for entry in result["models"]):
        arch, mode, why = failed[0]
        if "allocate memory" in why or "out of memory" in why:
            why = "out of memory"
        raise DataError(
            f"nothing was measured: {arch} {mode}: {why}", "try a smaller --batch or --input-size"
        )
