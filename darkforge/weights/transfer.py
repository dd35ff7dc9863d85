"""Start from weights: a darkforge checkpoint (or run directory), a safetensors file, or Darknet
`.weights` (including partial `*.conv.N` files) into a freshly built network.

Tensors are matched by module name first (same spelling, same shape), then the rest by order
and shape (networks of different spelling: modules are registered in forward order), as
Ultralytics' `intersect_dicts` and timm's `load_pretrained` do for the name part. What finds no
partner stays as initialised and is listed in the report, never skipped silently: typically the
classifier head when the class count differs.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from darkforge.darknet.weights import load_darknet_weights, weighted_layers
from darkforge.errors import DataError, UsageError
from darkforge.files import check_regular
from darkforge.nn.network import Network
from darkforge.spec.base import NetworkSpec
from darkforge.spec.load import load_spec
from darkforge.spec.shapes import plan
from darkforge.ultralytics.weights import darkforge_names, plain_state_dict
from darkforge.weights import checkpoint

DARKNET = re.compile(r"(\.weights|\.conv\.\d+)$")


@dataclass
class Transfer:
    """What a weights file gave a network: the report printed by `train --weights` and kept in
    the run (transfer.txt)."""

    source: str
    total: int  # tensors of the network (state_dict entries)
    by_name: int = 0
    by_order: int = 0
    kept: list[str] = field(default_factory=list)  # the network's tensors left as initialised
    unused: list[str] = field(default_factory=list)  # the file's tensors nothing took
    classes: tuple[int, int] | None = None  # (file, network) class counts, when they differ
    darknet: str | None = None  # "52 of 53 layers" for Darknet files

    @property
    def too_little(self) -> bool:
        """Less than half the network came from the file: a mismatch (another scale, another
        network), not a start; `train` refuses it unless asked (--weights-partial)."""
        return 2 * self.transferred < self.total

    @property
    def transferred(self) -> int:
        return self.by_name + self.by_order

    @property
    def complete(self) -> bool:
        return not self.kept and not self.unused

    def lines(self) -> list[str]:
        how = f"{self.by_name} by name, {self.by_order} by order and shape"
        if self.darknet:
            how = f"Darknet layers: loaded {self.darknet}"
        first = f"transferred {self.transferred}/{self.total} tensors from {self.source} ({how})"
        kept = _modules(self.kept)
        if kept:
            change = f" ({self.classes[0]} → {self.classes[1]} classes)" if self.classes else ""
            shown = ", ".join(list(kept)[:6]) + (f" and {len(kept) - 6} more" if len(kept) > 6 else "")
            first += f"; re-initialised {shown}{change}"
        lines = [first]
        lines += [f"  kept as initialised: {module} ({tensors})" for module, tensors in kept.items()]
        lines += [f"  not used from the file: {m} ({t})" for m, t in _modules(self.unused).items()]
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _modules(names: Sequence[str]) -> dict[str, str]:
    """['layers.fc.weight', 'layers.fc.bias'] -> {'fc': 'weight, bias'} (in order)."""
    found: dict[str, list[str]] = {}
    for name in names:
        module, _, tensor = name.rpartition(".")
        found.setdefault(module.removeprefix("layers."), []).append(tensor)
    return {module: ", ".join(tensors) for module, tensors in found.items()}


HINT = "give a run directory, a .pt, .safetensors or Darknet .weights file"


def weights_file(path: str | os.PathLike[str]) -> Path:
    """What `--weights` names: a file, or a run directory's best checkpoint (else its last)."""
    p = Path(path)
    if p.is_dir():
        found = [p / "weights" / name for name in ("best.pt", "last.pt") if (p / "weights" / name).is_file()]
        if not found:
            raise DataError(f"{p}: a folder without weights/best.pt or weights/last.pt", HINT)
        return found[0]
    return check_regular(p, HINT)


def check_file(path: str | os.PathLike[str]) -> Path:
    """`--weights` checked before anything is allocated: the file exists and its header reads
    (a checkpoint's declared sizes fit its length: darkforge.weights.checkpoint.check_archive)."""
    file = weights_file(path)
    if file.suffix == ".safetensors":
        _safetensors_header(file)
    elif not DARKNET.search(file.name):
        checkpoint.check_archive(file)
    return file


def weights_origin(weights: str | os.PathLike[str]) -> checkpoint.Inference | None:
    """What a darkforge checkpoint (or run) given to --weights was trained as; None for files
    that do not say (Darknet .weights, plain state_dicts). Checked before anything is allocated."""
    file = check_file(weights)
    if file.suffix not in (".pt", ".safetensors"):
        return None
    try:
        return checkpoint.inference_of(checkpoint.load(file), file)
    except DataError:  # not a darkforge checkpoint: a plain state_dict carries no architecture
        return None


def refuse_mismatch(report: Transfer, weights: str, arch: str, scale: str | None) -> None:
    """`train` starts from weights that fit most of the network, or says what they are."""
    if not report.too_little:
        return
    origin = weights_origin(weights)
    was = f"; they are {Path(origin.arch_name).name} at scale {origin.scale or '(none)'}" if origin else ""
    same = origin is not None and Path(origin.arch_name).name == Path(arch).name
    if same and origin is not None and origin.scale != scale:
        fix = f"add --scale {origin.scale or '(none)'}"
    else:
        fix = "give the ARCH they were trained as, or leave out ARCH to train theirs"
    raise UsageError(
        f"--weights {weights}: only {report.transferred} of {report.total} tensors fit "
        f"{Path(arch).name} at scale {scale or '(none)'}{was}",
        f"{fix}; or --weights-partial to start from what fits",
    )


def transfer(model: nn.Module, path: str | os.PathLike[str]) -> Transfer:
    """Load what fits of `path` into `model` (in place) and say what did and did not. Weights
    holding NaN or infinite values are refused, whatever the file's format."""
    file = weights_file(path)
    if DARKNET.search(file.name):
        return _darknet(model, file)
    tensors, classes = _read(file)
    tensors = darkforge_names(tensors, model)  # Ultralytics' `model.i.` names, if the file has them
    target = model.state_dict()
    report = Transfer(str(path) if file == Path(path) else str(file), len(target))
    mapped: dict[str, Tensor] = {}
    for name, slot in target.items():
        if name in tensors and tensors[name].shape == slot.shape:
            mapped[name] = tensors[name]
    report.by_name = len(mapped)
    rest = [name for name in tensors if not (name in mapped and mapped[name] is tensors[name])]
    j = 0
    for name, slot in target.items():
        if name in mapped:
            continue
        if j < len(rest) and tensors[rest[j]].shape == slot.shape:
            mapped[name] = tensors[rest[j]]
            report.by_order += 1
            j += 1
        else:
            report.kept.append(name)
    report.unused = rest[j:]
    count = _classes(model)
    if classes is not None and count is not None and classes != count:
        report.classes = (classes, count)
    with torch.no_grad():
        model.load_state_dict(mapped, strict=False)
    return report


def _read(file: Path) -> tuple[dict[str, Tensor], int | None]:
    """The file's tensors by name, and its class count when it says."""
    if file.suffix == ".safetensors":
        from safetensors import safe_open

        _safetensors_header(file)
        try:
            with safe_open(str(file), framework="pt") as handle:
                metadata = handle.metadata() or {}
                tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        except Exception as e:  # safetensors raises several kinds for a foreign or torn file
            raise DataError(f"{file}: not a readable safetensors file ({type(e).__name__})") from None
        checkpoint.check_tensors(tensors, file)
        classes = metadata.get("classes")
        return tensors, len(_json_list(classes)) if classes else None
    try:
        payload = checkpoint.load(file)
    except DataError:  # not darkforge's: a bare state_dict (Ultralytics' names, say) also loads
        plain = plain_state_dict(file)
        if plain is None:
            raise
        checkpoint.check_tensors(plain, file)
        return plain, None
    classes_list = payload.get("inference", {}).get("classes")
    return dict(payload["model"]), len(classes_list) if isinstance(classes_list, list) else None


def _safetensors_header(file: Path) -> None:
    """The header alone (no tensor read): safetensors checks its offsets against the length."""
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as handle:
            handle.metadata()
    except Exception as e:  # safetensors raises several kinds for a foreign or torn file
        raise DataError(f"{file}: not a readable safetensors file ({type(e).__name__})", HINT) from None


def _json_list(text: str) -> list[object]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # deeply nested metadata: not a class list
        return []
    return value if isinstance(value, list) else []


def _classes(model: nn.Module) -> int | None:
    plan = getattr(model, "plan", None)
    if plan is None or not plan.output_shapes:
        return None
    shape = plan.output_shapes[-1]
    return shape[0] if len(shape) == 1 else None


def _darknet(model: nn.Module, file: Path) -> Transfer:
    """A Darknet file names no tensors: the network cuts it in Darknet's layer order. A complete
    file whose head does not fit (another class count) loads up to the head, which stays new."""
    try:
        loaded = load_darknet_weights(model, file)
    except DataError as first:
        units = weighted_layers(model)
        if DARKNET.search(file.name).group(1) != ".weights" or not units:  # type: ignore[union-attr]
            raise
        try:
            loaded = load_darknet_weights(model, file, cutoff=units[-1].layer)
        except DataError:
            raise first from None
    names = {id(m): name for name, m in model.named_modules()}
    units = weighted_layers(model)[: loaded.layers]
    prefixes = tuple(f"{names[id(m)]}." for u in units for m in (u.module, u.bn) if m is not None)
    target = model.state_dict()
    checkpoint.check_tensors({k: v for k, v in target.items() if k.startswith(prefixes)}, file)
    report = Transfer(str(file), len(target), darknet=f"{loaded.layers} of {loaded.total} layers")
    for name in target:
        if name.endswith("num_batches_tracked"):  # a counter Darknet does not keep
            report.total -= 1
        elif name.startswith(prefixes):
            report.by_order += 1
        else:
            report.kept.append(name)
    return report


def build(
    arch: str | os.PathLike[str] | NetworkSpec,
    scale: str | None = None,
    input_size: int | None = None,
    classes: int | None = None,
    features: Sequence[str | int] | None = None,
    weights: str | os.PathLike[str] | None = None,
) -> Network:
    """`darkforge.build`: compile an architecture (a path or a loaded spec) into a Network; with
    `features` (layer ids or indices) one that returns those layers' maps (`Network.taps`); with
    `weights`, start from them (matched as `train --weights` does). The report is
    `network.transfer`; anything not transferred is also a warning, never silence."""
    spec = arch if isinstance(arch, NetworkSpec) else load_spec(arch)
    compiled = plan(spec.resolved(scale, input_size, classes))
    network = Network(compiled, compiled.indices(features) if features is not None else None)
    if weights is not None:
        report = transfer(network, weights)
        network.transfer = report  # type: ignore[assignment]
        if not report.complete:
            warnings.warn(str(report), stacklevel=2)
    return network


__all__ = ["Transfer", "build", "transfer"]
