"""The package's public face: what `dir(darkforge)` lists, and renamed names that still work."""

from __future__ import annotations

import subprocess
import sys

import pytest

import darkforge


def test_dir_lists_the_public_api_and_not_the_modules_imports():
    names = dir(darkforge)
    assert {"build", "train", "load_spec", "plan", "register", "Network", "LayerCost"} <= set(names)
    assert not {"Any", "TYPE_CHECKING", "importlib", "warnings", "annotations"} & set(names)
    assert all(hasattr(darkforge, name) for name in names if name != "__version__")


def test_a_renamed_name_works_for_a_release_with_a_warning():
    with pytest.warns(DeprecationWarning, match=r"darkforge.Cost is now darkforge.LayerCost"):
        assert darkforge.Cost is darkforge.LayerCost
    with pytest.raises(AttributeError, match="no attribute 'Costs'"):
        darkforge.Costs  # noqa: B018


def test_the_public_names_import_without_torch_until_used():
    code = "import sys, darkforge; dir(darkforge); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
