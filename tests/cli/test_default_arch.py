"""The mission's usage line works as written: `darkforge summary` with no ARCH."""

from __future__ import annotations

from conftest import ARCHS


def test_summary_without_arch_uses_the_shipped_darknet53(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no archs/ here: the package's own darknet53
    result = run_cli("summary")
    assert result.exit_code == 0, result.output
    assert "40,595,178" in result.stdout
    assert "no ARCH given: using" in result.stderr and "darknet53.yaml" in result.stderr


def test_summary_without_arch_prefers_the_local_file(run_cli, tmp_path, monkeypatch):
    (tmp_path / "archs").mkdir()
    text = (ARCHS / "darknet53.yaml").read_text().replace("classes: 10", "classes: 4")
    (tmp_path / "archs" / "darknet53.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    result = run_cli("summary", "--json")
    assert result.exit_code == 0, result.output
    assert "archs/darknet53.yaml" in result.stderr
    assert '"outputs": [\n    [\n      4' in result.stdout


def test_draw_and_train_take_the_default_too(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("draw", "--format", "dot", "-o", "d53.dot")
    assert result.exit_code == 0, result.output
    assert "digraph" in (tmp_path / "d53.dot").read_text() and "c5" in (tmp_path / "d53.dot").read_text()
    result = run_cli("train", "--scale", "huge", "--project", tmp_path / "runs")
    assert result.exit_code == 2 and "no ARCH given: using" in result.stderr
    assert "darknet53 has no scale 'huge'" in result.stderr and not (tmp_path / "runs").exists()
