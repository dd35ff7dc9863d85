"""`darkforge convert`: Darknet .cfg ⇄ darkforge YAML, Darknet .weights ⇄ safetensors, and an
Ultralytics model YAML -> darkforge YAML."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from darkforge.cli.app import cli
from darkforge.darknet.read import convert_cfg
from darkforge.darknet.write import to_cfg
from darkforge.errors import DataError, UsageError
from darkforge.files import check_regular, replacing, write_text
from darkforge.spec.dump import dump_spec
from darkforge.spec.load import load_spec
from darkforge.ultralytics.native import NotNative, native_file

KINDS = {".cfg": "cfg", ".yaml": "yaml", ".yml": "yaml", ".safetensors": "safetensors"}  # else: weights
DEFAULT_TARGET = {"cfg": "yaml", "yaml": "cfg", "weights": "safetensors", "safetensors": "weights"}


def _kind(path: str) -> str:
    return KINDS.get(Path(path).suffix.lower(), "weights")  # darknet53.conv.74 has no telling suffix


def _emit(text: str, output: str | None) -> None:
    if output is None:
        click.echo(text, nl=False)
    else:
        write_text(output, text)  # atomically: a failed write leaves the old file whole


def _cfg_to_yaml(
    source: str, output: str | None, arch: str | None, cutoff: int | None, lenient: bool, darknet: str
) -> None:
    converted = convert_cfg(source, lenient, darknet)
    header = f"Converted from {Path(source).name} by `darkforge convert`: layers[i] is Darknet's layer i."
    _emit(dump_spec(converted.spec, header), output)
    for warning in converted.warnings:
        click.echo(f"warning: {warning}", err=True)


def _yaml_to_cfg(
    source: str, output: str | None, arch: str | None, cutoff: int | None, lenient: bool, darknet: str
) -> None:
    text, warnings = to_cfg(load_spec(source))
    _emit(text, output)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def _foreign_to_yaml(
    source: str, output: str | None, arch: str | None, cutoff: int | None, lenient: bool, darknet: str
) -> None:
    """An Ultralytics model YAML (at the scale its name says) as a darkforge file."""
    spec = load_spec(source)
    if spec._converted_from is None:
        raise UsageError(f"{source} is darkforge YAML already", "convert it --to cfg, or give another format")
    try:  # every scale in one file, with the shipped block library (archs/yolov8.yaml's form)
        _emit(native_file(Path(source)), output)
        return
    except NotNative as e:
        click.echo(f"warning: {e}: written at one scale with darkforge's built-in types", err=True)
    header = (
        f"Converted from {Path(source).name} ({spec._converted_from}) by `darkforge convert`: "
        "layers[i] is its row i (Ultralytics' model.i)."
    )
    _emit(dump_spec(spec, header), output)


def _foreign(source: str) -> bool:
    """A YAML of another format (Ultralytics'), or a name that stands for one (yolov8n.yaml)."""
    return load_spec(source)._converted_from is not None


def _network(arch: str | None, output: str | None, lenient: bool, darknet: str) -> object:
    if arch is None:
        raise UsageError("converting weights needs the network", "add --cfg FILE.cfg (or a .yaml)")
    if output is None:
        raise UsageError("weights are binary", "add -o FILE")
    from darkforge.weights.transfer import build  # torch: imported on use, so `convert` of text stays fast

    if arch.endswith(".cfg") and (lenient or darknet != "alexeyab"):
        return build(convert_cfg(arch, lenient, darknet).spec)
    return build(arch)


def _weights_to_safetensors(
    source: str, output: str | None, arch: str | None, cutoff: int | None, lenient: bool, darknet: str
) -> None:
    # torch and safetensors: imported on use, so `convert` of text files stays fast
    from safetensors.torch import save_file

    from darkforge.darknet.weights import load_darknet_weights
    from darkforge.weights.checkpoint import check_tensors

    check_regular(source, "give a Darknet .weights file")
    model = _network(arch, output, lenient, darknet)
    report = load_darknet_weights(model, source, cutoff)  # type: ignore[arg-type]
    check_tensors(model.state_dict(), source)  # type: ignore[attr-defined]
    # the .weights header rides along, so converting back writes Darknet's own header again
    header = {"darknet_version": ".".join(map(str, report.version)), "darknet_seen": str(report.seen)}
    with replacing(str(output), UsageError, "choose another -o") as temp:  # never a torn file
        save_file(model.state_dict(), str(temp), metadata=header)  # type: ignore[attr-defined]
    click.echo(f"{report} (weights version {'.'.join(map(str, report.version))}) -> {output}")


def _safetensors_to_weights(
    source: str, output: str | None, arch: str | None, cutoff: int | None, lenient: bool, darknet: str
) -> None:
    # torch and safetensors: imported on use, so `convert` of text files stays fast
    from safetensors import safe_open
    from safetensors.torch import load_file

    from darkforge.darknet.weights import VERSION, save_darknet_weights
    from darkforge.weights.checkpoint import check_tensors

    check_regular(source, "give a .safetensors file")
    model = _network(arch, output, lenient, darknet)
    try:
        state = load_file(source)
        with safe_open(source, "pt") as handle:
            header = handle.metadata() or {}
    except Exception as e:  # safetensors raises its own SafetensorError for a torn header
        raise DataError(f"not a readable safetensors file ({_first_line(e)})", "", source) from None
    check_tensors(state, source)
    try:
        model.load_state_dict(state)  # type: ignore[attr-defined]
    except RuntimeError as e:  # missing or misshapen tensors
        raise DataError(f"{source}: does not fit {arch}: {_first_line(e)}") from None
    version, seen = VERSION, 0
    if "darknet_version" in header:  # written by the conversion above: Darknet's header, kept whole
        try:
            major, minor, revision = (int(v) for v in header["darknet_version"].split("."))
            version, seen = (major, minor, revision), int(header.get("darknet_seen", "0"))
        except ValueError:
            raise DataError(
                f"{source}: bad darknet_version {_first_line(ValueError(header['darknet_version']))}"
            ) from None
    report = save_darknet_weights(model, str(output), cutoff, seen, version)  # type: ignore[arg-type]
    click.echo(f"{report} -> {output}")


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    text = lines[0] if lines else type(e).__name__
    return text if len(text) <= 120 else text[:119] + "…"


Conversion = Callable[[str, str | None, str | None, int | None, bool, str], None]
CONVERSIONS: dict[tuple[str, str], Conversion] = {
    ("cfg", "yaml"): _cfg_to_yaml,
    ("yaml", "cfg"): _yaml_to_cfg,
    ("yaml", "yaml"): _foreign_to_yaml,
    ("weights", "safetensors"): _weights_to_safetensors,
    ("safetensors", "weights"): _safetensors_to_weights,
}


@cli.command()
@click.argument("source", type=click.Path(dir_okay=False))
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="where to write (text: stdout by default)"
)
@click.option(
    "--to",
    "target",
    type=click.Choice(sorted(DEFAULT_TARGET)),
    help="what to write; default: from -o's suffix, else a .cfg becomes YAML, a YAML a .cfg, "
    ".weights safetensors and safetensors .weights",
)
@click.option(
    "--cfg", "arch", type=click.Path(dir_okay=False), help="the network of a weights file (.cfg or .yaml)"
)
@click.option("--cutoff", type=click.IntRange(0), help="only Darknet layers before N (darknet53.conv.74: 74)")
@click.option(
    "--lenient",
    is_flag=True,
    help="drop .cfg keys darkforge has never seen (with a warning) instead of refusing",
)
@click.option(
    "--darknet",
    type=click.Choice(["alexeyab", "pjreddie"]),
    default="alexeyab",
    show_default=True,
    help="the Darknet the .cfg is for: its batch-norm formula in eval (docs/darknet.md)",
)
def convert(
    source: str,
    output: str | None,
    target: str | None,
    arch: str | None,
    cutoff: int | None,
    lenient: bool,
    darknet: str,
) -> None:
    """Convert between Darknet and darkforge: a .cfg to YAML (and back with --to cfg), and
    .weights to safetensors (and back) for the network given by --cfg."""
    kind = _kind(source)
    default = "yaml" if kind == "yaml" and _foreign(source) else DEFAULT_TARGET[kind]
    target = target or (_kind(output) if output else default)
    if (kind, target) not in CONVERSIONS:
        known = ", ".join(f"{a} -> {b}" for a, b in CONVERSIONS)
        raise UsageError(f"cannot convert {kind} to {target}", f"conversions: {known}")
    CONVERSIONS[kind, target](source, output, arch, cutoff, lenient, darknet)
