"""Issue 18: one convention, checked over every command from one table.

Every command: whole summaries in ``qa2 --help``; every option default shown in its
``--help``; ``--json`` wherever a script would read the result, with one envelope (``ok``,
``warnings``, ``problems``) on success and on bad input; ``--dry-run`` wherever it writes;
bad input is one sentence and exit 2 with nothing written; a destination directory whose
last level is missing is made, one whose parent is missing is refused.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import click
import pytest

from almaqa2.cli import main
from almaqa2.cli.app import cli
from almaqa2.testing import measurementsets as example_ms
from test_download import site  # noqa: F401 - the DRM's page on 127.0.0.1, a fixture
from test_start import EBS, SB, _asdm

from conftest import QA2, tree_state

BAD_INPUT = {  # command: arguments that reach the library with a path that does not exist
    "allfluxes": ["missing"],
    "batch": ["missing.toml"],
    "check": ["missing"],
    "clear": ["missing", "--yes"],
    "deliver": ["missing", "--web-root", "web"],
    "download": ["not-a-url", "--out", "downloads"],
    "fluxequal": ["missing"],
    "fluxscale": ["missing"],
    "inspect": ["missing"],
    "legacy-module": ["--install", "missing/deeper"],
    "lock": ["frob"],
    "package": ["missing", "out/p", "--readme", "missing"],
    "split": ["missing"],
    "stage": ["missing", "out"],
    "start": ["SB", "--archive", "missing"],
    "tarsplit": ["missing"],
    "untar": ["missing", "--out", "x"],
    "verify": ["missing"],
}
PRINTS_ONLY = {"readme-template"}  # prints a template to fill in: nothing to parse
NO_INPUT = {"config"}  # reads only the config file: test_config.py gives it a bad one
WRITES = {  # commands that write, each with --dry-run
    "allfluxes", "batch", "clear", "deliver", "download", "fluxequal", "legacy-module",
    "package", "split", "stage", "start", "tarsplit", "untar",
}  # fmt: skip
ENVELOPE = ["ok", "warnings", "problems"]


def test_the_table_covers_every_command() -> None:
    assert set(cli.commands) == set(BAD_INPUT) | PRINTS_ONLY | NO_INPUT
    assert set(BAD_INPUT) >= WRITES


def test_command_summaries_are_whole(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out.split("Commands:", 1)[1]
    assert "..." not in listed
    assert len([line for line in listed.splitlines() if line.strip()]) == len(cli.commands)


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_options_json_and_dry_run(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    command = cli.commands[name]
    assert main([name, "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())  # unwrapped
    options = {o.name: o for o in command.params if isinstance(o, click.Option)}
    with command.make_context(name, [], resilient_parsing=True) as ctx:
        defaults = dict(ctx.params)  # what the command is called with when not told
    for option in options.values():
        if defaults[option.name] not in (None, "", False, ()) and not option.is_flag:
            assert option.show_default, f"{name} --{option.name}: its default is not shown"
            assert f"[default: {defaults[option.name]}" in shown, option.name
    assert ("as_json" in options) is (name not in PRINTS_ONLY), name
    assert ("dry_run" in options) is (name in WRITES), name


@pytest.mark.parametrize("name", sorted(BAD_INPUT))
def test_bad_input_is_one_sentence_and_an_envelope(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "web").mkdir()
    before = tree_state(tmp_path)
    assert main([name, *BAD_INPUT[name]]) == 2
    said = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(said) == 1 and said[0].startswith("error: ") and said[0].endswith("."), said
    assert main([name, *BAD_INPUT[name], "--json"]) == 2
    found = json.loads(capsys.readouterr().out)
    assert list(found)[:3] == ENVELOPE and found["ok"] is False and found["exit_code"] == 2
    assert [p["text"] for p in found["problems"]] == [said[0].removeprefix("error: ")]
    assert tree_state(tmp_path) == before, "bad input writes nothing"


def _envelope(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 0) -> dict:
    assert main([*argv, "--json", "-q"]) == code, argv
    found = json.loads(capsys.readouterr().out)
    assert list(found)[:3] == ENVELOPE, argv
    return found


def test_results_carry_the_envelope_and_the_runs_warnings(
    nrao_split: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("QA2_LOCK_DIR", str(tmp_path))
    package, chunks = nrao_split / "out" / "2013.1.00123.S", nrao_split / "chunks"
    for argv in (["verify", str(package)], ["verify", str(chunks)], ["inspect", str(chunks)],
                 ["lock", "status"], ["untar", str(chunks), "--out", str(tmp_path), "--dry-run"],
                 ["deliver", str(chunks), "--web-root", str(tmp_path), "--dry-run"]):  # fmt: skip
        found = _envelope(argv, capsys)
        assert found["ok"] is True and found["problems"] == [], argv
    # a package with several members has no MOUS UID for its chunks: the warning says so
    split = _envelope(["tarsplit", str(package), "--out", str(tmp_path), "--dry-run"], capsys)
    assert split["warnings"] == [] and split["tag"].startswith("uid___")
    damaged = Path(shutil.copytree(package, tmp_path / "damaged" / package.name))
    next(damaged.rglob("README")).write_text("changed\n")
    found = _envelope(["verify", str(damaged)], capsys, code=1)
    assert found["ok"] is False and [p["kind"] for p in found["problems"]] == ["corrupt"]
    assert found["problems"][0]["text"].startswith("corrupt: ")


def test_package_warnings_reach_the_json_even_when_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import make_case

    case = make_case("flat", tmp_path)
    argv, _ = case.commands("fake")
    (case.origpath / "notes-to-self.xyz").write_text("not part of any delivery\n")
    found = _envelope(argv, capsys)
    assert any("unclassified, not packaged" in w and "notes-to-self.xyz" in w
               for w in found["warnings"]), found["warnings"]  # fmt: skip


def _archive(tmp_path: Path) -> Path:
    for uid in EBS:
        _asdm(tmp_path / "archive" / SB, uid)
    return tmp_path / "archive"


def test_a_missing_last_level_is_made_and_a_missing_parent_refused(
    nrao_split: Path,
    site: tuple[str, Path],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """tarsplit --out, untar --out, deliver --web-root, download --out and start --into:
    ``mkdir``'s rule, never ``mkdir -p``'s."""
    package, chunks = nrao_split / "out" / "2013.1.00123.S", nrao_split / "chunks"
    archive = _archive(tmp_path)
    runs = {
        "tarsplit": lambda d: ["tarsplit", str(package), "--out", str(d), "--max-size", "20K"],
        "untar": lambda d: ["untar", str(chunks), "--out", str(d)],
        "deliver": lambda d: ["deliver", str(chunks), "--web-root", str(d)],
        "download": lambda d: ["download", site[0], "--out", str(d)],
        "start": lambda d: ["start", SB, "--archive", str(archive), "--into",
                            str(d / "2019.1.01234.S")],
    }  # fmt: skip
    for name, argv in runs.items():
        typo = tmp_path / f"{name}-typo" / "new"
        assert main(argv(typo)) == 2, name
        err = capsys.readouterr().err
        assert "parent directory does not exist" in err and str(typo) in "".join(err.split())
        assert not typo.parent.exists(), name
        made = tmp_path / f"{name}-new"
        if name == "start":
            made.mkdir()  # the project directory is the last level
        assert main(argv(made)) == 0, (name, capsys.readouterr().err)
        assert any(made.iterdir()), name
    capsys.readouterr()


def test_a_refused_run_leaves_no_directory_it_made(
    nrao_split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = tmp_path / "chunks"
    damaged.mkdir()
    for chunk in sorted((nrao_split / "chunks").iterdir()):
        (damaged / chunk.name).write_bytes(chunk.read_bytes())
    first = next(damaged.glob("*_001_of_*.tar"))
    data = bytearray(first.read_bytes())
    data[2000] ^= 0xFF  # inside the first member's data
    first.write_bytes(bytes(data))
    out = tmp_path / "unpacked"
    assert main(["untar", str(damaged), "--out", str(out)]) == 1
    capsys.readouterr()
    assert not out.exists(), "the directory made for the package is gone with it"
    assert os.listdir(tmp_path) == ["chunks"]


def test_a_dry_run_plan_shows_whole_paths_in_a_narrow_terminal(tmp_path: Path) -> None:
    """Issue 18: the plan cut paths short with '…' at 80 and even 160 columns."""
    import subprocess

    from almaqa2.package.packager import Request, prepare

    from conftest import make_case

    case = make_case("nrao", tmp_path / ("a-long-directory-name-" * 3))
    argv, _ = case.commands("copy")
    done = subprocess.run(
        [*QA2, *argv, "--dry-run"],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout and str(case.origpath) in done.stdout
    from_cli = {tuple(ln.strip().split(" -> ")) for ln in done.stdout.splitlines() if " -> " in ln}
    options = dict(zip(argv[3::2], argv[4::2], strict=False))
    plan = prepare(Request(case.origpath, case.packpath, Path(options["--readme"]),
                           style="cycle4-nopipe", mode="copy",
                           pi_script=Path(options["--pi-script"])))  # fmt: skip
    assert len(from_cli) == len(plan.placements)
    assert {str(p.source.rel) for p in plan.placements} == {src for src, _ in from_cli}


def test_start_lists_the_sbs_of_an_archive_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for sb in ("B6_A", "B6_B"):
        _asdm(tmp_path / "archive" / sb, EBS[0])
    found = _envelope(["start", "--archive", str(tmp_path / "archive")], capsys)
    assert found["sbs"] == ["B6_A", "B6_B"] and found["ok"] is True


def test_every_dry_run_writes_nothing(
    nrao_split: Path,
    site: tuple[str, Path],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every command of WRITES, with --dry-run on real inputs: the trees of its inputs and
    of its destinations hashed before and after."""
    from test_stage import build_run

    from conftest import make_case

    case = make_case("nrao", tmp_path / "case")
    package, chunks = nrao_split / "out" / "2013.1.00123.S", nrao_split / "chunks"
    run = build_run(tmp_path / "pipeline")
    archive = _archive(tmp_path)
    calibrated = case.origpath / "Combination" / "calibrated"
    eb = next(case.origpath.glob("Calibration_*"))
    for entry in calibrated.glob("uid___*"):  # what fluxequal links back in
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for made in ("out", "web", "unpacked", "area/2019.1.01234.S", "staged", "restored"):
        (tmp_path / made).mkdir(parents=True)
    restored = tmp_path / "restored" / "uid___A002_X1_X2.ms"
    example_ms.write_ms(restored, "uid___A002_X1_X2", "2013.1.00123.S")
    plan = tmp_path / "plan.toml"
    assert main(["batch", str(plan), "--init", str(case.origpath.parent)]) == 0
    text = plan.read_text()  # the reducer fills in what --init cannot know
    text = text.replace('out = "FILL-IN"', 'out = "out"')
    text = text.replace('readme = "FILL-IN"', f'readme = "{case.readme}"')
    plan.write_text(text.replace('"FILL-IN"', '"2013.1.00123.S"'))
    argv, _ = case.commands("copy")
    monkeypatch.chdir(tmp_path)
    runs = {
        "package": argv,
        "stage": ["stage", str(run), str(tmp_path / "staged" / "2013.1.00456.S")],
        "batch": ["batch", str(plan)],
        "tarsplit": ["tarsplit", str(package), "--out", str(tmp_path / "out")],
        "untar": ["untar", str(chunks), "--out", str(tmp_path / "unpacked")],
        "deliver": ["deliver", str(package), "--web-root", str(tmp_path / "web")],
        "start": ["start", SB, "--archive", str(archive), "--into",
                  str(tmp_path / "area" / "2019.1.01234.S")],
        "clear": ["clear", str(eb), "--yes"],
        "fluxequal": ["fluxequal", str(calibrated)],
        "allfluxes": ["allfluxes", str(calibrated), "--recompute"],
        "download": ["download", site[0], "--out", str(tmp_path / "downloads")],
        "legacy-module": ["legacy-module", "--install", str(tmp_path / "casa")],
        "split": ["split", str(restored)],
    }  # fmt: skip
    assert set(runs) == WRITES
    before = tree_state(tmp_path), tree_state(nrao_split), tree_state(site[1])
    for name, command in runs.items():
        code = main([*command, "--dry-run"])
        assert code in ((0, 1) if name == "allfluxes" else (0,)), (name, capsys.readouterr())
    capsys.readouterr()
    assert (tree_state(tmp_path), tree_state(nrao_split), tree_state(site[1])) == before
