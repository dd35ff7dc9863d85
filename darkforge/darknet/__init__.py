"""Darknet support (pjreddie's original and the AlexeyAB fork): .cfg syntax, cfg <-> spec, Darknet's
own layer types and modules (layers.py/modules.py; the fork's: fork.py/fork_modules.py), .weights.
Each Darknet section is one file of darkforge/darknet/sections/ (see darkforge/darknet/catalog.py).

It plugs into darkforge the way a user's plugin does (an entry point of the `darkforge.layers`
group, see pyproject.toml): importing this package registers Darknet's layer types and the
`.cfg` reader of `load_spec`. Nothing in darkforge.spec or darkforge.nn imports it. Importing it
does not import torch (the modules and .weights code do, on use).
"""

from darkforge.darknet import catalog
from darkforge.darknet.read import load_cfg
from darkforge.spec import registry
from darkforge.spec.load import register_reader

for _spec, _module in catalog.layer_types():
    registry.add(_spec, _module)
register_reader(".cfg", load_cfg)

__all__ = ["load_cfg"]
