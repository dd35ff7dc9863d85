"""The zoo in archs/, written with blocks: torchvision's, timm's and Darknet's networks, parameter for
parameter and output for output."""

from __future__ import annotations

import pytest
import torch
import torchvision
from conftest import ARCHS, SHARED

import darkforge
from darkforge.nn.network import forward_order_copy


def randomize_bn(model: torch.nn.Module, seed: int = 0) -> None:
    """Batch-norm statistics and affine terms far from identity, so no branch hides."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)


@pytest.mark.parametrize(
    "arch, params, outputs",
    [
        ("resnet18", 11_689_512, [(1000,)]),
        ("resnet50", 25_557_032, [(1000,)]),
        ("mobilenet_v2", 3_504_872, [(1000,)]),
        ("efficientnet_b0", 5_288_548, [(1000,)]),
        ("cspdarknet53", 27_642_184, [(1000,)]),  # timm's count
        ("yolov3", 61_949_149, [(255, 13, 13), (255, 26, 26), (255, 52, 52)]),  # Darknet's, at 416
        ("darknet53", 40_595_178, [(10,)]),
        ("shufflenet_v2_x1_0", 2_278_604, [(1000,)]),
        ("mobilenet_v3_small", 2_542_856, [(1000,)]),
        ("densenet121", 7_978_856, [(1000,)]),
    ],
)
def test_parameter_counts(arch, params, outputs):
    p = darkforge.plan(darkforge.load_spec(ARCHS / f"{arch}.yaml").resolved())
    assert p.params == params
    assert p.output_shapes == outputs


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0"])
def test_equal_to_torchvision(arch):
    ours = darkforge.build(ARCHS / f"{arch}.yaml", input_size=64).eval()
    reference = getattr(torchvision.models, arch)().eval()
    randomize_bn(reference)
    forward_order_copy(reference, ours)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(x)
        assert expected.abs().max() > 0.1
        torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-5)


def measured_bn(model: torch.nn.Module, x: torch.Tensor, seed: int = 0) -> None:
    """Batch-norm statistics measured on data (a cumulative average over `x`), then perturbed
    (means shifted, variances and affine terms scaled): every branch stays in a sane range in a
    deep network, and none is near an identity."""
    g = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative: the statistics of the whole batch
    with torch.no_grad():
        model.train()(x)
        for m in norms:
            n = m.num_features
            m.running_mean.add_(torch.randn(n, generator=g) * 0.1 * m.running_var.sqrt())
            m.running_var.mul_(torch.rand(n, generator=g) + 0.5)
            m.weight.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    model.eval()


@pytest.mark.parametrize("arch", ["shufflenet_v2_x1_0", "mobilenet_v3_small", "densenet121"])
def test_written_in_the_dialect_alone_equal_to_torchvision(arch):
    ours = darkforge.build(ARCHS / f"{arch}.yaml", input_size=64).eval()
    types = {info.spec.type for info in ours.plan.layers} | {
        type(m).__name__ for m in ours.modules() if type(m).__module__.startswith("darkforge")
    }
    assert not any(t.startswith("Darknet") or t in ("Connected", "DarknetShortcut") for t in types), types
    reference = getattr(torchvision.models, arch)()
    g = torch.Generator().manual_seed(1)
    measured_bn(reference, torch.randn(16, 3, 64, 64, generator=g))
    forward_order_copy(reference, ours)
    x = torch.randn(2, 3, 64, 64, generator=g)
    with torch.no_grad():
        expected = reference(x)
        assert expected.std() > 0.1
        torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)


def test_stochastic_depth_grows_per_block_as_torchvisions():
    # archs/efficientnet_b0.yaml: p = 0.2 · (index + ${copy}) / 16, each copy of a repeat its own
    ours = [
        m.p
        for m in darkforge.build(ARCHS / "efficientnet_b0.yaml", input_size=64).modules()
        if type(m).__name__ == "DropPath"
    ]
    reference = torchvision.models.efficientnet_b0()
    theirs = [m.stochastic_depth.p for m in reference.modules() if getattr(m, "use_res_connect", False)]
    assert ours == theirs and len(ours) == 9


def test_a_scaled_file_equals_torchvision_at_that_width():
    ours = darkforge.build(ARCHS / "mobilenet_v2.yaml", scale="half", input_size=64).eval()
    reference = torchvision.models.mobilenet_v2(width_mult=0.5)
    g = torch.Generator().manual_seed(2)
    measured_bn(reference, torch.randn(16, 3, 64, 64, generator=g))
    forward_order_copy(reference, ours)
    x = torch.randn(2, 3, 64, 64, generator=g)
    with torch.no_grad():
        expected = reference(x)
        assert expected.std() > 0.1
        torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not (SHARED / "darknet-cfg" / "yolov3.cfg").exists(), reason="needs ../shared")
def test_yolov3_equals_darknet_s_cfg():
    ours = darkforge.build(ARCHS / "yolov3.yaml", input_size=64).eval()
    cfg = darkforge.build(SHARED / "darknet-cfg" / "yolov3.cfg", input_size=64).eval()
    randomize_bn(cfg)
    forward_order_copy(cfg, ours)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ours(x), cfg(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-4)


@pytest.mark.parametrize("arch, most", [("resnet50", 30), ("efficientnet_b0", 35), ("yolov3", 35)])
def test_short_files(arch, most):
    assert layer_lines(ARCHS / f"{arch}.yaml") <= most


def test_module_names_follow_the_structure():
    names = dict(darkforge.build(ARCHS / "resnet50.yaml", input_size=64).named_modules())
    # layer3: its first Bottleneck (0), then 5 more (1) as repeats 0..4, each with its layers
    assert "layers.layer3.0.down.conv" in names and "layers.layer3.1.4.residual.bn" in names
    assert "layers.layer3.1.5" not in names


def layer_lines(path) -> int:
    """Non-comment lines under `layers:` and `blocks:`."""
    count, inside = 0, False
    for line in path.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            inside = line.startswith(("layers:", "blocks:"))
            continue
        if inside and line.strip() and not line.strip().startswith("#"):
            count += 1
    return count
