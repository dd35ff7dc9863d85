"""Scales inside blocks: one rule, so a block reads the same at every width.

Under `--scale`, everything a block's layers compute with is in the scaled network's units:

- `in_channels` is the channels the block really receives (already scaled);
- a parameter declared `scale: width` (a channel count) is scaled as a conv's `filters` is
  (`Scale.channels`), one declared `scale: depth` (a block count) as a `repeat` is
  (`Scale.blocks`); other parameters (`scale: none`, or no declaration: strides, kernel sizes,
  ratios) are taken as written;
- a number written literally in a block's layer is in the file's units and is scaled like the
  same field of a top-level layer; a field computed from `$name` / `${...}` is already in scaled
  units and is never scaled again.

A computed field the scale would change (a conv's `filters`, a `repeat`) must read a name in
scaled units (`in_channels`, a `scale: width` / `scale: depth` parameter) or only parameters
declared `scale: none` (a fixed width on purpose): a `filters: $out` whose `out` declares no
scale is refused, naming the parameter, since half of such a network would silently keep full
width. docs/architecture.md has a worked example.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from darkforge.spec.base import LayerSpec, Scale, ShapeError, scaled
from darkforge.spec.expr import names_in

ScaleKind = str  # "width", "depth" or "none"


def scaled_argument(kind: ScaleKind | None, value: Any, scale: Scale) -> Any:
    """A block parameter's value under `scale`, by what the parameter declares."""
    if not isinstance(value, int) or isinstance(value, bool):
        return value
    if kind == "width":
        return scale.channels(value)
    if kind == "depth":
        return scale.blocks(value)
    return value


def scaled_part(
    layer: LayerSpec,
    raw: Mapping[str, Any],
    scale: Scale,
    kinds: Mapping[str, ScaleKind | None],
    error: Callable[[str, str], ShapeError],
) -> LayerSpec:
    """Layer `layer` of a block (written as `raw`) under `scale`: its literal fields scaled,
    its computed ones kept; `kinds` says how each parameter scales; `error(message, key)`."""
    whole = scaled(layer, scale)
    reverted: dict[str, Any] = {}
    for name, field in type(layer).model_fields.items():
        key = field.alias or name
        before, after = getattr(layer, name), getattr(whole, name)
        reads = names_in(raw.get(key))
        if before == after or not reads:
            continue  # unchanged, or literal (a default is literal too): scaled like any layer's
        reverted[name] = before  # computed from scaled names: already in scaled units
        in_units = "in_channels" in reads or any(kinds.get(n) in ("width", "depth") for n in reads)
        fixed = all(kinds.get(n) == "none" for n in reads if n in kinds) and "in_channels" not in reads
        if not in_units and not fixed:
            loose = sorted(n for n in reads if n in kinds and kinds[n] is None) or sorted(reads)
            which = "which declares" if len(loose) == 1 else "which declare"
            raise error(
                f"under a scale, `{key}` is computed from {', '.join(loose)}, {which} no `scale:`; say "
                "`scale: width` (a channel count), `scale: depth` (a block count) or `scale: none` "
                "(kept as written) in the block's params",
                key,
            )
    return whole.model_copy(update=reverted) if reverted else whole
