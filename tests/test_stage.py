"""``qa2 stage`` / ``QA_Pipeline_Stager``: a pipeline run becomes a delivery-style package
(SPEC §7); the fixture run carries the file names real pipeline exports have."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from almaqa2.cli import main as cli_main
from almaqa2.package.legacy import QA_Pipeline_Stager
from almaqa2.testing import reductions as example

from conftest import ACCEPTANCE, listing, md5sum_check, tree_state

CASE = ACCEPTANCE / "pipeline"
PROJECT = "2013.1.00456.S"
MOUS = "uid___A001_X122_X21"
MEMBER = f"science_goal.uid___A001_X122_X1f/group.uid___A001_X122_X20/member.{MOUS}"


def build_run(tmp_path: Path) -> Path:
    """The fixture pipeline run, under ``tmp_path/runs``."""
    name = (CASE / "origpath.txt").read_text().strip()
    return example.build(
        (CASE / "run.txt").read_text().splitlines(), tmp_path / "runs" / name, PROJECT
    )


def products(run: Path) -> Path:
    return next(run.glob("SOUS_*/GOUS_*/MOUS_*/products"))


def _stage(run: Path, staged: Path, mode: str, how: str) -> None:
    if how == "cli":
        assert cli_main(["stage", str(run), str(staged), "--mode", mode]) == 0
    else:
        QA_Pipeline_Stager(f"{run}/", str(staged), mode=mode)


@pytest.mark.parametrize("how", ["cli", "legacy"])
@pytest.mark.parametrize("mode", ["copy", "hard", "fake"])
def test_run_is_staged_as_spec_sorts_it(mode: str, how: str, tmp_path: Path) -> None:
    run = build_run(tmp_path)
    before = tree_state(run)
    out = tmp_path / "out"
    out.mkdir()

    _stage(run, out / PROJECT, mode, how)

    bookkeeping = [f"{PROJECT}/.almaqa2.json"]
    if mode != "fake":
        bookkeeping.append(f"{PROJECT}/manifest.md5")
    expected = (CASE / "expected.txt").read_text().split()
    assert listing(out / PROJECT) == sorted(expected + bookkeeping)
    assert os.listdir(out) == [PROJECT], "nothing may be left beside the staged package"
    assert tree_state(run) == before, "the pipeline run must not change"


def test_copies_equal_sources_and_images_are_gzipped(tmp_path: Path) -> None:
    run = build_run(tmp_path)
    staged = tmp_path / PROJECT
    assert cli_main(["stage", str(run), str(staged)]) == 0  # copy is the default
    assert md5sum_check(staged).returncode == 0
    member = staged / MEMBER
    source = products(run)
    for name in ("Elias29_sci.spw17.cube.I.pb.fits", "Elias29_sci.spw17.cube.I.mask.fits"):
        packed = member / "product" / f"{MOUS}.{name}.gz"
        raw = (source / f"{MOUS}.{name}").read_bytes()
        assert gzip.decompress(packed.read_bytes()) == raw
    script = member / "script" / f"member.{MOUS}.scriptForPI.py"
    assert script.read_bytes() == (source / f"{MOUS}.scriptForPI.py").read_bytes()
    text = (member / "README").read_text()
    assert f"Project code: {PROJECT}" in text
    assert f"MOUS UID: {MOUS}" in text
    assert "Execution blocks: uid___A002_X85c183_X36f, uid___A002_X85c183_X60b" in text


def test_hard_links_share_the_source_inode(tmp_path: Path) -> None:
    run = build_run(tmp_path)
    staged = tmp_path / PROJECT
    assert cli_main(["stage", str(run), str(staged), "--mode", "hard"]) == 0
    flux = staged / MEMBER / "calibration" / "flux.csv"
    assert flux.stat().st_ino == (products(run) / "flux.csv").stat().st_ino


def test_options_pi_script_and_readme_header(tmp_path: Path) -> None:
    run = build_run(tmp_path)
    mine = tmp_path / "mine" / "scriptForPI.py"
    mine.parent.mkdir()
    mine.write_text("# the reducer's own scriptForPI\n")
    header = tmp_path / "PIPE_README.txt"
    header.write_text("Staged at the EU ARC\nProject code:\n")
    staged = tmp_path / PROJECT

    QA_Pipeline_Stager(
        str(run), str(staged), PIscript=str(mine.parent) + "/", PIPE_README=str(header)
    )

    member = staged / MEMBER
    assert (member / "script" / f"member.{MOUS}.scriptForPI.py").read_text() == mine.read_text()
    readme = (member / "README").read_text()
    assert readme.startswith(f"Staged at the EU ARC\nProject code: {PROJECT}\n")


def test_restaging_replaces_our_package_and_refuses_others(tmp_path: Path) -> None:
    run = build_run(tmp_path)
    staged = tmp_path / PROJECT
    assert cli_main(["stage", str(run), str(staged), "--mode", "fake"]) == 0
    assert cli_main(["stage", str(run), str(staged)]) == 0
    assert md5sum_check(staged).returncode == 0
    other = tmp_path / "other" / PROJECT
    other.mkdir(parents=True)
    (other / "precious.txt").write_text("not ours")
    assert cli_main(["stage", str(run), str(other)]) == 2
    assert (other / "precious.txt").read_text() == "not ours"


def test_unclassified_product_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = build_run(tmp_path)
    (products(run) / "mystery.bin").write_bytes(b"?")
    result = QA_Pipeline_Stager(str(run), str(tmp_path / PROJECT), mode="fake")
    assert [e.name for e in result.plan.unclassified] == ["mystery.bin"]
    assert "unclassified, not packaged" in caplog.text and "mystery.bin" in caplog.text


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert cli_main(argv) == 2
    text = capsys.readouterr().err
    assert "Traceback" not in text
    return " ".join(text.split())


def test_root_without_sous_gous_mous_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path)
    mous = next(run.glob("SOUS_*/GOUS_*/MOUS_*"))
    shutil.move(mous, run / mous.name)
    shutil.rmtree(next(run.glob("SOUS_*")))
    text = _error(["stage", str(run), str(tmp_path / PROJECT)], capsys)
    assert "not a pipeline run: no SOUS_uid___*/GOUS_uid___*/MOUS_uid___* directories" in text
    assert str(run) in text and "top directory of the pipeline run" in text
    assert not (tmp_path / PROJECT).exists()


@pytest.mark.parametrize(
    "content",
    [
        "<SciPipeRequest><ProjectStructure>",  # cut short
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        "<r>&b;</r>",  # entity expansion, refused by defusedxml
        '<?xml version="1.0" encoding="bogus"?><SciPipeRequest/>',  # no such codec
    ],
    ids=["truncated", "entities", "encoding"],
)
def test_malformed_xml_is_named(
    content: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path)
    bad = products(run) / f"{MOUS}.pprequest.xml"
    bad.write_text(content)
    text = _error(["stage", str(run), str(tmp_path / PROJECT)], capsys)
    assert "malformed XML" in text and str(bad) in text
    assert not (tmp_path / PROJECT).exists()


def test_xml_names_the_ebs_when_no_file_does(tmp_path: Path) -> None:
    run = build_run(tmp_path)
    for path in products(run).iterdir():
        if "X85c183" in path.name:
            path.unlink()
    staged = tmp_path / PROJECT
    assert cli_main(["stage", str(run), str(staged), "--mode", "fake"]) == 0
    readme = (staged / MEMBER / "README").read_text()
    assert "Execution blocks: uid___A002_X85c183_X36f, uid___A002_X85c183_X60b" in readme


@pytest.mark.parametrize(
    ("argv_tail", "words"),
    [
        (["--mode", "ticket"], "'ticket' is not one of 'copy', 'hard', 'fake'"),
        (["--pi-script", "/nowhere/scriptForPI.py"], "scriptForPI not found: /nowhere"),
    ],
)
def test_bad_options(
    argv_tail: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path)
    text = _error(["stage", str(run), str(tmp_path / PROJECT), *argv_tail], capsys)
    assert words in text


def test_staged_root_must_be_a_project_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path)
    text = _error(["stage", str(run), str(tmp_path / "2013.100456.S")], capsys)
    assert "'2013.100456.S' is not an ALMA project code" in text


def test_md5_of_every_staged_file_matches_its_product(tmp_path: Path) -> None:
    run = build_run(tmp_path)
    staged = tmp_path / PROJECT
    assert cli_main(["stage", str(run), str(staged)]) == 0
    sources = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in products(run).iterdir()}
    checked = 0
    for path in (staged / MEMBER).rglob("*"):
        if path.is_file() and path.name in sources and "pipeline_manifest" not in path.name:
            assert hashlib.md5(path.read_bytes()).hexdigest() == sources[path.name], path
            checked += 1
    # all but the scriptForPI, the two gzipped images and the manifest that names them
    assert checked == len(sources) - 4
    manifest = next((staged / MEMBER / "script").glob("*pipeline_manifest.xml")).read_text()
    assert ".cube.I.pb.fits.gz" in manifest and ".cube.I.mask.fits.gz" in manifest


# Case 2 (seed 001): the staged package after scriptForPI and imaging in calibrated/.

STAGED_STYLES = ("cycle2-pipe1", "cycle3-pipe1", "cycle4-pipe")


@pytest.fixture(scope="module")
def case2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return staged_case2(tmp_path_factory.mktemp("case2"))


def staged_case2(tmp: Path) -> Path:
    """A staged package (copy) with case2.txt added to its member directory."""
    staged = tmp / "analysis" / PROJECT
    staged.parent.mkdir()
    assert cli_main(["stage", str(build_run(tmp)), str(staged)]) == 0
    added = example.build((CASE / "case2.txt").read_text().splitlines(), tmp / "added")
    for part in added.iterdir():
        part.rename(staged / MEMBER / part.name)
    return staged


def case2_argv(tmp: Path) -> tuple[list[str], Path]:
    """``qa2 package``'s arguments for the staged Case-2 package (add the style and mode),
    and its packpath (whose parent is made)."""
    staged = staged_case2(tmp)
    readme = tmp / "README.header.txt"
    readme.write_text(example.HEADER)
    packpath = tmp / "out" / PROJECT
    packpath.parent.mkdir()
    return ["package", str(staged), str(packpath), "--readme", str(readme)], packpath


@pytest.mark.parametrize("style", STAGED_STYLES)
def test_case2_package_from_a_staged_package(style: str, case2: Path, tmp_path: Path) -> None:
    before = tree_state(case2)
    readme = tmp_path / "README.header.txt"
    readme.write_text(example.HEADER)
    packpath = tmp_path / PROJECT

    assert cli_main(
        ["package", str(case2), str(packpath), "--readme", str(readme), "--style", style,
         "--mode", "copy"]
    ) == 0  # fmt: skip

    expected = (CASE / f"expected_{style}.txt").read_text().split()
    assert listing(packpath) == expected
    assert not [p for p in expected if p.endswith((".ms/", ".ms.split.cal/"))], "no MS delivered"
    assert md5sum_check(packpath).returncode == 0
    assert tree_state(case2) == before


def test_case2_legacy_call_from_the_member_directory(case2: Path, tmp_path: Path) -> None:
    from almaqa2.package.legacy import QA_Packager

    readme = tmp_path / "README.header.txt"
    readme.write_text(example.HEADER)
    result = QA_Packager(
        origpath=f"{case2 / MEMBER}/", readme=str(readme), packpath=str(tmp_path / PROJECT),
        style="cycle4-pipe", mode="fake", PIscript="",
    )  # fmt: skip
    expected = (CASE / "expected_cycle4-pipe.txt").read_text().split()
    expected.remove(f"{PROJECT}/manifest.md5")  # fake mode writes none
    assert listing(tmp_path / PROJECT) == expected
    assert result.plan.reduction.layout == "staged"


def test_a_staged_package_needs_a_pipe_style(
    case2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tmp_path / "h.txt"
    readme.write_text("x\n")
    argv = ["package", str(case2), str(tmp_path / PROJECT), "--readme", str(readme)]
    text = _error([*argv, "--style", "cycle3-nopipe"], capsys)
    assert "staged pipeline package" in text and "cycle3-pipe1" in text


def test_case2_with_a_modern_pipe_style(case2: Path, tmp_path: Path) -> None:
    readme = tmp_path / "h.txt"
    readme.write_text(example.HEADER)
    packpath = tmp_path / PROJECT
    argv = ["package", str(case2), str(packpath), "--readme", str(readme), "--mode", "copy"]
    assert cli_main([*argv, "--style", "cycle6-pipe"]) == 0
    member = packpath / MEMBER
    files = sorted(p.relative_to(member).as_posix() for p in member.rglob("*") if p.is_file())
    eb_files = [f for f in files if Path(f).name.startswith("uid___A002_")]  # not <EB>_flag…
    assert files and all(
        Path(f).name.startswith(f"member.{MOUS}") for f in files if f not in eb_files
    ), files
    assert sorted(Path(f).name for f in eb_files) == [  # an EB's files keep its name
        "uid___A002_X85c183_X36f.ms.auxcalapply.txt",
        "uid___A002_X85c183_X36f.ms.calapply.txt",
        "uid___A002_X85c183_X36f.ms.flagversions.tgz",
        "uid___A002_X85c183_X60b.ms.calapply.txt",
        "uid___A002_X85c183_X60b.ms.flagversions.tgz",
    ]
    assert "log/member.uid___A001_X122_X21.calibrated.log.tgz" in files  # imaging logs
    assert "calibration/member.uid___A001_X122_X21.session_1.caltables.tgz" in files
    assert md5sum_check(packpath).returncode == 0


def test_dry_run_prints_the_plan_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build_run(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    assert cli_main(["stage", str(run), str(out / PROJECT), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert os.listdir(out) == []
    dests = sorted(f"{plan['member']}/{p['dest']}" for p in plan["placements"])
    expected = (CASE / "expected.txt").read_text().split()
    assert [f"{PROJECT}/{d}" for d in dests] == [
        p for p in expected if not p.endswith(("/", "/README"))
    ]


def test_packaging_a_pipeline_run_says_to_stage_it_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every layout goes through recognise; a run is recognised as one (issue 15)."""
    run = build_run(tmp_path)
    readme = tmp_path / "h.txt"
    readme.write_text(example.HEADER)
    text = _error(["package", str(run), str(tmp_path / PROJECT), "--readme", str(readme)], capsys)
    assert "pipeline run" in text and "qa2 stage" in text
