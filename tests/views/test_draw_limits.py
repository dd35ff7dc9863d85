"""`draw` of hostile graphs (issue 22): a Route reading one layer 5,000 times is one edge
(and the main line) labelled ×4999 with a short tooltip; a drawing Graphviz could not lay out in reasonable time is
refused with one line before `dot` runs (the DOT source is still written with --format dot)."""

from __future__ import annotations

import shutil

import graphviz
import pytest

HEAD = "name: r\ninput: {channels: 3, size: 8}\nlayers:\n  - {type: Conv, filters: 1, size: 1}\n"


def test_a_route_of_5000_inputs_draws_one_edge(run_cli, write, tmp_path):
    path = write("r.yaml", HEAD + "  - {type: Route, from: [" + ", ".join(["0"] * 5000) + "]}\n")
    result = run_cli("draw", path, "--format", "dot", "-o", tmp_path / "r.dot")
    assert result.exit_code == 0, result.output
    dot = (tmp_path / "r.dot").read_text()
    assert '\tL0 -> L1 [label=" 1×8×8" weight=10]' in dot.splitlines()  # the first input: the main line
    assert '\tL0 -> L1 [label=" 1×8×8 ×4999" color=' in dot  # the other 4,999: one dashed edge
    assert dot.count("->") == 4 and len(dot) < 2000
    assert "1×8×8, 1×8×8, 1×8×8, 1×8×8, … (5000 inputs) → 5000×8×8" in dot


def test_parallel_edges_from_different_layers_stay_apart(run_cli, write, tmp_path):
    path = write(
        "r.yaml", HEAD + "  - {type: Conv, filters: 2, size: 1}\n  - {type: Route, from: [0, 1, 0]}\n"
    )
    assert run_cli("draw", path, "--format", "dot", "-o", tmp_path / "r.dot").exit_code == 0
    dot = (tmp_path / "r.dot").read_text()
    assert "L0 -> L2" in dot and "L1 -> L2" in dot and "×2" in dot


def test_a_drawing_too_big_to_lay_out_is_refused_before_dot(run_cli, write, tmp_path, monkeypatch):
    monkeypatch.setattr(
        graphviz.Digraph, "pipe", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran dot"))
    )
    rows = "".join(f"  - {{type: Route, from: [{k}, 0]}}\n" for k in range(4000))
    path = write("wide.yaml", HEAD + rows)
    result = run_cli("draw", path, "-o", tmp_path / "w.svg")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "more than Graphviz lays out in reasonable time (8,000)" in lines[0], lines
    assert "--format dot" in lines[0] and not (tmp_path / "w.svg").exists()
    assert run_cli("draw", path, "--format", "dot", "-o", tmp_path / "w.dot").exit_code == 0


def test_dot_quitting_mid_graph_is_one_line_not_a_silent_exit(run_cli, write, tmp_path, monkeypatch):
    """Base darkforge exited 1 with no word when `dot` died on a huge tooltip (click's EPIPE rule)."""

    def quits(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(graphviz.Digraph, "pipe", quits)
    result = run_cli("draw", write("r.yaml", HEAD), "-o", tmp_path / "r.svg")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: Graphviz's `dot` failed to render svg: it stopped reading the graph; "
        "write its source with --format dot"
    ]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's `dot` is not installed")
def test_the_route_of_5000_inputs_renders(run_cli, write, tmp_path):
    path = write("r.yaml", HEAD + "  - {type: Route, from: [" + ", ".join(["0"] * 5000) + "]}\n")
    result = run_cli("draw", path, "-o", tmp_path / "r.svg")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.svg").read_text().count("×4999") == 1
