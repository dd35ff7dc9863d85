"""Hostile checkpoints, images, weights and run directories for predict, eval, export, convert and
train (--resume too)."""

from __future__ import annotations

import math
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hostile_specs import ALIAS_BOMB, HOSTILE_CFG, HOSTILE_YAML
from hostile_table import CASES, TINY, Case, case, layers, text


# --- checkpoints: predict, eval, export ----------------------------------------------------------
def checkpoint(root: Path, name: str = "ckpt.pt", **change: Any) -> Path:
    """A tiny valid checkpoint, with `change` applied: inference fields, `drop` keys, `model` edits."""
    import torch

    from darkforge.spec.load import spec_from_text
    from darkforge.weights.checkpoint import FORMAT
    from darkforge.weights.transfer import build

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


CASES["eval-data-fake-abc"] = lambda root: ["eval", str(checkpoint(root)), "--data", "fake:abc"]
CASES["export-input-size-bomb"] = lambda root: [
    "export",
    str(checkpoint(root)),
    "--format",
    "pt2",
    "--input-size",
    "16384",
]
