"""torchinfo's view of the built module (`summary --runtime`): a real forward pass of one image,
checked against the static plan.

torchinfo counts mult-adds of every weight and bias, batch norm included (one per channel); the
plan counts the weights of convolutions and fully connected layers only (as Darknet does). So the
comparison sums torchinfo's leaf Conv2d/Linear rows less their bias terms. Its totals block is
replaced by ours: torchinfo 1.8 prints `Units.GIGABYTES` instead of a unit on Python 3.11.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any

import torch
import torchinfo
from torch import nn

from darkforge.nn.network import Network
from darkforge.spec.shapes import Plan
from darkforge.views.memory import fmt_bytes

COUNTED = (nn.Conv2d, nn.Linear)  # the layers whose MACs the plan counts
RULE = "=" * 10  # torchinfo's section separators are lines of '='


@dataclass
class Runtime:
    table: str  # torchinfo's per-layer rows (header included), without its totals
    params: int
    mult_adds: int  # torchinfo's total (batch norm included)
    counted_macs: int  # its Conv2d/Linear rows: comparable with the plan
    forward_bytes: int  # torchinfo's forward/backward pass size estimate for one image
    param_bytes: int


def runtime(p: Plan, depth: int = 3) -> Runtime:
    """Build the network of `p` and run torchinfo on one image."""
    model = Network(p).eval()
    with torch.no_grad():
        stats = torchinfo.summary(
            model,
            input_size=(1, *p.input),
            depth=depth,
            verbose=0,
            col_names=("output_size", "num_params", "mult_adds"),
            row_settings=("var_names",),
        )
    counted = sum(
        _weight_macs(layer)
        for layer in stats.summary_list
        if layer.is_leaf_layer and isinstance(layer.module, COUNTED) and not layer.is_recursive
    )
    return Runtime(
        _rows(str(stats)),
        int(stats.total_params),
        int(stats.total_mult_adds),
        int(counted),
        int(stats.total_output_bytes),
        int(stats.total_param_bytes),
    )


def _weight_macs(layer: Any) -> int:
    """torchinfo's mult-adds of a Conv2d/Linear row less its bias (bias × output positions)."""
    bias = layer.module.bias
    positions = prod(layer.output_size[:1] + layer.output_size[2:])
    return int(layer.macs) - (bias.numel() * positions if bias is not None else 0)


def _rows(text: str) -> str:
    """torchinfo's text up to the end of its layer rows (the header and rows sections)."""
    lines = text.splitlines()
    rules = [k for k, line in enumerate(lines) if line.startswith(RULE)]
    return "\n".join(lines[: rules[2] + 1]) if len(rules) >= 3 else text


def report(p: Plan, r: Runtime) -> str:
    convs = p.macs - p.products  # what torchinfo's Conv2d/Linear rows can see
    agree = r.params == p.params and r.counted_macs == convs
    verdict = "agree" if agree else "DISAGREE (a bug: please report it)"
    return "\n".join(
        [
            r.table,
            f"params          {r.params:,} (static plan {p.params:,})",
            f"MACs conv+fc    {r.counted_macs:,} (static plan {convs:,})",
            f"mult-adds all   {r.mult_adds:,} (torchinfo's count, batch norm included)",
            f"forward/backward pass size {fmt_bytes(r.forward_bytes)}, params {fmt_bytes(r.param_bytes)}",
            f"torchinfo and the static plan {verdict}",
        ]
    )


def as_dict(r: Runtime) -> dict[str, Any]:
    return {k: v for k, v in vars(r).items() if k != "table"}
