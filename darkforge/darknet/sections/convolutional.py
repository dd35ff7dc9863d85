"""[convolutional] / [conv] (parse_convolutional of both Darknets): a core Conv or ConvBnLeaky where
it computes the same thing, else the fork's DarknetConv (strides per axis, dilation, antialiasing,
xnor, share_index, the fork's activations)."""

from __future__ import annotations

from typing import Any

from darkforge.darknet import fork
from darkforge.darknet.catalog import DarknetSection, Options
from darkforge.darknet.cfgtext import ACTIVATIONS, Section
from darkforge.darknet.rulekit import Graph, make
from darkforge.darknet.writekit import darknet_activation, fmt, strides
from darkforge.spec.base import LayerSpec
from darkforge.spec.layers import Conv, ConvBnLeaky

# Keys of [convolutional] the fork reads that change the computation, with the value honoured.
REFUSED = {"binary": 0, "flipped": 0, "dot": 0, "cbn": 0}
REFUSED |= {"assisted_excitation": 0, "sway": 0, "rotate": 0, "stretch": 0}
REFUSED |= {"stretch_sway": 0, "grad_centr": 0, "reverse": 0, "coordconv": 0, "angle": 15}
REFUSED |= {"stream": -1, "wait_stream": -1}
NO_SHARE = -1000000000  # the fork's share_index default: no sharing


def _strides(s: Section, default: int) -> tuple[int, int]:
    """(stride_x, stride_y): parse_convolutional reads `stride` only where one of them is missing."""
    stride = s.get("stride", "int", default)
    return s.get("stride_x", "int", stride), s.get("stride_y", "int", stride)


def _padding(s: Section, size: int) -> int:
    padding = s.get("padding", "int", 0)
    if s.get("pad", "int", 0):  # Darknet: any `pad` means size // 2, whatever `padding` says
        padding = size // 2
    return int(padding)


def read(s: Section, graph: Graph) -> LayerSpec:
    size = s.get("size", "int", 1)
    padding = _padding(s, size)
    sx, sy = _strides(s, 1)
    dilation = 1 if size == 1 else s.get("dilation", "int", 1)  # Darknet ignores it on 1×1 convs
    s.seen.add("dilation")
    antialiasing = s.get("antialiasing", "int", 0)
    xnor = s.get("xnor", "flag", False)
    bin_output = s.get("bin_output", "flag", False)
    groups = 1 if xnor else s.get("groups", "int", 1)  # make_convolutional_layer: xnor forces groups=1
    s.seen.add("groups")
    activation = s.get("activation", "activation", "logistic")
    bn = s.get("batch_normalize", "flag", False)
    filters = s.get("filters", "int", 1)
    layout = weight_layout(filters, graph.tensor(s.index - 1).shape[0], groups, size, bn)
    share = _share(s, graph, layout)
    graph.convs[s.index] = layout  # a later share_index may name this conv
    core = ACTIVATIONS.get(activation)
    plain = sx == sy and dilation == 1 and not antialiasing and not xnor and not bin_output
    if plain and share is None and core is not None:
        fields: dict[str, Any] = {"filters": filters, "size": size, "stride": sx, "groups": groups}
        fields["activation"] = core
        if padding != size // 2 or size % 2 == 0:  # an even kernel's pad is always written out
            fields["pad"] = padding
        if bn:
            fields["bn"] = graph.bn
        return make(s, ConvBnLeaky if bn else Conv, fields)
    fields = {"filters": filters, "size": size, "stride": sx, "stride_y": None if sy == sx else sy}
    fields |= {"padding": padding, "dilation": dilation, "groups": groups, "bn": graph.bn if bn else False}
    fields |= {"activation": activation, "antialiasing": antialiasing, "xnor": xnor, "bin_output": bin_output}
    return make(s, fork.DarknetConv, fields | {"share": share})


def weight_layout(filters: int, channels: int, groups: int, size: int, bn: bool) -> tuple[int, ...]:
    """What two convs must agree on to share weights: the weight tensor's shape and batch norm."""
    return (filters, channels // max(groups, 1), size, size, int(bn))


def _share(s: Section, graph: Graph, weights: tuple[int, ...]) -> int | None:
    """share_index (resnet152_trident): the conv whose weights this one uses. make_convolutional_layer
    checks size, weights, channels and filters; here it must be an earlier conv of the same layout."""
    ref = s.get("share_index", "int", NO_SHARE)
    if ref == NO_SHARE:
        return None
    target = s.index + ref if ref < 0 else ref
    if not 0 <= target < s.index or graph.convs.get(target) != weights:
        raise s.error(
            f"{ref} is not an earlier [convolutional] with the same filters, groups, size and batch norm",
            "share_index names the conv whose weights this one uses",
            "share_index",
        )
    return int(ref)


def write_core(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    bn = layer.batch_norm is not None
    if layer.has_bias == bn:
        what = "a bias and batch norm" if bn else "neither a bias nor batch norm"
        raise place.error(f"has {what}", "Darknet convs have a bias exactly when they have no batch norm")
    options = [("batch_normalize", "1")] if bn else []
    options += [("filters", fmt(layer.filters)), ("size", fmt(layer.size)), ("stride", fmt(layer.stride))]
    same = layer.padding == layer.size // 2
    options.append(("pad", "1") if same else ("padding", fmt(layer.padding)))
    if layer.groups != 1:
        options.append(("groups", fmt(layer.groups)))
    if getattr(layer, "dilation", 1) != 1:  # written, it would build another network: refused
        raise place.error(
            "dilation has no exact Darknet spelling",
            "the fork's dilated [convolutional] pads (size - 1)/2 whatever the dilation; keep the YAML",
        )
    return "convolutional", [
        *options,
        ("activation", darknet_activation(place, layer.activation, layer.slope)),
    ]


def write_fork(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    options = [("batch_normalize", "1")] if layer.batch_norm else []
    options += [("filters", fmt(layer.filters)), ("size", fmt(layer.size)), *strides(layer)]
    options.append(("pad", "1") if layer.padding == layer.size // 2 else ("padding", fmt(layer.padding)))
    defaults = (("groups", 1), ("dilation", 1), ("antialiasing", 0), ("xnor", False), ("bin_output", False))
    for key, default in defaults:
        if getattr(layer, key) is not default and getattr(layer, key) != default:
            options.append((key, fmt(getattr(layer, key))))
    if layer.share is not None:
        options.append(("share_index", fmt(layer.share)))
    return "convolutional", [*options, ("activation", layer.activation)]


SECTIONS = [
    DarknetSection(
        "convolutional",
        read,
        aliases=("conv",),
        refused=REFUSED,
        types=((fork.DarknetConv, "darkforge.darknet.fork_modules"),),
        writes={"ConvBnLeaky": write_core, "Conv": write_core, "DarknetConv": write_fork},
    )
]
