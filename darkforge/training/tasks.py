"""What a run trains: a classifier (one class-score vector) or a detector (a Detect head, or
Darknet [yolo] heads as the network's outputs). Each task is one entry of a table — its default
recipe, its checks before a run exists (a detector's labels, class count and recipe keys), loop,
reports and metrics columns — and `darkforge.train`, `--resume` and the reports look the task up
instead of branching on it. Told apart from the plan alone, before any tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darkforge.spec import budget
from darkforge.spec.base import NetworkSpec
from darkforge.spec.shapes import Plan
from darkforge.training import finish as classify_finish
from darkforge.training import loop
from darkforge.training.detection import finish as detect_finish
from darkforge.training.detection import fit as detect_fit
from darkforge.training.detection.prepare import prepare_detector

# (spec, its YAML text, the file, --data, recipe flags) -> (spec, text the run trains, notes)
Prepare = Callable[[NetworkSpec, str, Path, "str | None", dict[str, Any]], tuple[NetworkSpec, str, list[str]]]

# layer types that make a network a detector: the anchor-free head, and Darknet's anchor heads
# when they are the network's outputs
DETECT_HEADS = ("Detect",)
ANCHOR_HEADS = ("Yolo",)


@dataclass(frozen=True)
class Task:
    name: str
    preset: str  # the recipe preset `--recipe default` means for this task
    setup: Callable[..., Any]  # (job, run, on_event, state) -> trainer
    fit: Callable[..., Any]  # (job, run, on_event, resume=payload) -> trainer
    finish: Callable[[Any], dict[str, Any]]
    reports: Sequence[str]  # the final files (finished.json names them)
    columns: Callable[[Sequence[dict[str, Any]]], list[str]]  # metrics.csv's, from the rows
    check: Callable[[Plan], None]  # what the network must have for this task (before a run exists)
    prepare: Prepare  # the data and recipe checks of this task, before a run exists


def _classifier(p: Plan) -> None:
    budget.require_classifier(p, "train")


def _no_check(p: Plan) -> None:
    return None


def _as_written(
    spec: NetworkSpec, text: str, path: Path, data: str | None, overrides: dict[str, Any]
) -> tuple[NetworkSpec, str, list[str]]:
    return spec, text, []  # a classifier's data is checked as it loads (datasets.py)


TASKS = {
    "classify": Task(
        "classify",
        "default",
        loop.setup,
        loop.fit,
        classify_finish.finish,
        classify_finish.REPORTS,
        lambda rows: list(loop.COLUMNS),
        _classifier,
        _as_written,
    ),
    "detect": Task(
        "detect",
        "detect",
        detect_fit.setup,
        detect_fit.fit,
        detect_finish.finish,
        detect_finish.REPORTS,
        detect_fit.columns_of,
        _no_check,
        prepare_detector,
    ),
}


def task_of(p: Plan) -> Task:
    """The detect task for a network with a Detect layer, or whose outputs are all [yolo] heads;
    else classification (which then requires one class-score vector)."""
    types = [info.spec.type for info in p.layers]
    outputs = [p.layers[i].spec.type for i in p.outputs]
    if any(t in DETECT_HEADS for t in types) or (outputs and all(t in ANCHOR_HEADS for t in outputs)):
        return TASKS["detect"]
    return TASKS["classify"]
