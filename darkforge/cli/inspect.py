"""`darkforge validate`, `summary` and `schema`: answered from the spec alone, without torch."""

from __future__ import annotations

import json

import click

from darkforge.cli.app import cli
from darkforge.cli.options import ARCH, INPUT_SIZE, SCALE, arch_or_default
from darkforge.errors import DarkforgeError
from darkforge.spec.base import NetworkSpec, fmt_shape
from darkforge.spec.load import load_spec
from darkforge.spec.registry import network_model
from darkforge.spec.shapes import Plan, plan
from darkforge.training.recipe import check_recipe
from darkforge.views.reference import markdown as reference
from darkforge.views.summary import as_dict, darknet_rows, table


@cli.command()
@click.argument("archs", nargs=-1, required=True, type=click.Path())
def validate(archs: tuple[str, ...]) -> None:
    """Check architecture files (and each of their scales); one line per file."""
    failed = 0
    for path in archs:
        try:
            spec = load_spec(path)
            check_recipe(spec)
            checked = [_check(spec, None), *(_check(spec, s) for s in spec.scales)]
        except DarkforgeError as e:
            click.echo(f"error: {e}", err=True)
            failed += 1
            continue
        full = checked[0]
        scales = f"; scales: {', '.join(spec.scales)}" if spec.scales else ""
        click.echo(
            f"ok: {path}: {spec.name}, {len(spec.layers)} layers, {full.params:,} params, "
            f"output {', '.join(fmt_shape(s) for s in full.output_shapes)}{scales}"
        )
    if failed:
        raise SystemExit(1)


def _check(spec: NetworkSpec, scale: str | None) -> Plan:
    return plan(spec.resolved(scale))


@cli.command()
@ARCH
@SCALE
@INPUT_SIZE
@click.option("--classes", type=click.IntRange(1), help="head width (overrides the file)")
@click.option("--json", "as_json", is_flag=True, help="one JSON object (see docs/cli.md)")
@click.option(
    "--style",
    type=click.Choice(["table", "darknet"]),
    default="table",
    show_default=True,
    help="darknet: flat rows as Darknet prints them",
)
@click.option(
    "--runtime",
    is_flag=True,
    help="build the module and show torchinfo's view of one forward pass, checked against the plan",
)
def summary(
    arch: str | None,
    scale: str | None,
    input_size: int | None,
    classes: int | None,
    as_json: bool,
    style: str,
    runtime: bool,
) -> None:
    """Print every layer's output shape, parameters, MACs and activation size, and the totals."""
    p = plan(load_spec(arch_or_default(arch)).resolved(scale, input_size, classes))
    if runtime:
        _runtime(p, as_json)
    elif as_json:
        click.echo(json.dumps(as_dict(p), indent=2))
    elif style == "darknet":
        click.echo(darknet_rows(p))
    else:
        click.echo(table(p))


def _runtime(p: Plan, as_json: bool) -> None:
    # torch: imported on use, so `validate` and `--help` stay fast
    from darkforge.views import runtime

    r = runtime.runtime(p)
    if as_json:
        click.echo(json.dumps(as_dict(p) | {"runtime": runtime.as_dict(r)}, indent=2))
    else:
        click.echo(runtime.report(p, r))


@cli.command()
@click.option("--markdown", is_flag=True, help="the human reference of every layer type instead")
def schema(markdown: bool) -> None:
    """Print the JSON Schema of architecture files (for editor completion and checks)."""
    if markdown:
        click.echo(reference(), nl=False)
        return
    click.echo(json.dumps(network_model().model_json_schema(by_alias=True), indent=2))
