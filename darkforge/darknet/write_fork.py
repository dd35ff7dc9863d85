"""Writers of the fork's layer types (darkforge/darknet/fork.py) back to .cfg sections: the reverse
of darkforge/darknet/read_fork.py, used by darkforge/darknet/write.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from darkforge.errors import SpecError
from darkforge.spec.base import INPUT

Options = list[tuple[str, str]]


def fmt(value: Any) -> str:
    """A value as Darknet's atoi/atof read it: 1/0 for flags, comma lists, 10 rather than 10.0."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return ",".join(fmt(v) for v in value)
    return str(value)


def _strides(layer: Any) -> Options:
    sy, sx = layer.strides
    return [("stride", fmt(sx))] if sx == sy else [("stride_x", fmt(sx)), ("stride_y", fmt(sy))]


def _conv(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    options = [("batch_normalize", "1")] if layer.batch_norm else []
    options += [("filters", fmt(layer.filters)), ("size", fmt(layer.size)), *_strides(layer)]
    options.append(("pad", "1") if layer.padding == layer.size // 2 else ("padding", fmt(layer.padding)))
    defaults = (("groups", 1), ("dilation", 1), ("antialiasing", 0), ("xnor", False), ("bin_output", False))
    for key, default in defaults:
        if getattr(layer, key) is not default and getattr(layer, key) != default:
            options.append((key, fmt(getattr(layer, key))))
    if layer.share is not None:
        options.append(("share_index", fmt(layer.share)))
    return "convolutional", [*options, ("activation", layer.activation)]


def _pool(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    options = [("size", fmt(layer.size)), *_strides(layer)]
    if layer.padding != layer.size - 1:
        options.append(("padding", fmt(layer.padding)))
    if layer.average:
        return "local_avgpool", options
    if layer.depth:
        options += [("maxpool_depth", "1"), ("out_channels", fmt(layer.out_channels))]
    if layer.antialiasing:
        options.append(("antialiasing", fmt(layer.antialiasing)))
    return "maxpool", options


def _previous_and_from(place: Any, layer: Any, sources: list[int]) -> list[str]:
    """The `from` refs of a layer that also reads the previous layer (its first source)."""
    if sources[0] == INPUT or place.where[sources[0]] != place.index - 1:
        raise SpecError(f"{place.name}: its first input must be the previous layer", "Darknet reads that one")
    written = layer.sources()
    return [place.ref(w, t) for w, t in zip(written[1:], sources[1:], strict=True)]


def _group_route(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    refs = [place.ref(w, t) for w, t in zip(layer.sources(), sources, strict=True)]
    options = [("groups", fmt(layer.groups)), ("group_id", fmt(layer.group))] if layer.groups > 1 else []
    options += [("onlyforward", "1")] if layer.detach else []
    return "route", [("layers", ",".join(refs)), *options]


def _weighted(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    options = [("from", ",".join(_previous_and_from(place, layer, sources)))]
    if layer.weights != "none":
        options += [("weights_type", layer.weights), ("weights_normalization", layer.normalization)]
    return "shortcut", [*options, ("activation", layer.activation)]


def _scale_channels(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    options = [("from", _previous_and_from(place, layer, sources)[0])]
    if layer.scale_wh:
        options.append(("scale_wh", "1"))
    return "scale_channels", [*options, ("activation", layer.activation)]


def _sam(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    options = [("from", _previous_and_from(place, layer, sources)[0])]
    return "sam", [*options, ("activation", layer.activation)]


def _reorg3d(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    return "reorg3d", [("stride", fmt(layer.stride))] + ([("reverse", "1")] if layer.reverse else [])


def _implicit(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    options = [("filters", fmt(layer.filters)), ("atoms", fmt(layer.atoms))]
    return "implicit", [*options, ("mean", fmt(layer.mean)), ("std", fmt(layer.std))]


def _upsample(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    scale = getattr(layer, "scale", 1.0)
    return "upsample", [("stride", fmt(layer.stride))] + ([("scale", fmt(scale))] if scale != 1 else [])


def _contrastive(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    options = [("classes", fmt(layer.classes)), ("yolo_layer", fmt(layer.yolo_layer))]
    options += [("temperature", fmt(layer.temperature)), ("cls_normalizer", fmt(layer.cls_normalizer))]
    if layer.max_delta is not None:
        options.append(("max_delta", fmt(layer.max_delta)))
    return "contrastive", [*options, ("contrastive_neg_max", fmt(layer.contrastive_neg_max))]


FORK_WRITERS: dict[str, Callable[[Any, Any, list[int]], tuple[str, Options]]] = {
    "DarknetConv": _conv,
    "DarknetPool": _pool,
    "GroupRoute": _group_route,
    "WeightedShortcut": _weighted,
    "ScaleChannels": _scale_channels,
    "Sam": _sam,
    "Reorg3d": _reorg3d,
    "Implicit": _implicit,
    "Upsample": _upsample,
    "DarknetUpsample": _upsample,
    "DarknetActivationLayer": lambda layer, _, sources: ("activation", [("activation", layer.activation)]),
    "Contrastive": _contrastive,
    "DarknetBatchNorm": lambda layer, _, sources: ("batchnorm", []),
    "Empty": lambda layer, place, sources: ("silence" if layer.silence else "empty", []),
}
FORK_MULTI_INPUT = {"GroupRoute", "WeightedShortcut", "ScaleChannels", "Sam", "Implicit"}
