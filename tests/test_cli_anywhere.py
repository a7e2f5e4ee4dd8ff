"""Issue 18: -q, -v and --debug act wherever they are typed; -q leaves only errors (and the
--json a script asked for)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from almaqa2.cli import main
from almaqa2.cli.main import hoisted

from conftest import make_case


def test_quiet_after_the_command_silences_the_results_but_not_json_or_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = make_case("flat", tmp_path)
    argv, _ = case.commands("copy")
    assert main([*argv, "-q"]) == 0
    assert capsys.readouterr().out == "" and (case.packpath / "manifest.md5").is_file()
    assert main(["verify", str(case.packpath), "-q", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(["verify", str(case.packpath), "-v"]) == 0
    assert "OK" in capsys.readouterr().out  # -v does not silence, and the last -q is gone
    assert main(["verify", str(tmp_path / "nothing"), "-q"]) == 2
    assert "nothing to verify here" in capsys.readouterr().err


def test_only_the_group_options_move_and_nothing_after_a_double_dash() -> None:
    argv = ["package", "a", "b", "-q", "--mode", "copy", "-vv", "--", "-q"]
    assert hoisted(argv) == ["-q", "-vv", "package", "a", "b", "--mode", "copy", "--", "-q"]


def test_project_codes_are_not_coloured_piecewise(tmp_path: Path) -> None:
    """Issue 18: rich's automatic highlighting coloured "2011.0" and "00229." apart."""
    import os
    import subprocess
    import sys

    case = make_case("flat", tmp_path)
    argv, _ = case.commands("fake")
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", "from almaqa2.cli import entrypoint; entrypoint()", *argv],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "\x1b[" in done.stdout  # colours are on (the table's header)
    assert f"package: {case.packpath}" in done.stdout  # whole, no escape inside
