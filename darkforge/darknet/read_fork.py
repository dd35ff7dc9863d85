"""Section rules for what the AlexeyAB fork reads (src/parser.c of github.com/AlexeyAB/darknet):
[convolutional], [maxpool], [local_avgpool], [route], [shortcut], [upsample] with the fork's keys,
and its own sections. Each rule picks darkforge's core type where it computes the same thing and
a type of darkforge/darknet/fork.py where the fork's semantics differ, so nothing is dropped.
"""

from __future__ import annotations

from typing import Any

from darkforge.darknet import fork
from darkforge.darknet import layers as dn
from darkforge.darknet.rulekit import Graph, make
from darkforge.darknet.sections import ACTIVATIONS, Section
from darkforge.spec.base import LayerSpec
from darkforge.spec.layers import Conv, ConvBnLeaky, MaxPool, Route, Shortcut, Upsample

# Keys of [convolutional] the fork reads that change the computation, with the value honoured.
CONV_REFUSED = {"binary": 0, "flipped": 0, "dot": 0, "cbn": 0}
CONV_REFUSED |= {"assisted_excitation": 0, "sway": 0, "rotate": 0, "stretch": 0}
CONV_REFUSED |= {"stretch_sway": 0, "grad_centr": 0, "reverse": 0, "coordconv": 0, "angle": 15}
CONV_REFUSED |= {"stream": -1, "wait_stream": -1}


def _strides(s: Section, default: int) -> tuple[int, int]:
    """(stride_x, stride_y): parse_convolutional reads `stride` only where one of them is missing."""
    stride = s.get("stride", "int", default)
    return s.get("stride_x", "int", stride), s.get("stride_y", "int", stride)


def convolutional(s: Section, graph: Graph) -> LayerSpec:
    size = s.get("size", "int", 1)
    padding = s.get("padding", "int", 0)
    if s.get("pad", "int", 0):  # Darknet: any `pad` means size // 2, whatever `padding` says
        padding = size // 2
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
    """share_index (resnet152_trident): the conv whose weights this one uses. The fork takes any
    layer; here it must be an earlier conv with the same weight layout."""
    ref = s.get("share_index", "int", -1000000000)  # the fork's "none"
    if ref == -1000000000:
        return None
    target = s.index + ref if ref < 0 else ref
    if not 0 <= target < s.index or graph.convs.get(target) != weights:
        raise s.error(
            f"{ref} is not an earlier [convolutional] with the same filters, groups, size and batch norm",
            "share_index names the conv whose weights this one uses",
            "share_index",
        )
    return int(ref)


def _pool(s: Section, average: bool) -> LayerSpec:
    stride = s.get("stride", "int", 1)
    sx, sy = s.get("stride_x", "int", stride), s.get("stride_y", "int", stride)
    size = s.get("size", "int", stride)
    padding = s.get("padding", "int", size - 1)  # output (w + padding - size)/stride + 1
    depth = False if average else s.get("maxpool_depth", "flag", False)
    out_channels = 1 if average else s.get("out_channels", "int", 1)
    antialiasing = 0 if average else s.get("antialiasing", "int", 0)
    if not average and sx == sy and not depth and not antialiasing:
        # Darknet pads padding // 2 before and the rest after: MaxPool's per-side pad, or [before, after]
        pad = padding // 2 if padding % 2 == 0 else [padding // 2, padding - padding // 2]
        return make(s, MaxPool, {"size": size, "stride": None if sx == size else sx, "pad": pad})
    fields: dict[str, Any] = {"size": size, "stride": sx, "stride_y": None if sy == sx else sy}
    fields |= {"padding": padding, "average": average, "depth": depth, "out_channels": out_channels}
    return make(s, fork.DarknetPool, fields | {"antialiasing": antialiasing})


def maxpool(s: Section, graph: Graph) -> LayerSpec:
    return _pool(s, average=False)


def local_avgpool(s: Section, graph: Graph) -> LayerSpec:
    return _pool(s, average=True)


def route(s: Section, graph: Graph) -> LayerSpec:
    refs = s.get("layers", "ints")
    for ref in refs:
        graph.shape(s, ref, "layers")
    groups, group = s.get("groups", "int", 1), s.get("group_id", "int", 0)
    detach = s.get("onlyforward", "flag", False)  # backward_network skips the layer: no gradient
    source = refs[0] if len(refs) == 1 else refs
    if groups == 1 and group == 0 and not detach:
        return make(s, Route, {"from_": source})
    return make(s, fork.GroupRoute, {"from_": source, "groups": groups, "group": group, "detach": detach})


def shortcut(s: Section, graph: Graph) -> LayerSpec:
    refs = s.get("from", "ints")
    for ref in refs:
        graph.shape(s, ref, "from")
    activation = s.get("activation", "activation", "linear")
    weights = s.get("weights_type", "text", "none")
    weights = "per_feature" if weights == "per_layer" else weights  # the fork's synonym
    normalization = s.get("weights_normalization", "text", "none")
    normalization = "relu" if normalization == "avg_relu" else normalization
    alpha, beta = s.get("alpha", "float", 1.0), s.get("beta", "float", 1.0)  # pjreddie's keys
    core = ACTIVATIONS.get(activation)
    if len(refs) == 1 and weights == "none" and core is not None:
        add, prev = graph.shape(s, refs[0], "from"), graph.tensor(s.index - 1).shape
        fields: dict[str, Any] = {"from_": refs[0], "activation": core}
        if add == prev and alpha == beta == 1:
            return make(s, Shortcut, fields)
        if graph.fork and add[1:] != prev[1:]:  # other sizes: the fork adds the buffers flat
            return make(s, dn.DarknetShortcut, {**fields, "rule": "alexeyab", "alpha": alpha, "beta": beta})
        return make(s, dn.DarknetShortcut, {**fields, "alpha": alpha, "beta": beta})
    if alpha != 1 or beta != 1:
        raise s.error("alpha/beta with several `from` layers or weights", "the fork has no such shortcut")
    fields = {"from_": refs, "activation": activation, "weights": weights, "normalization": normalization}
    return make(s, fork.WeightedShortcut, fields)


def _from(s: Section, graph: Graph) -> int:
    ref = s.get("from", "int")
    graph.shape(s, ref, "from")
    return int(ref)


def scale_channels(s: Section, graph: Graph) -> LayerSpec:
    fields = {"from_": _from(s, graph), "scale_wh": s.get("scale_wh", "flag", False)}
    return make(s, fork.ScaleChannels, fields | {"activation": _plain(s)})


def sam(s: Section, graph: Graph) -> LayerSpec:
    return make(s, fork.Sam, {"from_": _from(s, graph), "activation": _plain(s)})


def _plain(s: Section) -> str:
    """An activation outside [convolutional]: the fork's CPU activate() lacks the newer ones."""
    activation = str(s.get("activation", "activation", "linear"))
    if activation in fork.CONV_ONLY:
        raise s.error(
            f"Darknet's activate() has no case for {activation!r} outside [convolutional] (its output "
            "is garbage there)",
            "use it in the [convolutional] before",
            "activation",
        )
    return activation


def activation(s: Section, graph: Graph) -> LayerSpec:
    return make(s, fork.DarknetActivationLayer, {"activation": _plain(s)})


def reorg3d(s: Section, graph: Graph) -> LayerSpec:
    fields = {"stride": s.get("stride", "int", 1), "reverse": s.get("reverse", "flag", False)}
    return make(s, fork.Reorg3d, fields)


def implicit(s: Section, graph: Graph) -> LayerSpec:
    fields = {"filters": s.get("filters", "int", 128), "atoms": s.get("atoms", "int", 1)}
    fields |= {"mean": s.get("mean", "float", 0.0), "std": s.get("std", "float", 0.2)}
    return make(s, fork.Implicit, fields)


def upsample(s: Section, graph: Graph) -> LayerSpec:
    stride, scale = s.get("stride", "int", 2), s.get("scale", "float", 1.0)
    if stride > 0 and scale == 1:
        return make(s, Upsample, {"stride": stride})
    return make(s, fork.DarknetUpsample, {"stride": stride, "scale": scale})


def contrastive(s: Section, graph: Graph) -> LayerSpec:
    ref = s.get("yolo_layer", "int", 0)
    target = s.index + ref if ref < 0 else ref
    if ref == 0 or not 0 <= target < s.index or graph.kinds[target] != "Yolo":
        raise s.error(f"{ref} is not a [yolo] layer", "the fork needs yolo_layer= naming one", "yolo_layer")
    fields: dict[str, Any] = {"classes": s.get("classes", "int", 1000), "yolo_layer": ref}
    fields |= {"temperature": s.get("temperature", "float", 1.0)}
    fields |= {"cls_normalizer": s.get("cls_normalizer", "float", 1.0)}
    fields |= {"max_delta": s.get("max_delta", "float", None)}
    fields |= {"contrastive_neg_max": s.get("contrastive_neg_max", "int", 3)}
    return make(s, fork.Contrastive, fields)


def batchnorm(s: Section, graph: Graph) -> LayerSpec:
    return make(s, fork.DarknetBatchNorm, {"norm": graph.bn})


def empty(s: Section, graph: Graph) -> LayerSpec:
    return make(s, fork.Empty, {"silence": s.header == "silence"})


FORK_RULES = {"convolutional": convolutional, "maxpool": maxpool, "local_avgpool": local_avgpool}
FORK_RULES |= {"route": route, "shortcut": shortcut, "scale_channels": scale_channels, "sam": sam}
FORK_RULES |= {"activation": activation, "reorg3d": reorg3d, "implicit": implicit}
FORK_RULES |= {"upsample": upsample, "empty": empty, "contrastive": contrastive, "batchnorm": batchnorm}
