"""Issue 18: site defaults from a TOML file, under the environment, under the option typed;
``qa2 config`` says where each value comes from; ``--log-file``; shell completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from almaqa2.cli import main
from almaqa2.sizes import parse_size

from conftest import QA2


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_file_then_environment_then_option(
    nrao_split: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    package = nrao_split / "out" / "2013.1.00123.S"
    config = tmp_path / "site.toml"
    config.write_text('[tarsplit]\nmax-size = "20K"\n')
    monkeypatch.setenv("QA2_CONFIG", str(config))
    split = ["tarsplit", str(package), "--out", str(tmp_path), "--dry-run"]

    def chunks(*extra: str) -> tuple[int, int]:
        """How many chunks the split would write, each checked to fit the size in effect."""
        found = _json([*split, *extra], capsys)["chunks"]
        return len(found), max(c["size"] for c in found)

    from_file, largest = chunks()
    assert largest <= parse_size("20K")
    shown = _json(["config"], capsys)
    assert shown["file"] == str(config) and shown["exists"] is True
    assert shown["values"] == [
        {"command": "tarsplit", "option": "--max-size", "value": "20K", "from": f"config {config}"}
    ]
    monkeypatch.delenv("QA2_CONFIG")
    assert chunks()[0] == 1 < from_file  # 10G, the built-in default: one chunk
    monkeypatch.setenv("QA2_CONFIG", str(config))
    monkeypatch.setenv("QA2_TARSPLIT_MAX_SIZE", "60K")
    from_environment, largest = chunks()
    assert parse_size("20K") < largest <= parse_size("60K")  # 60K, not the file's 20K
    assert from_environment < from_file
    assert _json(["config"], capsys)["values"][0]["from"] == "environment QA2_TARSPLIT_MAX_SIZE"
    assert chunks("--max-size", "10G")[0] == 1  # the option typed wins
    assert main(["config"]) == 0
    said = capsys.readouterr().out
    assert "environment QA2_TARSPLIT_MAX_SIZE" in said and "--max-size" in said


def test_the_xdg_place_and_the_lock_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = Path(os.environ["XDG_CONFIG_HOME"])  # a fresh one per session (conftest)
    (home / "almaqa2").mkdir(exist_ok=True)
    locks = tmp_path / "locks"
    locks.mkdir()
    (home / "almaqa2" / "config.toml").write_text(f'[lock]\ndir = "{locks}"\n')
    try:
        assert main(["lock", "on"]) == 0
        assert (locks / "analysisUtils.lock").is_file()
        assert main(["lock", "off"]) == 0
    finally:
        (home / "almaqa2" / "config.toml").unlink()
    capsys.readouterr()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[tarsplit]\nmaxsize = "5G"\n', "[tarsplit] of the config file has no option 'maxsize'"),
        ('log_file = "x"\n', "the top level of the config file has no option 'log_file'"),
        ("[tarsplit\n", "the config file cannot be read"),
    ],
)
def test_a_bad_config_file_is_one_sentence(
    text: str, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    config = tmp_path / "site.toml"
    config.write_text(text)
    monkeypatch.setenv("QA2_CONFIG", str(config))
    assert main(["verify", str(tmp_path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and said in err[0] and str(config) in err[0], err


def test_a_missing_config_file_named_by_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QA2_CONFIG", str(tmp_path / "nothing.toml"))
    assert main(["config"]) == 2
    assert "the config file named by QA2_CONFIG is missing" in capsys.readouterr().err


def test_log_file_typed_anywhere_keeps_the_runs_story(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import make_case

    case = make_case("flat", tmp_path)
    (case.origpath / "notes-to-self.xyz").write_text("a stray file\n")
    log = tmp_path / "run.log"
    argv, _ = case.commands("fake")
    assert main([*argv, "--log-file", str(log), "-q"]) == 0
    assert main(["verify", str(tmp_path / "nothing"), f"--log-file={log}"]) == 2
    capsys.readouterr()
    lines = log.read_text().splitlines()
    assert any(" DEBUG almaqa2: qa2 " in line for line in lines)
    assert any("WARNING" in line and "notes-to-self.xyz" in line for line in lines)  # -q or not
    assert any("ERROR" in line and "nothing to verify here" in line for line in lines)
    assert all(line[:2] == "20" for line in lines)  # each with its time


def test_the_command_line_ends_once_its_hooks_ran_without_taking_its_modules_apart(
    tmp_path: Path,
) -> None:
    """``qa2`` ends as soon as the ``atexit`` hooks have run (the interpreter's exit took
    every module apart: an object of one is never destroyed); what the imports made was
    frozen out of the collector; the log file still gets the run's last line, and the
    code is the command's."""
    from conftest import make_case

    case = make_case("flat", tmp_path)
    argv, _ = case.commands("fake")
    log = tmp_path / "run.log"
    frozen, taken_apart = tmp_path / "frozen", tmp_path / "taken-apart"
    run = (
        "import atexit, gc, sys, types\n"
        "class Kept:  # (held by a module made by the hook: destroyed as modules are)\n"
        f"    def __del__(self, open=open): open({str(taken_apart)!r}, 'w').close()\n"
        "def hook():\n"
        f"    open({str(frozen)!r}, 'w').write(str(gc.get_freeze_count()))\n"
        "    sys.modules['kept'] = types.ModuleType('kept')\n"
        "    sys.modules['kept'].kept = Kept()\n"
        "atexit.register(hook)\n"
        "from almaqa2.launch import qa2\n"
        "sys.argv[0] = 'qa2'\n"
        "qa2()\n"
    )
    for command, code in ((argv, 0), (["verify", str(tmp_path / "nothing")], 2)):
        done = subprocess.run([sys.executable, "-c", run, *command, "--log-file", str(log)],
                              capture_output=True, text=True)  # fmt: skip
        assert done.returncode == code, done.stderr
        assert int(frozen.read_text()) > 10_000, "the imports' objects frozen, the hooks run"
        assert not taken_apart.exists()
    lines = log.read_text().splitlines()
    assert any("empty files were linked here" in line for line in lines)  # the first run's
    assert "ERROR" in lines[-1] and "nothing to verify here" in lines[-1]


def test_the_command_line_leaves_the_collector_to_the_command_s_cycles(tmp_path: Path) -> None:
    """What the imports made is frozen before the command runs, and the youngest objects
    are collected every ``YOUNG`` allocations: a fake package of 3,000 files ran the
    collector 23 times (every 700, Python's default), each walking all that was made."""
    from conftest import make_case

    case = make_case("flat", tmp_path)
    table = next(p for p in case.origpath.rglob("*") if p.is_dir() and (p / "table.dat").exists())
    for i in range(3000):
        (table / f"table.f{i}_extra").write_bytes(b"x")
    argv, _ = case.commands("fake")
    seen = tmp_path / "seen"
    run = (
        "import atexit, gc, sys\n"
        "from almaqa2.launch import qa2\n"
        "import almaqa2.cli.main  # (imported before the count starts, as qa2 imports it)\n"
        "runs, frozen = [], []\n"
        "def seen(phase, info):\n"
        "    if phase == 'start':\n"
        "        runs.append(info)\n"
        "        frozen.append(gc.get_freeze_count())\n"
        "gc.callbacks.append(seen)\n"
        "def said():\n"
        f"    with open({str(seen)!r}, 'w') as out:\n"
        "        out.write(f'{len(runs)} {min(frozen, default=0)}')\n"
        "atexit.register(said)\n"
        "sys.argv[0] = 'qa2'\n"
        "qa2()\n"
    )
    done = subprocess.run([sys.executable, "-c", run, *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    collections, frozen = map(int, seen.read_text().split())
    assert collections <= 5, f"{collections} collections in the run"
    assert collections == 0 or frozen > 10_000, "the imports' objects frozen before any"


def test_shell_completion_offers_the_choices(tmp_path: Path) -> None:
    """The README's completion line works: bash asks, click answers with the choices."""
    env = {
        **os.environ, "_QA2_COMPLETE": "bash_complete",
        "COMP_WORDS": "qa2 package a b --mode ", "COMP_CWORD": "5",
    }  # fmt: skip
    done = subprocess.run([*QA2], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    offered = [line.split(",", 1)[1] for line in done.stdout.splitlines()]
    assert offered == ["fake", "ticket", "copy", "hard"]
    env["_QA2_COMPLETE"] = "bash_source"
    source = subprocess.run([*QA2], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert "complete " in source.stdout and "_QA2_COMPLETE" in source.stdout
