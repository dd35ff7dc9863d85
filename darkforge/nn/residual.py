"""Zero-init of residual branches (Goyal et al., 2017): each residual add starts as the identity,
by a zero scale on the last batch norm of its branch, as torchvision's `zero_init_residual`.

Read off the graph, not off module classes, so every way of writing a residual gets it: a
`Shortcut` in the file (Darknet's `from: -3`), one inside a user block (ResNet's `Basic` and
`Bottleneck`), or the built-in `ResidualBlock`. Of an add's inputs, the branch is the one with the
longest chain of single-reader layers back to where the paths fork; the identity (length 0) and a
projection shortcut (length 1) are shorter, so torchvision's choice (bn2/bn3, never the
downsample's) falls out. An add whose longest chain is shared by two inputs has no one branch and
is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from darkforge.nn.layers import ResidualBlock, Shortcut


def zero_init_residual(model: nn.Module) -> list[nn.Module]:
    """Zero the scale of each residual branch's last batch norm; returns those norms."""
    zeroed: list[nn.Module] = []
    for module in model.modules():
        if isinstance(module, ResidualBlock):  # x + conv2(conv1(x)), the add inside its forward
            norm = last_norm(module.conv2)
            zeroed += [norm] if norm is not None else []
        graph = _graph(module)
        if graph is not None:
            zeroed += _graph_norms(*graph)
    for norm in zeroed:
        nn.init.zeros_(norm.weight)  # type: ignore[arg-type]
    return zeroed


def _graph(module: nn.Module) -> tuple[list[nn.Module], Sequence[tuple[int, ...]]] | None:
    """(layer modules, their sources) of a Network or a BlockModule: the graphs darkforge runs."""
    sources = getattr(module, "_sources", None)
    if sources is None:
        return None
    layers = getattr(module, "layers", None)
    children = list(layers.values()) if isinstance(layers, nn.ModuleDict) else list(module.children())
    return children, sources


def _graph_norms(modules: list[nn.Module], sources: Sequence[tuple[int, ...]]) -> list[nn.Module]:
    readers: dict[int, int] = {}
    for reads in sources:
        for s in reads:
            readers[s] = readers.get(s, 0) + 1
    found = []
    for index, module in enumerate(modules):
        if not isinstance(module, Shortcut):
            continue
        chains = sorted((_chain(s, modules, sources, readers), s) for s in sources[index])
        (longest, branch), rest = chains[-1], chains[:-1]
        if longest == 0 or any(length == longest for length, _ in rest):
            continue
        norm = _branch_norm(branch, modules, sources)
        if norm is not None:
            found.append(norm)
    return found


def _chain(
    start: int, modules: Sequence[nn.Module], sources: Sequence[tuple[int, ...]], readers: dict[int, int]
) -> int:
    """How many layers lead from the fork (a layer read twice, or a graph input) to `start`."""
    length, i = 0, start
    while i >= 0 and readers.get(i, 0) == 1:
        length += 1
        reads = sources[i]
        if len(reads) != 1:
            break
        i = reads[0]
    return length


def _branch_norm(
    i: int, modules: Sequence[nn.Module], sources: Sequence[tuple[int, ...]]
) -> nn.Module | None:
    """The last batch norm on the path into layer `i`, through parameter-free one-input layers
    (an activation, a Dropout) but not through a layer with weights."""
    while i >= 0:
        norm = last_norm(modules[i])
        if norm is not None:
            return norm
        if any(True for _ in modules[i].parameters()) or len(sources[i]) != 1:
            return None
        i = sources[i][0]
    return None


def last_norm(module: nn.Module) -> nn.Module | None:
    """The batch norm a module's output leaves last through, if nothing with weights follows it:
    ConvLayer's `bn` (before its activation), the last copy of a repeat, a block's output layer."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return module if module.affine else None
    graph = _graph(module)
    if graph is not None:
        modules, sources = graph
        outputs = getattr(module, "_outputs", (len(modules) - 1,))
        return _branch_norm(outputs[0], modules, sources) if len(outputs) == 1 else None
    for child in reversed(list(module.children())):
        norm = last_norm(child)
        if norm is not None:
            return norm
        if any(True for _ in child.parameters()):
            return None
    return None
