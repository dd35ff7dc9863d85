"""How long `darkforge validate` takes on a 1 MB file of the costliest layers (9,999 residual stages
of 1000 blocks, each reading the one before), in CPU seconds, median over rounds. The unit tests
guard only the complexity (tests/cli/test_hostile.py counts calls at two sizes); this measures the
speed docs/cli.md quotes (1.7 s of CPU on the 2-core test machine with libyaml).

    python benchmarks/validate_1mb.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

from darkforge.cli import cli


def big_file(folder: Path) -> Path:
    rows = ["  - {type: ConvBnLeaky, filters: 8, size: 1, id: l0}"]
    rows += [
        f"  - {{type: ResidualStage, filters: 8, blocks: 1000, stride: 1, hidden: 4, slope: 0.1, from: l{i - 1}, id: l{i}}}"
        for i in range(1, 9_999)
    ]
    path = folder / "big.yaml"
    path.write_text("name: big\ninput: {channels: 3, size: 8}\nlayers:\n" + "\n".join(rows) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = big_file(Path(folder))
        CliRunner().invoke(cli, ["validate", "--help"])  # imports before timing
        seconds = []
        for _ in range(args.rounds):
            start = time.process_time()
            result = CliRunner().invoke(cli, ["validate", "--no-budget", str(path)])
            seconds.append(time.process_time() - start)
            assert result.exit_code == 0, result.output
        size = path.stat().st_size
    print(
        f"validate of {size / 1e6:.2f} MB: {statistics.median(seconds):.2f} s CPU (median of {args.rounds})"
    )


if __name__ == "__main__":
    main()
