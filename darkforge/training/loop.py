"""Training, as a linear recipe: set up, loop (train, evaluate, checkpoint).

Every epoch is seeded from (seed, epoch), and `last.pt` holds the model, optimizer, schedule,
scaler, EMA and the metrics history, so a run killed at any moment resumes from its last
completed epoch and continues exactly as an uninterrupted run would. `last.pt` is the commit
point of an epoch: `best.safetensors` and `best.pt` are written before it, `metrics.csv` after it
(rewritten from its history).

Under torchrun every rank runs it (training.distributed): each takes its slice of the global
batch, the model is wrapped in DDP, evaluation sums over ranks, and rank 0 alone writes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from darkforge.errors import DataError
from darkforge.nn.network import Network
from darkforge.nn.residual import zero_init_residual
from darkforge.spec.load import spec_from_text
from darkforge.training import distributed, ema, freeze
from darkforge.training.data import mixing
from darkforge.training.data.batches import Batches
from darkforge.training.data.datasets import load_dataset
from darkforge.training.data.splits import Dataset, Split
from darkforge.training.device import pick_device, precision_of
from darkforge.training.evaluate import logits_of, totals
from darkforge.training.job import Job
from darkforge.training.optim import lr_factor, make_optimizer
from darkforge.training.recipe import Recipe
from darkforge.training.rundir import RunDir
from darkforge.weights import checkpoint
from darkforge.weights.transfer import Transfer, refuse_mismatch, transfer

COLUMNS = [
    "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "img_s", "seconds",
    "val_loss", "val_acc",
]  # fmt: skip


EventKind = Literal["run", "transfer", "warning", "start", "step", "epoch", "stop", "finish"]


@dataclass
class Event:
    """Progress for the CLI and callbacks: what the progress bar shows, callbacks get."""

    kind: EventKind
    epoch: int = 0
    step: int = 0
    steps: int = 0
    values: dict[str, Any] = field(default_factory=dict)
    model: Any = None  # "start" and "epoch": the network evaluated (the EMA's, with --ema)
    stop: str | None = None  # set by a callback on an "epoch" event: the run ends after it, why


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
    fill: Tensor  # cutout's per-channel fill: the train set's mean, normalized
    frozen: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    best: float = -1.0
    best_epoch: int = 0
    stopped: str | None = None  # why training ended before `epochs` (--patience)
    transfer: Transfer | None = None
    test_predictions: Tensor | None = None  # of the last epoch's evaluation, reused by finish()
    channels_last: bool = False

    @property
    def recipe(self) -> Recipe:
        return self.job.recipe

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def columns(self) -> list[str]:
        return list(COLUMNS)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def batches(self, split: Split, train: bool) -> Batches:
        return batches_of(self.recipe, self.info, split, train, self.channels_last)


def batches_of(
    recipe: Recipe, info: checkpoint.Inference, split: Split, train: bool, channels_last: bool
) -> Batches:
    """A split's batches: training's augmented and shuffled, each rank's slice of every global
    batch; evaluation's plain, in order, the split sharded by the caller."""
    aug = recipe.augment
    rank, world = (distributed.rank(), distributed.world_size()) if train else (0, 1)
    return Batches(
        split,
        recipe.batch if train else max(recipe.batch, 256),
        info.mean,
        info.std,
        crop=aug.crop if train else 0,
        flip=aug.flip if train else False,
        shuffle=train,  # cutout is mixing.cutout, in train_epoch (a mean fill, an exact square)
        drop_last=train and len(split) >= 2 * recipe.batch,
        channels_last=channels_last,
        rank=rank,
        world=world,
    )


def setup(job: Job, run: RunDir, on_event: Callback, state: dict[str, Any] | None = None) -> Trainer:
    """Everything a run holds across epochs, computed in order, then the Trainer built whole."""
    recipe = job.recipe
    device = pick_device(job.device)
    torch.manual_seed(recipe.seed)
    data, info, fill = _data(job)
    model = info.build().to(device)
    if recipe.zero_init_residual:
        zero_init_residual(model)
    moved = None
    if job.weights and state is None:  # after zero-init, which must not clobber what is loaded
        moved = transfer(model, job.weights)
        if not job.weights_partial:  # another scale or network: one line, before a from-scratch run
            refuse_mismatch(moved, job.weights, job.arch, job.scale)
        if distributed.is_main():
            run.write_text("transfer.txt", f"{moved}\n")
        on_event(Event("transfer", values={"report": moved}))
    frozen = freeze.frozen_layers(model.plan, recipe.freeze)
    freeze.freeze(model, frozen)
    channels_last = recipe.channels_last == "on" or (recipe.channels_last == "auto" and device.type == "cuda")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    replica = distributed.wrap(model, device, job.sync_bn)
    if recipe.compile:  # pays off on GPUs; measured slower on CPUs (docs/performance.md)
        replica = torch.compile(replica)  # type: ignore[assignment]
    train_split, val_split = _splits(data, recipe, device)
    steps = len(batches_of(recipe, info, train_split, True, channels_last)) * recipe.epochs
    optimizer = make_optimizer(model, recipe)
    averaged = ema.make_ema(model, recipe.ema, recipe.ema_warmup) if recipe.ema else None
    if recipe.ema and ema.horizon(recipe.ema) > steps:
        on_event(ema_warning(recipe, steps))
    dtype = precision_of(recipe, device)
    trainer = Trainer(
        job=job, run=run, data=data, model=model, replica=replica, device=device, info=info,
        train_split=train_split, val_split=val_split, optimizer=optimizer,
        schedule=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(recipe, s, steps)),
        scaler=torch.amp.GradScaler(device.type, enabled=dtype == torch.float16),
        ema=averaged, dtype=dtype, fill=fill.to(device), frozen=frozen, transfer=moved,
        channels_last=channels_last,
    )  # fmt: skip
    if state is not None:
        restore(trainer, state, steps)
    return trainer


def _data(job: Job) -> tuple[Dataset, checkpoint.Inference, Tensor]:
    """The dataset at the network's input size, the inference metadata (normalization by the
    train set's statistics, or none), and cutout's fill: the train set's mean, normalized."""
    spec = spec_from_text(job.arch_yaml, job.arch).resolved(job.scale, job.input_size)
    c, h, w = spec.input.shape
    with distributed.main_first():  # rank 0 downloads or decodes into the cache; the others read it
        data = load_dataset(
            job.data, job.data_dir, (h, w), job.cache, job.cache_budget, cache_dir=job.cache_dir
        )
    if data.train.images.shape[1] != c:
        raise DataError(f"{data.name} has {data.train.images.shape[1]} channels, the network expects {c}")
    data_mean, data_std = data.mean_std
    mean, std = (data_mean, data_std) if job.recipe.normalize else ([0.0] * c, [1.0] * c)
    info = checkpoint.Inference(
        job.arch_yaml, job.arch, job.scale, data.classes, [c, h, w], mean, std, job.data, job.data_dir
    )
    return data, info, (torch.tensor(data_mean) - torch.tensor(mean)) / torch.tensor(std)


def _splits(data: Dataset, recipe: Recipe, device: torch.device) -> tuple[Split, Split | None]:
    """(train, val) on the device: a val split of the data's own (an image folder's val/), else
    one held out of train; the test split moves too."""
    train_split, val_split = data.train, getattr(data, "val", None)
    if val_split is None and recipe.val_split:
        train_split, val_split = split_off(data.train, recipe.val_split, recipe.seed)
    data.test = data.test.to(device)
    return train_split.to(device), val_split.to(device) if val_split is not None else None


def split_off(train: Split, share: float, seed: int) -> tuple[Split, Split]:
    """(train, val): a seeded random `share` of train held out (one image at least, of a tiny
    set), the same on every resume."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    n_val = min(max(1, int(share * len(order))), len(order) - 1)
    return train.subset(order[n_val:]), train.subset(order[:n_val])


def ema_warning(recipe: Recipe, steps: int) -> Event:
    horizon = ema.horizon(recipe.ema)
    ramp = "; the decay warm-up keeps early epochs usable" if recipe.ema_warmup else ""
    text = (
        f"--ema {recipe.ema} averages over ~{horizon:,.0f} steps, longer than this run's {steps:,}: "
        f"the evaluated weights lag the trained ones{ramp}; a decay near {1 - 10 / max(steps, 10):.4g} fits"
    )
    return Event("warning", values={"message": text})


def restore(t: Any, state: dict[str, Any], steps: int) -> None:
    """A trainer of any task from a `last.pt` state; `steps`: the run's optimizer steps."""
    t.model.load_state_dict(state["model"])
    t.optimizer.load_state_dict(state["optimizer"])
    t.schedule.load_state_dict(state["schedule"])
    # the rate of the next step under this run's schedule (differs from the saved one when
    # --epochs extended the run: the schedule is the one a run of the new length would follow)
    factor = lr_factor(t.recipe, t.schedule.last_epoch, steps)
    for group, base in zip(t.optimizer.param_groups, t.schedule.base_lrs, strict=True):
        group["lr"] = base * factor
    if getattr(t, "scaler", None) is not None:  # a detection trainer has none (fp32 only)
        t.scaler.load_state_dict(state["scaler"])
    if t.ema is not None and state.get("ema") is not None:
        t.ema.load_state_dict(state["ema"])
    t.history, t.best = list(state["history"]), float(state["best"])
    best_epoch = state.get("best_epoch")  # older checkpoints lack it: the best row of the history
    t.best_epoch = (
        int(best_epoch) if best_epoch is not None else _best_epoch(t.history, t.val_split is not None)
    )
    t.stopped = state.get("stopped")


def _best_epoch(history: list[dict[str, Any]], on_val: bool) -> int:
    key = "val_acc" if on_val else "test_acc"
    scores = [row[key] for row in history]
    return scores.index(max(scores)) + 1 if scores else 0


def fit(job: Job, run: RunDir, on_event: Callback, resume: dict[str, Any] | None = None) -> Trainer:
    """Train `job` into `run`, continuing from a `last.pt` payload when resuming."""
    t = setup(job, run, on_event, resume["state"] | {"model": resume["model"]} if resume else None)
    on_event(_start_event(t))
    for epoch in range(len(t.history) + 1, t.recipe.epochs + 1):
        if t.stopped:
            break
        # dropout, MixUp/CutMix and anything else global; each rank masks its own slice differently
        torch.manual_seed(t.recipe.seed * 1_000_003 + epoch + distributed.rank() * 1_000_000_007)
        row = train_epoch(t, epoch, on_event)
        for name, split in (("test", t.data.test), ("val", t.val_split)):
            if split is not None:
                loss, acc, predictions = evaluate(t, split)
                row[f"{name}_loss"], row[f"{name}_acc"] = loss, acc
                if name == "test":
                    t.test_predictions = predictions
        score = row["val_acc"] if t.val_split is not None else row["test_acc"]
        close_epoch(t, epoch, row, score, on_event, save_epoch)
    return t


def close_epoch(
    t: Any,
    epoch: int,
    row: dict[str, Any],
    score: float,
    on_event: Callback,
    save: Callable[[Any, bool], None],
) -> None:
    """The end of an epoch, for every task's loop: `best` by `score`, patience, the epoch event
    (before the checkpoint: a callback's stop is saved with its epoch), the checkpoint, a stop."""
    t.history.append(row)
    improved = score > t.best
    if improved:
        t.best, t.best_epoch = score, epoch
    patience = t.recipe.patience
    if patience and epoch - t.best_epoch >= patience and epoch < t.recipe.epochs:
        t.stopped = (
            f"no better `best` in {patience} epochs (best: epoch {t.best_epoch}); stopped after {epoch}"
        )
    event = Event("epoch", epoch, values=row | {"best": t.best}, model=t.eval_model)
    on_event(event)
    if event.stop and not t.stopped and epoch < t.recipe.epochs:
        t.stopped = f"a callback stopped the run after epoch {epoch}: {event.stop}"
    save(t, improved)
    if t.stopped:
        on_event(Event("stop", epoch, values={"reason": t.stopped}))


def _start_event(t: Trainer) -> Event:
    values = {
        "device": str(t.device),
        "precision": {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[t.dtype],
        "train": len(t.train_split),
        "val": len(t.val_split) if t.val_split is not None else 0,
        "test": len(t.data.test),
        "classes": len(t.data.classes),
        "params": t.model.plan.params,
        "frozen": sum(p.numel() for p in t.model.parameters() if not p.requires_grad),
        "epochs": t.recipe.epochs,
        "from_epoch": len(t.history) + 1,
        "steps": len(t.batches(t.train_split, True)),
        "world": distributed.world_size(),
        "cache_file": str(t.data.cache_file) if t.data.cache_file else None,
    }
    return Event("start", len(t.history) + 1, values=values, model=t.model)


def train_epoch(t: Trainer, epoch: int, on_event: Callback) -> dict[str, Any]:
    t.model.train()
    freeze.keep_eval(t.model, t.frozen)
    batches = t.batches(t.train_split, True)
    seed = t.recipe.seed * 1_000_003 + epoch
    cut = torch.Generator().manual_seed(seed + 7)  # cutout's own numbers: the batches' are unchanged
    mix = mixing.batch_mix(t.recipe.augment.mixup, t.recipe.augment.cutmix, len(t.data.classes))
    loss_sum = torch.zeros((), device=t.device)
    correct = torch.zeros((), device=t.device, dtype=torch.long)
    seen, lr_sum = 0, 0.0
    start = time.perf_counter()
    criterion = nn.CrossEntropyLoss(label_smoothing=t.recipe.label_smoothing)
    for step, (x, y) in enumerate(batches.epoch(seed), 1):
        if t.recipe.augment.cutout:
            whole = min(batches.batch, len(t.train_split) - (step - 1) * batches.batch)
            part = distributed.shard(whole, batches.rank, batches.world)
            x = mixing.cutout(x, t.recipe.augment.cutout, t.fill, cut, whole, part)
        target = y
        if mix is not None:
            x, target = mix(x, y)  # target: class probabilities
        lr_sum += t.optimizer.param_groups[0]["lr"]  # the rate this step uses
        with t.autocast():
            logits = t.replica(x)
            loss = criterion(logits.float(), target)
        t.optimizer.zero_grad(set_to_none=True)
        t.scaler.scale(loss).backward()
        t.scaler.step(t.optimizer)
        t.scaler.update()
        t.schedule.step()
        if t.ema is not None:
            t.ema.update_parameters(t.model)
        # logged without label smoothing, as the test loss is, so the two share an axis
        plain = nn.functional.cross_entropy(logits.detach().float(), target)
        loss_sum += plain * len(y)
        label = target.argmax(1) if target.ndim == 2 else target
        correct += (logits.argmax(1) == label).sum()
        seen += len(y)
        if step % 50 == 0 or step == len(batches):
            _check_finite(t, loss_sum, epoch)
        values = {"seconds": time.perf_counter() - start, "images": seen}
        values |= {"loss": loss_sum.item() / seen} if step % 10 == 0 else {}  # .item() waits: every 10th
        on_event(Event("step", epoch, step, len(batches), values))
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
        "lr": lr_sum / max(1, len(batches)),  # the mean rate of the epoch's steps
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


def save_epoch(t: Any, improved: bool) -> None:
    """best (when improved), then last.pt, the commit point, then the CSV rewritten from its
    history. A kill before last.pt is replaced redoes the epoch on resume, best included. Rank 0."""
    if not distributed.is_main():
        return
    if improved:
        checkpoint.save_safetensors(t.run.best.with_suffix(".safetensors"), t.eval_model, t.info)
        checkpoint.save(t.run.best, t.eval_model, t.info)
    state = {
        "optimizer": t.optimizer.state_dict(),
        "schedule": t.schedule.state_dict(),
        "scaler": t.scaler.state_dict() if getattr(t, "scaler", None) is not None else {},
        "ema": t.ema.state_dict() if t.ema is not None else None,
        "history": t.history,
        "best": t.best,
        "best_epoch": t.best_epoch,
        "stopped": t.stopped,
        "epoch": len(t.history),
    }
    checkpoint.save(t.run.last, t.model, t.info, state)
    t.run.write_metrics(t.columns(), t.history)
