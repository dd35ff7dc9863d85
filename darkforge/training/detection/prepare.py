"""A detector's checks before its run directory exists (docs/detection.md, Training a detector):

- `--data` is a detection set and its labels are sound (read and checked here, before anything is
  created: a bad row leaves no run behind);
- the class count follows the data (as Ultralytics overrides a YAML's `nc`): a `Detect` head takes
  it from the network's `classes`, and Darknet's `[yolo]` layers (written for COCO's 80 classes,
  `filters=255` in the conv before each) are rewritten to the data's count, the edit a Darknet
  user makes to the cfg by hand; each change is printed;
- the recipe sets nothing a detector does not use (classification's augmentation, label smoothing,
  flip-TTA, normalisation, autocast, compile): refused, never silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from darkforge.darknet.layers import Yolo
from darkforge.errors import DataError, SpecError, UsageError
from darkforge.spec.base import LayerSpec, NetworkSpec
from darkforge.spec.dump import dump_spec
from darkforge.spec.layers.detect import Detect
from darkforge.training import recipe
from darkforge.training.detection.data import is_detection_source, read_detection_labels
from darkforge.training.detection.head import GAINS

BOXES = "box augmentation is `train: boxes:` (mosaic, flip, scale, translate, hsv_h, hsv_s, hsv_v)"
# recipe keys a detector does not read -> (the values it trains as, what to do instead)
UNUSED: dict[str, tuple[tuple[Any, ...], str]] = {
    "augment": ((), BOXES),
    "label_smoothing": ((0, 0.0), "the detection losses take no label smoothing; remove it"),
    "tta_flip": ((False,), "detectors are validated without flip-TTA; remove it"),
    "normalize": ((False,), "a detector takes pixels / 255, not normalised; remove it"),
    "precision": (("auto", "32"), "detection trains in fp32 (auto means fp32 for a detector)"),
    "channels_last": (("auto", "off"), "detection trains in the default memory layout; remove it"),
    "compile": ((False,), "detection does not torch.compile; remove it"),
}


def prepare_detector(
    spec: NetworkSpec, text: str, path: Path, data: str | None, overrides: dict[str, Any]
) -> tuple[NetworkSpec, str, list[str]]:
    """(the spec and YAML text the run trains, notes for the user) or a one-line error."""
    check_recipe_keys(spec, overrides)
    check_gains(spec)
    if data is None:
        raise UsageError("train: a detector needs --data", "give a data.yaml (YOLO labels) or a COCO .json")
    if not is_detection_source(data):
        raise DataError(
            f"--data {data}: a detector trains on boxes",
            "give a data.yaml (YOLO txt labels) or a COCO instances .json",
        )
    names, _ = read_detection_labels(data)  # every label checked, no pixel decoded
    followed, notes = follow_classes(spec, len(names), path)
    if followed is spec:
        return spec, text, notes
    note = f"Converted from {path.name} by `darkforge train`; classes follow {Path(data).name}."
    return followed, dump_spec(followed, note), notes


def check_recipe_keys(spec: NetworkSpec, overrides: dict[str, Any]) -> None:
    """Refuse what the file's `train:` section or a flag sets that a detector would not use."""
    section = spec.train or {}
    for key, (uses, hint) in UNUSED.items():
        if key in section and (not uses or section[key] not in uses):
            value = section[key]
            where = ("train", key, *list(value)[:1]) if isinstance(value, dict) else ("train", key)
            message = f"a detector does not use `{'.'.join(map(str, where[1:]))}` (a classification setting)"
            raise _located(spec, message, hint, where)
        given = overrides.get(key)  # a flag, a keyword of darkforge.train, a --recipe FILE's key
        if given is not None and (not uses or given not in uses):
            if uses:  # a value the detector cannot use (`--precision bf16`)
                raise UsageError(f"{recipe.flag_of(key)} {given}: not for a detector", hint)
            named = ".".join([key, *list(given)[:1]]) if isinstance(given, dict) else key
            raise UsageError(f"a detector does not use `{named}` (a classification setting)", hint)


def check_gains(spec: NetworkSpec) -> None:
    """A loss gain under `train: boxes:` that this network's head does not have is refused
    (`dfl` is the Detect head's, `obj` the [yolo] head's)."""
    boxes = (spec.train or {}).get("boxes")
    kind = "detect" if any(isinstance(layer, Detect) for layer in spec.layers) else "yolo"
    for key in boxes if isinstance(boxes, dict) else ():
        if key in ("box", "cls", "dfl", "obj") and key not in GAINS[kind]:
            where = ("train", "boxes", key)
            message = f"a {'Detect' if kind == 'detect' else '[yolo]'} head has no `{key}` loss term"
            hint = "its gains: " + ", ".join(GAINS[kind])
            raise _located(spec, message, hint, where)


def follow_classes(spec: NetworkSpec, count: int, path: Path) -> tuple[NetworkSpec, list[str]]:
    """`spec` with every [yolo] layer and the conv feeding it sized for `count` classes (the
    same spec when they already are), and a note per change. A [yolo] whose input is not a conv
    of `anchors × (classes + 5)` filters cannot follow: one line saying what to edit."""
    layers, notes = list(spec.layers), []
    for i, layer in enumerate(layers):
        if isinstance(layer, Detect) and isinstance(layer.classes, int) and layer.classes != count:
            notes.append(f"layer {i} (Detect): classes {layer.classes} -> {count} (the data's)")
            layers[i] = layer.model_copy(update={"classes": count})
        if not isinstance(layer, Yolo) or layer.classes == count:
            continue
        anchors = layer.channels() // (layer.classes + 5)
        conv = _feeding(layers, i)
        want = anchors * (count + 5)
        if conv is None or getattr(conv, "filters", None) != layer.channels():
            raise SpecError(
                f"layer {i} ([yolo]) has classes={layer.classes}, the data {count}",
                f"set classes={count} in each [yolo] and filters={want} in the [convolutional] before it",
                str(path),
            )
        j = layers.index(conv)
        notes.append(
            f"layer {i} ([yolo]): classes {layer.classes} -> {count} (the data's), "
            f"layer {j} filters {conv.filters} -> {want}"  # type: ignore[attr-defined]
        )
        layers[j] = conv.model_copy(update={"filters": want})
        layers[i] = layer.model_copy(update={"classes": count})
    if not notes:
        return spec, []
    followed = spec.model_copy(update={"layers": layers})
    followed._source, followed._converted_from = spec._source, spec._converted_from
    return followed, notes


def _feeding(layers: list[LayerSpec], i: int) -> LayerSpec | None:
    """The layer a [yolo] at index i reads: Darknet's is always the one before it."""
    if layers[i].sources() != [-1] or i == 0:
        return None
    return layers[i - 1]


def _located(spec: NetworkSpec, message: str, hint: str, where: tuple[object, ...]) -> SpecError:
    """The error at `where`'s line in the architecture file (a spec read from text has none)."""
    if spec._source is not None:
        return spec._source.error(message, hint, where)
    return SpecError(message, hint, path=where)
