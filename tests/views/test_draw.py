"""`darkforge draw`: the graph's structure is checked on the DOT source (no `dot` binary needed);
real SVG/PNG renders run only where Graphviz is installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import ClassVar, Literal

import graphviz
import pytest
from conftest import ARCHS, ROOT

from darkforge import load_spec, plan
from darkforge.spec.base import LayerCost, LayerSpec, NetworkSpec, Operand
from darkforge.views.draw import LOOKS, draw

SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's `dot` is not installed")
NODE = re.compile(r"^\t+(\w+) \[label=(.*)\]$", re.M)
EDGE = re.compile(r"^\t+(\w+)(?::\w+)? -> (\w+)(?::\w+)? \[(.*)\]$", re.M)
TITLE = re.compile(r"^\t+T\d+ \[label=<<B>(.*?)</B>", re.M)


def source(arch: str = "darknet53", **options: object) -> str:
    g = draw(plan(load_spec(ARCHS / f"{arch}.yaml").resolved()), **options)  # type: ignore[arg-type]
    return g.source


def nodes(dot: str) -> dict[str, str]:
    return dict(NODE.findall(dot))


def edges(dot: str) -> list[tuple[str, str, str]]:
    return EDGE.findall(dot)


def clusters(dot: str) -> list[str]:
    """Titles of the stage clusters (title nodes beside each stage, not the dashed ×N boxes), in order."""
    return TITLE.findall(dot)


def test_darknet53_collapsed_view():
    dot = source()
    found = nodes(dot)
    # input, stem, 5 × (downsample, ResidualBlock ×N, +), pool, fc, output
    layers = {k: v for k, v in found.items() if not k.startswith("T")}  # T: the stage titles
    assert len(layers) == 20 <= 25
    assert clusters(dot) == ["stage1", "stage2", "c3", "c4", "c5"]
    assert re.findall(r"<B>ResidualBlock ×(\d+)</B>", dot) == ["1", "2", "8", "8", "4"]
    assert "3×3 /2, 256 filters" in found["L12"]  # c3's downsample conv, by its flat number
    assert "input" in found["input"] and "3×32×32" in found["input"]
    assert "output" in found["output0"] and "fc" in found["output0"]
    # every edge carries a shape (or says it is the skip); five skips loop around the blocks
    for _tail, _head, attrs in edges(dot):
        assert re.search(r'label=" (\d+(×\d+)*|skip)"', attrs), attrs
    skips = [e for e in edges(dot) if "dashed" in e[2]]
    assert [(t, h) for t, h, _ in skips] == [(f"R{i}", f"A{i}") for i in (2, 6, 13, 38, 63)]
    assert any(t == "L12" and h == "R13" and "256×4×4" in a for t, h, a in edges(dot))


def test_expand_draws_every_layer():
    dot = source(expand=True)
    found = nodes(dot)
    layers = {k: v for k, v in found.items() if k.startswith("L")}
    assert len(layers) == 77  # Darknet's numbering: darknet53-flat.yaml
    assert sum("ConvBnLeaky" in label for label in layers.values()) == 52
    assert sum(label.startswith('"+"') for label in layers.values()) == 23
    assert not any(k.startswith(("R", "A")) for k in found)
    assert clusters(dot) == ["stage1", "stage2", "c3", "c4", "c5"]
    assert "ResidualBlock" not in dot and "cluster_run" not in dot
    # each Shortcut adds the block input: an edge from 3 layers back, drawn dashed
    assert ("L1", "L4") in {(t, h) for t, h, a in edges(dot) if "dashed" in a}


def test_both_spellings_draw_the_same_picture():
    staged, flat = source("darknet53"), source("darknet53-flat")
    assert nodes(staged).keys() == nodes(flat).keys()
    assert edges(staged) == edges(flat)
    assert clusters(staged) == clusters(flat)


def test_multi_output_graph_with_route_and_upsample():
    dot = source("yolo-mini")
    found, links = nodes(dot), edges(dot)
    assert "27×8×8" in found["output0"] and "head5" in found["output0"]
    assert "27×16×16" in found["output1"] and "head4" in found["output1"]
    assert clusters(dot) == ["stage 1", "p4", "p5"]  # a stage without an id is numbered
    route = next(name for name, label in found.items() if "Route" in label)
    into_route = {(t, a) for t, h, a in links if h == route}
    # the Route concatenates the upsampled map (main line) and p4's output (a jump, dashed)
    assert {t for t, _ in into_route} == {"L15", "A6"}
    assert all("dashed" in a for t, a in into_route if t == "A6")
    assert "×2 nearest" in found["L15"]
    assert any(t == "L13" and h == "L15" and "64×8×8" in a for t, h, a in links)  # Upsample from lateral


class Mystery(LayerSpec):  # a plugin type, not registered: plan() needs only the spec
    type: Literal["Mystery"] = "Mystery"
    arity: ClassVar[tuple[int, int | None]] = (1, 1)

    def infer(self, inputs: Sequence[Operand]) -> LayerCost:
        c, h, w = inputs[0].shape
        return LayerCost((c, h, w), params=7)


def test_an_unknown_layer_type_gets_a_generic_label():
    assert "Mystery" not in LOOKS
    spec = NetworkSpec(name="plugin", input={"size": 8}, layers=[Mystery()])  # type: ignore[arg-type, list-item]
    found = nodes(draw(plan(spec)).source)
    assert found["L0"].startswith("<<B>Mystery</B>") and "7 params" in found["L0"]


def test_rankdir_and_bad_rankdir():
    assert "rankdir=LR" in source("yolo-mini", rankdir="LR")
    with pytest.raises(ValueError, match="rankdir"):
        source("yolo-mini", rankdir="BT")


def test_scale_and_input_size_reach_the_picture(run_cli, tmp_path):
    out = tmp_path / "tiny.dot"
    result = run_cli("draw", ARCHS / "darknet53.yaml", "--scale", "tiny", "--input-size", "64", "-o", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "3×64×64" in text and "512×2×2" in text  # tiny: half the widths; c5 at 64/32
    assert "ResidualBlock ×4" in text  # 8 blocks × depth 0.5


# -- the command -------------------------------------------------------------------------------


def test_dot_format_needs_no_binary(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    result = run_cli("draw", ARCHS / "yolo-mini.yaml", "--format", "dot")
    assert result.exit_code == 0, result.output
    assert result.stdout == "wrote yolo-mini.dot\n"  # default name: the arch's name, here
    assert (tmp_path / "yolo-mini.dot").read_text().startswith('digraph "yolo-mini"')
    assert run_cli("draw", ARCHS / "yolo-mini.yaml", "-o", "g.gv").exit_code == 0  # format from suffix
    assert (tmp_path / "g.gv").read_text().startswith("digraph")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.gv", "yolo-mini.dot"]  # no temp files left


def test_dot_to_stdout(run_cli):
    result = run_cli("draw", ARCHS / "yolo-mini.yaml", "--format", "dot", "-o", "-")
    assert result.exit_code == 0
    assert result.stdout.startswith('digraph "yolo-mini"')


def test_missing_dot_binary_is_one_line(run_cli, tmp_path, monkeypatch):
    def missing(*args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(graphviz.Digraph, "pipe", missing)
    old = tmp_path / "d.png"
    old.write_bytes(b"an older picture")
    result = run_cli("draw", ARCHS / "darknet53.yaml", "-o", old)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    for words in ("`dot`", "Debian/Ubuntu", "apt install graphviz", "brew install graphviz", "--format dot"):
        assert words in lines[0]
    assert list(tmp_path.iterdir()) == [old] and old.read_bytes() == b"an older picture"


def test_missing_dot_on_path(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = run_cli("draw", ARCHS / "yolo-mini.yaml", "-o", tmp_path / "y.svg")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "install Graphviz" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "out.jpg"], "cannot tell the format of 'out.jpg'"),
        (["-o", "missing/out.dot"], "directory missing does not exist"),
        (["--rankdir", "BT"], "Invalid value for '--rankdir'"),
        (["--scale", "huge", "--format", "dot"], "has no scale 'huge'"),
    ],
)
def test_bad_usage_is_one_line(run_cli, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = run_cli("draw", ARCHS / "darknet53.yaml", *args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_unwritable_directory_is_one_line(run_cli, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root ignores the mode: fail the write the way the OS would
        real_open = os.open

        def denied(path, flags, *args, **kwargs):
            if flags & os.O_CREAT:  # writes only; reading the arch must still work
                raise PermissionError(13, "Permission denied")
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", denied)
    try:
        result = run_cli("draw", ARCHS / "darknet53.yaml", "--format", "dot", "-o", locked / "d.dot")
    finally:
        locked.chmod(0o700)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "Permission denied" in result.stderr, result.stderr
    assert list(locked.iterdir()) == []


def test_a_bad_arch_file_is_one_line(run_cli, write):
    path = write("bad.yaml", "name: bad\ninput: {size: 8}\nlayers:\n  - {type: ConvBnLeaky}\n")
    result = run_cli("draw", path, "--format", "dot")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "bad.yaml:4" in result.stderr


def test_draw_never_imports_torch():
    code = (
        "import sys; from click.testing import CliRunner; from darkforge.cli import cli; "
        f"r = CliRunner().invoke(cli, ['draw', {str(ARCHS / 'darknet53.yaml')!r}, '--format', 'dot', '-o', '-']); "
        "assert r.exit_code == 0, r.output; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@needs_dot
def test_renders_svg(run_cli, tmp_path):
    out = tmp_path / "out.svg"
    result = run_cli("draw", ARCHS / "darknet53.yaml", "-o", out)
    assert result.exit_code == 0, result.output
    svg = ET.parse(out).getroot()
    assert svg.tag == SVG + "svg"
    groups = svg.iter(SVG + "g")
    assert sum(g.get("class") == "node" for g in groups) == 25  # 20 layers and 5 stage titles
    text = " ".join(t.text or "" for t in svg.iter(SVG + "text"))
    for words in ("stage1", "stage2", "c3", "c4", "c5", "×1", "×2", "×8", "×4", "256×4×4", "skip"):
        assert words in text


@needs_dot
def test_renders_png_and_format_flag_wins(run_cli, tmp_path):
    out = tmp_path / "picture.svg"
    result = run_cli("draw", ARCHS / "yolo-mini.yaml", "--format", "png", "--rankdir", "LR", "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert [p.name for p in tmp_path.iterdir()] == ["picture.svg"]


@needs_dot
def test_expanded_svg_has_a_node_per_layer(run_cli, tmp_path):
    out = tmp_path / "x.svg"
    assert run_cli("draw", ARCHS / "darknet53.yaml", "--expand", "-o", out).exit_code == 0
    svg = ET.parse(out).getroot()
    titles = [g.findtext(SVG + "title") for g in svg.iter(SVG + "g")]
    assert {f"L{i}" for i in range(77)} <= set(titles)


def test_weights_that_only_see_padding_are_pointed_out():
    # DESIGN.md §1: at 32×32 the last stage runs on 1×1 maps; 19,398,656 weights never learn
    found = nodes(source())
    assert "2.62M weights see only zero padding" in found["L62"]  # c5's downsample: 5 of 9 taps
    assert "16.8M weights see only zero padding" in found["R63"]  # 4 blocks: 8 of 9 taps each
    big = draw(plan(load_spec(ARCHS / "darknet53.yaml").resolved(input_size=64))).source
    assert "zero padding" not in big


def test_a_run_splits_where_another_layer_reads_it(write):
    path = write(
        "mid.yaml",
        "name: mid\ninput: {size: 32}\nclasses: 10\nlayers:\n"
        "  - {type: ConvBnLeaky, filters: 32}\n"
        "  - {type: ConvBnLeaky, filters: 64, stride: 2}\n"
        "  - {type: ResidualBlock}\n  - {type: ResidualBlock}\n  - {type: ResidualBlock, id: mid}\n"
        "  - {type: ResidualBlock}\n  - {type: ResidualBlock}\n"
        "  - {type: Route, from: [-1, mid]}\n  - {type: GlobalAvgPool}\n  - {type: Linear}\n",
    )
    dot = draw(plan(load_spec(path).resolved())).source
    assert re.findall(r"<B>ResidualBlock ×(\d+)</B>", dot) == ["3", "2"]
    assert clusters(dot) == ["stage 1"]  # the downsample and both runs: one stage
    found = nodes(dot)
    assert "mid" in found["R2"]  # the id sits on the run it ends
    assert any(t == "A2" and "dashed" in a for t, h, a in edges(dot) if h == "L17")  # the Route's jump


@pytest.mark.parametrize("arch", ["resnet50", "efficientnet_b0"])
def test_block_networks_draw_as_written_in_few_nodes(arch):
    dot = source(arch)
    found = nodes(dot)
    boxes = {k: v for k, v in found.items() if not k.endswith("title")}
    assert len(boxes) <= 30
    repeats = re.findall(r"<B>(\w+) ×(\d+)</B>", dot)
    assert repeats and all(int(n) > 1 for _, n in repeats)  # each repeat is one node ×N
    uses = re.findall(r"subgraph cluster_(\d+) \{", dot)
    assert len(uses) == (4 if arch == "resnet50" else 7)  # one cluster per use
    runs = re.findall(r"subgraph cluster_L\w+ \{\n[^\n]*label=<<B>×(\d+)</B>>", dot)
    assert sorted(runs) == sorted(n for _, n in repeats)  # each repeat in a dashed box ×N
    titles = [v for k, v in found.items() if k.endswith("title")]
    assert len(titles) == len(uses)


def test_a_shortcut_s_activation_is_shown():
    dot = source("resnet18")
    assert "+ relu" in dot  # inside the Basic block clusters, the add is followed by relu


def test_the_legend_names_only_the_types_drawn():
    title = re.search(r"label=<(<B>resnet50</B>.*?)>\n", source("resnet50"), re.S)
    assert title is not None and "ConvBnLeaky" not in title.group(1) and "Conv = " in title.group(1)


def test_summary_and_draw_mark_feature_taps_from_the_command_line(run_cli, tmp_path):
    table = run_cli("summary", ARCHS / "darknet53.yaml", "--features", "c3,c4,c5").stdout
    assert [line.split()[1] for line in table.splitlines() if "<- " in line] == ["c3", "c4", "c5"]
    result = run_cli("draw", ARCHS / "darknet53.yaml", "--features", "c3,c5", "--format", "dot", "-o", "-")
    assert result.exit_code == 0 and "tap 0" in result.stdout and "tap 1" in result.stdout
    bad = run_cli("summary", ARCHS / "darknet53.yaml", "--features", "c9")
    assert bad.exit_code == 2 and "--features: no layer 'c9'" in bad.stderr
