"""Every recipe key from the command line: KEY=VALUE words and --recipe FILE, checked up front."""

from __future__ import annotations

import pytest
import yaml
from conftest import ROOT

from darkforge.errors import SpecError, UsageError
from darkforge.training.settings import is_setting, parse_settings, read_recipe_file

NANO = ["train", str(ROOT / "archs" / "darknet53.yaml"), "--scale", "nano", "--data", "fake:64,32"]


def test_key_value_words_become_nested_recipe_settings():
    got = parse_settings(["lr=0.05", "optimizer=adamw", "augment.cutout=8", "ema=0.999", "tta_flip=false"])
    assert got == {
        "lr": 0.05,
        "optimizer": "adamw",
        "augment": {"cutout": 8},
        "ema": 0.999,
        "tta_flip": False,
    }
    assert is_setting("lr=0.05") and not is_setting("archs/a=b.yaml") and not is_setting("darknet53")


@pytest.mark.parametrize(
    "word, hint", [("lrr=0.05", "did you mean 'lr'?"), ("augment.cutot=4", "augment.cutout")]
)
def test_a_misspelt_key_suggests_the_nearest(word, hint):
    with pytest.raises(UsageError) as e:
        parse_settings([word])
    assert "unknown recipe key" in str(e.value) and hint in str(e.value)


def test_train_records_the_settings_and_flags_win(run_cli, tmp_path):
    args = [*NANO, "epochs=1", "lr=0.05", "optimizer=adamw", "augment.cutout=4", "--project", tmp_path]
    result = run_cli(*args, "--batch-size", "32")
    assert result.exit_code == 0, result.output
    recorded = yaml.safe_load((tmp_path / "train" / "args.yaml").read_text())["recipe"]
    assert (recorded["lr"], recorded["optimizer"], recorded["batch"], recorded["epochs"]) == (
        0.05,
        "adamw",
        32,
        1,
    )
    assert recorded["augment"] == {"crop": 4, "flip": True, "cutout": 4, "mixup": 0.0, "cutmix": 0.0}
    bad = run_cli(*NANO, "lrr=0.05", "--project", tmp_path)
    assert bad.exit_code == 2 and "did you mean 'lr'?" in bad.output and not (tmp_path / "train2").exists()


def test_a_recipe_file_sits_under_the_flags(run_cli, tmp_path, write):
    recipe = write("short.yaml", "epochs: 1\nlr: 0.02\nbatch: 16\naugment: {flip: false}\n")
    result = run_cli(*NANO, "--recipe", recipe, "batch=32", "--project", tmp_path)
    assert result.exit_code == 0, result.output
    recorded = yaml.safe_load((tmp_path / "train" / "args.yaml").read_text())["recipe"]
    assert (recorded["epochs"], recorded["lr"], recorded["batch"], recorded["augment"]["flip"]) == (
        1,
        0.02,
        32,
        False,
    )
    typo = write("typo.yaml", "epochs: 1\nlrr: 0.02\n")
    with pytest.raises(SpecError) as e:
        read_recipe_file(str(typo))
    assert "typo.yaml:2" in str(e.value) and "did you mean 'lr'?" in str(e.value)
