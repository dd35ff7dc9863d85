"""The AlexeyAB fork's cfgs (../shared/darknet-cfg/alexeyab): strict, and equal to what the fork's
own parser reports (reference.json), layer by layer; converted to YAML and back, the same network
with every key of the original."""

from __future__ import annotations

import json

import pytest
import torch

from darkforge.darknet.read import convert_cfg
from darkforge.darknet.read import read_sections as read_cfg
from darkforge.darknet.write import to_cfg
from darkforge.spec.dump import dump_spec
from darkforge.spec.load import load_spec
from darkforge.spec.shapes import plan
from darkforge.views.darknet_table import fork_bflops, fork_total
from darkforge.weights.transfer import build
from tests.conftest import SHARED

FORK = SHARED / "darknet-cfg" / "alexeyab"
REFERENCE = json.loads((FORK / "reference.json").read_text()) if (FORK / "reference.json").exists() else {}
needs_fork = pytest.mark.skipif(not REFERENCE, reason="needs ../shared/darknet-cfg/alexeyab")


@needs_fork
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_fork_cfg_matches_the_forks_own_figures(name, run_cli):
    ref = REFERENCE[name]
    result = run_cli("validate", str(FORK / name))
    assert result.exit_code == 0, result.stderr
    spec = convert_cfg(FORK / name).spec
    p = plan(spec)
    rows = ref["layers[type,c,h,w,bflops,params]"]
    assert len(p.layers) == len(rows)
    assert spec.input.shape == tuple(ref["net_chw"])
    total = 0.0
    for info, (kind, c, h, w, bflops, params) in zip(p.layers, rows, strict=True):
        out = info.cost.output
        where = f"layer {info.index} ({kind} -> {info.spec.type})"
        if kind == "softmax":  # Darknet's softmax has no C×H×W
            assert len(out) == 1, where
        else:
            assert out == (c, h, w), where
        assert info.cost.params == params, where
        mine = fork_bflops(info.spec, [p.shape_of(s) for s in info.sources], info.cost)
        assert mine == pytest.approx(bflops, abs=1e-6), where
        total += mine
    assert p.params == ref["params"]
    assert total == pytest.approx(ref["bflops_total"], abs=1e-3)
    assert fork_total(p) == pytest.approx(total)
    summary = run_cli("summary", str(FORK / name), "--style", "darknet").output
    assert f"Total BFLOPS {ref['bflops_total']:5.3f}" in summary
    assert f"BFLOPs   {ref['bflops_total']:.3f} (AlexeyAB" in summary
    maps = [o for o in ref["outputs"] if o != [0, 0, 0]]  # a softmax output has no C×H×W
    assert [p.shape_of(o) for o in p.outputs if len(p.shape_of(o)) == 3] == [tuple(o) for o in maps]


@needs_fork
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_fork_cfg_round_trips_with_every_key(name, tmp_path):
    spec = convert_cfg(FORK / name).spec
    yaml = tmp_path / "net.yaml"
    yaml.write_text(dump_spec(spec, "round trip"))
    text, _ = to_cfg(load_spec(yaml))
    cfg = tmp_path / name
    cfg.write_text(text)
    again = convert_cfg(cfg).spec
    assert again.model_dump(exclude={"name"}) == spec.model_dump(exclude={"name"})
    original, written = read_cfg(FORK / name), read_cfg(cfg)
    assert [s.name for s in original] == [s.name for s in written]
    for before, after in zip(original, written, strict=True):
        assert set(before.options) <= set(after.options), f"[{before.header}] at line {before.line}"


@needs_fork
def test_yolov4_tiny_builds_and_runs_as_planned():
    # the one fork network this file builds (quick: 6 M parameters)
    spec = convert_cfg(FORK / "yolov4-tiny.cfg", lenient=True).spec
    net = build(spec).eval()
    assert sum(p.numel() for p in net.parameters()) == 6_056_606
    with torch.no_grad():
        out = net(torch.rand(1, 3, 416, 416))
    assert [tuple(o.shape) for o in out] == [(1, 255, 13, 13), (1, 255, 26, 26)]
