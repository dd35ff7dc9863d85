"""The package's shape: parts in subpackages, imports pointing one way, torch only where tensors run."""

from __future__ import annotations

import ast
import subprocess
import sys
import sysconfig
import zipfile

import grimp
import pytest
from conftest import ROOT

PACKAGE = ROOT / "darkforge"
PARTS = ("spec", "nn", "views", "darknet", "weights", "training", "export", "benchmark", "cli")
HEAVY = (
    "torch",
    "torchvision",
    "matplotlib",
    "onnx",
    "onnxscript",
    "onnxruntime",
    "safetensors",
    "PIL",
    "numpy",
)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("darkforge", include_external_packages=True)


def test_every_part_is_a_subpackage():
    for part in PARTS:
        assert (PACKAGE / part / "__init__.py").is_file(), part
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "errors.py", "files.py"]


# TODO(darknet helper): darknet/ is being split into one file per section (darknet/sections/);
# drop this exclusion once its functions are under the cap too.
NOT_YET_CAPPED = ("darknet",)


def test_no_function_over_60_lines():
    # What hurts a reader is a long function, not a long file of one concept.
    long = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] in NOT_YET_CAPPED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > 60:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.name} ({lines} lines)")
    assert long == []


def test_no_file_over_800_lines():
    # A loose bound on a file (one concept); functions are what the cap above keeps short.
    long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 800
    }
    assert long == {}


def test_the_dialect_imports_without_torch():
    # torch made unimportable: `import darkforge.spec` and a whole validation still work
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['numpy'] = None\n"
        "import darkforge.spec, darkforge\n"
        f"spec = darkforge.load_spec({str(ROOT / 'archs' / 'darknet53.yaml')!r})\n"
        "print(darkforge.plan(spec.resolved()).params)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "40595178"


def test_no_import_cycles(graph):
    modules = {m for m in graph.modules if m.startswith("darkforge")}
    edges = {m: {t for t in graph.find_modules_directly_imported_by(m) if t in modules} for m in modules}
    cycles = [c for c in _strongly_connected(edges) if len(c) > 1]
    assert cycles == []


def test_function_level_imports_are_only_for_heavy_modules(graph):
    # An import inside a function must defer a heavy dependency (torch and friends), never dodge a cycle:
    # either it names a heavy package, or the darkforge module it names pulls one in.
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                for name in _imported(inner, graph.modules):
                    if name.split(".")[0] in HEAVY:
                        continue
                    if name.startswith("darkforge") and _pulls_heavy(graph, name):
                        continue
                    offenders.append(f"{path.relative_to(ROOT)}:{inner.lineno}: {name}")
    assert offenders == []


def test_export_formats_are_listed_torch_free():
    from darkforge.export import SUFFIXES
    from darkforge.export.formats import FORMATS

    assert {name: form.suffix for name, form in FORMATS.items()} == SUFFIXES


def test_the_wheel_carries_the_archs_without_a_symlink(tmp_path):
    assert not (PACKAGE / "archs").exists()  # the top-level archs/ is mapped in by pyproject.toml
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("darkforge-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    assert {f"darkforge/archs/{p.name}" for p in (ROOT / "archs").glob("*.yaml")} <= set(names)
    # The extracted wheel as the only darkforge (-S: no .pth files, so not this clone's editable
    # install), its dependencies from this environment, run from a folder without archs/.
    path = f"{site}:{sysconfig.get_paths()['purelib']}"
    for args in (["summary", "darknet53"], ["summary"]):
        code = f"import darkforge, sys; from darkforge.cli import main; print(darkforge.__file__); sys.argv = ['darkforge', *{args!r}]; main()"
        out = subprocess.run(
            [sys.executable, "-S", "-c", code],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={"PYTHONPATH": path, "PATH": "/usr/bin:/bin"},
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith(str(site / "darkforge"))
        assert "params   40,595,178" in out.stdout


def _imported(node: ast.AST, modules: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        # `from darkforge.training import loop` imports the submodule darkforge.training.loop
        return [
            f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
            for a in node.names
        ]
    return []


def _pulls_heavy(graph: grimp.ImportGraph, module: str) -> bool:
    return any(
        graph.find_shortest_chain(module, heavy)
        for heavy in ("torch", "matplotlib")
        if heavy in graph.modules
    )


def _strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[set[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.add(top)
                        if top == node:
                            break
                    result.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return result
