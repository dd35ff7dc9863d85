"""[contrastive] (the fork's contrastive loss over a [yolo] layer's embeddings): a marker."""

from __future__ import annotations

from typing import Any

from darkforge.darknet import fork
from darkforge.darknet.catalog import DarknetSection, Options
from darkforge.darknet.cfgtext import Section
from darkforge.darknet.rulekit import Graph, make
from darkforge.darknet.writekit import fmt
from darkforge.spec.base import LayerSpec


def read(s: Section, graph: Graph) -> LayerSpec:
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


def write(layer: Any, place: Any, sources: list[int]) -> tuple[str, Options]:
    options = [("classes", fmt(layer.classes)), ("yolo_layer", fmt(layer.yolo_layer))]
    options += [("temperature", fmt(layer.temperature)), ("cls_normalizer", fmt(layer.cls_normalizer))]
    if layer.max_delta is not None:
        options.append(("max_delta", fmt(layer.max_delta)))
    return "contrastive", [*options, ("contrastive_neg_max", fmt(layer.contrastive_neg_max))]


SECTIONS = [
    DarknetSection(
        "contrastive",
        read,
        types=((fork.Contrastive, "darkforge.darknet.fork_modules"),),
        writes={"Contrastive": write},
    )
]
