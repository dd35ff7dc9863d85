"""How a network runs in a benchmark: eager torch, torch.compile, ONNX Runtime.

Each mode turns a built network into a `Runner`: a training step (None where the mode cannot
train) and an inference call. A mode that cannot run here raises `Unavailable` with the reason,
which the benchmark reports instead of numbers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from darkforge.export.common import ExportJob
from darkforge.export.onnx import write_onnx
from darkforge.nn.network import Network
from darkforge.weights.checkpoint import Inference


class Unavailable(Exception):
    """This mode cannot run here (missing package, no compiler...): the reason, one line."""


@dataclass
class Setup:
    device: torch.device
    dtype: torch.dtype | None = None  # autocast dtype; None: fp32
    channels_last: bool = False


@dataclass
class Runner:
    train: Callable[[Tensor], None] | None  # one optimizer step on a batch
    infer: Callable[[Tensor], Any]  # outputs of a batch, no gradients


def _loss(out: Tensor | tuple[Tensor, ...]) -> Tensor:
    # a scalar touching every output (classifier or multi-output): its cost is negligible next to the
    # network's, so the step measures the network, whatever its head
    outs = out if isinstance(out, tuple) else (out,)
    return sum((o.float().square().mean() for o in outs), torch.zeros((), device=outs[0].device))


def _autocast(setup: Setup) -> contextlib.AbstractContextManager[Any]:
    if setup.dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(setup.device.type, dtype=setup.dtype)


def _torch_runner(model: nn.Module, setup: Setup, params: nn.Module) -> Runner:
    optimizer = torch.optim.SGD(params.parameters(), lr=1e-4, momentum=0.9)

    def train(x: Tensor) -> None:
        params.train()
        with _autocast(setup):
            loss = _loss(model(x))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def infer(x: Tensor) -> Any:
        params.eval()
        with torch.no_grad(), _autocast(setup):
            return model(x)

    return Runner(train, infer)


def eager(model: Network, setup: Setup) -> Runner:
    return _torch_runner(model, setup, model)


def compiled(model: Network, setup: Setup) -> Runner:
    if not hasattr(torch, "compile"):
        raise Unavailable("this torch has no torch.compile")
    return _torch_runner(torch.compile(model), setup, model)  # type: ignore[arg-type]


def onnxruntime(model: Network, setup: Setup) -> Runner:
    """Inference only: the network exported as darkforge export does (dynamic batch), run by
    ONNX Runtime on the CPU."""
    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise Unavailable(f"needs {', '.join(missing)} (pip install 'darkforge[onnx]')")
    if setup.device.type != "cpu":
        raise Unavailable("measured on the CPU only (its CUDA provider is not set up here)")
    import numpy as np
    import onnxruntime as ort  # optional: the [onnx] extra

    spec = model.plan.spec
    info = Inference("", spec.name, None, [], list(spec.input.shape), [0.0], [1.0])
    job = ExportJob(Path("benchmark"), model.eval(), info, spec, None)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        write_onnx(job, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # as many threads as torch uses
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return Runner(None, lambda x: session.run(None, {name: np.ascontiguousarray(x.numpy())}))


MODES: dict[str, Callable[[Network, Setup], Runner]] = {
    "eager": eager,
    "compile": compiled,
    "onnxruntime": onnxruntime,
}
