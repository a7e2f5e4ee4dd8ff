"""Issue 18: -q, -v and --debug act wherever they are typed; -q leaves only errors (and the
--json a script asked for)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from almaqa2.cli import main
from almaqa2.cmdline import hoisted

from conftest import QA2, make_case


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

    case = make_case("flat", tmp_path)
    argv, _ = case.commands("fake")
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "200"}
    done = subprocess.run(
        [*QA2, *argv],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "\x1b[" in done.stdout  # colours are on (the table's header)
    assert f"package: {case.packpath}" in done.stdout  # whole, no escape inside


def test_dry_runs_of_the_commands_that_write_gigabytes_write_nothing(
    nrao_split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 18: tarsplit, untar and deliver have --dry-run: every check, the plan shown
    (and as --json), nothing written anywhere."""
    from conftest import tree_state

    package = nrao_split / "out" / "2013.1.00123.S"
    chunks = nrao_split / "chunks"
    for folder in ("split", "unpacked", "web"):
        (tmp_path / folder).mkdir()
    runs = {
        "tarsplit": ["tarsplit", str(package), "--out", str(tmp_path / "split"), "--max-size",
                     "20K"],
        "untar": ["untar", str(chunks), "--out", str(tmp_path / "unpacked")],
        "deliver chunks": ["deliver", str(chunks), "--web-root", str(tmp_path / "web")],
        "deliver a package": ["deliver", str(package), "--web-root", str(tmp_path / "web")],
    }  # fmt: skip
    before = tree_state(nrao_split), tree_state(tmp_path)
    for name, argv in runs.items():
        capsys.readouterr()
        assert main([*argv, "--dry-run"]) == 0, name
        said = capsys.readouterr().out
        assert "dry run: nothing was written" in said and "would" in said, (name, said)
        assert main([*argv, "--dry-run", "--json"]) == 0, name
        assert json.loads(capsys.readouterr().out)["dry_run"] is True, name
    assert (tree_state(nrao_split), tree_state(tmp_path)) == before
    assert main(runs["tarsplit"]) == 0
    written = sorted(p.name for p in (tmp_path / "split").glob("*.tar"))
    capsys.readouterr()
    assert main([*runs["tarsplit"], "--dry-run"]) == 0
    shown = [ln.split()[2] for ln in capsys.readouterr().out.splitlines() if ln.startswith("would")]
    assert shown == written and len(written) > 1  # the plan is what a real run writes
