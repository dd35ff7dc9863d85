"""Recognise structure in a flat network: residual blocks, runs of identical blocks, stages.

A residual block is two single-input layers and a Shortcut that adds the block's input back (what
ResidualBlock expands to, and what a .cfg spells out); consecutive identical blocks form a run. A
stage is a composite layer such as ResidualStage or, in the flat spelling, a downsampling layer
followed by a run. `draw` paints what this finds.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from darkforge.spec.shapes import LayerInfo, Plan

OUTPUT = -2  # stands for "the network returns it" among a layer's consumers


@dataclass(frozen=True)
class Span:
    """Flat layers first..last: one layer, or a run of `blocks` residual blocks (3 layers each)."""

    first: int
    last: int
    blocks: int = 0


@dataclass(frozen=True)
class Group:
    """A cluster: a stage or another composite layer."""

    title: str
    subtitle: str
    units: tuple[Span, ...]


class _Finder:
    """Recognises residual blocks, runs of them and stages in a flat plan."""

    def __init__(self, p: Plan, flat: Plan, origins: list[int]) -> None:
        self.flat = flat
        self.layers = flat.layers
        self.used: dict[int, set[int]] = {}  # layer -> the layers (or OUTPUT) that read it
        for info in flat.layers:
            for s in info.sources:
                self.used.setdefault(s, set()).add(info.index)
        for o in flat.outputs:
            self.used.setdefault(o, set()).add(OUTPUT)
        # origins: which layer of `p` each flat layer was written as (flatten_with_origins)
        # A flat layer sits in a cluster when it was written inside a composite layer, unless that
        # layer is one residual block (a ResidualBlock): those join runs, as flat blocks do.
        parts, first = Counter(origins), {o: k for k, o in reversed(list(enumerate(origins)))}
        alone = {o for o, n in parts.items() if n == 1 or (n == 3 and self.is_block(first[o]))}
        self.cluster: list[int | None] = [None if o in alone else o for o in origins]

    def is_block(self, i: int) -> bool:
        """Layers i, i+1, i+2 compute x + b(a(x)) with x = layer i - 1, and nothing else reads a, b."""
        if i + 2 >= len(self.layers):
            return False
        a, b, add = self.layers[i : i + 3]
        x = i - 1
        return (
            add.spec.type == "Shortcut"
            and sorted(add.sources) == sorted((x, i + 1))
            and a.sources == (x,)
            and b.sources == (i,)
            and a.spec.id is None
            and b.spec.id is None
            and self.used.get(i) == {i + 1}
            and self.used.get(i + 1) == {i + 2}
        )

    def one_cluster(self, first: int, last: int) -> bool:
        return len(set(self.cluster[first : last + 1])) == 1

    def continues(self, i: int, j: int) -> bool:
        """The block at j repeats the block at i, and only it reads the output of the block before."""
        return (
            self.is_block(j)
            and self.layers[j - 1].spec.id is None
            and self.used.get(j - 1) == {j, j + 2}
            and self.one_cluster(i, j + 2)
            and all(_same(self.layers[i + k], self.layers[j + k]) for k in range(3))
        )

    def units(self) -> list[Span]:
        units: list[Span] = []
        i = 0
        while i < len(self.layers):
            if self.is_block(i) and self.one_cluster(i, i + 2):
                count = 1
                while self.continues(i, i + 3 * count):
                    count += 1
                units.append(Span(i, i + 3 * count - 1, count))
                i += 3 * count
            else:
                units.append(Span(i, i))
                i += 1
        return units

    def downsamples(self, unit: Span) -> bool:
        info = self.layers[unit.first]
        if unit.blocks or len(info.sources) != 1:
            return False
        before, after = self.flat.shape_of(info.sources[0]), info.output
        return len(before) == len(after) == 3 and after[1] * after[2] < before[1] * before[2]


def _same(a: LayerInfo, b: LayerInfo) -> bool:
    ignore = {"id", "from_"}
    return type(a.spec) is type(b.spec) and a.spec.model_dump(exclude=ignore) == b.spec.model_dump(
        exclude=ignore
    )


def structure_of(p: Plan, flat: Plan, origins: list[int]) -> list[Span | Group]:
    """The flat layers as units, the units of each stage (or composite layer) gathered in a Group."""
    finder = _Finder(p, flat, origins)
    units = finder.units()
    items: list[Span | Group] = []
    stages = k = 0
    while k < len(units):
        unit = units[k]
        cluster = finder.cluster[unit.first]
        if cluster is not None:
            end = k
            while end < len(units) and finder.cluster[units[end].first] == cluster:
                end += 1
            members = units[k:end]
        elif k + 1 < len(units) and finder.downsamples(unit) and units[k + 1].blocks:
            end = k + 1  # the flat spelling of a stage: a downsample, then runs (split where read)
            while end < len(units) and units[end].blocks and finder.cluster[units[end].first] is None:
                end += 1
            members = units[k:end]
        else:
            items.append(unit)
            k += 1
            continue
        k += len(members)
        stage = len(members) > 1 and finder.downsamples(members[0])
        stages += stage
        written = p.layers[cluster].spec.type if cluster is not None else ""  # "ResidualStage"
        numbered = f"stage {stages}" if stage else ""
        name = flat.layers[members[-1].last].spec.id  # flatten gives a composite's id to its last part
        if name:
            # "c3  stage 3 · ResidualStage", but "stage1  ResidualStage": no need to say it twice
            said = re.sub(r"[^a-z0-9]", "", name.lower()) == numbered.replace(" ", "")
            title, subtitle = name, " · ".join(x for x in ("" if said else numbered, written) if x)
        else:
            title, subtitle = numbered or written, written if stage else ""
        items.append(Group(title, subtitle, tuple(members)))
    return items
