"""`darkforge train`, `eval` and `predict`. Under torchrun, `train` runs on every rank; rank 0 alone
creates the run directory and prints (docs/distributed.md)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import click

from darkforge.cli.app import cli
from darkforge.cli.options import arch_or_default
from darkforge.cli.progress import Progress
from darkforge.errors import DataError, UsageError
from darkforge.spec import budget
from darkforge.spec.dump import dump_spec
from darkforge.spec.load import arch_path, load_spec
from darkforge.training import recipe
from darkforge.training.runargs import read_run_args
from darkforge.training.rundir import RunDir

DEVICE = click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps")
DATA = click.option(
    "--data",
    default=None,
    help="cifar10 (default), cifar100, imagefolder:DIR (DIR/train/<class>/, DIR/test/<class>/, "
    "optional DIR/val/<class>/) or fake",
)
DATA_DIR = click.option(
    "--data-dir", type=click.Path(file_okay=False), help="where cifar10 is downloaded/cached"
)


@cli.command()
@click.argument("arch", required=False)
@DATA
@DATA_DIR
@click.option(
    "--recipe", default="default", show_default=True, help="default (aims high) or tutorial (Adam, batch 64)"
)
@click.option("--epochs", type=click.IntRange(1), help="[recipe: 30]")
@click.option("--batch-size", type=click.IntRange(1), help="global batch [recipe: 256]")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="peak learning rate [recipe: 0.1]")
@DEVICE
@click.option(
    "--precision",
    type=click.Choice(["auto", "32", "bf16", "16"]),
    help="autocast [recipe: auto = bf16 on CUDA]",
)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="[recipe: 0]")
@click.option("--scale", help="a scale from the file's `scales:`, e.g. tiny")
@click.option(
    "--val-split",
    type=click.FloatRange(0, 1, max_open=True),
    help="hold out this share of train to pick `best`",
)
@click.option(
    "--ema", type=click.FloatRange(0, 1, max_open=True), help="EMA decay of the weights (e.g. 0.999)"
)
@click.option(
    "--workers",
    type=click.IntRange(0),
    help="accepted for familiarity: batches are built on the device, no workers",
)
@click.option(
    "--cache",
    type=click.Choice(["auto", "ram", "disk", "none"]),
    default="auto",
    show_default=True,
    help="where decoded images live: ram, disk (memory-mapped), none (decode per batch); auto by size",
)
@click.option(
    "--cache-budget",
    metavar="SIZE",
    help="memory decoded images may take before auto leaves ram, e.g. 4G [default: half of RAM]",
)
@click.option("--project", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--name", default="train", show_default=True, help="run name; auto-incremented if taken")
@click.option(
    "--resume", type=click.Path(), help="continue a run: runs/<name> or its weights/last.pt (needs no ARCH)"
)
@click.option(
    "--sync-bn",
    is_flag=True,
    default=None,
    help="under torchrun on GPUs: batch norm over the global batch (SyncBatchNorm)",
)
def train(arch: str | None, resume: str | None, sync_bn: bool | None, **flags: Any) -> None:
    """Train ARCH on CIFAR-10 (or --data); writes runs/<name>/ with metrics, checkpoints, plots.
    Under `torchrun --nproc_per_node=N -m darkforge train ...`, trains with DDP."""
    # torch: the training modules are imported on use, so `validate` and `--help` stay fast
    from darkforge.training import distributed
    from darkforge.training import loop as trainer

    if resume and arch:
        raise UsageError("give either ARCH or --resume, not both", "--resume takes the arch from the run")
    if resume:
        started = _resume(resume, flags["device"], sync_bn)
        if started is None:
            return
        job, run, payload = started
    else:
        job, run, payload = _job(arch_or_default(arch), flags, bool(sync_bn)), None, None
    device = trainer.pick_device(job.device)
    distributed.check(job.recipe.batch, device, job.sync_bn)
    distributed.init(device)  # joins torchrun's process group; nothing in a single process
    progress = Progress(quiet=not distributed.is_main())
    with distributed.peer_errors():
        new = run is None
        run = run or _create(job, flags["project"], flags["name"])
        try:
            t = trainer.fit(job, run, progress, resume=payload)
        except BaseException:
            if new and distributed.is_main() and not run.last.exists():
                shutil.rmtree(run.path, ignore_errors=True)  # nothing trained: leave no empty run behind
            raise
        progress.close()
        summary = trainer.finish(t)
        distributed.close()
    if not distributed.is_main():
        return
    last = t.history[-1]
    click.echo(
        f"done: final epoch {last['epoch']} test acc {100 * last['test_acc']:.2f}%; best {100 * t.best:.2f}% "
        f"(picked on the {summary['best_picked_on']}); results in {run.path}"
    )
    click.echo((run.path / "report.txt").read_text().rstrip())


def _job(arch: str, flags: dict[str, Any], sync_bn: bool) -> Any:
    """Validate everything before a run directory is created (nothing is created for bad input)."""
    # torch: the training modules are imported on use, so `validate` and `--help` stay fast
    from darkforge.training.data import parse_size
    from darkforge.training.loop import Job

    path = arch_path(arch)
    spec = load_spec(path)
    recipe.check_recipe(spec)
    budget.require_classifier(budget.check_before_build(spec, flags["scale"]), "train")
    names = {"batch_size": "batch"}
    keys = ("epochs", "batch_size", "lr", "precision", "seed", "val_split", "ema")
    overrides = {names.get(k, k): flags[k] for k in keys}
    rec = recipe.resolve(flags["recipe"], spec.train, overrides, str(path))
    data = flags["data"] or "cifar10"
    cache_budget = parse_size(flags["cache_budget"]) if flags["cache_budget"] else None
    return Job(
        _arch_yaml(path, spec),
        str(path),
        flags["scale"],
        rec,
        data,
        flags["data_dir"],
        flags["device"],
        sync_bn,
        flags["cache"],
        cache_budget,
    )


def _arch_yaml(path: Path, spec: Any) -> str:
    """The architecture as YAML, as runs and checkpoints keep it: the file itself, or a Darknet
    .cfg converted (the comments of a YAML file survive; a .cfg cannot be read back as YAML)."""
    if path.suffix == ".cfg":
        return dump_spec(spec, f"Converted from {path.name} by `darkforge train`.")
    return path.read_text()


def _create(job: Any, project: str, name: str) -> Any:
    """Rank 0 creates the run directory and says where; under torchrun the others get its path."""
    # torch: the training modules are imported on use, so `validate` and `--help` stay fast
    from darkforge.training import distributed

    path = ""
    if distributed.is_main():
        run = RunDir.create(project, name)
        run.write_text("arch.yaml", job.arch_yaml)
        args = {"arch": job.arch_name, "scale": job.scale, "data": job.data, "data_dir": job.data_dir}
        args |= {"device": job.device, "sync_bn": job.sync_bn, "recipe": job.recipe.model_dump(mode="json")}
        args |= {"cache": job.cache, "cache_budget": job.cache_budget}
        run.write_yaml("args.yaml", args)
        click.echo(f"run directory: {run.path}")
        path = str(run.path)
    return RunDir(Path(distributed.broadcast(path)))


def _resume(path: str, device: str, sync_bn: bool | None) -> tuple[Any, Any, Any] | None:
    """The job of an existing run and its last checkpoint (every rank reads it); None when the run
    is complete."""
    # torch: the training modules are imported on use, so `validate` and `--help` stay fast
    from darkforge.training import checkpoint, distributed
    from darkforge.training.loop import Job

    run = RunDir.existing(path)
    args = read_run_args(run)  # damaged args.yaml or arch.yaml: one line naming the file
    rec = args.recipe
    device = device if device != "auto" else args.device
    job = Job(
        args.arch_yaml,
        args.arch,
        args.scale,
        rec,
        args.data,
        args.data_dir,
        device,
        args.sync_bn if sync_bn is None else sync_bn,
        args.cache,
        args.cache_budget,
    )
    payload = checkpoint.load(run.last) if run.last.exists() else None
    if payload is not None:
        checkpoint.check_resumable(payload, run.last)
    done = len(payload["state"]["history"]) if payload else 0
    complete = done >= rec.epochs
    if distributed.is_main():
        click.echo(
            f"{run.path}: already complete ({done} of {rec.epochs} epochs)"
            if complete
            else f"resuming {run.path} after epoch {done}"
        )
    if complete:
        return None
    return job, run, payload


@cli.command("eval")
@click.argument("ckpt", type=click.Path())
@DATA
@DATA_DIR
@DEVICE
@click.option(
    "--tta/--no-tta",
    default=True,
    show_default=True,
    help="average with the mirrored image, as training evaluates",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="also write the confusion matrix PNG here"
)
def eval_(
    ckpt: str, data: str | None, data_dir: str | None, device: str, tta: bool, output: str | None
) -> None:
    """Accuracy and per-class report of a checkpoint on a dataset's test split."""
    # torch: the training modules are imported on use, so `validate` and `--help` stay fast
    from darkforge.training import checkpoint, report
    from darkforge.training.data import Batches, load_dataset
    from darkforge.training.device import pick_device
    from darkforge.training.loop import logits_of, score

    dev = pick_device(device)
    model, info, _ = checkpoint.load_model(ckpt)
    model.to(dev)
    dataset = load_dataset(data or "cifar10", data_dir, (info.input[1], info.input[2]))
    if dataset.classes != info.classes:
        raise DataError(
            f"{dataset.name}: its classes differ from the checkpoint's ({', '.join(info.classes)})"
        )
    test = dataset.test.to(dev)
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
@click.option("--top", type=click.IntRange(1), default=3, show_default=True, help="classes shown per image")
@DEVICE
def predict(ckpt: str, images: tuple[str, ...], top: int, device: str) -> None:
    """Top-k classes for each IMAGE (JPEG or PNG), resized to the network's input."""
    # torch: the training modules are imported on use, so `validate` and `--help` stay fast
    import torch
    from torchvision.transforms.v2.functional import resize

    from darkforge.training import checkpoint
    from darkforge.training.data import read_image
    from darkforge.training.device import pick_device

    dev = pick_device(device)
    model, info, _ = checkpoint.load_model(ckpt)
    model.to(dev)
    mean = torch.tensor(info.mean, device=dev).view(1, -1, 1, 1)
    std = torch.tensor(info.std, device=dev).view(1, -1, 1, 1)
    for name in images:
        image = read_image(name, info.input[0])
        x = resize(image, info.input[1:], antialias=True)[None].to(dev).float().div(255)
        with torch.no_grad():
            probs = model((x - mean) / std).softmax(1)[0]
        values, indices = probs.topk(min(top, len(info.classes)))
        ranked = ", ".join(
            f"{info.classes[i]} {v:.3f}" for v, i in zip(values.tolist(), indices.tolist(), strict=True)
        )
        click.echo(f"{name}: {ranked}")
