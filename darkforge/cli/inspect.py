"""`darkforge validate`, `summary` and `schema`: answered from the spec alone, without torch."""

from __future__ import annotations

import json
from typing import Any

import click

from darkforge.cli.app import cli, one_line
from darkforge.cli.options import ARCH, FEATURES, INPUT_SIZE, SCALE, arch_or_default, feature_list
from darkforge.errors import DarkforgeError
from darkforge.spec import budget, lint
from darkforge.spec.base import NetworkSpec, fmt_shape
from darkforge.spec.library import network_model_for
from darkforge.spec.load import load_spec
from darkforge.spec.registry import network_model
from darkforge.spec.shapes import Plan, flatten, plan
from darkforge.spec.source import read_yaml
from darkforge.training.recipe import check_recipe
from darkforge.views.reference import markdown as reference
from darkforge.views.summary import as_dict, darknet_rows, table

OVERRIDE = "raise {flag} (or pass --no-budget)"


def _limit(flag: str, kind: click.ParamType, default: float | None, what: str) -> Any:
    return click.option(
        flag, type=kind, default=default, show_default=True, help=f"refuse networks with {what}"
    )


@cli.command()
@click.argument("archs", nargs=-1, required=True, type=click.Path())
@_limit("--max-params", click.IntRange(1), budget.DEFAULT.params, "more parameters")
@_limit(
    "--max-activations",
    click.FloatRange(0, min_open=True),
    (budget.DEFAULT.activation_bytes or 0) / 1e9,
    "layer outputs of more GB per image (float32)",
)
@_limit(
    "--max-layers",
    click.IntRange(1),
    budget.DEFAULT.layers,
    "more layers after expansion (Darknet's flat spelling)",
)
@click.option("--no-budget", is_flag=True, help="check shapes only, with no limit on size")
def validate(
    archs: tuple[str, ...], max_params: int, max_activations: float, max_layers: int, no_budget: bool
) -> None:
    """Check architecture files (and each of their scales); one line per file. Networks past the
    size limits (docs/cli.md, "Safety and limits") are refused before anything is allocated."""
    limits = budget.NONE if no_budget else budget.Budget(max_params, int(max_activations * 1e9), max_layers)
    failed = 0
    for path in archs:
        try:
            spec = load_spec(path)
            check_recipe(spec)
            checked = [_check(spec, None, limits), *(_check(spec, s, limits) for s in spec.scale_names())]
        except DarkforgeError as e:
            click.echo(f"error: {one_line(str(e))}", err=True)
            failed += 1
            continue
        full = checked[0]
        scales = f"; scales: {', '.join(spec.scale_names())}" if spec.scale_names() else ""
        click.echo(
            f"ok: {path}: {spec.name}, {len(spec.layers)} layers, {full.params:,} params, "
            f"output {', '.join(fmt_shape(s) for s in full.output_shapes)}{scales}"
        )
        for line in lint.warnings(full):  # valid, but likely not what was meant (spec/lint.py)
            click.echo(f"warning: {line}", err=True)
    if failed:
        raise SystemExit(1)


def _check(spec: NetworkSpec, scale: str | None, limits: budget.Budget = budget.DEFAULT) -> Plan:
    with budget.planning_within(limits):
        p = plan(spec.resolved(scale))
    budget.check(p, limits, OVERRIDE)
    return p


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
@click.option("--expand", is_flag=True, help="a row per layer inside blocks and stages (the flat spelling)")
@click.option(
    "--warn", is_flag=True, help="say in full which layers hold weights that never see data (--expand too)"
)
@FEATURES
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
    expand: bool,
    warn: bool,
    features: str | None,
    runtime: bool,
) -> None:
    """Print every layer's output shape, parameters, MACs and activation size, and the totals."""
    spec = load_spec(arch_or_default(arch)).resolved(scale, input_size, classes)
    p = plan(flatten(spec) if expand else spec)
    budget.check(p, override="see `darkforge validate {flag}`")
    if runtime:
        _runtime(p, as_json)
    elif as_json:
        click.echo(json.dumps(as_dict(p), indent=2))
    elif style == "darknet":
        click.echo(darknet_rows(p))
    else:
        click.echo(table(p, _taps(p, feature_list(features)), warn=warn or expand))


def _taps(p: Plan, names: list[str]) -> list[str]:
    for name in names:
        p.index_of(name, "--features")  # each one a layer of the plan
    return names


def _runtime(p: Plan, as_json: bool) -> None:
    # torch: imported on use, so `validate` and `--help` stay fast
    from darkforge.views import runtime

    r = runtime.runtime(p)
    if as_json:
        click.echo(json.dumps(as_dict(p) | {"runtime": runtime.as_dict(r)}, indent=2))
    else:
        click.echo(runtime.report(p, r))


@cli.command()
@click.argument("arch", required=False, type=click.Path(dir_okay=False))
@click.option("--markdown", is_flag=True, help="the human reference of every layer type instead")
def schema(arch: str | None, markdown: bool) -> None:
    """Print the JSON Schema of architecture files (for editor completion and checks); with ARCH,
    the schema of that file, its own blocks included as layer types with their parameters."""
    if markdown:
        click.echo(reference(), nl=False)
        return
    model = network_model()
    if arch is not None:
        data, source = read_yaml(arch)
        model, _ = network_model_for(data if isinstance(data, dict) else {}, source)
    click.echo(json.dumps(model.model_json_schema(by_alias=True), indent=2))
