"""What `train --resume` reads from a run directory, checked like any other input file: a damaged
args.yaml or arch.yaml (edited, truncated, missing) is one line naming the file, never a crash
halfway into a resumed run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from darkforge.errors import DataError, key_path
from darkforge.files import read_text
from darkforge.spec import budget
from darkforge.spec.shapes import plan
from darkforge.training.archtext import embedded_spec
from darkforge.training.recipe import Recipe
from darkforge.training.rundir import RunDir

DAMAGED = "the run directory is damaged; start a new run"


class _Args(BaseModel):
    """args.yaml as `train` writes it; keys a later version adds are ignored, types are not."""

    model_config = ConfigDict(extra="ignore", strict=True)

    arch: str = Field(max_length=4096)
    scale: str | None = Field(None, max_length=200)
    data: str = Field(max_length=4096)
    data_dir: str | None = Field(None, max_length=4096)
    device: str = Field("auto", max_length=100)
    sync_bn: bool = False
    cache: str = Field("auto", max_length=20)
    cache_budget: int | None = Field(None, ge=0)
    weights: str | None = Field(None, max_length=4096)
    recipe: dict[str, Any]


@dataclass(frozen=True)
class RunArgs:
    arch: str
    scale: str | None
    data: str
    data_dir: str | None
    device: str
    sync_bn: bool
    recipe: Recipe
    arch_yaml: str
    cache: str = "auto"
    cache_budget: int | None = None
    weights: str | None = None


def read_run_args(run: RunDir) -> RunArgs:
    """args.yaml and arch.yaml of `run`, validated; the architecture checked like a file and
    against the size limits (darkforge.spec.budget)."""
    path = run.file("args.yaml")
    try:
        data = yaml.safe_load(read_text(path, DAMAGED, error=DataError))
    except yaml.YAMLError as e:
        raise DataError(f"invalid YAML: {str(e).splitlines()[0][:120]}", DAMAGED, str(path)) from None
    except ValueError as e:  # integers past Python's 4,300 digits
        raise DataError(f"invalid YAML: {str(e).split(';')[0][:120]}", DAMAGED, str(path)) from None
    if not isinstance(data, dict):
        raise DataError(f"expected a mapping, got {type(data).__name__}", DAMAGED, str(path))
    args = _validated(_Args, data, str(path))
    recipe = _validated(Recipe, args.recipe, str(path), ("recipe",))
    arch = run.file("arch.yaml")
    arch_yaml = read_text(arch, DAMAGED, error=DataError)
    spec = embedded_spec(arch_yaml, str(arch))
    budget.check(plan(spec.resolved(args.scale)))
    return RunArgs(
        args.arch,
        args.scale,
        args.data,
        args.data_dir,
        args.device,
        args.sync_bn,
        recipe,
        arch_yaml,
        args.cache,
        args.cache_budget,
        args.weights,
    )


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], data: Any, file: str, prefix: tuple[str, ...] = ()) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        detail = e.errors(include_input=False, include_url=False)[0]
        where = key_path((*prefix, *detail["loc"])) or "args"
        raise DataError(f"{where}: {detail['msg']}", DAMAGED, file) from None
