"""`darkforge zoo`: the shipped architectures, by the names every command accepts."""

from __future__ import annotations

import json
from typing import Any

import click

from darkforge.cli.app import cli
from darkforge.spec.base import fmt_shape
from darkforge.spec.load import arch_path, load_spec, shipped_names
from darkforge.spec.shapes import plan


def _first_comment(text: str) -> str:
    """What the file says it is: its first comment line, to the first colon or full stop."""
    for line in text.splitlines():
        if line.startswith("#"):
            about = line.lstrip("# ").strip()
            for stop in (": ", ". "):
                about = about.split(stop)[0]
            return about.rstrip(".:")
    return ""


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="one JSON object: a list of networks")
def zoo(as_json: bool) -> None:
    """List the networks shipped with darkforge (give the name to any command: `darkforge train resnet18`)."""
    rows: list[dict[str, Any]] = []
    for name in shipped_names():
        path = arch_path(name)
        spec = load_spec(path)
        p = plan(spec.resolved(None))
        rows.append(
            {
                "name": name,
                "params": p.params,
                "input": list(p.input),
                "outputs": [list(s) for s in p.output_shapes],
                "scales": list(spec.scales),
                "about": _first_comment(path.read_text()),
            }
        )
    if as_json:
        click.echo(json.dumps({"networks": rows}, indent=2))
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        scales = f"  scales: {', '.join(r['scales'])}" if r["scales"] else ""
        click.echo(
            f"{r['name']:<{width}}  {r['params']:>11,} params  input {fmt_shape(tuple(r['input']))}{scales}"
        )
        if r["about"]:
            click.echo(f"{'':<{width}}  {r['about'][:110]}")
