"""How much work planning may do on user blocks: every layer a block instance makes is a layer of
the network's expansion, so the layer limit (darkforge.spec.budget) bounds it *while* the plan
walks, not after. Six nested blocks of 20 uses each in a 3 KB file are 6.4e7 instances: refused
at once from the definitions (`counting` gets their lower bound), and any file that only shows its
size as it is instantiated (`when`, repeats) is stopped at the limit's count instead of walked to
the end.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from darkforge.spec.graph import OverBudget

DEFAULT_LAYER_LIMIT = 100_000  # darkforge.spec.budget's default: layers after expansion
READ_PER_LAYER = 2  # written layers read (`when` false included) per layer of the limit


@dataclass
class _Work:
    """Layers block instances have made during one plan, and written layers read to make them."""

    limit: int | None
    kept: int = 0
    read: int = 0


layer_limit: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "darkforge_layer_limit", default=DEFAULT_LAYER_LIMIT
)
_work: contextvars.ContextVar[_Work | None] = contextvars.ContextVar("darkforge_block_work", default=None)


@contextmanager
def counting(least: Sequence[int]) -> Iterator[None]:
    """Count block instantiation against `layer_limit` while a plan walks its layers; `least`
    is a lower bound of what each layer expands to, refused at once if it already passes."""
    limit = layer_limit.get()
    if limit is not None and least and sum(least) > limit:
        error = OverBudget(
            f"the network expands to at least {sum(least):,} layers ({max(least):,} from this one), "
            f"over the limit of {limit:,}"
        )
        error.path = ("layers", list(least).index(max(least)))
        raise error
    token = _work.set(_Work(limit))
    try:
        yield
    finally:
        _work.reset(token)


def charge(read: int, kept: int, block: str, nested: bool) -> None:
    """Block `block` made `kept` layers from `read` written ones; past the limit, stop the plan."""
    work = _work.get()
    if work is None or work.limit is None:
        return
    work.read += read
    work.kept += kept
    if work.kept > work.limit:
        where = "inside other blocks " if nested else ""
        raise OverBudget(
            f"the network expands to more than {work.limit:,} layers (block {block} is instantiated "
            f"{where}too often), over the limit"
        )
    if work.read > work.limit * READ_PER_LAYER:
        raise OverBudget(
            f"blocks read more than {work.limit * READ_PER_LAYER:,} written layers "
            f"({block} leaves most out by `when`)"
        )
