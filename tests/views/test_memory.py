"""Memory from the static plan, and torchinfo's runtime view agreeing with it."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import ARCHS

import darkforge
from darkforge.spec.load import load_spec
from darkforge.spec.shapes import plan
from darkforge.views import memory, runtime


def test_activation_sizes_count_every_map_a_layer_produces(run_cli):
    p = plan(load_spec(ARCHS / "darknet53.yaml").resolved(None))
    acts = memory.layer_activations(p)
    assert acts[0] == 32 * 32 * 32 * 4  # stem: one 32×32×32 fp32 map
    # the flat spelling produces the same maps, one layer each
    flat = plan(load_spec(ARCHS / "darknet53-flat.yaml").resolved(None))
    assert sum(acts) == sum(memory.layer_activations(flat)) == 1_122_344
    data = json.loads(run_cli("summary", str(ARCHS / "darknet53.yaml"), "--json").output)
    assert [layer["activation_bytes"] for layer in data["layers"]] == acts
    assert data["memory"] == {
        "param_bytes": 40_595_178 * 4,
        "activation_bytes": 1_122_344,
        "train_batch": 256,
        "train_bytes": 3 * 40_595_178 * 4 + 256 * 2 * 1_122_344,
    }
    table = run_cli("summary", str(ARCHS / "darknet53.yaml")).output
    assert "activations" in table and "336.0 KiB" in table  # c3: 256×4×4 out, blocks inside
    assert "training ≈ 1012.6 MiB per batch of 256" in table


def test_the_training_estimate_is_near_what_autograd_keeps():
    model = darkforge.build(ARCHS / "darknet53.yaml", scale="nano").train()
    p = model.plan
    saved: dict[int, int] = {}
    weights = {t.data_ptr() for t in model.parameters()}

    def pack(t):
        if t.data_ptr() not in weights:
            saved[t.data_ptr()] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(torch.randn(4, *p.input))
    per_image = sum(saved.values()) / 4
    estimate = memory.SAVED_FACTOR * sum(memory.layer_activations(p))
    assert 0.7 < per_image / estimate < 1.3


def test_bytes_are_formatted_without_torchinfo_units():
    assert [memory.fmt_bytes(n) for n in (40, 1536, 3 * 2**30)] == ["40 B", "1.5 KiB", "3.0 GiB"]


@pytest.mark.parametrize("name", sorted(p.name for p in ARCHS.glob("*.yaml")))
def test_torchinfo_agrees_with_the_plan_for_every_shipped_arch(run_cli, name):
    spec = load_spec(ARCHS / name)
    for scale in [None, *spec.scales][:2]:
        p = plan(spec.resolved(scale))
        r = runtime.runtime(p)
        assert (r.params, r.counted_macs) == (p.params, p.macs - p.products), (
            scale
        )  # attention's products: no rows
        assert r.mult_adds > p.macs - p.products  # torchinfo also counts batch norm and biases
    result = run_cli("summary", str(ARCHS / name), "--runtime")
    assert result.exit_code == 0, result.output
    assert "torchinfo and the static plan agree" in result.output and "Units." not in result.output
    data = json.loads(run_cli("summary", str(ARCHS / name), "--runtime", "--json").output)
    assert data["runtime"]["params"] == data["params"]


def _hooked_maps(model: torch.nn.Module, shape: tuple[int, ...]) -> list[int]:
    """Bytes each top-level layer's modules produce for one image, measured with forward hooks on
    every module of a layer type (registry classes); a module whose output is a descendant's own
    tensor (a stage returning its last block's map) allocates nothing and is not counted."""
    from darkforge.nn.graph import Collected  # a collected repeat's concatenation is a map too
    from darkforge.spec import registry

    classes = (*{registry.get(name).module_class() for name in registry.names()}, Collected)
    sizes: list[int] = []
    for top in model.layers.values():
        seen: list[tuple[torch.nn.Module, torch.Tensor]] = []
        handles = []

        def hook(module, args, output, seen=seen):
            inner = {id(m) for m in module.modules() if m is not module}
            if not any(id(m) in inner and out is output for m, out in seen):
                seen.append((module, output))

        for module in top.modules():
            if isinstance(module, classes):
                handles.append(module.register_forward_hook(hook))
        sizes.append(seen)
        top._handles = handles
    with torch.no_grad():
        model.eval()(torch.randn(1, *shape))
    for top in model.layers.values():
        for handle in top._handles:
            handle.remove()
    return [sum(_bytes(out) for _, out in seen) for seen in sizes]


def _bytes(out: object) -> int:
    if isinstance(out, torch.Tensor):
        return out.numel() * out.element_size()
    return sum(_bytes(x) for x in out) if isinstance(out, tuple | list) else 0


@pytest.mark.parametrize("name", sorted(p.name for p in ARCHS.glob("*.yaml")))
def test_the_activations_column_is_what_the_built_modules_produce(run_cli, name):
    spec = load_spec(ARCHS / name)
    size = min(spec.input.shape[1], 128)  # the same modules at a smaller map keep the test fast
    model = darkforge.build(spec, input_size=size)
    acts = memory.layer_activations(model.plan)
    hooked = _hooked_maps(model, model.plan.input)
    assert acts == hooked
    data = json.loads(run_cli("summary", str(ARCHS / name), "--input-size", str(size), "--json").output)
    assert data["memory"]["activation_bytes"] == sum(acts)
    params = sum(p.numel() for p in model.parameters())
    assert data["memory"]["train_bytes"] == 3 * 4 * params + 256 * 2 * sum(acts)


@pytest.mark.parametrize(
    "layer",
    [
        "{type: C2f, filters: 32, blocks: 2, shortcut: true}",
        "{type: C3k2, filters: 32, blocks: 2, c3k: true}",
        "{type: C3k2, filters: 32, blocks: 1}",
        "{type: C3, filters: 32, blocks: 2}",
        "{type: C2, filters: 32, blocks: 2}",
        "{type: SPP, filters: 32}",
        "{type: SPPF, filters: 32}",
        "{type: YoloBottleneck, filters: 16}",
        "{type: YoloBottleneck, filters: 32}",
        "{type: C2PSA, filters: 16, blocks: 2}",
    ],
)
def test_the_built_in_yolo_blocks_count_every_map_their_modules_make(write, layer):
    # the types the Ultralytics reader builds (spec/layers/csp.py, attention.py)
    text = f"name: m\ninput: {{channels: 16, size: 16}}\nlayers:\n  - {layer}\n"
    model = darkforge.build(write("m.yaml", text))
    assert memory.layer_activations(model.plan) == _hooked_maps(model, model.plan.input)
