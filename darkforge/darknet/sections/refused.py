"""Darknet sections darkforge has no layer for: refused with the reason rather than "unknown"."""

from __future__ import annotations

from darkforge.darknet.catalog import DarknetSection

NO_LAYER = "Darknet's section has no darkforge layer (see docs/darknet.md)"
# rnn_layer.c, crnn_layer.c, ...: each keeps a state from one time step to the next over [net]
# time_steps, reading a sequence as batch × time_steps rows; darkforge's graph maps one image.
RECURRENT = (
    "a recurrent layer (state carried over the [net] time_steps of a sequence): darkforge builds "
    "feed-forward networks of one image, so it cannot compute it"
)

SECTIONS = [
    DarknetSection(name, refusal=NO_LAYER, aliases=aliases)
    for name, aliases in [
        ("deconvolutional", ("deconv",)),
        ("lrn", ()),
        ("normalization", ()),
        ("logistic", ()),
        ("l2norm", ()),
        ("iseg", ()),
        ("history", ()),
        ("implicit_add", ()),
        ("implicit_mul", ()),
    ]
] + [DarknetSection(name, refusal=RECURRENT) for name in ("rnn", "gru", "lstm", "crnn", "conv_lstm")]
