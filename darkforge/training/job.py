"""The run record: everything a run needs, written by `train` as args.yaml (beside arch.yaml) and
read back by `train --resume`, checked like any other input file: a damaged args.yaml or
arch.yaml (edited, truncated, missing) is one line naming the file, never a crash halfway into a
resumed run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import yaml
from pydantic import ConfigDict, Field, StrictBool, StrictInt, StrictStr, TypeAdapter, ValidationError

from darkforge.errors import DataError
from darkforge.files import read_text
from darkforge.spec import budget
from darkforge.spec.archtext import embedded_spec
from darkforge.spec.messages import describe
from darkforge.spec.shapes import plan
from darkforge.training.recipe import Recipe
from darkforge.training.rundir import RunDir

DAMAGED = "the run directory is damaged; start a new run"
Path_ = Annotated[StrictStr, Field(max_length=4096)]


@dataclass
class Job:
    """One run. `darkforge.train` fills it from arguments; args.yaml holds it (all but the YAML
    text, which is arch.yaml); keys a later version adds are ignored, types are not."""

    __pydantic_config__ = ConfigDict(extra="ignore")  # fields strict each: no "yes" for a bool

    arch_yaml: StrictStr  # the architecture as YAML (arch.yaml)
    arch: Path_  # the file it came from, for messages
    scale: Annotated[StrictStr | None, Field(max_length=200)]
    recipe: Recipe
    data: Path_ = "cifar10"
    data_dir: Path_ | None = None
    device: Annotated[StrictStr, Field(max_length=100)] = "auto"
    sync_bn: StrictBool = False  # under torchrun on GPUs: batch-norm statistics over the global batch
    weights: Path_ | None = None  # start from these (a new run only; darkforge.weights.transfer)
    # where decoded pixels live (auto, ram, disk, none), and the bytes `auto` lets them take in
    # memory (None: half of RAM)
    cache: Annotated[StrictStr, Field(max_length=20)] = "auto"
    cache_budget: Annotated[StrictInt | None, Field(ge=0)] = None
    # start from weights that fit less than half the network (else refused: a mismatch, not a start)
    weights_partial: StrictBool = False

    def record(self) -> dict[str, Any]:
        """args.yaml's content."""
        saved: dict[str, Any] = _ADAPTER.dump_python(self, mode="json", exclude={"arch_yaml"})
        return saved

    def save_text(self) -> str:
        return yaml.safe_dump(self.record(), sort_keys=False)


_ADAPTER: TypeAdapter[Job] = TypeAdapter(Job)


def read_job(run: RunDir) -> Job:
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
    arch = run.file("arch.yaml")
    arch_yaml = read_text(arch, DAMAGED, error=DataError)
    try:
        job = _ADAPTER.validate_python({**data, "arch_yaml": arch_yaml})
    except ValidationError as e:
        raise describe(e, data).line(DataError, str(path), DAMAGED) from None
    spec = embedded_spec(arch_yaml, str(arch))
    budget.check(plan(spec.resolved(job.scale)))
    return job
