"""Training a detector, as a linear recipe: set up, loop (train, validate on mAP, checkpoint).

What it shares with classification (training/loop.py): the run directory and its lock, the
checkpoint format (`last.pt` is an epoch's commit point; best before it, metrics.csv after it),
the optimizer and schedule, EMA, --freeze, --weights, per-epoch seeds, resume. What differs:
boxes beside the pixels, batched box augmentation with mosaic switched off for the last epochs,
the head's own loss, and `best` picked on validation mAP@[.5:.95] (COCO's evaluator).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from darkforge.errors import DataError
from darkforge.nn.network import Network
from darkforge.nn.residual import zero_init_residual
from darkforge.spec.archtext import embedded_spec
from darkforge.training import ema, freeze
from darkforge.training.detection.data import (
    BoxAugment,
    DetectionBatches,
    DetectionData,
    DetectionSplit,
    load_detection_data,
)
from darkforge.training.detection.head import Head, head_of, raw_maps
from darkforge.training.detection.metrics import DetectionMetrics, evaluate, postprocess
from darkforge.training.device import pick_device
from darkforge.training.job import Job
from darkforge.training.loop import Callback, Event, close_epoch, ema_warning, restore, save_epoch
from darkforge.training.optim import lr_factor, make_optimizer
from darkforge.training.recipe import Recipe
from darkforge.training.rundir import RunDir
from darkforge.weights import checkpoint
from darkforge.weights.transfer import Transfer, transfer

# metrics.csv of a detection run: train losses, val losses, COCO numbers on val, rate, time
METRICS = ("precision", "recall", "map50", "map50_95", "map50_agnostic", "map50_95_agnostic")


def columns(parts: Sequence[str]) -> list[str]:
    losses = [f"{split}_{part}" for split in ("train", "val") for part in parts]
    return ["epoch", *losses, *METRICS, "lr", "img_s", "seconds"]


def columns_of(rows: Sequence[dict[str, Any]]) -> list[str]:
    """metrics.csv's columns from the rows themselves (a resume rewrites it before a trainer exists)."""
    parts = [k.removeprefix("train_") for k in (rows[0] if rows else {}) if k.startswith("train_")]
    return columns(parts or ["box", "cls", "dfl"])


@dataclass
class DetectionTrainer:
    job: Job
    run: RunDir
    data: DetectionData
    model: Network
    head: Head
    device: torch.device
    info: checkpoint.Inference
    train_split: DetectionSplit
    val_split: DetectionSplit
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    ema: torch.optim.swa_utils.AveragedModel | None
    steps: int  # optimizer steps of the whole run
    history: list[dict[str, Any]] = field(default_factory=list)
    best: float = -1.0
    best_epoch: int = 0
    stopped: str | None = None
    transfer: Transfer | None = None
    frozen: list[str] = field(default_factory=list)  # layer names whose weights stay fixed
    last_metrics: DetectionMetrics | None = None  # of the final model on val, for the reports
    last_predictions: list[Tensor] = field(default_factory=list)

    @property
    def recipe(self) -> Recipe:
        return self.job.recipe

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    @property
    def size(self) -> int:
        return int(self.info.input[1])

    def columns(self) -> list[str]:
        return columns(self.head.parts)

    def batches(self, split: DetectionSplit, train: bool) -> DetectionBatches:
        b = self.recipe.boxes
        boxes = BoxAugment(b.flip, b.scale, b.translate, b.hsv_h, b.hsv_s, b.hsv_v) if train else None
        batch = self.recipe.batch if train else max(self.recipe.batch, 64)
        drop = train and len(split) >= 2 * batch
        return DetectionBatches(split, batch, boxes, shuffle=train, drop_last=drop, device=self.device)


def load_data(job: Job, size: int) -> DetectionData:
    if job.data is None or not str(job.data).endswith((".yaml", ".yml", ".json")):
        raise DataError(
            f"--data {job.data}: a detector trains on boxes",
            "give a data.yaml (YOLO txt labels) or a COCO instances .json",
        )
    return load_detection_data(job.data, size, job.cache, job.cache_budget)


def setup(job: Job, run: RunDir, on_event: Callback, state: dict[str, Any] | None = None) -> DetectionTrainer:
    recipe, device = job.recipe, pick_device(job.device)
    torch.manual_seed(recipe.seed)
    spec = embedded_spec(job.arch_yaml, job.arch).resolved(job.scale, job.input_size)
    c, h, w = spec.input.shape
    if h != w:
        raise DataError(f"{job.arch}: a detector's input must be square ({h}×{w})")
    data = load_data(job, h)
    info = checkpoint.Inference(
        job.arch_yaml, job.arch, job.scale, data.names, [c, h, w], [0.0] * c, [1.0] * c, job.data, None
    )
    model = info.build().to(device)
    if recipe.zero_init_residual:  # as classification honours it (the detect preset turns it off)
        zero_init_residual(model)
    b = recipe.boxes
    head = head_of(model, {"box": b.box, "cls": b.cls, "dfl": b.dfl, "obj": b.obj})
    if head is None:
        raise DataError(f"{job.arch}: no detection head (a Detect layer, or [yolo] outputs)")
    moved = None
    if job.weights and state is None:
        moved = transfer(model, job.weights)
        run.write_text("transfer.txt", f"{moved}\n")
        on_event(Event("transfer", values={"report": moved}))
    frozen = freeze.frozen_layers(model.plan, recipe.freeze)
    freeze.freeze(model, frozen)
    train_split, val_split = _splits(data, recipe)
    optimizer = make_optimizer(model, recipe)
    batches = len(DetectionBatches(train_split, recipe.batch, drop_last=len(train_split) >= 2 * recipe.batch))
    steps = batches * recipe.epochs
    if recipe.ema and ema.horizon(recipe.ema) > steps and state is None:
        on_event(ema_warning(recipe, steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(recipe, s, steps))
    averaged = ema.make_ema(model, recipe.ema, recipe.ema_warmup) if recipe.ema else None
    t = DetectionTrainer(
        job, run, data, model, head, device, info, train_split, val_split, optimizer, schedule, averaged,
        steps, transfer=moved, frozen=frozen,
    )  # fmt: skip
    if state is not None:
        restore(t, state, t.steps)
    return t


def _splits(data: DetectionData, recipe: Recipe) -> tuple[DetectionSplit, DetectionSplit]:
    """The data's own val split, else a seeded share of train held out (never the test split)."""
    if data.val is not None:
        return data.train, data.val
    share = recipe.val_split
    if share == 0:  # classification would pick on test; a detector never does
        raise DataError(
            f"{data.name}: no val split, and --val-split 0 holds nothing out to pick `best` on",
            "add `val:` to the data file, or give --val-split above 0 (the default 0.1)",
        )
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(recipe.seed))
    n_val = max(1, int(share * len(order)))
    return data.train.subset(order[n_val:]), data.train.subset(order[:n_val])


def fit(job: Job, run: RunDir, on_event: Callback, resume: dict[str, Any] | None = None) -> DetectionTrainer:
    """Train the detector of `job` into `run`, continuing from a `last.pt` payload when resuming."""
    t = setup(job, run, on_event, resume["state"] | {"model": resume["model"]} if resume else None)
    on_event(_start_event(t))
    for epoch in range(len(t.history) + 1, t.recipe.epochs + 1):
        if t.stopped:
            break
        torch.manual_seed(t.recipe.seed * 1_000_003 + epoch)
        row = train_epoch(t, epoch, on_event)
        row |= validate(t)
        close_epoch(t, epoch, row, row["map50_95"], on_event, save_epoch)  # best: val mAP@[.5:.95]
    return t


def _start_event(t: DetectionTrainer) -> Event:
    values = {
        "device": str(t.device),
        "precision": "fp32",
        "train": len(t.train_split),
        "val": len(t.val_split),
        "test": 0,
        "classes": len(t.data.names),
        "params": t.model.plan.params,
        "frozen": sum(p.numel() for p in t.model.parameters() if not p.requires_grad),
        "epochs": t.recipe.epochs,
        "from_epoch": len(t.history) + 1,
        "steps": len(t.batches(t.train_split, True)),
        "world": 1,
        "task": "detect",
    }
    return Event("start", len(t.history) + 1, values=values)


def mosaic_on(recipe: Recipe, epoch: int) -> bool:
    return recipe.boxes.mosaic and epoch <= recipe.epochs - recipe.boxes.close_mosaic


def train_epoch(t: DetectionTrainer, epoch: int, on_event: Callback) -> dict[str, Any]:
    t.model.train()
    freeze.keep_eval(t.model, t.frozen)
    batches = t.batches(t.train_split, True)
    sums = dict.fromkeys(t.head.parts, 0.0)
    seen, lr_sum, start = 0, 0.0, time.perf_counter()
    for step, (x, targets) in enumerate(
        batches.epoch(t.recipe.seed * 1_000_003 + epoch, mosaic_on(t.recipe, epoch)), 1
    ):
        lr_sum += t.optimizer.param_groups[0]["lr"]
        images = x.float().div_(255)  # (B, 3, S, S) in [0, 1]
        total, parts = t.head.loss(raw_maps(t.model(images)), targets, t.size)
        t.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if t.recipe.boxes.clip_grad:  # an early wild batch cannot blow the run up (boxes.clip_grad)
            nn.utils.clip_grad_norm_(t.model.parameters(), t.recipe.boxes.clip_grad)
        t.optimizer.step()
        t.schedule.step()
        if t.ema is not None:
            t.ema.update_parameters(t.model)
        if not torch.isfinite(total):
            raise DataError(
                f"training diverged in epoch {epoch}: the loss is not finite",
                f"lower --lr (now {t.recipe.lr})",
            )
        for k, v in parts.items():
            sums[k] += v * len(x)
        seen += len(x)
        values = {"seconds": time.perf_counter() - start, "images": seen, "loss": sum(sums.values()) / seen}
        on_event(Event("step", epoch, step, len(batches), values))
    seconds = time.perf_counter() - start
    row: dict[str, Any] = {"epoch": epoch}
    row |= {f"train_{k}": v / max(seen, 1) for k, v in sums.items()}
    return row | {"lr": lr_sum / max(1, len(batches)), "img_s": seen / seconds, "seconds": seconds}


@torch.no_grad()
def predict_split(
    model: nn.Module, head: Head, batches: DetectionBatches, size: int, recipe: Recipe
) -> tuple[list[Tensor], list[Tensor], dict[str, float]]:
    """Every image's detections (K, 6: x1, y1, x2, y2, score, class; input pixels) after
    class-aware NMS and after class-agnostic NMS (what class-agnostic metrics score: an object
    found is one box, whatever it is named), and the mean loss parts."""
    model.eval()
    found: list[Tensor] = []
    anyclass: list[Tensor] = []
    sums: dict[str, float] = {}
    seen = 0
    b = recipe.boxes
    for x, targets in batches.epoch(0, mosaic=False):
        maps = raw_maps(model(x.float().div_(255)))
        _, parts = head.loss(maps, targets, size)
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v * len(x)
        decoded = head.decode(maps, size)
        found += [d.cpu() for d in postprocess(decoded, b.conf, b.iou, b.max_det)]
        anyclass += [d.cpu() for d in postprocess(decoded, b.conf, b.iou, b.max_det, agnostic=True)]
        seen += len(x)
    return found, anyclass, {k: v / max(seen, 1) for k, v in sums.items()}


def truth_of(split: DetectionSplit) -> list[Tensor]:
    """Per image (M, 5): class, x1, y1, x2, y2 in input pixels (what predictions are in)."""
    rows = split.targets(torch.arange(len(split)))
    return [rows[rows[:, 0] == i, 1:] for i in range(len(split))]


def validate(t: DetectionTrainer) -> dict[str, Any]:
    batches = t.batches(t.val_split, False)
    found, anyclass, losses = predict_split(t.eval_model, t.head, batches, t.size, t.recipe)
    truth = truth_of(t.val_split)
    metrics = evaluate(found, truth, t.data.names, anyclass=anyclass)
    t.last_metrics, t.last_predictions = metrics, found
    row: dict[str, Any] = {f"val_{k}": v for k, v in losses.items()}
    return row | {
        "precision": metrics.precision,
        "recall": metrics.recall,
        "map50": metrics.map50,
        "map50_95": metrics.map,
        "map50_agnostic": metrics.map50_agnostic,
        "map50_95_agnostic": metrics.map_agnostic,
    }
