"""``qa2 start``: exactly the SPEC §9 trees (Allegro, NRAO), ASDMs linked from an archive
or moved in, SBs listed when none is named, and run_packaging.py that really packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from almaqa2.cli import main as cli_main

from conftest import tree_state

SB = "B6_IRAS12345"
PROJECT = "2013.1.12345.S"
EBS = ("uid___A002_X4sda4d_Xa12", "uid___A002_Xdd9c61_X66d")
MOUS = "uid___A001_X13e_X1fe"
SECTIONS = (  # the EB checklist's sections (seed 002)
    "DATA IMPORT", "A PRIORI CALIBRATION", "FLAGGING AND MODELS", "BANDPASS",
    "GAIN CALIBRATION", "APPLYCAL AND SPLIT", "QA2 REPORT", "FLUX UPLOAD",
)  # fmt: skip


def _asdm(directory: Path, uid: str) -> None:
    (directory / uid / "ASDMBinary").mkdir(parents=True)
    (directory / uid / "ASDM.xml").write_text(f"<ASDM>{uid}</ASDM>\n")
    (directory / uid / "ASDMBinary" / "uid___A002_X1_X1").write_bytes(b"\0" * 1000)


def _tree(top: Path) -> list[str]:
    """Paths below top's parent; links as 'name -> target', not entered; ASDMs not entered."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = here / name
            rel = path.relative_to(top.parent).as_posix()
            if path.is_symlink():
                found.append(f"{rel} -> {os.readlink(path)}")
            else:
                found.append(rel + ("/" if path.is_dir() else ""))
        dirnames[:] = [d for d in dirnames if not d.startswith("uid___")]
    return sorted(found)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    for uid in EBS:
        _asdm(root / SB, uid)
    return root


def _allegro_expected(link_to: Path | None) -> list[str]:
    def asdm(short: str, uid: str) -> str:
        where = f"{SB}/{SB}/{short}/{uid}"
        return f"{where} -> {link_to / uid}" if link_to else f"{where}/"

    return sorted([
        f"{SB}/{SB}/", f"{SB}/{SB}/Xa12/", asdm("Xa12", EBS[0]), f"{SB}/{SB}/X66d/",
        asdm("X66d", EBS[1]), f"{SB}/{SB}/calibrated/", f"{SB}/Checklist_SB_{SB}.txt",
        f"{SB}/Checklist_SB_{SB}_{EBS[0]}.txt", f"{SB}/Checklist_SB_{SB}_{EBS[1]}.txt",
        f"{SB}/README.header.txt", f"{SB}/packaging/", f"{SB}/packaging/hard/",
        f"{SB}/packaging/hard/run_packaging.py", f"{SB}/packaging/ticket/",
        f"{SB}/packaging/ticket/run_packaging.py", f"{SB}/scriptForPI.py",
    ])  # fmt: skip


def test_allegro_with_an_archive(archive: Path, tmp_path: Path) -> None:
    before = tree_state(archive)
    analysis = tmp_path / PROJECT / "analysis"
    analysis.mkdir(parents=True)
    assert cli_main(["start", SB, "--archive", str(archive), "--into", str(analysis)]) == 0
    assert _tree(analysis / SB) == _allegro_expected(archive / SB)
    assert tree_state(archive) == before, "the archive is linked, not changed"
    header = (analysis / SB / "README.header.txt").read_text()
    assert f"Project code: {PROJECT}\n" in header and f"SB name: {SB}\n" in header
    checklist = (analysis / SB / f"Checklist_SB_{SB}_{EBS[1]}.txt").read_text()
    for section in SECTIONS:
        assert f"\n{section}\n" in checklist


def test_allegro_moves_the_asdms_of_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "work"
    for uid in EBS:
        _asdm(here, uid)
    monkeypatch.chdir(here)
    assert cli_main(["start", SB, "--project", PROJECT]) == 0
    assert _tree(here / SB) == _allegro_expected(None)
    assert sorted(p.name for p in here.iterdir()) == [SB], "moved, not copied"


@pytest.mark.parametrize("n", [1, 2])
def test_nrao(n: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for uid in EBS[:n]:
        _asdm(tmp_path, uid)
    monkeypatch.chdir(tmp_path)
    assert cli_main(["start", "uid://A001/X13e/X1fe", "--layout", "nrao"]) == 0
    expected = [f"{MOUS}/Imaging/"]
    for uid in EBS[:n]:
        short = uid.rsplit("_", 1)[1]
        expected += [f"{MOUS}/Calibration_{short}/", f"{MOUS}/Calibration_{short}/{uid}/"]
    if n > 1:
        expected += [f"{MOUS}/Combination/", f"{MOUS}/Combination/calibrated/"]
    assert _tree(tmp_path / MOUS) == sorted(expected)


def test_without_an_sb_it_lists_or_sets_up_the_only_one(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    analysis = tmp_path / PROJECT
    analysis.mkdir()
    _asdm(archive / "B3_OTHER", "uid___A002_X1_X2")
    assert cli_main(["start", "--archive", str(archive), "--into", str(analysis)]) == 0
    assert f"SBs in {archive}: B3_OTHER, {SB}" in capsys.readouterr().out
    assert list(analysis.iterdir()) == []
    (archive / "B3_OTHER" / "uid___A002_X1_X2" / "ASDM.xml").unlink()
    assert cli_main(["start", "--archive", str(archive), "--into", str(analysis)]) == 0
    assert (analysis / SB / SB / "X66d" / EBS[1]).is_symlink()


def test_run_packaging_packages_the_area(archive: Path, tmp_path: Path) -> None:
    analysis = tmp_path / PROJECT
    analysis.mkdir()
    assert cli_main(["start", SB, "--archive", str(archive), "--into", str(analysis)]) == 0
    script = analysis / SB / "packaging" / "ticket" / "run_packaging.py"
    done = subprocess.run(
        [sys.executable, str(script), "fake"], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    package = analysis / SB / "packaging" / "ticket" / PROJECT
    member = package / "sg_ouss_id" / "group_ouss_id" / "member_ouss_id"
    assert (member / "README").is_file()
    assert sorted(p.name for p in (member / "qa").iterdir()) == sorted(
        [f"Checklist_SB_{SB}.txt", *(f"Checklist_SB_{SB}_{uid}.txt" for uid in EBS)]
    )
    assert (member / "script" / "scriptForPI.py").is_file()
    assert (package.parent / f"{PROJECT}.{SB}.ticket.zip").is_file()


def test_an_existing_area_is_not_touched(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    analysis = tmp_path / PROJECT
    (analysis / SB).mkdir(parents=True)
    (analysis / SB / "notes.txt").write_text("mine")
    assert cli_main(["start", SB, "--archive", str(archive), "--into", str(analysis)]) == 2
    assert "exists already" in " ".join(capsys.readouterr().err.split())
    assert sorted(p.name for p in analysis.iterdir()) == [SB]
    assert [p.name for p in (analysis / SB).iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("layout", ["allegro", "nrao"])
def test_dry_run_shows_the_tree_and_makes_nothing(
    layout: str, archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    analysis = tmp_path / PROJECT
    analysis.mkdir()
    sb = SB if layout == "allegro" else MOUS
    (archive / MOUS).symlink_to(archive / SB)  # the same ASDMs, under the MOUS name
    argv = ["start", sb, "--layout", layout, "--archive", str(archive), "--into", str(analysis)]
    before = tree_state(tmp_path)
    assert cli_main([*argv, "--dry-run", "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert tree_state(tmp_path) == before, "a dry run makes nothing"
    assert cli_main([*argv, "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert planned["tree"] == made["tree"] and planned["dry_run"] and not made["dry_run"]
    assert all((analysis / rel).exists() or (analysis / rel).is_symlink() for rel in made["tree"])
    if layout == "nrao":
        assert (analysis / MOUS / "Calibration_X66d" / EBS[1]).resolve() == archive / SB / EBS[1]
        assert (analysis / MOUS / "Combination" / "calibrated").is_dir()


def test_a_relative_archive_gives_links_that_resolve(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18: the README's own example, `qa2 start SB --archive ../archive`, typed in
    the analysis directory: the links are made to the ASDMs themselves."""
    analysis = tmp_path / "analysis"
    analysis.mkdir()
    monkeypatch.chdir(analysis)
    assert cli_main(["start", SB, "--archive", "../archive", "--project", PROJECT]) == 0
    links = [p for p in (analysis / SB).rglob("uid___*") if p.is_symlink()]
    assert len(links) == len(EBS)
    for link in links:
        assert (link / "ASDM.xml").is_file(), os.readlink(link)
        assert link.resolve() == (archive / SB / link.name).resolve()
