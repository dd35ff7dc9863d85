"""A detector as an exported graph: its decoded output (B, 4 + nc, A) — box centre x, centre y,
width, height in input pixels, then class probabilities — and, with `--nms`, the detections after
NMS inside the graph as well.

The NMS graph is torchvision.ops.nms (which torch's ONNX exporter writes as ONNX's
NonMaxSuppression, onnxscript's torchlib) after batched_nms' own "coordinate trick": boxes of
different groups are moved apart so they never overlap, and one NMS serves every group. Here the
groups are (image, class): classes apart along x, images apart along y, so a dynamic batch is one
graph. `check_nms` holds the result to torchvision's batched_nms on the same decoded boxes, run
the way darkforge's own postprocess runs it (training/detection/metrics/postprocess.py; export
sits beside training, so it cannot import it: the same five steps, spelled again).

Only the anchor-free `Detect` head is exported decoded: the decoding of Darknet's [yolo] heads
into this layout lives in training/detection/loss, which export may not import; those networks
export their raw maps, as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchvision.ops import batched_nms, box_convert, nms

from darkforge.nn.detect import Detect
from darkforge.nn.network import Network

DECODED = "(batch, 4 + classes, anchors): cx, cy, w, h in input pixels, then class probabilities"
DETECTIONS = "(boxes, 7): image index in the batch, x1, y1, x2, y2 (input pixels), score, class; best first"


@dataclass(frozen=True)
class Nms:
    conf: float = 0.25  # boxes scoring above this (each anchor's best class) enter NMS
    iou: float = 0.7  # a box overlapping a better one of its class by more than this is dropped
    max_det: int = 300  # per image


def detect_head(network: Network) -> Detect | None:
    """The network's Detect head, when it is the network's one output."""
    heads = [m for m in network.modules() if isinstance(m, Detect)]
    outputs = [network.plan.layers[i].spec.type for i in network.plan.outputs]
    return heads[0] if len(heads) == 1 and outputs == ["Detect"] else None


class Decoded(nn.Module):
    """A Detect network -> its decoded output alone (the raw maps stay inside the graph)."""

    def __init__(self, network: Network) -> None:
        super().__init__()
        self.network = network
        # nn.detect.anchor_grid keeps the strides as tensor ops, which torch.export records

    def forward(self, x: Tensor) -> Tensor:
        decoded, _ = self.network(x)  # a Detect head in eval mode: (decoded, raw maps)
        return decoded  # type: ignore[no-any-return]


class WithNms(nn.Module):
    """Decoded output -> (detections (K, 7), decoded), NMS in the graph."""

    def __init__(self, decoded: Decoded, settings: Nms) -> None:
        super().__init__()
        self.decoded, self.settings = decoded, settings

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        decoded = self.decoded(x)
        s = self.settings
        return nms_rows(decoded, s.conf, s.iou, s.max_det), decoded


def nms_rows(decoded: Tensor, conf: float, iou: float, max_det: int) -> Tensor:
    """(B, 4 + nc, A) -> (K, 7) image, x1, y1, x2, y2, score, class: each anchor's best class
    above `conf`, per (image, class) NMS, at most `max_det` per image, best score first."""
    b, _, a = decoded.shape
    scores, classes = decoded[:, 4:].max(1)  # (B, A) each
    boxes = box_convert(decoded[:, :4].transpose(1, 2), "cxcywh", "xyxy")  # (B, A, 4)
    image = torch.arange(b, device=decoded.device).view(b, 1).expand(b, a)
    keep = scores > conf
    boxes, scores, classes, image = boxes[keep], scores[keep], classes[keep], image[keep]  # (N, …)
    # every group in its own square of side `span` (a zero keeps min/max defined with no box)
    flat = torch.cat([boxes.reshape(-1), boxes.new_zeros(1)])
    low, span = flat.min(), flat.max() - flat.min() + 1
    shift = torch.stack([classes, image, classes, image], 1).to(boxes) * span
    kept = nms(boxes - low + shift, scores, iou)  # indices, best score first
    # at most max_det per image: each kept box's rank among its image's (1 = best)
    mine = image[kept, None] == torch.arange(b, device=decoded.device)[None]  # (K, B)
    rank = mine.cumsum(0).gather(1, image[kept, None])[:, 0]
    kept = kept[rank <= max_det]
    rows = [image[kept, None].to(boxes), boxes[kept], scores[kept, None], classes[kept, None].to(boxes)]
    return torch.cat(rows, 1)


def check_nms(detections: Tensor, decoded: Tensor, settings: Nms, tolerance: float) -> str | None:
    """None when `detections` (K, 7) are what torchvision's batched_nms keeps of `decoded` (the
    same boxes): the same images, classes and order exactly, boxes and scores within `tolerance`;
    else what differs."""
    for i, want in enumerate(reference_nms(decoded, settings)):
        got = detections[detections[:, 0] == i, 1:]
        if len(got) != len(want):
            return f"image {i}: {len(got)} boxes after NMS, torchvision's batched_nms keeps {len(want)}"
        if not torch.equal(got[:, 5], want[:, 5]):
            return f"image {i}: the classes of the kept boxes differ from batched_nms'"
        diff = (got[:, :5] - want[:, :5]).abs().max().item() if len(got) else 0.0
        if not diff <= tolerance:
            return f"image {i}: boxes or scores differ from batched_nms' by {diff:.2e}"
    return None


def reference_nms(decoded: Tensor, settings: Nms) -> list[Tensor]:
    """Per image (K, 6) x1, y1, x2, y2, score, class: torchvision's batched_nms over each anchor's
    best class above `conf`, best first, `max_det` at most (metrics.postprocess' steps)."""
    out = []
    for image in decoded.float():  # (4 + nc, A)
        scores, classes = image[4:].max(0)
        keep = scores > settings.conf
        boxes = box_convert(image[:4, keep].T, "cxcywh", "xyxy")
        scores, classes = scores[keep], classes[keep]
        kept = batched_nms(boxes, scores, classes, settings.iou)[: settings.max_det]
        out.append(torch.cat([boxes[kept], scores[kept, None], classes[kept, None].float()], 1))
    return out


def anchor_strides(network: Network) -> Tensor:
    """(A,) each anchor's stride, in the decoded output's order (level by level)."""
    head = detect_head(network)
    assert head is not None
    strides = [float(s) for s in head.stride]
    return torch.cat([torch.full((h * w,), s) for (_, h, w), s in zip(head.levels, strides, strict=True)])


def differences(ours: tuple[Tensor, ...], theirs: tuple[Tensor, ...], strides: Tensor) -> tuple[float, float]:
    """(what --verify holds to its tolerance, the largest box difference in pixels) of a detector
    graph's outputs: class probabilities and scores as they are, box coordinates in units of their
    anchor's stride. A box is anchor ± distance × stride, so float32's error on a distance grows
    with the stride: at 640 px PyTorch's own float32 boxes differ from float64 by ~5e-4 px, which
    no runtime can beat; in stride units the same boxes differ by ~2e-5."""
    worst, pixels = 0.0, 0.0
    for a, b in zip(ours, theirs, strict=True):
        a, b = a.float(), b.float()
        if a.dim() == 3:  # decoded (B, 4 + nc, A)
            box = (a[:, :4] - b[:, :4]).abs()
            scaled = (box / strides).amax().item() if box.numel() else 0.0
            rest = (a[:, 4:] - b[:, 4:]).abs().amax().item() if a[:, 4:].numel() else 0.0
        else:  # detections (K, 7): image, x1, y1, x2, y2, score, class
            box = (a[:, 1:5] - b[:, 1:5]).abs()
            scaled = (box / strides.max()).amax().item() if box.numel() else 0.0
            same = torch.equal(a[:, [0, 6]], b[:, [0, 6]])
            rest = (a[:, 5] - b[:, 5]).abs().amax().item() if len(a) and same else (0.0 if same else math.inf)
        pixels = max(pixels, box.amax().item() if box.numel() else 0.0)
        worst = _worst(worst, max(scaled, rest) if not math.isnan(scaled + rest) else math.nan)
    return worst, pixels


def _worst(a: float, b: float) -> float:
    return b if math.isnan(b) or math.isnan(a) else max(a, b)
