"""Every subcommand answers --help (SPEC §12), and the reducer helpers each have a module
of their own under workflow/."""

from __future__ import annotations

from pathlib import Path

import pytest

from almaqa2.cli import cli
from almaqa2.cli import main as cli_main

HELPERS = ("start", "clear", "lock", "fluxscale", "fluxequal", "allfluxes", "check", "download")


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main([command, "--help"]) == 0
    assert f"Usage: qa2 {command}" in capsys.readouterr().out


def test_helpers_are_commands_with_a_module_each() -> None:
    workflow = Path(__file__).parents[1] / "src" / "almaqa2" / "helpers"
    for helper in HELPERS:
        assert helper in cli.commands
        assert (workflow / f"{helper}.py").is_file()
