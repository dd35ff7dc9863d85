"""[shortcut] (shortcut_layer.c): a core Shortcut between maps of one shape; DarknetShortcut between
maps of other shapes (pjreddie's resampling rule, or the fork's flat add) or with alpha/beta; the
fork's WeightedShortcut for several `from` layers or learned weights (weights_type)."""

from __future__ import annotations

from typing import Any

from darkforge.darknet import fork
from darkforge.darknet import layers as dn
from darkforge.darknet.catalog import DarknetSection, Options
from darkforge.darknet.cfgtext import ACTIVATIONS, Section
from darkforge.darknet.rulekit import Graph, make
from darkforge.darknet.writekit import darknet_activation, fmt, previous_and_from
from darkforge.spec.base import INPUT, LayerSpec
from darkforge.spec.layers import Shortcut


def read(s: Section, graph: Graph) -> LayerSpec:
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


def write_core(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    written = layer.sources()
    if len(sources) != 2:
        raise place.error(
            f"adds {len(sources)} layers", "Darknet's [shortcut] adds one layer to the previous"
        )
    previous = [k for k, t in enumerate(sources) if t != INPUT and place.where[t] == place.index - 1]
    if not previous:
        raise place.error("adds two layers, neither of them the previous one", "Darknet adds `from` to it")
    other = 1 - previous[0]
    options = [("from", place.ref(written[other], sources[other]))]
    options.append(("activation", darknet_activation(place, layer.activation, layer.slope)))
    for key in ("alpha", "beta"):
        if getattr(layer, key, 1.0) != 1.0:
            options.append((key, fmt(getattr(layer, key))))
    return "shortcut", options


def write_weighted(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    options = [("from", ",".join(previous_and_from(place, layer, sources)))]
    if layer.weights != "none":
        options += [("weights_type", layer.weights), ("weights_normalization", layer.normalization)]
    return "shortcut", [*options, ("activation", layer.activation)]


SECTIONS = [
    DarknetSection(
        "shortcut",
        read,
        types=(
            (dn.DarknetShortcut, "darkforge.darknet.modules"),
            (fork.WeightedShortcut, "darkforge.darknet.fork_modules"),
        ),
        writes={"Shortcut": write_core, "DarknetShortcut": write_core, "WeightedShortcut": write_weighted},
        wires=("Shortcut", "DarknetShortcut", "WeightedShortcut"),
    )
]
