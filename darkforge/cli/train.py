"""`darkforge train`, `eval` and `predict`. Under torchrun, `train` runs on every rank; rank 0 alone
creates the run directory and prints (docs/distributed.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from darkforge.cli import detect
from darkforge.cli.app import cli
from darkforge.cli.detect import refuse_flags
from darkforge.cli.options import arch_or_default, recipe_options
from darkforge.cli.progress import Progress
from darkforge.errors import DataError
from darkforge.training.recipe import flags as recipe_flags
from darkforge.training.recipe import merge
from darkforge.training.settings import is_setting, parse_settings

DEVICE = click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps")
DATA = click.option(
    "--data",
    default=None,
    help="cifar10 (default; eval: the checkpoint's), cifar100, imagefolder:DIR (DIR/train/<class>/, "
    "DIR/test/<class>/, optional DIR/val/<class>/), fake; a detector: a data.yaml or COCO .json",
)
DATA_DIR = click.option(
    "--data-dir", type=click.Path(file_okay=False), help="where cifar10 is downloaded/cached"
)


@cli.command()
@click.argument("arch", required=False)
@click.argument("settings", nargs=-1, metavar="[KEY=VALUE]...")
@DATA
@DATA_DIR
@click.option(
    "--preset",
    "--recipe",  # its name before 0.3, kept for a release
    "preset",
    default="default",
    show_default=True,
    help="the recipe to start from: default (aims high), tutorial (Adam, batch 64), or a YAML file "
    "of recipe keys",
)
@recipe_options
@DEVICE
@click.option("--scale", help="a scale from the file's `scales:`, e.g. tiny")
@click.option(
    "--input-size",
    type=click.IntRange(1, 16384),
    help="train at this square input instead of the file's (a detector letterboxes its images to it)",
)
@click.option(
    "--cache",
    type=click.Choice(["auto", "ram", "disk", "none"]),
    default="auto",
    show_default=True,
    help="where decoded images live: ram, disk (memory-mapped), none (decode per batch); auto by size",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    help="where an image folder's decoded-image cache goes [default: DIR/.darkforge-cache, else "
    "$DARKFORGE_CACHE or ~/.cache/darkforge]",
)
@click.option(
    "--cache-budget",
    metavar="SIZE",
    help="memory decoded images may take before auto leaves ram, e.g. 4G [default: half of RAM]",
)
@click.option("--project", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--name", default="train", show_default=True, help="run name; auto-incremented if taken")
@click.option(
    "--resume",
    type=click.Path(),
    help="continue a run: runs/<name> or its weights/last.pt (needs no ARCH; --epochs N extends it)",
)
@click.option(
    "--weights",
    type=click.Path(),
    help="start from a run (its best), a checkpoint, .safetensors or Darknet .weights/.conv.N "
    "(matched by name, then order)",
)
@click.option(
    "--weights-partial",
    is_flag=True,
    help="start from --weights even when they fit less than half the network (else refused)",
)
@click.option("--output", metavar="ID", help="the layer to train a classifier on (multi-output networks)")
@click.option(
    "--tensorboard",
    is_flag=True,
    help="also write metrics.csv's numbers as TensorBoard scalars (RUN/tensorboard/)",
)
@click.option(
    "--sync-bn",
    is_flag=True,
    default=None,
    help="under torchrun on GPUs: batch norm over the global batch (SyncBatchNorm)",
)
def train(arch: str | None, settings: tuple[str, ...], resume: str | None, **flags: Any) -> None:
    """Train ARCH on CIFAR-10 (or --data); writes runs/<name>/ with metrics, checkpoints, plots.
    KEY=VALUE sets any recipe key (`lr=0.05 optimizer=adamw augment.cutout=8`; `darkforge schema
    --markdown` and docs/training.md list them). Under `torchrun --nproc_per_node=N -m darkforge
    train ...`, trains with DDP."""
    # torch: the training modules are imported on use, so `validate` and `--help` stay fast
    from darkforge.training import distributed, session

    if arch is not None and is_setting(arch):  # `darkforge train lr=0.05`: the default ARCH
        settings, arch = (arch, *settings), None
    flagged = {name: flags.pop(name) for name in recipe_flags()}
    overrides = merge(parse_settings(settings), {k: v for k, v in flagged.items() if v is not None})
    progress = Progress(quiet=not distributed.is_main())
    callbacks: list[Any] = [progress]
    if flags.pop("tensorboard") and distributed.is_main():
        from darkforge.training.tensorboard import TensorBoard

        callbacks.append(TensorBoard())
    kwargs = {"callbacks": callbacks, **flags}
    try:
        if resume:
            session.train(arch, resume=resume, **kwargs, **overrides)  # refuses what cannot change
        elif arch is None and flags.get("weights"):  # the weights' own network (a darkforge checkpoint)
            session.train(None, **kwargs, **overrides)
        else:
            session.train(arch_or_default(arch), **kwargs, **overrides)
    except KeyboardInterrupt:
        progress.close()
        click.echo(progress.interrupted(), err=True)
        sys.exit(130)
    finally:
        progress.close()


@cli.command("eval")
@click.argument("ckpt", type=click.Path())
@DATA
@DATA_DIR
@DEVICE
@click.option(
    "--split",
    type=click.Choice(["val", "test", "train"]),
    help="detector: the split measured [default: val, else test]",
)
@click.option(
    "--tta/--no-tta",
    default=None,
    help="classifier: average with the mirrored image, as training evaluates [default: on]",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="also write: a classifier's confusion matrix PNG, a detector's report.json",
)
def eval_(ckpt: str, device: str, **flags: Any) -> None:
    """A checkpoint measured on a dataset: a classifier's accuracy and per-class report on the test
    split; a detector's COCO mAP and per-class AP on the val split (data.yaml or COCO json)."""
    model, info, task = _load(ckpt, device)
    refuse_flags(ckpt, task, {
        "--split": (flags["split"], "detect"),
        "--tta": (flags["tta"], "classify"),
        "--data-dir": (flags["data_dir"], "classify"),
    })  # fmt: skip
    EVALUATORS[task](ckpt, model, info, flags)


def _load(ckpt: str, device: str) -> tuple[Any, Any, str]:
    """The checkpoint's model on `device`, its inference info and its task (classify or detect)."""
    # torch: the training modules are imported on use, so `validate` and `--help` stay fast
    from darkforge.training.device import pick_device
    from darkforge.training.tasks import task_of
    from darkforge.weights import checkpoint

    model, info, _ = checkpoint.load_model(ckpt)
    model.to(pick_device(device))
    return model, info, task_of(model.plan).name


def _eval_classes(ckpt: str, model: Any, info: Any, flags: dict[str, Any]) -> None:
    from darkforge.training import report
    from darkforge.training.data.batches import Batches
    from darkforge.training.data.datasets import load_dataset
    from darkforge.training.evaluate import logits_of, score

    data, data_dir, output = flags["data"], flags["data_dir"], flags["output"]
    # the data the checkpoint was trained on, unless --data says otherwise (older ones: cifar10)
    source = data or info.data or "cifar10"
    # the test split alone, decoded as it is read: eval writes no cache beside the user's images
    folder = source.startswith("imagefolder:") or Path(source).is_dir()
    dataset = load_dataset(
        source,
        data_dir or (info.data_dir if not data else None),
        (info.input[1], info.input[2]),
        cache_mode="none" if folder else "auto",
        only="test",
    )
    if dataset.classes != info.classes:
        raise DataError(
            f"{dataset.name}: its classes differ from the checkpoint's ({', '.join(info.classes)})"
        )
    test = dataset.test.to(next(model.parameters()).device)
    tta = True if flags["tta"] is None else flags["tta"]
    _, _, predictions = score(logits_of(model, Batches(test, 256, info.mean, info.std), tta))
    matrix = report.confusion(test.labels, predictions, len(info.classes))
    summary = report.class_report(matrix, info.classes)
    click.echo(
        f"{ckpt}: accuracy {100 * summary['accuracy']:.2f}% on {len(test):,} test images of {dataset.name}"
    )
    click.echo(report.report_text(summary).rstrip())
    if output:
        report.plot_confusion(matrix, info.classes, Path(output))
        click.echo(f"confusion matrix: {output}")


@cli.command()
@click.argument("ckpt", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option(
    "--top",
    type=click.IntRange(1),
    default=3,
    show_default=True,
    help="classes shown per image (a detector's: the most frequent)",
)
@click.option(
    "--conf",
    type=click.FloatRange(0, 1, max_open=True),
    help="detector: keep boxes scoring above this [default: 0.25]",
)
@click.option(
    "--iou", type=click.FloatRange(0, 1), help="detector: NMS IoU threshold (torchvision) [default: 0.7]"
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    help="detector: folder for predictions.json and drawn images [default: runs/predict, predict2, ...]",
)
@DEVICE
def predict(ckpt: str, images: tuple[str, ...], device: str, **flags: Any) -> None:
    """A classifier: the top-k classes of each IMAGE (JPEG or PNG), resized to the network's input.
    A detector: boxes in each IMAGE (or every image of a FOLDER), letterboxed to the network's
    input and mapped back, written as COCO result JSON and drawn images."""
    model, info, task = _load(ckpt, device)
    refuse_flags(ckpt, task, {f"--{k}": (flags[k], "detect") for k in ("conf", "iou", "output")})
    PREDICTORS[task](ckpt, model, info, images, flags)


def _predict_classes(
    ckpt: str, model: Any, info: Any, images: tuple[str, ...], flags: dict[str, Any]
) -> None:
    import torch
    from torchvision.transforms.v2.functional import resize

    from darkforge.training.data.images import read_image

    dev = next(model.parameters()).device
    mean = torch.tensor(info.mean, device=dev).view(1, -1, 1, 1)
    std = torch.tensor(info.std, device=dev).view(1, -1, 1, 1)
    for name in images:
        image = read_image(name, info.input[0])
        x = resize(image, info.input[1:], antialias=True)[None].to(dev).float().div(255)
        with torch.no_grad():
            probs = model((x - mean) / std).softmax(1)[0]
        values, indices = probs.topk(min(flags["top"], len(info.classes)))
        ranked = ", ".join(
            f"{info.classes[i]} {v:.3f}" for v, i in zip(values.tolist(), indices.tolist(), strict=True)
        )
        click.echo(f"{name}: {ranked}")


# What each task's eval and predict run (the checkpoint's network says which task it is).
EVALUATORS: dict[str, Callable[[str, Any, Any, dict[str, Any]], None]] = {
    "classify": _eval_classes,
    "detect": detect.eval_boxes,
}
PREDICTORS: dict[str, Callable[[str, Any, Any, tuple[str, ...], dict[str, Any]], None]] = {
    "classify": _predict_classes,
    "detect": detect.predict_boxes,
}
