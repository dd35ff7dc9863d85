"""Starting from weights (--weights, build(weights=)), freezing, feature taps and multi-output
networks."""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import ARCHS
from PIL import Image

import darkforge
from darkforge.darknet.weights import save_darknet_weights
from darkforge.views.draw import draw
from darkforge.views.summary import table
from darkforge.weights import checkpoint

NANO = ["train", str(ARCHS / "darknet53.yaml"), "--scale", "nano"]


def image_folder(root, classes=4, per_class=(12, 4)):
    """root/train/<class>/*.png and root/test/<class>/*.png: each class its own colour."""
    g = torch.Generator().manual_seed(0)
    for split, count in zip(("train", "test"), per_class, strict=True):
        for k in range(classes):
            folder = root / split / f"kind{k}"
            folder.mkdir(parents=True)
            for i in range(count):
                base = torch.tensor([60 * k, 255 - 60 * k, 40 * (k % 2)])
                noise = torch.randint(0, 40, (16, 16, 3), generator=g)
                pixels = (base + noise).clamp(0, 255).to(torch.uint8).numpy()
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A nano darknet53 trained one epoch on 10 generated classes."""
    from click.testing import CliRunner

    from darkforge.cli import cli

    root = tmp_path_factory.mktemp("pre")
    args = [*NANO, "--data", "fake:256,64", "--epochs", "1", "--batch-size", "64", "--project", str(root)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return root / "train" / "weights" / "best.pt"


def test_fine_tune_on_4_classes_reports_the_new_head_and_freezes_bit_exactly(run_cli, tmp_path, pretrained):
    data = image_folder(tmp_path / "images")
    args = ["--data", f"imagefolder:{data}", "--epochs", "2", "--batch-size", "16", "--project", tmp_path]
    result = run_cli(*NANO, *args, "--weights", pretrained, "--freeze", "c3", "--name", "tune")
    assert result.exit_code == 0, result.output
    first = f"transferred 144/146 tensors from {pretrained} (144 by name, 0 by order and shape); "
    assert first + "re-initialised fc (10 → 4 classes)" in result.output
    run = tmp_path / "tune"
    saved = (run / "transfer.txt").read_text()
    assert saved.startswith(first) and "kept as initialised: fc (weight, bias)" in saved
    before = torch.load(pretrained, weights_only=True)["model"]
    after = torch.load(run / "weights" / "last.pt", weights_only=True)["model"]
    frozen = [k for k in after if k.split(".")[1] in ("stem", "stage1", "stage2", "c3")]
    assert len(frozen) == 84 and any("running_mean" in k for k in frozen)
    for key in frozen:  # weights and batch-norm statistics bit-identical
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(
        before["layers.c4.blocks.0.conv1.conv.weight"], after["layers.c4.blocks.0.conv1.conv.weight"]
    )
    # README-style eval of an imagefolder run: the checkpoint remembers its data
    result = run_cli("eval", run / "weights" / "best.pt")
    assert result.exit_code == 0, result.output
    assert "on 16 test images of" in result.output


def test_partial_darknet_weights_load_through_weights(run_cli, tmp_path):
    source = darkforge.build(ARCHS / "darknet53.yaml", scale="nano")
    report = save_darknet_weights(source, tmp_path / "darknet53.conv.20", cutoff=20)
    assert report.layers == 15
    args = ["--data", "fake:64,32", "--epochs", "1", "--batch-size", "32", "--project", tmp_path]
    result = run_cli(*NANO, *args, "--weights", tmp_path / "darknet53.conv.20")
    assert result.exit_code == 0, result.output
    assert "(Darknet layers: loaded 15 of 25 layers); re-initialised c4.blocks.0.conv1.conv" in result.output
    assert "transferred 75/122 tensors" in result.output


def test_build_with_weights_in_python(tmp_path, pretrained):
    with pytest.warns(UserWarning, match="re-initialised fc"):
        net = darkforge.build(ARCHS / "darknet53.yaml", scale="nano", classes=4, weights=pretrained)
    assert net.transfer.transferred == 144 and net.transfer.kept == ["layers.fc.weight", "layers.fc.bias"]
    model, _, _ = checkpoint.load_model(pretrained)
    assert torch.equal(
        net.state_dict()["layers.c5.down.conv.weight"], model.state_dict()["layers.c5.down.conv.weight"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # everything fits: no warning
        same = darkforge.build(ARCHS / "darknet53.yaml", scale="nano", weights=pretrained)
    assert same.transfer.complete


def test_transfer_by_order_between_spellings(tmp_path):
    a = darkforge.build(ARCHS / "darknet53.yaml", scale="nano")
    info = checkpoint.Inference(
        (ARCHS / "darknet53.yaml").read_text(), "darknet53.yaml", "nano", [f"c{i}" for i in range(10)],
        [3, 32, 32], [0.0] * 3, [1.0] * 3,
    )  # fmt: skip
    torch.save(
        {
            "format": "darkforge-checkpoint-1",
            "model": {f"x{i}": v for i, v in enumerate(a.state_dict().values())},
            "inference": info.as_dict(),
        },
        tmp_path / "renamed.pt",
    )
    b = darkforge.build(ARCHS / "darknet53.yaml", scale="nano", weights=tmp_path / "renamed.pt")
    assert b.transfer.by_order == 146 and b.transfer.by_name == 0


def test_freeze_is_refused_for_unknown_layers_before_anything_is_created(run_cli, tmp_path):
    result = run_cli(*NANO, "--data", "fake", "--epochs", "1", "--freeze", "c9", "--project", tmp_path)
    assert result.exit_code == 2 and "freeze: no layer 'c9'" in result.stderr
    assert not list(tmp_path.iterdir())


def test_feature_taps_match_summary():
    net = darkforge.build(ARCHS / "darknet53.yaml", features=["c3", "c4", "c5"], input_size=32).eval()
    with torch.no_grad():
        maps = net(torch.zeros(2, 3, 32, 32))
    assert [tuple(m.shape[1:]) for m in maps] == [(256, 4, 4), (512, 2, 2), (1024, 1, 1)]
    assert net.feature_shapes == [(256, 4, 4), (512, 2, 2), (1024, 1, 1)]
    plan = darkforge.plan(darkforge.load_spec(ARCHS / "darknet53.yaml").resolved(None, 32))
    assert [plan.shape_of(i) for i in (3, 4, 5)] == net.feature_shapes
    assert "fc" not in net.layers and "pool" not in net.layers  # nothing after the last tap is built
    # summary and draw mark the taps with the shapes the extractor returns
    rows = {line.split()[1]: line for line in table(plan, ["c3", "c4", "c5"]).splitlines()[4:12]}
    assert rows["c3"].endswith("<- 0") and "256×4×4    2,923,008  46,661,632" in rows["c3"]
    assert rows["c5"].endswith("<- 2")
    assert "<- " not in rows["stage2"]
    source = draw(plan, taps=["c3", "c4", "c5"]).source
    assert 'label=" 512×2×2" style=dashed' in source and "<B>tap 2</B><BR/>1024×1×1" in source


def test_a_multi_output_network_needs_a_chosen_output(run_cli, tmp_path):
    yolo = ARCHS / "yolo-mini.yaml"
    result = run_cli("train", yolo, "--data", "fake", "--epochs", "1", "--project", tmp_path)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "2 outputs (head5 27×8×8, head4 27×16×16)" in result.stderr and "--output ID" in result.stderr
    assert not list(tmp_path.iterdir())
    args = ["--data", "fake:64,32", "--epochs", "1", "--batch-size", "32", "--project", tmp_path]
    result = run_cli("train", yolo, *args, "--output", "p5")
    assert result.exit_code == 0, result.output
    arch = (tmp_path / "train" / "arch.yaml").read_text()
    assert "up to p5, then a classification head (GlobalAvgPool, Linear 'fc')" in arch
    model, _, _ = checkpoint.load_model(tmp_path / "train" / "weights" / "best.pt")
    assert model.plan.output_shapes == [(10,)]
    # its backbone moves into the detector by name
    with pytest.warns(UserWarning, match="re-initialised lateral.conv"):  # the neck and heads are new
        detector = darkforge.build(yolo, weights=tmp_path / "train" / "weights" / "best.pt")
    assert detector.transfer.by_name == len(model.state_dict()) - 2  # all but the new head


def test_fine_tuning_a_nano_run_uses_its_scale_or_refuses(run_cli, tmp_path):
    """The first-hour trap: --weights from a nano run without --scale built the full network and
    trained it from scratch. Now the checkpoint's scale is used, or the mismatch is one line."""
    from conftest import ROOT

    arch = str(ROOT / "archs" / "darknet53.yaml")
    base = ["--data", "fake:64,32", "epochs=1", "--project", tmp_path]
    assert run_cli("train", arch, "--scale", "nano", *base, "--name", "nano").exit_code == 0
    tuned = run_cli("train", arch, *base, "--name", "ft", "--weights", tmp_path / "nano")
    assert tuned.exit_code == 0, tuned.output
    assert "transferred 146/146 tensors" in tuned.output
    alone = run_cli("train", *base, "--name", "alone", "--weights", tmp_path / "nano" / "weights" / "best.pt")
    assert alone.exit_code == 0 and "transferred 146/146 tensors" in alone.output
    wrong = run_cli(
        "train", arch, *base, "--name", "wrong", "--weights", tmp_path / "nano", "--scale", "tiny"
    )
    assert wrong.exit_code == 2 and "only 25 of 182 tensors fit darknet53.yaml at scale tiny" in wrong.output
    assert "they are darknet53.yaml at scale nano; add --scale nano" in wrong.output
    assert not (tmp_path / "wrong").exists()
    partial = run_cli("train", arch, *base, "--name", "p", "--weights", tmp_path / "nano", "--scale", "tiny",
                      "--weights-partial")  # fmt: skip
    assert partial.exit_code == 0 and "transferred 25/182" in partial.output
