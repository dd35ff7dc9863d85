"""Training, as a linear recipe: set up, loop (train, evaluate, checkpoint), report.

Every epoch is seeded from (seed, epoch), and `last.pt` holds the model, optimizer, schedule,
scaler, EMA and the metrics history, so a run killed at any moment resumes from its last
completed epoch and continues exactly as an uninterrupted run would.

Under torchrun the same recipe runs on every rank (darkforge.distributed): the batches are each
rank's slice of the global batch, the model is wrapped in DDP, evaluation sums over ranks, and
rank 0 alone writes.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from darkforge.errors import DataError, UsageError
from darkforge.nn.network import Network
from darkforge.spec.load import spec_from_text
from darkforge.training import checkpoint, distributed, report
from darkforge.training.data import Batches, Dataset, Split, load_dataset
from darkforge.training.device import pick_device, precision_of
from darkforge.training.optim import lr_factor, make_optimizer
from darkforge.training.recipe import Recipe
from darkforge.training.rundir import RunDir

COLUMNS = [
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "lr",
    "img_s",
    "seconds",
    "val_loss",
    "val_acc",
]


@dataclass
class Job:
    """Everything a run needs; the CLI fills it from flags, or from a run directory on resume."""

    arch_yaml: str
    arch_name: str  # the file it came from, for messages
    scale: str | None
    recipe: Recipe
    data: str = "cifar10"
    data_dir: str | None = None
    device: str = "auto"
    sync_bn: bool = False  # under torchrun on GPUs: batch-norm statistics over the global batch
    cache: str = "auto"  # where an image folder's decoded pixels live: auto, ram, disk, none
    cache_budget: int | None = None  # bytes `auto` lets decoded images take in memory (None: half of RAM)


EventKind = Literal["start", "step", "epoch"]


@dataclass
class Event:
    """Progress for the CLI and callbacks."""

    kind: EventKind
    epoch: int = 0
    step: int = 0
    steps: int = 0
    values: dict[str, Any] = field(default_factory=dict)


Callback = Callable[[Event], None]


@dataclass
class Trainer:
    """The pieces of a run that live across epochs."""

    job: Job
    run: RunDir
    data: Dataset
    model: Network  # the plain network: what checkpoints hold
    replica: nn.Module  # what the training loop calls: DistributedDataParallel(model) under torchrun
    device: torch.device
    info: checkpoint.Inference
    train_split: Split
    val_split: Split | None
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    ema: torch.optim.swa_utils.AveragedModel | None
    dtype: torch.dtype | None
    history: list[dict[str, Any]] = field(default_factory=list)
    best: float = -1.0
    test_predictions: Tensor | None = None  # of the last epoch's evaluation, reused by finish()
    channels_last: bool = False

    @property
    def recipe(self) -> Recipe:
        return self.job.recipe

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def batches(self, split: Split, train: bool) -> Batches:
        mean, std = (self.info.mean, self.info.std)
        aug = self.recipe.augment
        # training: each rank takes its slice of every global batch; evaluation shards the split
        rank, world = (distributed.rank(), distributed.world_size()) if train else (0, 1)
        return Batches(
            split,
            self.recipe.batch if train else max(self.recipe.batch, 256),
            mean,
            std,
            crop=aug.crop if train else 0,
            flip=aug.flip if train else False,
            cutout=aug.cutout if train else 0,
            shuffle=train,
            drop_last=train and len(split) >= 2 * self.recipe.batch,
            channels_last=self.channels_last,
            rank=rank,
            world=world,
        )


def setup(job: Job, run: RunDir, on_event: Callback, state: dict[str, Any] | None = None) -> Trainer:
    recipe = job.recipe
    if recipe.freeze is not None:  # never ignore what changes training (issue 12 implements it)
        raise UsageError("freeze: freezing layers is not implemented yet", "remove `freeze` from the recipe")
    device = pick_device(job.device)
    torch.manual_seed(recipe.seed)
    spec = spec_from_text(job.arch_yaml, job.arch_name).resolved(job.scale)
    c, h, w = spec.input.shape
    with distributed.main_first():  # rank 0 downloads or decodes into the cache; the others read it
        data = load_dataset(job.data, job.data_dir, (h, w), job.cache, job.cache_budget)
    if data.train.images.shape[1] != c:
        raise DataError(f"{data.name} has {data.train.images.shape[1]} channels, the network expects {c}")
    mean, std = data.mean_std if recipe.normalize else ([0.0] * c, [1.0] * c)
    info = checkpoint.Inference(job.arch_yaml, job.arch_name, job.scale, data.classes, [c, h, w], mean, std)
    model = info.build().to(device)
    if recipe.zero_init_residual:
        for module in model.modules():
            init = getattr(module, "zero_init_residual", None)
            if callable(init):
                init()
    channels_last = recipe.channels_last == "on" or (recipe.channels_last == "auto" and device.type == "cuda")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    replica = distributed.wrap(model, device, job.sync_bn)
    if recipe.compile:  # pays off on GPUs; measured slower on CPUs (docs/performance.md)
        replica = torch.compile(replica)  # type: ignore[assignment]
    train_split, val_split = data.train, None
    if recipe.val_split:
        order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(recipe.seed))
        n_val = int(recipe.val_split * len(order))
        val_split, train_split = data.train.subset(order[:n_val]), data.train.subset(order[n_val:])
    train_split, data.test = train_split.to(device), data.test.to(device)
    val_split = val_split.to(device) if val_split is not None else None
    optimizer = make_optimizer(model, recipe)
    dtype = precision_of(recipe, device)
    trainer = Trainer(
        job, run, data, model, replica, device, info, train_split, val_split, optimizer,
        torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0),
        torch.amp.GradScaler(device.type, enabled=dtype == torch.float16),
        None, dtype, channels_last=channels_last,
    )  # fmt: skip
    steps = len(trainer.batches(train_split, True)) * recipe.epochs
    trainer.schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(recipe, s, steps))
    if recipe.ema:
        avg = torch.optim.swa_utils.get_ema_multi_avg_fn(recipe.ema)
        trainer.ema = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=avg, use_buffers=True)
    if state is not None:
        _restore(trainer, state)
    return trainer


def _restore(t: Trainer, state: dict[str, Any]) -> None:
    t.model.load_state_dict(state["model"])
    t.optimizer.load_state_dict(state["optimizer"])
    t.schedule.load_state_dict(state["schedule"])
    t.scaler.load_state_dict(state["scaler"])
    if t.ema is not None and state.get("ema") is not None:
        t.ema.load_state_dict(state["ema"])
    t.history, t.best = list(state["history"]), float(state["best"])


def fit(job: Job, run: RunDir, on_event: Callback, resume: dict[str, Any] | None = None) -> Trainer:
    """Train `job` into `run`, continuing from a `last.pt` payload when resuming."""
    t = setup(job, run, on_event, resume["state"] | {"model": resume["model"]} if resume else None)
    on_event(_start_event(t))
    for epoch in range(len(t.history) + 1, t.recipe.epochs + 1):
        # dropout and anything else global; each rank masks its own slice differently
        torch.manual_seed(t.recipe.seed * 1_000_003 + epoch + distributed.rank() * 1_000_000_007)
        row = train_epoch(t, epoch, on_event)
        for name, split in (("test", t.data.test), ("val", t.val_split)):
            if split is not None:
                loss, acc, predictions = evaluate(t, split)
                row[f"{name}_loss"], row[f"{name}_acc"] = loss, acc
                if name == "test":
                    t.test_predictions = predictions
        t.history.append(row)
        score = row["val_acc"] if t.val_split is not None else row["test_acc"]
        improved = score > t.best
        t.best = max(t.best, score)
        save_epoch(t, improved)
        on_event(Event("epoch", epoch, values=row | {"best": t.best}))
    return t


def _start_event(t: Trainer) -> Event:
    values = {
        "device": str(t.device),
        "precision": {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[t.dtype],
        "train": len(t.train_split),
        "val": len(t.val_split) if t.val_split is not None else 0,
        "test": len(t.data.test),
        "classes": len(t.data.classes),
        "params": t.model.plan.params,
        "epochs": t.recipe.epochs,
        "from_epoch": len(t.history) + 1,
        "steps": len(t.batches(t.train_split, True)),
        "world": distributed.world_size(),
    }
    return Event("start", len(t.history) + 1, values=values)


def train_epoch(t: Trainer, epoch: int, on_event: Callback) -> dict[str, Any]:
    t.model.train()
    batches = t.batches(t.train_split, True)
    seed = t.recipe.seed * 1_000_003 + epoch
    loss_sum = torch.zeros((), device=t.device)
    correct = torch.zeros((), device=t.device, dtype=torch.long)
    seen = 0
    start = time.perf_counter()
    criterion = nn.CrossEntropyLoss(label_smoothing=t.recipe.label_smoothing)
    for step, (x, y) in enumerate(batches.epoch(seed), 1):
        with t.autocast():
            logits = t.replica(x)
            loss = criterion(logits.float(), y)
        t.optimizer.zero_grad(set_to_none=True)
        t.scaler.scale(loss).backward()
        t.scaler.step(t.optimizer)
        t.scaler.update()
        t.schedule.step()
        if t.ema is not None:
            t.ema.update_parameters(t.model)
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        if step % 50 == 0 or step == len(batches):
            _check_finite(t, loss_sum, epoch)
        on_event(
            Event("step", epoch, step, len(batches), {"seconds": time.perf_counter() - start, "images": seen})
        )
    if t.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    total, right, images = distributed.all_reduce_sum(loss_sum.item(), correct.item(), seen)  # all ranks
    return {
        "epoch": epoch,
        "train_loss": total / images,
        "train_acc": right / images,
        "test_loss": None,
        "test_acc": None,
        "lr": t.optimizer.param_groups[0]["lr"],
        "img_s": images / seconds,
        "seconds": seconds,
        "val_loss": None,
        "val_acc": None,
    }


def _check_finite(t: Trainer, loss_sum: Tensor, epoch: int) -> None:
    if not torch.isfinite(loss_sum):
        last = t.run.last if t.run.last.exists() else None
        kept = f"the last good checkpoint is {last}" if last else "no epoch had completed, nothing saved"
        raise DataError(
            f"training diverged in epoch {epoch}: the loss is not finite",
            f"{kept}; lower --lr (now {t.recipe.lr}) or use --precision 32",
        )


@torch.no_grad()
def logits_of(
    model: nn.Module, batches: Batches, tta_flip: bool, autocast: Callable[[], Any] = contextlib.nullcontext
) -> Iterator[tuple[Tensor, Tensor]]:
    """Logits and labels, batch by batch, in eval mode; with `tta_flip` the mirror image is
    as likely as the image itself, so their logits are averaged."""
    model.eval()
    for x, y in batches.epoch(0):
        with autocast():
            logits = model(x).float()
            if tta_flip:
                logits = (logits + model(x.flip(3)).float()) / 2
        yield logits, y


def evaluate(t: Trainer, split: Split) -> tuple[float, float, Tensor]:
    """Mean loss, accuracy, and the predicted class of every image in `split`. Under torchrun each
    rank scores a contiguous piece with rank 0's weights and the sums are reduced: every image
    counts exactly once."""
    distributed.sync_buffers(t.eval_model)
    piece = split.subset(distributed.shard(len(split)))
    loss_sum, correct, preds = totals(
        logits_of(t.eval_model, t.batches(piece, False), t.recipe.tta_flip, t.autocast)
    )
    loss, right = distributed.all_reduce_sum(loss_sum, correct)  # over every rank's piece
    return loss / len(split), right / len(split), distributed.gather_predictions(preds, len(split))


def score(batches: Iterator[tuple[Tensor, Tensor]]) -> tuple[float, float, Tensor]:
    """Mean loss, accuracy and predicted classes."""
    loss_sum, correct, preds = totals(batches)
    return loss_sum / len(preds), correct / len(preds), preds


def totals(batches: Iterator[tuple[Tensor, Tensor]]) -> tuple[float, int, Tensor]:
    """Summed loss, number correct and predicted classes (on the CPU)."""
    loss_sum, correct, preds = 0.0, 0, []
    for logits, y in batches:
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        preds.append(logits.argmax(1))
        correct += int((preds[-1] == y).sum())
    return loss_sum, correct, torch.cat(preds).cpu() if preds else torch.zeros(0, dtype=torch.long)


def save_epoch(t: Trainer, improved: bool) -> None:
    """Checkpoint first, then the CSV (rewritten from the checkpoint's history). Rank 0 alone."""
    if not distributed.is_main():
        return
    state = {
        "optimizer": t.optimizer.state_dict(),
        "schedule": t.schedule.state_dict(),
        "scaler": t.scaler.state_dict(),
        "ema": t.ema.state_dict() if t.ema is not None else None,
        "history": t.history,
        "best": t.best,
        "epoch": len(t.history),
    }
    checkpoint.save(t.run.last, t.model, t.info, state)
    if improved:
        checkpoint.save(t.run.best, t.eval_model, t.info)
        checkpoint.save_safetensors(t.run.best.with_suffix(".safetensors"), t.eval_model, t.info)
    t.run.write_metrics(COLUMNS, t.history)


def finish(t: Trainer) -> dict[str, Any]:
    """The final model on the test set: report.txt/json, results.png, confusion_matrix.png,
    predictions.png."""
    predictions = t.test_predictions  # the final model's, from its last epoch
    if predictions is None:
        _, _, predictions = evaluate(t, t.data.test)  # every rank takes part; rank 0 writes
    labels = t.data.test.labels.cpu()
    matrix = report.confusion(labels, predictions, len(t.data.classes))
    summary = report.class_report(matrix, t.data.classes)
    summary["best_picked_on"] = "validation split" if t.val_split is not None else "test set"
    summary["best"] = t.best
    summary["final_epoch"] = len(t.history)
    if not distributed.is_main():
        return summary
    t.run.write_text("report.txt", report.report_text(summary))
    t.run.write_text("report.json", json.dumps(summary, indent=2) + "\n")
    report.plot_results(t.history, t.run.file("results.png"))
    report.plot_confusion(matrix, t.data.classes, t.run.file("confusion_matrix.png"))
    sample = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[:32]  # every class
    images = t.data.test.images[sample.to(t.device)].cpu()
    report.plot_predictions(
        images, labels[sample], predictions[sample], t.data.classes, t.run.file("predictions.png")
    )
    return summary
