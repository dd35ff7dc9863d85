"""Weights on disk and into a network: darkforge checkpoints and safetensors (checkpoint.py), and
starting a network from any of them or from Darknet `.weights` (transfer.py), with `build`.

Below training and export, which both read and write them; above nn and darknet, whose networks
and `.weights` they hold.
"""
