"""Darknet sections darkforge has no layer for: refused with the reason rather than "unknown"."""

from __future__ import annotations

from darkforge.darknet.catalog import DarknetSection

NO_LAYER = "Darknet's section has no darkforge layer (see docs/darknet.md)"
# rnn_layer.c, gru, lstm: text models, a sequence read as batch × time_steps rows.
RECURRENT = (
    "a recurrent layer (state carried over the [net] time_steps of a sequence): darkforge builds "
    "feed-forward networks of one image, so it cannot compute it"
)
# crnn_layer.c, conv_lstm_layer.c (yolov3-tiny_occlusion_track.cfg, the lstm video cfgs): the
# state is reset only in training; in inference it carries over from one forward call (one video
# frame) to the next, so the output depends on every earlier frame.
VIDEO = (
    "a convolutional recurrent layer: in inference Darknet carries its state from one forward call "
    "(video frame) to the next, over [net] time_steps in training; a darkforge network computes each "
    "image on its own, so it cannot compute it"
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
] + [DarknetSection(name, refusal=RECURRENT) for name in ("rnn", "gru", "lstm")]
SECTIONS += [DarknetSection(name, refusal=VIDEO) for name in ("crnn", "conv_lstm")]
