"""Every command's help leads with its own options; the shared --plugin comes last."""

from __future__ import annotations

import pytest

from darkforge.cli import cli


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_help_leads_with_the_commands_own_options(run_cli, name):
    result = run_cli(name, "--help")
    assert result.exit_code == 0, result.output
    options = [line.split()[0] for line in result.output.splitlines() if line.startswith("  -")]
    assert "--plugin" in options
    assert options[-2:] == ["--plugin", "-h,"], options  # own options first, then --plugin, then --help
