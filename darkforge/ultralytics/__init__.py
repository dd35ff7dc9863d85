"""Ultralytics model YAMLs and state_dicts (YOLOv3u/v5u/v8/11, detection and -cls files).

It plugs into darkforge the way darkforge.darknet does (an entry point of the `darkforge.layers`
group): importing this package registers the reader of Ultralytics' `backbone:`/`head:` YAML
format with `load_spec` (recognised by its content; `yolov8n.yaml` finds `yolov8.yaml` at
scale n). The layer types it translates to (C2f, C3k2, Detect, ...) are darkforge built-ins, so a
translated file is a plain darkforge file. No torch import here. Nothing of Ultralytics' code
is used: the module layouts follow its documentation and published state_dicts (docs/ultralytics.md).
"""

from darkforge.spec.load import YamlFormat, register_yaml_format
from darkforge.ultralytics.modules import MODULES
from darkforge.ultralytics.read import locate, read, recognise

FORMAT = YamlFormat("ultralytics", recognise, read, locate)
register_yaml_format(FORMAT)

__all__ = ["FORMAT", "MODULES", "locate", "read", "recognise"]
