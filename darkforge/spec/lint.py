"""Warnings about a valid network that likely does not say what its author meant: one line
each, located. A layer whose output nothing reads (a dead branch: its weights train for
nothing), at the top level or inside a block's use, and a block parameter a use passes that no
layer it keeps reads (`stride: 2` that strides nothing). `validate` and `summary` print them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from darkforge.spec.base import LayerSpec, Shape
from darkforge.spec.blocks import BlockUse
from darkforge.spec.expr import names_in
from darkforge.spec.graph import LayerInfo
from darkforge.spec.shapes import Plan


def warnings(p: Plan) -> list[str]:
    """Every warning about `p`, in file order, each once."""
    source = p.spec._source

    def where(index: int) -> str:
        line, column = source.locate(("layers", index)) if source is not None else (None, None)
        file = source.file if source is not None else p.spec.name
        return f"{file}:{line}:{column}: layers[{index}]" if line else f"{file}: layers[{index}]"

    found: list[str] = []
    for index in _unread(p.layers, p.outputs):
        found.append(f"{where(index)} ({_name(p.layers[index].spec)}): {UNREAD}")
    for info in p.layers:
        shapes = [p.shape_of(s) for s in info.sources]
        one = info.spec.copy_at(0) if info.spec.repeat > 1 else info.spec
        found += [f"{where(info.index)}: {text}" for text in _inside(one, shapes) if info.spec.repeat]
    return list(dict.fromkeys(found))


UNREAD = "nothing reads its output (a dead branch); use it, list it in `outputs`, or remove it"


def _unread(infos: Sequence[LayerInfo], outputs: Sequence[int]) -> list[int]:
    read = {s for info in infos for s in info.sources} | set(outputs)
    return [info.index for info in infos if info.index not in read]


def _name(spec: LayerSpec) -> str:
    return f"{spec.type} {spec.id!r}" if spec.id else spec.type


def _inside(spec: LayerSpec, inputs: Sequence[Shape]) -> list[str]:
    """Warnings inside a block's use (and the uses inside it), prefixed with the block's place."""
    if not isinstance(spec, BlockUse):
        return []
    inst = spec.instance(inputs)
    block = spec.block
    found = []
    unused = _unused_parameters(spec, inst.kept)
    if unused:
        listed = ", ".join(f"`{name}: {getattr(spec, name)!r}`" for name in unused)
        found.append(
            f"{listed} passed to block {block.name} ({block.locate(())}) and read by none of its layers here"
        )
    for n in _unread(inst.infos, [inst.output]):
        k = inst.kept[n]
        place = block.locate(("layers", k))
        found.append(f"in block {block.name} ({place}): layers[{k}] ({_name(inst.layers[n])}): {UNREAD}")
    shapes: dict[int, Shape] = {-(k + 1): shape for k, shape in enumerate(inputs)}
    shapes |= {info.index: info.output for info in inst.infos}
    for info in inst.infos:
        if info.spec.repeat == 0:
            continue
        one = info.spec.copy_at(0) if info.spec.repeat > 1 else info.spec
        for text in _inside(one, [shapes[s] for s in info.sources]):
            found.append(f"in block {block.name} ({block.locate(('layers', inst.kept[info.index]))}): {text}")
    return found


def _unused_parameters(spec: BlockUse, kept: Sequence[int]) -> list[str]:
    """Parameters the use sets that no kept layer and no `when` (nor `output`) reads."""
    written = spec.block.definition.layers
    reads: set[str] = set()
    for k, raw in enumerate(written):
        reads |= names_in(raw.get("when"))
        if k in kept:
            reads |= names_in({key: value for key, value in raw.items() if key != "when"})
    reads |= names_in(spec.block.definition.output)
    passed: Any = spec.model_fields_set
    return [name for name in spec.block.definition.params if name in passed and name not in reads]
