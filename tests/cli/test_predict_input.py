"""`predict` on images that are not what they seem: one darkforge line each, exit 1."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib

import pytest
from conftest import ARCHS
from PIL import Image

ENV_KEYS = {"OMP_NUM_THREADS": "1"}


def huge_png(width: int, height: int) -> bytes:
    """A 1×1 PNG whose header claims width×height (its CRC fixed): what PIL sizes images by."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    raw = bytearray(buffer.getvalue())
    ihdr = raw.index(b"IHDR")
    raw[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    raw[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(raw[ihdr : ihdr + 17])))
    return bytes(raw)


@pytest.fixture(scope="module")
def best(tmp_path_factory):
    import darkforge

    project = tmp_path_factory.mktemp("runs")
    run = darkforge.train(
        ARCHS / "darknet53.yaml", scale="nano", data="fake:32,16", epochs=1, batch=16, project=project
    )
    return run.path / "weights" / "best.pt"


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("empty.jpg", b"", "empty.jpg: empty file, not an image; remove or replace it"),
        ("bomb.png", huge_png(10_000, 10_000), "bomb.png: 10000×10000 pixels is more than 89 million"),
    ],
    ids=["empty", "bomb"],
)
def test_one_line_for_a_bad_image(tmp_path, best, name, content, expected):
    image = tmp_path / name
    image.write_bytes(content)
    done = subprocess.run(
        [sys.executable, "-m", "darkforge", "predict", str(best), str(image)],
        env={**os.environ, **ENV_KEYS},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert expected in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # no PIL warning line before it
