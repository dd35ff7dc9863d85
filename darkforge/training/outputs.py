"""Which output a classifier trains on. A network whose output is not one score per class (a
detector's maps, several outputs) is refused before anything is created, unless `--output ID`
names the layer to train on: class scores train as they are; a map gets a classification head
(GlobalAvgPool, Linear), the way Darknet pretrained its detectors' backbones on ImageNet. The
run keeps the derived architecture (arch.yaml), so eval, predict and export need nothing more,
and its weights transfer by name into the full network (`--weights`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from darkforge.errors import UsageError
from darkforge.spec.base import NetworkSpec
from darkforge.spec.dump import dump_spec
from darkforge.spec.load import spec_from_text
from darkforge.spec.shapes import plan

HINT = "choose the layer to train on with --output ID (a map gets a pooled linear head)"


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(n) for n in shape)


def derive(spec: NetworkSpec, path: Path, output: str | None, scale: str | None) -> str | None:
    """The YAML to train when it is not the file itself; None when the file trains as it is."""
    compiled = plan(spec.resolved(scale))
    shapes = compiled.output_shapes
    if output is None:
        if len(shapes) == 1 and len(shapes[0]) == 1:
            return None
        listing = ", ".join(
            f"{compiled.layers[i].name} {_shape(compiled.shape_of(i))}" for i in compiled.outputs
        )
        what = f"{len(shapes)} outputs ({listing})" if len(shapes) > 1 else f"its output is a map ({listing})"
        raise UsageError(f"{path}: {what}, not one class-score vector to train a classifier on", HINT)
    try:
        index = compiled.index_of(output, "--output")
    except UsageError as e:
        raise UsageError(f"--output {output[:60]!r}: no such layer in {path}", e.hint) from None
    is_map = len(compiled.shape_of(index)) != 1
    data = yaml.safe_load(dump_spec(spec))
    data["layers"] = data["layers"][: index + 1]
    data.pop("outputs", None)
    header = f"Derived from {path.name} by `darkforge train --output {output}`: its layers up to {output}"
    if is_map:
        ids = {info.name for info in compiled.layers}
        head = next(name for name in ("fc", "classifier", "class_head") if name not in ids)
        data["layers"] += [{"type": "GlobalAvgPool"}, {"type": "Linear", "id": head}]
        header += f", then a classification head (GlobalAvgPool, Linear '{head}')"
    derived = spec_from_text(yaml.safe_dump(data, sort_keys=False), str(path))
    return dump_spec(derived, header + ".")
