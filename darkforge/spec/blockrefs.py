"""References inside a block's instance: every `from` as an index among the layers its `when`s
kept, and what a reader of a left-out layer reads instead.

A left-out layer with one input stands aside: its readers read that input. One with several
inputs (a Shortcut, a Route) is refused unless it says which input stands in for it,
`when_removed: <one of its from>`: `from: [input, -1]` and `from: [-1, input]` are the same add,
but which branch a reader gets without the add is a choice the file makes, never the order of a
list. The block's output (its last layer, or `output:`) follows the same rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from darkforge.spec.base import LayerSpec, Ref, ShapeError

ErrorAt = Callable[[str, tuple[Any, ...], str], ShapeError]


class References:
    def __init__(
        self,
        name: str,
        written: Sequence[Mapping[str, Any]],
        inputs: Sequence[str],
        kept: Sequence[int],
        sources_of: Callable[[Mapping[str, Any]], list[Ref]],
        error: ErrorAt,
    ) -> None:
        self.name, self.written, self.inputs = name, written, list(inputs)
        self.ids = {str(raw["id"]): k for k, raw in enumerate(written) if isinstance(raw.get("id"), str)}
        # alternatives: layers of one id whose `when`s exclude each other (YOLO11's C3k2 holds a
        # Bottleneck or a C3k as `m`); the id names the one kept (two kept: the walk refuses it)
        self.ids |= {str(written[k]["id"]): k for k in kept if isinstance(written[k].get("id"), str)}
        self.where = {k: n for n, k in enumerate(kept)}
        self.sources_of, self.error = sources_of, error

    def target(self, ref: Ref, k: int) -> int | str:
        """What `ref`, written in layer k, reads: a kept layer's index, or an input's name. A
        left-out layer hands on to its stand-in, in a loop (1,000 left-out layers in a row are
        1,000 steps, not 1,000 frames)."""
        while True:
            found = self._step(ref, k)
            if not isinstance(found, tuple):
                return found
            ref, k = found

    def _step(self, ref: Ref, k: int) -> int | str | tuple[Ref, int]:
        """One step: a kept layer, an input, or (the stand-in's ref, the left-out layer)."""
        if isinstance(ref, str):
            if ref in self.inputs:
                return ref
            if ref not in self.ids:
                raise self.error(
                    f"`from: {ref}` names no layer of block {self.name}",
                    ("layers", k, "from"),
                    f"a block's layers read its inputs ({', '.join(self.inputs)}) and its own earlier layers",
                )
            position = self.ids[ref]
        else:
            position = k + ref if ref < 0 else ref
            if position < -1:
                raise self.error(
                    f"`from: {ref}` leaves block {self.name}",
                    ("layers", k, "from"),
                    f"read the block's input by name ({', '.join(self.inputs)})",
                )
            if position == -1:
                return self.inputs[0]
        if position >= k:
            raise self.error(f"`from: {ref}` is not an earlier layer", ("layers", k, "from"), "")
        if position in self.where:
            return self.where[position]
        return (self.stand_in(position), position)

    def stand_in(self, position: int) -> Ref:
        """The input that stands in for left-out layer `position` (as written in it)."""
        raw = self.written[position]
        sources = self.sources_of(raw)
        if len(sources) == 1:
            return sources[0]
        chosen = raw.get("when_removed")
        listed = ", ".join(str(s) for s in sources)
        if chosen is None:
            raise self.error(
                f"{raw.get('type')} is left out by its `when` and reads {len(sources)} inputs ({listed}): "
                "its readers would lose all but one",
                ("layers", position, "when"),
                f"say which input they read instead, e.g. `when_removed: {sources[0]}`",
            )
        if chosen not in sources:
            raise self.error(
                f"`when_removed: {chosen}` is not one of its inputs ({listed})",
                ("layers", position, "when_removed"),
                "name one of its `from`, as written there",
            )
        return chosen  # type: ignore[no-any-return]

    def renumbered(self, layers: Sequence[LayerSpec], kept: Sequence[int]) -> list[LayerSpec]:
        out: list[LayerSpec] = []
        for n, (layer, k) in enumerate(zip(layers, kept, strict=True)):
            refs = [self.target(r, k) for r in layer.sources()]
            implicit = len(refs) > 1 and not isinstance(layer.from_, list)  # Shortcut: previous + from
            from_: Any = refs[-1] if implicit or not isinstance(layer.from_, list) else refs
            if implicit and refs[0] != n - 1:
                from_ = refs  # the previous layer was left out: name both inputs
            out.append(layer.model_copy(update={"from_": from_}))
        return out

    def last(self) -> int:
        """The block's default output: its last layer, or what stands in for it."""
        end = len(self.written) - 1
        if end in self.where:
            return self.where[end]
        found = self.target(self.stand_in(end), end)
        if isinstance(found, str):
            raise self.error(
                "every layer on the way to the output is left out: "
                f"the block would return its input {found!r}",
                ("layers", end, "when"),
                "",
            )
        return found
