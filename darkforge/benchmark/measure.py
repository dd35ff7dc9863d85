"""Side-by-side speed of networks in one process: interleaved rounds, medians.

Every round measures every (network, mode) pair in turn, so a machine that slows down (another
job, thermal limits) slows all of them alike; the result is the median over rounds. Per pair:
training-step images/s (forward, backward, SGD step), inference images/s (no gradients), batch-1
latency (every sample kept: median and p90) and peak memory (CUDA's allocator on a GPU; on a CPU
there is no allocator to ask, so the static plan's training estimate stands beside it).
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from darkforge.benchmark.modes import MODES, Runner, Setup, Unavailable
from darkforge.nn.network import Network
from darkforge.spec.load import load_spec
from darkforge.views import memory
from darkforge.weights.transfer import build

FORMAT_VERSION = 1  # of the JSON result (docs/cli.md); bump on any incompatible change


@dataclass
class Settings:
    batch: int = 8
    rounds: int = 3
    steps: int = 2  # timed batches per round, for each of train and inference
    latency: int = 5  # batch-1 samples per round
    warmup: int = 1  # untimed batches before the first round (compile traces here)
    modes: tuple[str, ...] = ("eager",)
    input_size: int | None = None
    scale: str | None = None
    setup: Setup = field(default_factory=lambda: Setup(torch.device("cpu")))


@dataclass
class Pair:
    arch: str
    mode: str
    model: Network
    runner: Runner | None
    error: str | None = None
    train: list[float] = field(default_factory=list)  # img/s per round
    infer: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)  # seconds per batch-1 sample
    peak: int | None = None  # bytes (CUDA only)


def benchmark(
    archs: list[str], settings: Settings, on_round: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Measure every arch in every mode, interleaved; the JSON-ready result (docs/cli.md)."""
    setup = settings.setup
    models = {arch: _build(arch, settings) for arch in archs}
    pairs = [_pair(arch, mode, models[arch], setup) for arch in archs for mode in settings.modes]
    for pair in pairs:
        _guard(pair, lambda p: _warm_up(p, settings))
    for k in range(settings.rounds):
        for pair in pairs:
            _guard(pair, lambda p: _round(p, settings))
        if on_round:
            on_round(k + 1)
    return _result(archs, models, pairs, settings)


def _build(arch: str, settings: Settings) -> Network:
    spec = load_spec(arch).resolved(settings.scale, settings.input_size)  # --scale: to every network
    model = build(spec).to(settings.setup.device)
    if settings.setup.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _pair(arch: str, mode: str, model: Network, setup: Setup) -> Pair:
    try:
        return Pair(arch, mode, model, MODES[mode](model, setup))
    except Unavailable as e:
        return Pair(arch, mode, model, None, str(e))


def _guard(pair: Pair, step: Callable[[Pair], None]) -> None:
    """Run `step`; a mode that fails at run time (compile without a compiler...) is reported,
    not fatal."""
    if pair.runner is None:
        return
    try:
        step(pair)
    except Exception as e:  # torch.compile raises many kinds; the reason is reported in one line
        pair.runner, pair.error = (
            None,
            f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}",
        )


def _batch(model: Network, n: int, setup: Setup) -> torch.Tensor:
    x = torch.randn(n, *model.plan.input, device=setup.device)
    return x.contiguous(memory_format=torch.channels_last) if setup.channels_last else x


def _sync(setup: Setup) -> None:
    if setup.device.type == "cuda":
        torch.cuda.synchronize(setup.device)


def _warm_up(pair: Pair, settings: Settings) -> None:
    assert pair.runner is not None
    x, one = _batch(pair.model, settings.batch, settings.setup), _batch(pair.model, 1, settings.setup)
    for _ in range(settings.warmup):
        if pair.runner.train:
            pair.runner.train(x)
        pair.runner.infer(x)
        pair.runner.infer(one)
    _sync(settings.setup)


def _timed(setup: Setup, work: Callable[[], Any], times: int) -> float:
    _sync(setup)
    start = time.perf_counter()
    for _ in range(times):
        work()
    _sync(setup)
    return time.perf_counter() - start


def _round(pair: Pair, settings: Settings) -> None:
    runner, setup, n = pair.runner, settings.setup, settings.batch
    assert runner is not None
    x, one = _batch(pair.model, n, setup), _batch(pair.model, 1, setup)
    if runner.train is not None:
        train = runner.train
        if setup.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(setup.device)
        pair.train.append(n * settings.steps / _timed(setup, lambda: train(x), settings.steps))
        if setup.device.type == "cuda":
            pair.peak = max(pair.peak or 0, torch.cuda.max_memory_allocated(setup.device))
    pair.infer.append(n * settings.steps / _timed(setup, lambda: runner.infer(x), settings.steps))
    pair.latency += [_timed(setup, lambda: runner.infer(one), 1) for _ in range(settings.latency)]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between samples (numpy's default)."""
    ordered = sorted(values)
    at = (len(ordered) - 1) * q / 100
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def _numbers(pair: Pair) -> dict[str, Any]:
    if pair.runner is None and pair.error is not None:
        return {"error": pair.error}
    median = statistics.median
    return {
        "train_img_s": median(pair.train) if pair.train else None,
        "infer_img_s": median(pair.infer),
        "latency_ms": {"median": 1000 * median(pair.latency), "p90": 1000 * percentile(pair.latency, 90)},
        "peak_memory_bytes": pair.peak,
    }


def _result(archs: list[str], models: dict[str, Network], pairs: list[Pair], s: Settings) -> dict[str, Any]:
    entries = []
    for arch in archs:
        p = models[arch].plan
        modes = {pair.mode: _numbers(pair) for pair in pairs if pair.arch == arch}
        entries.append(
            {
                "arch": arch,
                "name": p.spec.name,
                "input": list(p.input),
                "params": p.params,
                "macs": p.macs,
                "train_bytes_estimate": memory.totals(p, s.batch)["train_bytes"],
                "modes": modes,
            }
        )
    setup = s.setup
    return {
        "format": FORMAT_VERSION,
        "device": str(setup.device),
        "precision": {None: "32", torch.bfloat16: "bf16", torch.float16: "16"}[setup.dtype],
        "channels_last": setup.channels_last,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "batch": s.batch,
        "rounds": s.rounds,
        "steps": s.steps,
        "latency_samples": s.rounds * s.latency,
        "models": entries,
        "ratios": ratios(entries) if len(entries) == 2 else None,
    }


RATIO_KEYS = ("train_img_s", "infer_img_s")


def ratios(entries: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """First over second, per mode: img/s ratios (>1: the first is faster) and the latency ratio
    (<1: the first answers sooner)."""
    out: dict[str, dict[str, float | None]] = {}
    for mode, a in entries[0]["modes"].items():
        b = entries[1]["modes"].get(mode, {})
        row: dict[str, float | None] = {k: _ratio(a.get(k), b.get(k)) for k in RATIO_KEYS}
        row["latency_median"] = _ratio(
            a.get("latency_ms", {}).get("median"), b.get("latency_ms", {}).get("median")
        )
        out[mode] = row
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None
