"""DistributedDataParallel under torchrun: one process per GPU (NCCL), or several on CPUs (gloo).

`torchrun ... -m darkforge train ...` sets WORLD_SIZE, RANK and LOCAL_RANK. Without them every
function here is a no-op and one process trains exactly as before.

How a run divides (docs/distributed.md): the recipe's `batch` is the global batch. Every rank walks
the same seeded permutation and augments with the same random numbers, then keeps its own slice of
each global batch (data.Batches); DDP averages the gradients, so N ranks × batch/N images make the
step one process makes with `batch` images. Rank 0 alone writes the run directory. Evaluation gives
each rank a contiguous piece of the split and sums the counts, so every image counts exactly once.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from darkforge.errors import DataError, UsageError

# How long a rank waits for the others before the job fails: a dead peer ends the run in about
# this long rather than hanging it (torch's default is 10 minutes for NCCL, 30 for gloo). It bounds
# every wait on rank 0 too, so a checkpoint write must fit in it.
TIMEOUT = timedelta(seconds=float(os.environ.get("DARKFORGE_DIST_TIMEOUT", "120")))
# Rank 0 alone downloads or decodes a dataset while the others wait: that wait alone may be long.
DATA_TIMEOUT = timedelta(hours=2)

T = TypeVar("T")


def launched() -> bool:
    """Started by torchrun (or anything else that sets its variables)."""
    return all(name in os.environ for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"))


def _place() -> tuple[int, int]:
    """(rank, world size), from torchrun's variables: known before the process group is up."""
    return (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])) if launched() else (0, 1)


def rank() -> int:
    return _place()[0]


def world_size() -> int:
    return _place()[1]


def is_main() -> bool:
    """Rank 0: the one process that writes files and prints."""
    return rank() == 0


def local_device(device: torch.device) -> torch.device:
    """Under torchrun a GPU means this process's own, cuda:LOCAL_RANK (whatever index was named)."""
    if not launched() or device.type == "cpu":
        return device
    if device.type != "cuda":
        raise UsageError(
            f"--device {device}: under torchrun darkforge trains on CUDA GPUs (NCCL) or CPUs (gloo)",
            "use --device cuda or --device cpu",
        )
    local, count = int(os.environ["LOCAL_RANK"]), torch.cuda.device_count()
    if local >= count:
        raise UsageError(
            f"torchrun started local rank {local}, but this machine has {count} GPU(s)",
            f"use --nproc_per_node={count} or fewer",
        )
    return torch.device("cuda", local)


def check(batch: int, device: torch.device, sync_bn: bool) -> None:
    """Refuse, before anything is written, a job that does not divide among the processes."""
    world = world_size()
    if batch % world:
        raise UsageError(
            f"--batch-size {batch} is the global batch: it must divide among {world} processes",
            f"use a multiple of {world}, e.g. {max(1, batch // world) * world}",
        )
    if sync_bn and world > 1 and device.type != "cuda":
        raise UsageError(
            "--sync-bn needs CUDA GPUs: torch's SyncBatchNorm has no CPU implementation",
            "drop --sync-bn (each process then normalizes over its own slice of the batch)",
        )


def init(device: torch.device) -> None:
    """Join torchrun's process group: NCCL between GPUs, gloo on CPUs. Nothing without torchrun."""
    if not launched() or dist.is_initialized():
        return
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.set_device(device)  # object collectives and NCCL use the current device
    dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT, device_id=device if cuda else None)


def close() -> None:
    """Leave the process group together, once rank 0 has written its files: torch asks every rank
    to destroy it, and gloo's threads can abort an interpreter that exits with the group alive."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def peer_errors() -> Iterator[None]:
    """Under torchrun, an error raised on this rank (most often in a collective, when another rank
    died and closed its connection) ends as one line naming the rank, not as an internal error."""
    try:
        yield
    except RuntimeError as e:  # torch.distributed.DistError is one; gloo raises plain ones
        if world_size() == 1:
            raise
        first = (str(e).splitlines() or [type(e).__name__])[0]
        cause = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0][:200]  # less gloo's "[file:line] "
        raise DataError(
            f"rank {rank()} of {world_size()} stopped: {cause}",
            "when another process failed first, torchrun's summary names it",
        ) from e


def broadcast(value: T) -> T:
    """Rank 0's `value` on every rank (the run directory it created, say)."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@functools.cache
def _patient_group() -> Any:
    # Made on first use, which every rank reaches at the same point (new_group is collective).
    return dist.new_group(backend="gloo", timeout=DATA_TIMEOUT)


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the body first (a download, a decode into the cache); then the others, which
    find it done instead of racing it."""
    if world_size() > 1 and not is_main():
        dist.barrier(group=_patient_group())
    yield
    if world_size() > 1 and is_main():
        dist.barrier(group=_patient_group())


def wrap(model: nn.Module, device: torch.device, sync_bn: bool) -> nn.Module:
    """The model as the training loop calls it: DistributedDataParallel under torchrun (with
    `sync_bn`, batch norm over the global batch), else `model` itself. `model` stays the plain
    network, and its state_dict is what checkpoints hold, so they load in a single process."""
    if world_size() == 1:
        return model
    if sync_bn:
        nn.SyncBatchNorm.convert_sync_batchnorm(model)  # swaps the BatchNorm children in place
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )


def sync_buffers(model: nn.Module) -> None:
    """Every rank takes rank 0's buffers. Batch-norm running statistics are updated by each rank
    from its own slice; this makes every rank evaluate the weights rank 0 saves."""
    if world_size() > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def shard(n: int, rank: int | None = None, world: int | None = None) -> slice:
    """A rank's contiguous piece of `n` items (this process's by default). Sizes differ by at most
    one; together the pieces cover every item exactly once (DistributedSampler pads with repeats)."""
    here, size = _place()
    rank, world = here if rank is None else rank, size if world is None else world
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def _device() -> torch.device:
    """Where collectives' tensors live: NCCL moves only GPU memory."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(*values: float) -> list[float]:
    """Each value summed over all ranks (float64: counts stay exact up to 2**53)."""
    if world_size() == 1:
        return list(values)
    total = torch.tensor(values, dtype=torch.float64, device=_device())
    dist.all_reduce(total)
    return total.tolist()


def gather_predictions(mine: Tensor, n: int) -> Tensor:
    """The predictions for all `n` images of a split, in order, from every rank's `shard(n)`
    piece; on every rank, on the CPU."""
    world = world_size()
    if world == 1:
        return mine
    sizes = [len(range(n)[shard(n, r, world)]) for r in range(world)]
    padded = torch.zeros(max(sizes), dtype=mine.dtype, device=_device())  # all_gather wants equal sizes
    padded[: len(mine)] = mine
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)]).cpu()
