"""`darkforge.train`: one run from arguments to a finished run directory; the CLI is built on it.

Everything is checked before a run directory exists (bad input leaves nothing behind); the run
is locked for the life of the process (one writer per run); a resume removes the temp files of a
killed write, extends a run when `epochs` grows (refuses to shrink it), and on a complete run
writes whatever final file is missing. Callbacks receive the events the progress bar gets.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from darkforge.errors import DataError, UsageError, did_you_mean
from darkforge.spec import budget
from darkforge.spec.archtext import arch_text, embedded_spec, inlined
from darkforge.spec.load import arch_path, load_spec, spec_from_text
from darkforge.training import distributed, finish, freeze, outputs, recipe
from darkforge.training.data.datasets import parse_size
from darkforge.training.device import pick_device
from darkforge.training.job import Job, read_job
from darkforge.training.loop import COLUMNS, Callback, Event, Trainer, fit, setup
from darkforge.training.rundir import RunDir, unlock
from darkforge.training.settings import is_recipe_file, read_recipe_file
from darkforge.weights import checkpoint
from darkforge.weights.transfer import Transfer, weights_origin

RECIPE_KEYS = tuple(recipe.flags())  # the Recipe fields marked as flags (recipe.flag)


@dataclass
class Run:
    """What `darkforge.train` returns."""

    path: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    best: float = -1.0  # the best score (validation accuracy with a val split, else test)
    best_epoch: int = 0
    summary: dict[str, Any] = field(default_factory=dict)  # report.json
    transfer: Transfer | None = None
    stopped: str | None = None
    wrote: list[str] = field(default_factory=list)  # final files a resume of a complete run rewrote


def train(
    arch: str | os.PathLike[str] | None = None,
    *,
    data: str | None = None,
    data_dir: str | None = None,
    preset: str = "default",
    scale: str | None = None,
    weights: str | os.PathLike[str] | None = None,
    output: str | None = None,
    project: str | os.PathLike[str] = "runs",
    name: str = "train",
    resume: str | os.PathLike[str] | None = None,
    device: str = "auto",
    sync_bn: bool | None = None,
    cache: str = "auto",
    cache_budget: str | int | None = None,
    weights_partial: bool = False,
    callbacks: Sequence[Callback] = (),
    **overrides: Any,
) -> Run:
    """Train `arch` (a path or a shipped name) and return the run. `overrides` are recipe fields
    (epochs, batch, lr, optimizer, augment={...}: any key of the Recipe; sections merge key by
    key); `preset` is a preset's name or a recipe file (YAML). With `resume` (a run directory)
    only `epochs` may change, to extend the run."""
    unknown = sorted(set(overrides) - set(recipe.Recipe.model_fields))
    if unknown:
        raise UsageError(
            f"train: unknown recipe key {unknown[0]!r}", did_you_mean(unknown[0], recipe.Recipe.model_fields)
        )

    def on_event(event: Event) -> None:
        for callback in callbacks:
            callback(event)

    if resume is not None:
        if arch is not None or weights is not None or output is not None:
            raise UsageError(
                "give either ARCH or --resume, not both", "--resume takes the arch and weights from the run"
            )
        given = {"data": data, "data_dir": data_dir, "scale": scale, "project": str(project) != "runs"}
        _refuse_changes(overrides | given | {"preset": preset != "default", "name": name != "train"})
        return _resume(RunDir.existing(resume), overrides.get("epochs"), device, sync_bn, on_event)
    if is_recipe_file(preset):  # --recipe FILE: its settings under the flags, over the file's train:
        overrides = recipe.merge(
            read_recipe_file(preset), {k: v for k, v in overrides.items() if v is not None}
        )
        preset = "default"
    budget_bytes = parse_size(cache_budget) if isinstance(cache_budget, str) else cache_budget
    job = prepare(arch, data, data_dir, preset, scale, weights, output, device, bool(sync_bn), overrides)
    job.cache, job.cache_budget, job.weights_partial = cache, budget_bytes, weights_partial
    return _new_run(job, project, name, on_event)


def _new_run(job: Job, project: str | os.PathLike[str], name: str, on_event: Callback) -> Run:
    """Create the run directory, lock it and train; a run that trained nothing leaves nothing."""
    with _processes(job):
        run = _create(job, project, name)
        lock = run.lock() if distributed.is_main() else None
        try:
            try:
                t = fit(job, run, _announcing(Event("run", values={"path": str(run.path)}), on_event))
            except BaseException:
                if distributed.is_main() and not run.last.exists():
                    shutil.rmtree(run.path, ignore_errors=True)  # nothing trained: leave no empty run
                raise
            return _finished(t, on_event)
        finally:
            if lock is not None:
                unlock(lock)


def _refuse_changes(given: dict[str, Any]) -> None:
    """A resumed run trains as it started: only --epochs may change (to extend it)."""
    changed = sorted(k for k, v in given.items() if v is not None and v is not False and k != "epochs")
    if changed:
        flag = recipe.flag_of(changed[0])
        raise UsageError(f"{flag} cannot change when resuming", "only --epochs may (to extend the run)")


def _announcing(run: Event, on_event: Callback) -> Callback:
    """`on_event` that first says which run directory is trained, once training starts: data
    loaded, network built, nothing left to fail that would remove the directory unannounced."""
    said = [False]

    def relay(event: Event) -> None:
        if event.kind == "start" and not said[0]:
            said[0] = True
            on_event(run)
        on_event(event)

    return relay


@contextmanager
def _processes(job: Job) -> Iterator[None]:
    """Under torchrun: check the batch splits, join the process group, fail fast with the peers."""
    dev = pick_device(job.device)
    distributed.check(job.recipe.batch, dev, job.sync_bn)
    distributed.init(dev)  # joins torchrun's process group; nothing in a single process
    with distributed.peer_errors():
        yield
        distributed.close()


def prepare(
    arch: str | os.PathLike[str] | None,
    data: str | None,
    data_dir: str | None,
    preset: str,
    scale: str | None,
    weights: str | os.PathLike[str] | None,
    output: str | None,
    device: str,
    sync_bn: bool,
    overrides: dict[str, Any],
) -> Job:
    """Validate everything before a run directory is created (nothing is created for bad input)."""
    origin = weights_origin(weights) if weights is not None else None
    if arch is None and origin is None:
        raise UsageError("train: no architecture", "give a YAML or .cfg file, or a shipped name")
    kept = None  # the architecture text the run keeps, when it comes from the weights
    if arch is None and origin is not None:  # `--weights best.pt` alone: its network, at its scale
        scale, kept = scale or origin.scale, origin.arch_yaml
        path, loaded = Path(origin.arch_name), embedded_spec(origin.arch_yaml, origin.origin)
    else:
        path = arch_path(arch)  # type: ignore[arg-type]
        loaded = load_spec(path)
        scale = _scale_of_weights(loaded, scale, origin)
    if loaded._converted_from is not None and scale is not None:
        # its reader's own scale rule, applied once: the run keeps the scaled network
        loaded, scale = loaded.resolved(scale), None
    spec = inlined(loaded)  # the includes' blocks inlined: the run keeps them, not the paths
    recipe.check_recipe(spec)
    spec.resolved(scale)  # an unknown scale fails here
    rec = recipe.resolve(preset, spec.train, overrides, str(path))
    derived = outputs.derive(spec, path, output, scale)
    text = derived or kept or arch_text(path, loaded, spec)
    final = spec_from_text(text, str(path)) if derived else spec
    compiled = budget.check_before_build(final, scale)  # before any allocation
    freeze.frozen_layers(budget.require_classifier(compiled, "train"), rec.freeze)
    weights = str(weights) if weights else None
    return Job(text, str(path), scale, rec, data or "cifar10", data_dir, device, sync_bn, weights)


def _scale_of_weights(spec: Any, scale: str | None, origin: checkpoint.Inference | None) -> str | None:
    """No --scale, and the weights come from a run of this network at one of its scales: that
    scale (fine-tuning a nano run must not build, and train from scratch, the full network)."""
    if scale is not None or origin is None or origin.scale is None or origin.scale not in spec.scales:
        return scale
    same = spec.name == embedded_spec(origin.arch_yaml, origin.origin).name
    return origin.scale if same else scale


def _create(job: Job, project: str | os.PathLike[str], name: str) -> RunDir:
    """Rank 0 creates the run directory; under torchrun the others get its path."""
    path = ""
    if distributed.is_main():
        files = {"arch.yaml": job.arch_yaml, "args.yaml": job.save_text()}
        path = str(RunDir.create(project, name, files).path)
    return RunDir(Path(distributed.broadcast(path)))


def _resume(run: RunDir, epochs: int | None, device: str, sync_bn: bool | None, on_event: Callback) -> Run:
    lock = run.lock() if distributed.is_main() else None
    try:
        if distributed.is_main():
            removed = run.clean()
            if removed:
                names = ", ".join(p.name for p in removed[:5])
                message = f"removed {len(removed)} temp file(s) of a killed write: {names}"
                on_event(Event("warning", values={"message": message}))
        job, payload, before = _resumed_job(run, epochs, device, sync_bn)
        history = payload["state"]["history"] if payload else []
        stopped = payload["state"].get("stopped") if payload else None
        if payload and distributed.is_main():  # a kill between last.pt and the CSV: catch it up
            run.write_metrics(COLUMNS, history)
        with _processes(job):
            if len(history) >= job.recipe.epochs or stopped:
                return _complete(job, run, payload, on_event)
            values = {"path": str(run.path), "resume": len(history), "epochs": job.recipe.epochs}
            announce = _announcing(Event("run", values=values | {"extended_from": before}), on_event)
            return _finished(fit(job, run, announce, resume=payload), on_event)
    finally:
        if lock is not None:
            unlock(lock)


def _resumed_job(
    run: RunDir, epochs: int | None, device: str, sync_bn: bool | None
) -> tuple[Job, Any, int | None]:
    """The run's job, its last checkpoint, and the epoch count before --epochs extended it."""
    job = read_job(run)  # a damaged args.yaml or arch.yaml: one line naming the file
    rec = job.recipe
    before = None
    payload = checkpoint.load(run.last) if run.last.exists() else None
    if payload is not None:
        checkpoint.check_resumable(payload, run.last)
        _check_same_arch(run, job.arch_yaml, payload)
    done = len(payload["state"]["history"]) if payload else 0
    if epochs is not None and epochs != rec.epochs:
        if epochs < done:
            raise UsageError(
                f"--epochs {epochs}: {run.path} has already trained {done} epochs",
                f"give --epochs {done} or more to extend it, or start a new run",
            )
        before, rec = rec.epochs, rec.model_copy(update={"epochs": epochs})
        if payload is not None:
            payload["state"]["stopped"] = None  # an early stop ended the old length, not the new
        job.recipe = rec
        if distributed.is_main():
            run.write_text("args.yaml", job.save_text())
    job.device = device if device != "auto" else job.device
    job.sync_bn = job.sync_bn if sync_bn is None else sync_bn
    return job, payload, before  # job.weights are used again only when no epoch had completed


def _check_same_arch(run: RunDir, arch_yaml: str, payload: dict[str, Any]) -> None:
    """The run's arch.yaml must still describe the network last.pt holds (comments may change)."""
    trained = payload["inference"]["arch_yaml"]
    if arch_yaml == trained:
        return
    origin = f"{run.last} (its arch_yaml)"
    same = (
        embedded_spec(trained, origin).model_dump()
        == embedded_spec(arch_yaml, str(run.file("arch.yaml"))).model_dump()
    )
    if not same:
        raise DataError(
            f"{run.file('arch.yaml')}: differs from the architecture {run.last} was trained with",
            "restore the file (weights/last.pt keeps the original), or start a new run from the "
            f"edited file with --weights {run.path}",
        )


def _complete(job: Job, run: RunDir, payload: Any, on_event: Callback) -> Run:
    """A complete run: write what a kill while finishing left missing, or say it is complete."""
    absent = finish.missing(run, job.recipe.epochs)
    state = payload["state"]
    if not absent:
        on_event(
            Event("finish", values={"path": str(run.path), "complete": True, "epochs": len(state["history"])})
        )
        return Run(run.path, list(state["history"]), float(state["best"]), int(state.get("best_epoch", 0)))
    t: Trainer = setup(job, run, lambda e: None, state | {"model": payload["model"]})
    source = finish.restore_best(t) if any(name.startswith("weights/") for name in absent) else None
    return _finished(t, on_event, absent, source)


def _finished(t: Trainer, on_event: Callback, wrote: Sequence[str] = (), best_from: str | None = None) -> Run:
    summary = finish.finish(t)
    values = {"path": str(t.run.path), "summary": summary, "wrote": list(wrote), "best_from": best_from}
    on_event(Event("finish", len(t.history), values=values | {"best": t.best, "stopped": t.stopped}))
    return Run(t.run.path, t.history, t.best, t.best_epoch, summary, t.transfer, t.stopped, list(wrote))
