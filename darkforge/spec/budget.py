"""What a network may cost before anything is allocated: parameters, activation memory at the
input size, and layers after expansion (Darknet's flat spelling). Read from the Plan, so it costs
one pass over the layers, torch-free, and `validate` answers it as fast as it answers shapes.

The limits are generous for the networks darkforge is for (Darknet's yolov3.cfg at 608×608:
62 M parameters, 0.49 GB of activations per image; vgg-16.cfg: 138 M parameters) and stop what
cannot be built: a 2 KB file that asks for 1e19 parameters would otherwise reach `torch.empty`
and take the machine down with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from darkforge.errors import SpecError
from darkforge.spec.base import NetworkSpec, fmt_shape, prod
from darkforge.spec.shapes import LayerInfo, Plan, plan
from darkforge.spec.work import DEFAULT_LAYER_LIMIT, layer_limit

BYTES_PER_VALUE = 4  # float32: what training and inference allocate per parameter and activation


@dataclass(frozen=True)
class Budget:
    """Upper limits; None means no limit on that count."""

    params: int | None = 1_000_000_000  # 4 GB of float32 weights, 16 GB with SGD's and Adam's state
    activation_bytes: int | None = 4 * 10**9  # one image's layer outputs, float32
    layers: int | None = DEFAULT_LAYER_LIMIT  # after expansion: every conv, shortcut and block part


DEFAULT = Budget()
NONE = Budget(None, None, None)


@dataclass(frozen=True)
class Cost:
    params: int
    activation_bytes: int
    layers: int


@contextmanager
def planning_within(budget: Budget) -> Iterator[None]:
    """Plans made inside stop instantiating blocks at `budget.layers` (the default limit stops
    them everywhere else), so a file that asks for 6.4e7 block instances is refused at once."""
    token = layer_limit.set(budget.layers)
    try:
        yield
    finally:
        layer_limit.reset(token)


def cost(p: Plan) -> Cost:
    """Parameters, activation bytes of one image (every layer output, float32: an estimate that
    counts a composite layer's parts at its output's size) and layers after expansion."""
    values = prod(p.input)
    layers = 0
    for info in p.layers:
        parts = info.spec.flat_size()
        values += prod(info.output) * parts
        layers += parts
    return Cost(p.params, values * BYTES_PER_VALUE, layers)


def check(p: Plan, budget: Budget = DEFAULT, override: str = "") -> Cost:
    """The plan's cost, or a SpecError naming the limit it passes and the layer that weighs most.
    `override` tells the user how to lift the limit where the command can ("{flag}" is replaced by
    the limit's flag of `validate`)."""
    total = cost(p)

    def hint(flag: str) -> str:
        return "make the network smaller" + (f", or {override.format(flag=flag)}" if override else "")

    if budget.layers is not None and total.layers > budget.layers:
        index = _heaviest(p, lambda i: i.spec.flat_size())
        most = p.layers[index].spec.flat_size()
        message = (
            f"the network expands to {_count(total.layers)} layers ({_count(most)} from this one), "
            f"over the limit of {_count(budget.layers)}"
        )
        raise _error(p, message, hint("--max-layers"), index)
    if budget.params is not None and total.params > budget.params:
        index = _heaviest(p, lambda i: i.cost.params)
        weight = p.layers[index].cost.params
        raise _error(
            p,
            f"the network has {_count(total.params)} parameters ({_count(weight)} in this layer), "
            f"over the limit of {_count(budget.params)}",
            hint("--max-params"),
            index,
        )
    if budget.activation_bytes is not None and total.activation_bytes > budget.activation_bytes:
        index = _heaviest(p, lambda i: prod(i.output) * i.spec.flat_size())
        raise _error(
            p,
            f"the network needs {_bytes(total.activation_bytes)} of activations per image "
            f"(this layer outputs {_shape(p.layers[index].output)}), "
            f"over the {_bytes(budget.activation_bytes)} limit",
            hint("--max-activations"),
            index,
        )
    return total


PLACEHOLDER_CLASSES = 10  # the head's width where the dataset decides it later (train)


def check_before_build(
    spec: NetworkSpec, scale: str | None = None, input_size: int | None = None, classes: int | None = None
) -> Plan:
    """The plan a command is about to build, checked against the default budget. An unknown
    scale fails here too, before anything (a run directory, a tensor) is created."""
    count = classes if classes is not None else (spec.classes or PLACEHOLDER_CLASSES)
    p = plan(spec.resolved(scale, input_size, count))
    check(p)
    return p


def require_classifier(p: Plan, command: str) -> Plan:
    """`train` (and anything scoring classes) needs one output of class scores: C, not C×H×W."""
    shapes = p.output_shapes
    if len(shapes) != 1 or len(shapes[0]) != 1:
        outputs = ", ".join(fmt_shape(s) for s in shapes[:4]) + (", …" if len(shapes) > 4 else "")
        raise _error(
            p,
            f"{command} needs one output of class scores, but the network outputs {outputs}",
            "end it with GlobalAvgPool and Linear (the Linear's width is the class count)",
            p.outputs[0],
        )
    return p


def _heaviest(p: Plan, weight: Callable[[LayerInfo], int]) -> int:
    return max(range(len(p.layers)), key=lambda i: weight(p.layers[i]))


def _error(p: Plan, message: str, hint: str, index: int) -> SpecError:
    source = p.spec._source
    path = ("layers", index)
    if source is None:
        return SpecError(f"{p.spec.name}: {message}", hint, path=path)
    error: SpecError = source.error(message, hint, path)
    return error


def _count(n: int) -> str:
    return f"{n:,}" if n < 10**10 else f"{n:.3g}"


def _bytes(n: int) -> str:
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:,} bytes"


def _shape(shape: tuple[int, ...]) -> str:
    text = "×".join(f"{d:,}" if d < 10**6 else f"{d:.3g}" for d in shape)
    return text if len(text) <= 60 else text[:59] + "…"


__all__ = [
    "DEFAULT",
    "NONE",
    "Budget",
    "Cost",
    "check",
    "check_before_build",
    "cost",
    "planning_within",
    "require_classifier",
]
