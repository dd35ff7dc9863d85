"""The training recipe: pydantic, torch-free, like Darknet's [net] section.

Precedence: a named preset (`--preset`), then the architecture file's `train:` section, then
command-line flags. The resolved recipe is saved in the run directory (args.yaml) and in every
checkpoint, so a resumed run trains exactly as it started.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic.fields import FieldInfo

from darkforge.errors import SpecError, UsageError
from darkforge.spec.base import NetworkSpec, Strict
from darkforge.spec.messages import describe


class Augment(Strict):
    crop: int = Field(4, ge=0, le=64, description="random crop after padding this many pixels (0: off)")
    flip: bool = Field(True, description="random horizontal flip")
    cutout: int = Field(0, ge=0, le=256, description="side of a random square set to the mean (0: off)")
    mixup: float = Field(0.0, ge=0, le=10, description="MixUp's alpha, batch-level (0: off)")
    cutmix: float = Field(
        0.0, ge=0, le=10, description="CutMix's alpha, batch-level (0: off; with mixup: one per batch)"
    )


class Boxes(Strict):
    """Detection: box augmentation (detection/data/augment.py), loss gains, evaluation NMS."""

    mosaic: bool = Field(True, description="4-image mosaic (YOLOv4) on each training batch")
    close_mosaic: int = Field(2, ge=0, description="the last N epochs train without mosaic")
    flip: float = Field(0.5, ge=0, le=1, description="probability of a horizontal mirror")
    scale: float = Field(0.5, ge=0, lt=1, description="random gain in [1 - scale, 1 + scale]")
    translate: float = Field(0.1, ge=0, le=0.5, description="random shift, a fraction of the side")
    hsv_h: float = Field(0.015, ge=0, le=0.5, description="hue turn, a fraction of the colour circle")
    hsv_s: float = Field(0.7, ge=0, le=1, description="saturation gain in [1 - s, 1 + s]")
    hsv_v: float = Field(0.4, ge=0, le=1, description="value gain in [1 - v, 1 + v]")
    # loss gains: None is the head's own (Ultralytics' v8 for Detect, YOLOv5's for [yolo])
    box: float | None = Field(None, ge=0, description="gain of the box term (CIoU); Detect 7.5, [yolo] 0.05")
    cls: float | None = Field(None, ge=0, description="gain of the class term (BCE); 0.5")
    dfl: float | None = Field(None, ge=0, description="gain of the DFL term (Detect heads only); 1.5")
    obj: float | None = Field(None, ge=0, description="gain of the objectness term ([yolo] heads only); 1.0")
    conf: float = Field(0.001, ge=0, le=1, description="validation: lowest score kept before NMS")
    iou: float = Field(0.7, gt=0, le=1, description="validation: NMS IoU threshold")
    max_det: int = Field(300, ge=1, le=100_000, description="validation: detections kept per image")
    clip_grad: float = Field(
        10.0, ge=0, description="clip the gradient's norm to this each step (0: off): a wild early batch"
    )


def flag(name: str = "", metavar: str = "", help: str = "") -> dict[str, Any]:
    """A Recipe field that is also a `train` flag (and a keyword of `darkforge.train`): `name`
    when the flag is not the field's (`--batch-size` for `batch`); `help` when the description
    does not read as one. The flag, its type and its limits come from the field (cli/options.py)."""
    return {"flag": name, "metavar": metavar, "help": help}


FLAG = flag()


class Recipe(Strict):
    """Every training setting. A field with `json_schema_extra=flag()` is also a `train` flag
    and a keyword of `darkforge.train`: adding a training option is adding a field here."""

    epochs: int = Field(30, ge=1, le=100_000, json_schema_extra=FLAG)
    batch: int = Field(
        256,
        ge=1,
        le=65536,
        description="images per optimizer step (global)",
        json_schema_extra=flag("--batch-size", help="global batch"),
    )
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.1, gt=0, le=100, description="peak learning rate", json_schema_extra=FLAG)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0, le=1, description="on conv/linear weights only")
    schedule: Literal["onecycle", "cosine", "constant"] = Field(
        "onecycle", description="onecycle: linear warm-up to lr, then linear decay to 0"
    )
    warmup: float = Field(0.2, ge=0, le=1, description="fraction of training spent warming up")
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    zero_init_residual: bool = Field(
        True, description="start each residual block as the identity (last batch-norm scale 0)"
    )
    augment: Augment = Field(default_factory=Augment)
    boxes: Boxes = Field(default_factory=Boxes, description="detection: box augmentation, loss, NMS")
    normalize: bool = Field(True, description="subtract the train set's mean, divide by its std")
    tta_flip: bool = Field(True, description="evaluate on the image and its mirror, average logits")
    ema: float = Field(
        0.0, ge=0, lt=1, description="EMA decay of weights, evaluated (e.g. 0.999)", json_schema_extra=FLAG
    )
    ema_warmup: bool = Field(True, description="EMA decay ramps up as timm's: min(ema, 1 - (1 + step)^-2/3)")
    patience: int = Field(
        0,
        ge=0,
        description="stop after this many epochs without a better `best` (0: off)",
        json_schema_extra=flag(metavar="N", help="stop after N epochs without a better best"),
    )
    precision: Literal["auto", "32", "bf16", "16"] = Field(
        "auto",
        description="auto: bf16 autocast on CUDA, fp32 elsewhere",
        json_schema_extra=flag(help="autocast (auto: bf16 on CUDA)"),
    )
    channels_last: Literal["auto", "on", "off"] = Field("auto", description="auto: on for CUDA")
    compile: bool = Field(False, description="torch.compile the model (pays off on GPUs)")
    val_split: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="share of train held out to pick `best` when the data has no val split of its own "
        "(0: pick on test, which reports an optimistic test score)",
        json_schema_extra=FLAG,
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, json_schema_extra=FLAG)
    freeze: int | str | list[int | str] | None = Field(
        None,
        description="weights that stay fixed: a count of leading layers, every layer up to and "
        "including an id, or a list of layer ids/indices (Darknet's stopbackward converts to a count)",
        json_schema_extra=flag(
            metavar="N|ID|ID,ID", help="keep layers fixed: N leading layers, up to ID, or a list"
        ),
    )
    darknet: dict[str, Any] | None = Field(
        None, description="settings converted from a Darknet [net] section, kept for reference"
    )

    @field_validator("freeze", mode="before")
    @classmethod
    def _freeze_text(cls, value: Any) -> Any:
        """`--freeze 3`, `--freeze c4`, `--freeze stem,c3` (ids never are all digits)."""
        if not isinstance(value, str):
            return value
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts:
            raise ValueError("give a count, an id, or ids separated by commas")
        items = [int(p) if p.isdigit() else p for p in parts]
        return items[0] if len(items) == 1 else items


def flags() -> dict[str, FieldInfo]:
    """The Recipe fields that are `train` flags, by field name."""
    return {
        name: info
        for name, info in Recipe.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and "flag" in info.json_schema_extra
    }


def flag_of(key: str) -> str:
    """The flag that sets recipe key `key` (`--batch-size` for `batch`), as messages name it."""
    info = Recipe.model_fields.get(key)
    extra = info.json_schema_extra if info is not None else None
    named = extra.get("flag") if isinstance(extra, dict) else None
    return str(named) if named else "--" + key.replace("_", "-")


PRESETS: dict[str, dict[str, Any]] = {
    # Aims high: SGD-Nesterov one-cycle, label smoothing, crop+flip, flip-TTA (docs/training.md).
    "default": {},
    # The tutorial this project grew from: Adam 1e-3, batch 64, no augmentation, 10 epochs,
    # ToTensor only (no normalization), constant learning rate.
    "tutorial": {
        "epochs": 10,
        "batch": 64,
        "optimizer": "adam",
        "lr": 1e-3,
        "nesterov": False,
        "weight_decay": 0.0,
        "schedule": "constant",
        "warmup": 0.0,
        "label_smoothing": 0.0,
        "zero_init_residual": False,
        "augment": {"crop": 0, "flip": False, "cutout": 0},
        "normalize": False,
        "tta_flip": False,
    },
    # Detectors (what `train` uses for a network with a detection head unless --recipe says):
    # SGD with YOLO's momentum, pixels / 255, no label smoothing or flip-TTA, a short warm-up.
    "detect": {
        "epochs": 30,
        "batch": 64,
        "lr": 0.01,
        "momentum": 0.937,
        "warmup": 0.1,
        "label_smoothing": 0.0,
        "normalize": False,
        "tta_flip": False,
        "zero_init_residual": False,
        "ema": 0.999,
    },
}


def resolve(
    preset: str = "default",
    from_file: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    file: str | None = None,
) -> Recipe:
    if preset not in PRESETS:
        raise UsageError(f"no preset {preset!r}", "choose one of: " + ", ".join(PRESETS))
    data: dict[str, Any] = {**PRESETS[preset]}
    try:
        Recipe.model_validate(from_file or {})
    except ValidationError as e:
        raise describe(e, {"train": from_file}, ("train",), Recipe).line(SpecError, file) from None
    data = merge(data, from_file or {})
    data = merge(data, {k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:  # a flag's value: the flag by its name
        problem = describe(e, data, model=Recipe)
        head, *rest = problem.loc or ("recipe",)
        where = flag_of(str(head)) + "".join(f".{p}" for p in rest)
        raise UsageError(f"{where}: {problem.message}", problem.hint) from None


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` over `base`, section by section: `augment: {cutout: 8}` changes cutout alone."""
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        both = isinstance(below, dict) and isinstance(value, dict)
        merged[key] = merge(below, value) if both else value  # type: ignore[arg-type]
    return merged


def check_recipe(spec: NetworkSpec) -> None:
    """Validate an architecture file's `train:` section, with errors at its line in the file.
    (The loader keeps `train:` as plain data: the recipe belongs to training, not to the dialect.)"""
    if spec.train is None:
        return
    try:
        Recipe.model_validate(spec.train)
    except ValidationError as e:
        source = spec._source
        problem = describe(e, {"train": spec.train}, ("train",), Recipe)
        raise (problem.line(SpecError, None) if source is None else problem.at(source)) from None
