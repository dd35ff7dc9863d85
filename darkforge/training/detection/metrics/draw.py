"""Boxes drawn onto an image, for `predict`'s pictures: torchvision's draw_bounding_boxes (PIL)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import Tensor
from torchvision.utils import draw_bounding_boxes

# One colour per class (matplotlib's tab10, then tab20's light shades), repeating after 20.
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
]  # fmt: skip
TRUTH_COLOUR = "#ffffff"


def colour(cls: int) -> str:
    return PALETTE[cls % len(PALETTE)]


def draw_detections(
    image: Tensor,
    detections: Tensor,
    names: Sequence[str],
    truth: Tensor | None = None,
    conf: float = 0.0,
    width: int | None = None,
    font_size: int | None = None,
    min_side: int = 256,
) -> Tensor:
    """`image` (3, H, W) uint8 with `detections` (K, 6: x1, y1, x2, y2, score, class; in this
    image's pixels) scoring at least `conf` drawn as boxes labelled "name 0.87" in their class's
    colour, over the true boxes `truth` (M, 5: class, x1, y1, x2, y2) in white. An image whose
    shorter side is under `min_side` is first enlarged by a whole factor (nearest pixel), so that
    labels fit a 64-pixel image; line width and font grow with the image. Returns a new
    (3, f·H, f·W) uint8 tensor."""
    image, detections = image.cpu(), detections.cpu()  # PIL draws on the CPU
    truth = None if truth is None else truth.cpu()
    factor = max(1, -(-min_side // min(image.shape[-2:])))
    out = image.repeat_interleave(factor, -2).repeat_interleave(factor, -1) if factor > 1 else image
    detections = _scaled(detections, 0, factor)
    truth = None if truth is None else _scaled(truth, 1, factor)
    side = min(out.shape[-2:])
    width = width or max(1, round(side / 250))
    font_size = font_size or max(10, round(side / 40))
    if truth is not None and len(truth):
        out = draw_bounding_boxes(out, truth[:, 1:5], colors=TRUTH_COLOUR, width=width)
    shown = detections[detections[:, 4] >= conf]
    if len(shown):
        classes = shown[:, 5].long().tolist()
        labels = [f"{_name(names, c)} {s:.2f}" for c, s in zip(classes, shown[:, 4].tolist(), strict=True)]
        out = draw_bounding_boxes(
            out,
            shown[:, :4],
            labels=labels,
            colors=[colour(c) for c in classes],
            width=width,
            font=_font(),
            font_size=font_size,
            fill_labels=True,
            label_colors="white",
        )
    return out


def _scaled(rows: Tensor, first: int, factor: int) -> Tensor:
    """Box columns first..first+4 multiplied by `factor` (a copy when it is not 1)."""
    if factor == 1:
        return rows
    out = rows.clone()
    out[:, first : first + 4] *= factor
    return out


def _name(names: Sequence[str], cls: int) -> str:
    return names[cls] if 0 <= cls < len(names) else str(cls)


def _font() -> str:
    """DejaVu Sans from matplotlib's own data (a darkforge dependency): a scalable font, where
    PIL's default bitmap font has one small size."""
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")
