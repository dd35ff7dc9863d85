"""The hostile inputs of tests/cli/test_hostile.py, and the worker that runs them.

Each case builds its files under a folder and returns the command line; the worker runs every case
in-process through click (one torch import for all), under an address-space limit and an alarm,
and prints one JSON record per case. `python tests/cli/hostile_cases.py DIR` runs them all.
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import struct
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Darknet's .cfg parser is being rewritten (the Darknet helper); these still end as exit 3 there.
CFG_PARSER = {"validate-cfg-huge-int", "convert-cfg-huge-int", "train-cfg-huge-int"}
ADDRESS_SPACE = 8 * 2**30  # bytes: a case that tries to allocate past it fails, it does not swap
SECONDS = 5

TINY = """name: tiny
input: {channels: 3, size: 8}
classes: 2
layers:
  - {type: Conv, filters: 4, size: 3}
  - {type: GlobalAvgPool}
  - {type: Linear}
"""
HEAD = "name: h\ninput: {channels: 3, size: 8}\nclasses: 2\nlayers:\n"

Case = Callable[[Path], list[str]]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def register(make: Case) -> Case:
        CASES[name] = make
        return make

    return register


def text(name: str, body: str | bytes) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        path = root / name
        path.write_bytes(body if isinstance(body, bytes) else body.encode())
        return path

    return make


def yaml_case(name: str, body: str | bytes, command: str = "validate") -> None:
    file = text(f"{name}.yaml", body)
    CASES[f"{command}-{name}"] = lambda root: [command, str(file(root))]


def layers(*rows: str) -> str:
    return HEAD + "".join(f"  - {row}\n" for row in rows)


# --- architecture files: validate and summary ----------------------------------------------------
ALIAS_BOMB = (
    "a: &a ["
    + ",".join(["x"] * 9)
    + "]\n"
    + "".join(
        f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=False)
    )
)
HOSTILE_YAML: dict[str, str | bytes] = {
    "empty": "",
    "nul-byte": HEAD + "  - {type: Conv, filters: 4}\x00\n",
    "not-utf8": b"name: \xff\xfe\n",
    "huge-int": HEAD + "  - {type: Conv, filters: " + "9" * 5000 + "}\n",
    "huge-int-key": "9" * 5000 + ": 1\n",
    "huge-float": HEAD + "  - {type: Conv, filters: 1e400}\n",
    "alias-bomb": ALIAS_BOMB,
    "alias-bomb-in-field": ALIAS_BOMB + HEAD.replace("name: h", "name: *i"),
    "alias-bomb-as-layer": ALIAS_BOMB + HEAD + "  - *i\n",
    "deep-nesting": "a: " + "[" * 200 + "]" * 200 + "\n",
    "python-tag": "!!python/object/apply:os.system ['true']\n",
    "scalar-document": "42\n",
    "list-document": "- 1\n- 2\n",
    "duplicate-key": HEAD.replace("classes: 2", "classes: 2\nclasses: 3") + "  - {type: Linear}\n",
    "unknown-type": layers("{type: Conv2D, filters: 4}"),
    "no-type": layers("{filters: 4}"),
    "unknown-key": layers("{type: Conv, filters: 4, filtres: 3}"),
    "linear-out-negative": layers("{type: Linear, out: -3}"),
    "linear-out-zero": layers("{type: Linear, out: 0}"),
    "linear-out-1e30": layers("{type: Linear, out: 1e30}"),
    "linear-huge": layers("{type: Linear, out: 1000000}").replace("size: 8", "size: 4096"),
    "upsample-bomb": layers(*["{type: Upsample, stride: 64}"] * 4),
    "route-explosion": layers(
        "{type: Conv, filters: 4, id: a}",
        *[f"{{type: Route, from: [{', '.join(['-1'] * 64)}]}}"] * 12,
        "{type: Linear}",
    ),
    "conv-1e9-params": layers(*["{type: Conv, filters: 65536, size: 31}"] * 2),
    "blocks-explosion": layers(*["{type: ResidualStage, filters: 8, blocks: 1000, stride: 1}"] * 200),
    "reserved-id-keys": layers("{type: Conv, filters: 4, id: keys}"),
    "reserved-id-training": layers("{type: Conv, filters: 4, id: training}"),
    "filters-string": layers("{type: Conv, filters: many}"),
    "filters-list-bomb": ALIAS_BOMB + HEAD + "  - {type: Conv, filters: *i}\n",
    "name-too-long": HEAD.replace("name: h", "name: " + "n" * 100_000) + "  - {type: Linear}\n",
    "id-pattern": layers("{type: Conv, filters: 4, id: 'a b'}"),
    "from-forward": layers("{type: Conv, filters: 4, from: 5}"),
    "from-huge": layers("{type: Conv, filters: 4, from: -" + "9" * 40 + "}"),
    "input-huge": HEAD.replace("size: 8", "size: 100000") + "  - {type: Linear}\n",
    "input-zero-channels": HEAD.replace("channels: 3", "channels: 0") + "  - {type: Linear}\n",
    "classes-huge": HEAD.replace("classes: 2", "classes: 99999999999") + "  - {type: Linear}\n",
    "shrinks-below-1": layers(*["{type: Conv, filters: 4, stride: 2, pad: 0}"] * 6),
    "shortcut-mismatch": layers(
        "{type: Conv, filters: 4}", "{type: Conv, filters: 8}", "{type: Shortcut, from: -2}"
    ),
    "bad-scale": HEAD + "  - {type: Linear}\nscales: {tiny: {width: 0}}\n",
    "bad-recipe": HEAD + "  - {type: Linear}\ntrain: {epochs: -1}\n",
    "recipe-huge-int": HEAD + "  - {type: Linear}\ntrain: {epochs: " + "9" * 5000 + "}\n",
    "tabs": "name:\th\n\tinput: 3\n",
    "unknown-type-huge": layers("{type: " + "C" * 100_000 + "}"),
    "unknown-key-huge": layers("{type: Conv, filters: 4, " + "k" * 100_000 + ": 1}"),
    "id-huge": layers("{type: Conv, filters: 4, id: " + "i" * 100_000 + "}"),
    "from-unknown-id-huge": layers("{type: Conv, filters: 4, from: " + "f" * 100_000 + "}"),
    "scale-name-huge": HEAD + "  - {type: Linear}\nscales: {" + "s" * 100_000 + ": {width: 0.5}}\n",
    "layers-not-list": HEAD + "  type: Conv\n",
    "version-2": "version: 2\n" + layers("{type: Linear}"),
}
for _name, _body in HOSTILE_YAML.items():
    yaml_case(_name, _body)
for _name in ("alias-bomb-as-layer", "upsample-bomb", "huge-int", "reserved-id-keys", "linear-huge"):
    yaml_case(_name, HOSTILE_YAML[_name], "summary")


CASES["summary-input-size-bomb"] = lambda root: ["summary", "darknet53", "--input-size", "16384"]
CASES["draw-expand-bomb"] = lambda root: [
    "draw", str(text("s.yaml", layers(*["{type: ResidualStage, filters: 8, blocks: 1000, stride: 1}"] * 10))(root)),
    "--expand", "-o", str(root / "s.dot"),
]  # fmt: skip
CASES["eval-data-fake-abc"] = lambda root: ["eval", str(checkpoint(root)), "--data", "fake:abc"]
CASES["export-input-size-bomb"] = lambda root: [
    "export",
    str(checkpoint(root)),
    "--format",
    "pt2",
    "--input-size",
    "16384",
]


@case("validate-fifo")
def _fifo(root: Path) -> list[str]:
    os.mkfifo(root / "arch.yaml")
    return ["validate", str(root / "arch.yaml")]


@case("validate-folder")
def _folder(root: Path) -> list[str]:
    (root / "arch.yaml").mkdir()
    return ["validate", str(root / "arch.yaml")]


@case("validate-dev-zero")
def _dev_zero(root: Path) -> list[str]:
    return ["validate", "/dev/zero"]


@case("validate-missing")
def _missing(root: Path) -> list[str]:
    return ["validate", str(root / "nope.yaml")]


@case("validate-too-big")
def _too_big(root: Path) -> list[str]:
    path = root / "big.yaml"
    with path.open("wb") as handle:
        handle.truncate(64 * 2**20)  # sparse: costs no disk
    return ["validate", str(path)]


# --- Darknet .cfg files --------------------------------------------------------------------------
HOSTILE_CFG: dict[str, str | bytes] = {
    "cfg-huge-int": "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=" + "9" * 5000 + "\n",
    "cfg-nul": "[net]\nwidth=8\nheight=8\x00\n",
    "cfg-empty": "",
    "cfg-no-net": "[convolutional]\nfilters=4\n",
    "cfg-bad-value": "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=abc\nsize=3\n",
    "cfg-negative": "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=-4\nsize=3\n",
    "cfg-route-bad": "[net]\nwidth=8\nheight=8\nchannels=3\n[route]\nlayers=-5\n",
    "cfg-unknown-section": "[net]\nwidth=8\nheight=8\nchannels=3\n[bogus]\n",
}
for _name, _body in HOSTILE_CFG.items():
    _file = text(f"{_name}.cfg", _body)
    CASES[f"validate-{_name}"] = lambda root, f=_file: ["validate", str(f(root))]
    CASES[f"convert-{_name}"] = lambda root, f=_file: ["convert", str(f(root)), "-o", str(root / "out.yaml")]


# --- checkpoints: predict, eval, export ----------------------------------------------------------
def checkpoint(root: Path, name: str = "ckpt.pt", **change: Any) -> Path:
    """A tiny valid checkpoint, with `change` applied: inference fields, `drop` keys, `model` edits."""
    import torch

    from darkforge.nn.network import build
    from darkforge.spec.load import spec_from_text
    from darkforge.training.checkpoint import FORMAT

    torch.manual_seed(0)
    model = build(spec_from_text(TINY, "tiny.yaml"))
    info: dict[str, Any] = {
        "arch_yaml": TINY,
        "arch_name": "tiny.yaml",
        "scale": None,
        "classes": ["a", "b"],
        "input": [3, 8, 8],
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
    }
    state = model.state_dict()
    payload: dict[str, Any] = {"format": FORMAT, "model": state, "inference": info}
    for key, value in change.items():
        if key == "drop":
            for k in value:
                payload["inference"].pop(k, None) if k in info else payload.pop(k)
        elif key == "weights":
            value(state)
        elif key in info:
            info[key] = value
        else:
            payload[key] = value
    path = root / name
    torch.save(payload, path)
    return path


def image(root: Path, name: str = "cat.png", size: tuple[int, int] = (8, 8)) -> Path:
    from PIL import Image

    path = root / name
    Image.new("RGB", size, (10, 200, 30)).save(path)
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width×height pixels (PIL reads the size before any pixel)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def predict(**change: Any) -> Case:
    return lambda root: ["predict", str(checkpoint(root, **change)), str(image(root))]


def nan_weights(state: dict[str, Any]) -> None:
    state["layers.0.conv.weight" if "layers.0.conv.weight" in state else next(iter(state))].fill_(math.nan)


def wrong_shape(state: dict[str, Any]) -> None:
    import torch

    key = next(k for k in state if k.endswith("weight"))
    state[key] = torch.zeros(1, 2, 3)


def one_more(state: dict[str, Any]) -> None:
    import torch

    state["layers.9.extra"] = torch.zeros(1)


BIG_ARCH = TINY.replace(
    "{type: Conv, filters: 4, size: 3}",
    "{type: Conv, filters: 65536, size: 31}\n  - {type: Conv, filters: 4096}",
)
CHECKPOINTS: dict[str, dict[str, Any]] = {
    "ckpt-missing-inference": {"drop": ["inference"]},
    "ckpt-missing-model": {"drop": ["model"]},
    "ckpt-missing-classes": {"drop": ["classes"]},
    "ckpt-missing-arch": {"drop": ["arch_yaml"]},
    "ckpt-classes-int": {"classes": 7},
    "ckpt-classes-empty": {"classes": []},
    "ckpt-input-str": {"input": "big"},
    "ckpt-input-huge": {"input": [3, 10**9, 10**9]},
    "ckpt-mean-nan": {"mean": [math.nan, 0.5, 0.5]},
    "ckpt-std-zero": {"std": [0.0, 0.25, 0.25]},
    "ckpt-std-short": {"std": [0.25]},
    "ckpt-std-inf": {"std": [math.inf, 0.25, 0.25]},
    "ckpt-arch-bad-yaml": {"arch_yaml": "name: [unclosed\n"},
    "ckpt-arch-not-str": {"arch_yaml": 12},
    "ckpt-arch-bomb": {"arch_yaml": BIG_ARCH},
    "ckpt-arch-alias-bomb": {"arch_yaml": ALIAS_BOMB},
    "ckpt-scale-unknown": {"scale": "huge"},
    "ckpt-nan-weights": {"weights": nan_weights},
    "ckpt-wrong-shape": {"weights": wrong_shape},
    "ckpt-extra-tensor": {"weights": one_more},
    "ckpt-model-not-dict": {"model": [1, 2]},
    "ckpt-inference-list": {"inference": [1, 2]},
    "ckpt-format-other": {"format": "something-else"},
}
for _name, _change in CHECKPOINTS.items():
    CASES[f"predict-{_name}"] = predict(**_change)
for _name in ("ckpt-missing-model", "ckpt-arch-bomb", "ckpt-nan-weights", "ckpt-arch-bad-yaml"):
    CASES[f"export-{_name}"] = lambda root, c=CHECKPOINTS[_name]: [
        "export",
        str(checkpoint(root, **c)),
        "--format",
        "weights",
        "-o",
        str(root / "out.weights"),
    ]
    CASES[f"eval-{_name}"] = lambda root, c=CHECKPOINTS[_name]: [
        "eval",
        str(checkpoint(root, **c)),
        "--data",
        "fake:20,20",
    ]


@case("predict-fifo-checkpoint")
def _fifo_ckpt(root: Path) -> list[str]:
    os.mkfifo(root / "ckpt.pt")
    return ["predict", str(root / "ckpt.pt"), str(image(root))]


@case("predict-fifo-image")
def _fifo_image(root: Path) -> list[str]:
    os.mkfifo(root / "cat.png")
    return ["predict", str(checkpoint(root)), str(root / "cat.png")]


@case("predict-folder-image")
def _folder_image(root: Path) -> list[str]:
    (root / "cat.png").mkdir()
    return ["predict", str(checkpoint(root)), str(root / "cat.png")]


@case("predict-400-megapixel-png")
def _bomb_png(root: Path) -> list[str]:
    (root / "bomb.png").write_bytes(png_header_only(20_000, 20_000))
    return ["predict", str(checkpoint(root)), str(root / "bomb.png")]


@case("predict-100-megapixel-png")
def _warning_png(root: Path) -> list[str]:
    (root / "big.png").write_bytes(png_header_only(10_000, 10_000))  # PIL warns, then decodes
    return ["predict", str(checkpoint(root)), str(root / "big.png")]


@case("predict-not-an-image")
def _not_image(root: Path) -> list[str]:
    (root / "cat.png").write_text("hello")
    return ["predict", str(checkpoint(root)), str(root / "cat.png")]


@case("predict-garbage-checkpoint")
def _garbage(root: Path) -> list[str]:
    (root / "ckpt.pt").write_bytes(os.urandom(4096))
    return ["predict", str(root / "ckpt.pt"), str(image(root))]


@case("predict-truncated-checkpoint")
def _truncated(root: Path) -> list[str]:
    path = checkpoint(root)
    path.write_bytes(path.read_bytes()[:1500])
    return ["predict", str(path), str(image(root))]


@case("predict-truncated-safetensors")
def _truncated_st(root: Path) -> list[str]:
    (root / "best.safetensors").write_bytes(struct.pack("<Q", 10**12) + b"{}")
    return ["predict", str(root / "best.safetensors"), str(image(root))]


@case("predict-pickle-code")
def _pickle(root: Path) -> list[str]:
    import pickle

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, ("touch " + str(root / "pwned"),))

    (root / "evil.pt").write_bytes(pickle.dumps(Evil()))
    return ["predict", str(root / "evil.pt"), str(image(root))]


@case("predict-top-huge")
def _top(root: Path) -> list[str]:
    return ["predict", str(checkpoint(root)), str(image(root)), "--top", "0"]


@case("export-fifo")
def _export_fifo(root: Path) -> list[str]:
    os.mkfifo(root / "ckpt.pt")
    return ["export", str(root / "ckpt.pt"), "--format", "weights"]


@case("export-output-is-folder")
def _export_folder(root: Path) -> list[str]:
    (root / "out.weights").mkdir()
    return ["export", str(checkpoint(root)), "--format", "weights", "-o", str(root / "out.weights")]


@case("export-pt2-input-huge")
def _export_pt2(root: Path) -> list[str]:
    return ["export", str(checkpoint(root)), "--format", "pt2", "--input-size", "100000"]


# --- convert: Darknet weights and safetensors ----------------------------------------------------
def cfg(root: Path) -> Path:
    path = root / "tiny.cfg"
    path.write_text(
        "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nsize=3\nactivation=leaky\n"
    )
    return path


@case("convert-truncated-safetensors")
def _convert_st(root: Path) -> list[str]:
    (root / "w.safetensors").write_bytes(struct.pack("<Q", 200) + b'{"a": {"dtype"')
    return ["convert", str(root / "w.safetensors"), "--cfg", str(cfg(root)), "-o", str(root / "w.weights")]


@case("convert-safetensors-fifo")
def _convert_st_fifo(root: Path) -> list[str]:
    os.mkfifo(root / "w.safetensors")
    return ["convert", str(root / "w.safetensors"), "--cfg", str(cfg(root)), "-o", str(root / "w.weights")]


@case("convert-weights-fifo")
def _convert_w_fifo(root: Path) -> list[str]:
    os.mkfifo(root / "w.weights")
    return ["convert", str(root / "w.weights"), "--cfg", str(cfg(root)), "-o", str(root / "w.safetensors")]


@case("convert-weights-short")
def _convert_short(root: Path) -> list[str]:
    (root / "w.weights").write_bytes(struct.pack("<3iq", 0, 2, 0, 0) + b"\x00" * 8)
    return ["convert", str(root / "w.weights"), "--cfg", str(cfg(root)), "-o", str(root / "w.safetensors")]


@case("convert-weights-nan")
def _convert_nan(root: Path) -> list[str]:
    floats = 4 + 4 * 3 * 9  # biases and weights of the one conv (no batch_normalize)
    (root / "w.weights").write_bytes(
        struct.pack("<3iq", 0, 2, 0, 0) + struct.pack(f"<{floats}f", *[math.nan] * floats)
    )
    return ["convert", str(root / "w.weights"), "--cfg", str(cfg(root)), "-o", str(root / "w.safetensors")]


# --- train and --resume --------------------------------------------------------------------------
def tiny(root: Path) -> Path:
    path = root / "tiny.yaml"
    path.write_text(TINY)
    return path


def train(*flags: str, arch: Callable[[Path], Path] = tiny) -> Case:
    return lambda root: ["train", str(arch(root)), "--project", str(root / "runs"), *flags]


TRAIN_FLAGS: dict[str, list[str]] = {
    "data-fake-abc": ["--data", "fake:abc"],
    "data-unknown": ["--data", "mnist"],
    "data-imagefolder-missing": ["--data", "imagefolder:/nonexistent"],
    "seed-beyond-64-bits": ["--seed", str(2**64)],
    "epochs-huge": ["--epochs", "9" * 30, "--data", "fake:abc"],
    "lr-nan": ["--lr", "nan"],
    "scale-unknown": ["--scale", "huge"],
    "device-bogus": ["--device", "tpu:9"],
    "name-with-nul": ["--name", "a\x00b", "--data", "fake:20,20"],
}
for _name, _flags in TRAIN_FLAGS.items():
    CASES[f"train-{_name}"] = train(*_flags)
CASES["train-no-classifier-head"] = train(
    "--data", "fake:20,20", arch=text("nohead.yaml", layers("{type: Conv, filters: 4}"))
)
CASES["train-budget-bomb"] = train(
    "--data", "fake:20,20", arch=text("bomb.yaml", HOSTILE_YAML["conv-1e9-params"])
)
CASES["train-fifo-arch"] = lambda root: (os.mkfifo(root / "a.yaml"), ["train", str(root / "a.yaml")])[1]
CASES["train-cfg-huge-int"] = train("--data", "fake:20,20", arch=text("x.cfg", HOSTILE_CFG["cfg-huge-int"]))


def run_dir(root: Path, args: str | None = "keep", arch: str | None = TINY, last: Path | None = None) -> Path:
    run = root / "runs" / "train"
    (run / "weights").mkdir(parents=True)
    if args is not None:
        good = "arch: tiny.yaml\nscale: null\ndata: fake:20,20\ndata_dir: null\ndevice: cpu\nsync_bn: false\nrecipe: {epochs: 2}\n"
        (run / "args.yaml").write_text(good if args == "keep" else args)
    if arch is not None:
        (run / "arch.yaml").write_text(arch)
    return run


RESUMES: dict[str, Callable[[Path], Path]] = {
    "resume-missing": lambda root: root / "nothing",
    "resume-no-args": lambda root: run_dir(root, args=None),
    "resume-empty-args": lambda root: run_dir(root, args=""),
    "resume-invalid-args": lambda root: run_dir(root, args="[unclosed"),
    "resume-args-list": lambda root: run_dir(root, args="- 1\n"),
    "resume-epochs-zero": lambda root: run_dir(root, args="arch: a\ndata: fake\nrecipe: {epochs: 0}\n"),
    "resume-no-arch": lambda root: run_dir(root, arch=None),
    "resume-bad-arch": lambda root: run_dir(root, arch="name: [\n"),
    "resume-garbage-last": lambda root: (
        (run := run_dir(root)),
        (run / "weights" / "last.pt").write_bytes(b"garbage"),
    )[0],
    "resume-best-as-last": lambda root: (
        (run := run_dir(root)),
        checkpoint(run / "weights", "last.pt"),
    )[0],
    "resume-fifo-last": lambda root: ((run := run_dir(root)), os.mkfifo(run / "weights" / "last.pt"))[0],
}
for _name, _make in RESUMES.items():
    CASES[f"train-{_name}"] = lambda root, m=_make: ["train", "--resume", str(m(root))]


# --- the worker ----------------------------------------------------------------------------------
class Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Timeout


def _warm_up() -> None:
    """Import what the commands import on use, so a case's time is its own, not torch's import."""
    import safetensors.torch  # noqa: F401
    import torchvision.transforms.v2.functional  # noqa: F401
    from PIL import Image  # noqa: F401

    import darkforge.export.run
    import darkforge.training.loop  # noqa: F401


def run_all(root: Path, names: list[str]) -> Iterator[dict[str, Any]]:
    from click.testing import CliRunner

    from darkforge.cli import cli

    _warm_up()
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    signal.signal(signal.SIGALRM, _alarm)
    for name in names:
        folder = root / name
        folder.mkdir(parents=True)
        os.chdir(folder)
        args = CASES[name](folder)
        start = time.perf_counter()
        signal.alarm(SECONDS * 4)  # the test asserts SECONDS; this only stops a hang
        try:
            result = CliRunner().invoke(cli, args)
            code, out, err = result.exit_code, result.stdout, result.stderr
        except Timeout:
            code, out, err = -1, "", "timed out"
        finally:
            signal.alarm(0)
        seconds = time.perf_counter() - start
        yield {"name": name, "code": code, "stdout": out, "stderr": err, "seconds": seconds}


if __name__ == "__main__":
    wanted = sys.argv[2:] or list(CASES)
    for record in run_all(Path(sys.argv[1]), wanted):
        print(json.dumps(record), flush=True)
