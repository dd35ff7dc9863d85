"""The shipped block library (archs/blocks/ultralytics.yaml) and the native YOLOv8/YOLO11 files
written with it: every scale's count is Ultralytics', the blocks equal darkforge's built-in types
bit for bit, and Ultralytics' weights load by name into the native files and give its outputs."""

from __future__ import annotations

import pytest
import torch
from conftest import ARCHS

import darkforge
from tests.conftest import SHARED
from tests.ultralytics.test_oracle import COUNTS, MODELS, ORACLE, SIZE, _before_train_step, _tensors

NATIVE = {"yolov8": "yolov8.yaml", "yolo11": "yolo11.yaml"}
needs_oracle = pytest.mark.skipif(not (ORACLE / "index.json").is_file(), reason="needs ../shared")

# Ultralytics' own counts (../shared/ultralytics-oracle/index.json), kept here so the test runs
# without ../shared; the oracle test below checks the two agree.
COUNT = {
    ("yolov8", "n"): 3_157_200,
    ("yolov8", "s"): 11_166_560,
    ("yolov8", "m"): 25_902_640,
    ("yolov8", "l"): 43_691_520,
    ("yolov8", "x"): 68_229_648,
    ("yolo11", "n"): 2_624_080,
    ("yolo11", "s"): 9_458_752,
    ("yolo11", "m"): 20_114_688,
    ("yolo11", "l"): 25_372_160,
    ("yolo11", "x"): 56_966_176,
}


@pytest.mark.parametrize("arch, scale", sorted(COUNT))
def test_every_scale_of_the_native_files_has_ultralytics_count(arch: str, scale: str) -> None:
    spec = darkforge.load_spec(ARCHS / f"{arch}.yaml")
    assert spec.plugins is None and spec.include == ["ultralytics"]  # no plugin, the shipped library
    assert darkforge.plan(spec.resolved(scale)).params == COUNT[arch, scale]


@needs_oracle
def test_the_counts_here_are_the_oracle_s() -> None:
    assert {f"{a}{s}": n for (a, s), n in COUNT.items()} == {
        f"{a}{s}": COUNTS[f"{a}{s}"]["params"] for a, s in COUNT
    }


@pytest.mark.parametrize("arch", sorted(NATIVE))
def test_the_native_file_is_no_longer_than_ultralytics_own(arch: str) -> None:
    ours = len((ARCHS / f"{arch}.yaml").read_text().splitlines())
    assert ours <= {"yolov8": 49, "yolo11": 50}[arch]  # Ultralytics' yolov8.yaml / yolo11.yaml lines
    if (ORACLE / NATIVE[arch]).is_file():
        assert ours <= len((ORACLE / NATIVE[arch]).read_text().splitlines())


def test_the_default_scale_is_n_and_classes_reach_the_head() -> None:
    spec = darkforge.load_spec(ARCHS / "yolov8.yaml")
    assert darkforge.plan(spec.resolved()).params == COUNT["yolov8", "n"]
    ten = darkforge.plan(spec.resolved(classes=10)).params
    # the class branch's last 1×1 conv (with bias) of each level: c3 · (80 − 10) + (80 − 10) fewer;
    # c3 = max(P3's 64 channels, min(classes, 100)) = 80 with 80 classes, 64 with 10
    c2s, c3_80, c3_10 = (64, 128, 256), 80, 64

    def branch(c3: int, nc: int) -> int:
        return sum(c * c3 * 9 + 2 * c3 + c3 * c3 * 9 + 2 * c3 + c3 * nc + nc for c in c2s)

    assert COUNT["yolov8", "n"] - ten == branch(c3_80, 80) - branch(c3_10, 10)


# Each block of the library against darkforge's built-in type of the same name (its Python
# spelling): same arguments, the built-in's state_dict loaded by name, outputs bit for bit.
CASES = [
    ("C2f", "filters: 32, blocks: 2, shortcut: true"),
    ("C2f", "filters: 32, blocks: 1"),
    ("C3k2", "filters: 32, blocks: 2, expansion: 0.25"),
    ("C3k2", "filters: 32, blocks: 1, c3k: true"),
    ("C3", "filters: 32, blocks: 2"),
    ("C3", "filters: 32, blocks: 1"),  # numbered: `m.0` of one block, as Ultralytics' Sequential
    ("C2", "filters: 32, blocks: 2"),
    ("SPPF", "filters: 32"),
    ("SPP", "filters: 32"),
    ("C2PSA", "filters: 128, blocks: 2"),
    ("C2PSA", "filters: 128, blocks: 1"),
]


def _net(write, name: str, kind: str, args: str, library: bool, channels: int) -> torch.nn.Module:
    include = "include: [ultralytics]\n" if library else ""
    text = (
        f"name: {name}\n{include}input: {{channels: {channels}, size: 8}}\n"
        f"layers:\n  - {{type: {kind}, {args}}}\n"
    )
    return darkforge.build(write(f"{name}.yaml", text))


@pytest.mark.parametrize("kind, args", CASES)
def test_each_library_block_is_the_built_in_type_bit_for_bit(write, kind: str, args: str) -> None:
    channels = 128 if kind == "C2PSA" else 16
    built_in = _net(write, "builtin", kind, args, False, channels).eval()
    ours = _net(write, "ours", kind, args, True, channels).eval()
    assert type(ours.plan.layers[0].spec).__module__ != type(built_in.plan.layers[0].spec).__module__
    assert ours.plan.params == built_in.plan.params == sum(p.numel() for p in ours.parameters())
    theirs = built_in.state_dict()
    assert set(ours.state_dict()) == set(theirs)  # the same module names
    with torch.no_grad():  # random statistics, so batch norm is no identity
        for key, value in theirs.items():
            if value.is_floating_point():
                value.copy_(torch.rand_like(value) + 0.5 if "running_var" in key else torch.randn_like(value))
    ours.load_state_dict(theirs)
    x = torch.randn(2, channels, 8, 8)
    with torch.no_grad():
        assert torch.equal(ours(x), built_in(x))


def test_a_user_block_still_cannot_take_a_built_in_name(write) -> None:
    text = (
        "name: t\ninput: {channels: 3, size: 8}\nblocks:\n  C2f:\n    layers:\n"
        "      - {type: Conv, filters: 4}\nlayers:\n  - {type: C2f}\n"
    )
    with pytest.raises(
        darkforge.SpecError,
        match="block C2f has the name of a layer type; rename the block, or say `shadows: true`",
    ):
        darkforge.load_spec(write("t.yaml", text))


@needs_oracle
@pytest.mark.parametrize("arch, name", [("yolov8", "yolov8n"), ("yolo11", "yolo11n")])
def test_ultralytics_weights_load_by_name_into_the_native_file_and_give_its_outputs(
    arch: str, name: str
) -> None:
    x, ref = _tensors(name)
    net = darkforge.build(ARCHS / f"{arch}.yaml", input_size=SIZE, weights=ORACLE / MODELS[name]["weights"])
    assert net.transfer.complete and net.transfer.by_name == net.transfer.total
    saved = {k: v.clone() for k, v in net.state_dict().items() if "running_" in k}
    with torch.no_grad():
        maps = net.train()(x)
    for level, got in enumerate(maps):
        want = ref[f"level{level}"]
        assert float((got - want).abs().max()) <= 1e-5 * float(want.max() - want.min())
    _before_train_step(net, saved)  # the oracle's decoded output predates its train-mode pass
    with torch.no_grad():
        decoded, _ = net.eval()(x)
    assert float((decoded[:, :4] - ref["decoded"][:, :4]).abs().max()) <= 1e-4 * SIZE
    assert float((decoded[:, 4:] - ref["decoded"][:, 4:]).abs().max()) <= 1e-5


assert SHARED  # imported for the skip marker's path


def test_a_run_s_self_contained_copy_of_a_native_file_builds_the_same_network() -> None:
    # train keeps the file with its includes inlined; the library's blocks say `shadows: true`
    from darkforge.spec.archtext import arch_text, embedded_spec, inlined

    path = ARCHS / "yolo11.yaml"
    spec = darkforge.load_spec(path)
    copy = embedded_spec(arch_text(path, spec, inlined(spec)), "arch.yaml")
    assert copy.include is None and copy.blocks is not None and copy.blocks["C3k2"]["shadows"] is True
    for scale in ("n", "x"):
        assert darkforge.plan(copy.resolved(scale)).params == COUNT["yolo11", scale]


def test_shadows_must_name_a_built_in_type(write) -> None:
    text = (
        "name: t\ninput: {channels: 3, size: 8}\nblocks:\n  Mine:\n    shadows: true\n    layers:\n"
        "      - {type: Conv, filters: 4}\nlayers:\n  - {type: Mine}\n"
    )
    with pytest.raises(
        darkforge.SpecError, match="block Mine says `shadows: true`, but no layer type has its name"
    ):
        darkforge.load_spec(write("t.yaml", text))
