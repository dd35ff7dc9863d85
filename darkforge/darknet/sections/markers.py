"""Sections read by a table of keys: [avgpool], [dropout], [softmax], [reorg], [crop], [cost]
(parser.c's defaults; their layer types: core GlobalAvgPool and Dropout, or darknet/layers.py)."""

from __future__ import annotations

from darkforge.darknet import layers as dn
from darkforge.darknet.keyed import Keyed, Keys, keyed_section
from darkforge.spec.layers import Dropout, GlobalAvgPool

MODULES = "darkforge.darknet.modules"
CROP: Keys = {"crop_height": ("height", "int", 1), "crop_width": ("width", "int", 1)}
CROP |= {"flip": ("flip", "flag", False), "noadjust": ("rescale", "noflag", True)}
CROP |= {"angle": ("angle", "float", 0.0), "saturation": ("saturation", "float", 1.0)}
CROP |= {"exposure": ("exposure", "float", 1.0), "shift": ("shift", "float", 0.0)}
COST: Keys = {
    "type": ("loss", "cost", "sse"),
    "scale": ("scale", "float", 1.0),
    "ratio": ("ratio", "float", 0.0),
}
COST |= {"noobj": ("noobject_scale", "float", 1.0), "thresh": ("thresh", "float", 0.0)}

SECTIONS = [
    keyed_section("avgpool", Keyed(GlobalAvgPool, {}), None, aliases=("avg",)),
    keyed_section(
        "dropout",
        Keyed(
            Dropout,
            {"probability": ("p", "float", 0.5)},
            {"dropblock": 0, "dropblock_size_rel": 0, "dropblock_size_abs": 0},
        ),
        None,
    ),
    keyed_section(
        "softmax",
        Keyed(
            dn.Softmax,
            {"groups": ("groups", "int", 1), "temperature": ("temperature", "float", 1.0)},
            {"spatial": 0, "noloss": 0, "tree": None},
        ),
        MODULES,
        aliases=("soft",),
    ),
    keyed_section(
        "reorg",
        Keyed(dn.Reorg, {"stride": ("stride", "int", 1)}, {"reverse": 0, "flatten": 0, "extra": 0}),
        MODULES,
    ),
    keyed_section("crop", Keyed(dn.Crop, CROP), MODULES),
    keyed_section("cost", Keyed(dn.Cost, COST), MODULES),
]
