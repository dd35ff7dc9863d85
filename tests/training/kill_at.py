"""Run `darkforge ARGS...` and SIGKILL it inside the atomic writer: on the Nth write of a file named
TARGET, after its temp is written and fsynced, the temp is cut to half its size (a torn write)
and the process kills itself before the rename. Usage: python kill_at.py TARGET N ARGS..."""

from __future__ import annotations

import os
import signal
import sys

from darkforge.cli import main

target, nth = sys.argv[1], int(sys.argv[2])
real_replace = os.replace
seen = {"n": 0}


def replace(src: str, dst: str) -> None:
    if os.path.basename(str(dst)) == target:
        seen["n"] += 1
        if seen["n"] == nth:
            os.truncate(src, os.path.getsize(src) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)


os.replace = replace  # type: ignore[assignment]
sys.argv = ["darkforge", *sys.argv[3:]]
main()
