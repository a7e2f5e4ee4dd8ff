"""Ticket files: open in any unzip and GNU tar, hold exactly README + qa/ + script/ +
expected_size.txt, and the expected size is the package's real size."""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from almaqa2.cli import main
from almaqa2.package.ticket import DUMMY_NAME
from test_stage import case2_argv

from conftest import Case, make_case


def _tickets(case: Case) -> tuple[Path, Path]:
    zip_name, tar_name = case.expected_beside[1], case.expected_beside[0]
    return case.packpath.parent / zip_name, case.packpath.parent / tar_name


def _member(case: Case) -> Path:
    return next(case.packpath.glob("*/*/*"))


def _expected_names(case: Case) -> list[str]:
    member = _member(case)
    names = [
        p.relative_to(member).as_posix()
        for sub in ("qa", "script")
        for p in (member / sub).rglob("*")
        if p.is_file()
    ]
    return sorted([*names, "README", "expected_size.txt", "review.html"])


@pytest.mark.parametrize("name", ["project229", "allegro"])
@pytest.mark.parametrize("mode", ["ticket", "copy", "hard"])
def test_ticket_contents_and_clients(name: str, mode: str, tmp_path: Path) -> None:
    case = make_case(name, tmp_path)
    assert case.run_cli(mode) == 0
    zip_path, tar_path = _tickets(case)

    unzip = subprocess.run(["unzip", "-t", str(zip_path)], capture_output=True, text=True)
    assert unzip.returncode == 0 and "No errors detected" in unzip.stdout
    with zipfile.ZipFile(zip_path) as zf:
        assert zf.testzip() is None
        assert sorted(zf.namelist()) == _expected_names(case)
        readme = zf.read("README").decode()
        checklists = [n for n in zf.namelist() if "hecklist" in n]
    assert readme == (_member(case) / "README").read_text()
    assert checklists, "the checklists travel in the ticket"

    gnu = subprocess.run(["tar", "tf", str(tar_path)], capture_output=True, text=True)
    assert gnu.returncode == 0
    assert sorted(gnu.stdout.split()) == _expected_names(case)
    with tarfile.open(tar_path) as tf:
        member = tf.extractfile("README")
        assert member is not None and member.read().decode() == readme


def _sizes(text: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\S.*?)\s{2,}(\d+)\s", text, re.M)}


def test_expected_size_equals_the_package_in_copy_mode(case229: Case) -> None:
    assert case229.run_cli("copy") == 0
    with zipfile.ZipFile(_tickets(case229)[0]) as zf:
        sizes = _sizes(zf.read("expected_size.txt").decode())
    member = _member(case229)
    on_disk = sum(p.stat().st_size for p in member.rglob("*") if p.is_file())
    package = sum(p.stat().st_size for p in case229.packpath.rglob("*") if p.is_file())
    assert sizes["member total"] == on_disk
    assert sizes["package total"] == package
    for sub in ("raw", "calibrated", "calibration", "qa", "script", "log", "product"):
        in_sub = (member / sub).rglob("*")
        assert sizes[sub] == sum(p.stat().st_size for p in in_sub if p.is_file())


def test_fake_ticket_is_a_marked_dummy(case229: Case) -> None:
    assert case229.run_cli("fake") == 0
    zip_path, tar_path = _tickets(case229)
    assert subprocess.run(["unzip", "-tq", str(zip_path)], capture_output=True).returncode == 0
    with zipfile.ZipFile(zip_path) as zf:
        assert zf.namelist() == [DUMMY_NAME]
        assert "dummy" in zf.read(DUMMY_NAME).decode()
    with tarfile.open(tar_path) as tf:
        assert tf.getnames() == [DUMMY_NAME]


def test_ticket_named_after_the_sb_when_given(case229: Case) -> None:
    argv, _ = case229.commands("ticket")
    from almaqa2.cli import main

    assert main([*argv, "--sb-name", "IRC10216_setup3"]) == 0
    assert (case229.packpath.parent / "2011.0.00229.S.IRC10216_setup3.ticket.zip").is_file()


def _expected(packpath: Path) -> dict[str, int]:
    zip_path = next(packpath.parent.glob("*.ticket.zip"))
    with zipfile.ZipFile(zip_path) as zf:
        return _sizes(zf.read("expected_size.txt").decode())


def _actual(packpath: Path) -> dict[str, int]:
    """What expected_size.txt must say of a package on disk."""
    member = next(p for p in packpath.glob("*/*/*") if p.is_dir())
    found = {
        sub.name: sum(p.stat().st_size for p in sub.rglob("*") if p.is_file())
        for sub in member.iterdir()
        if sub.is_dir()
    }
    found["member total"] = sum(p.stat().st_size for p in member.rglob("*") if p.is_file())
    found["package total"] = sum(p.stat().st_size for p in packpath.rglob("*") if p.is_file())
    return found


def _ticket_then_copy(argv: list[str], packpath: Path) -> tuple[dict[str, int], dict[str, int]]:
    """What the ticket-mode ticket expects, and what the copy then holds; the ticket-mode
    package has the copy's files (empty), the reduced MSes' included."""
    assert main([*argv, "--mode", "ticket"]) == 0
    expected = _expected(packpath)
    files = sorted(p.relative_to(packpath) for p in packpath.rglob("*") if p.is_file())
    shutil.rmtree(packpath)
    for made in packpath.parent.glob("*.ticket.*"):
        made.unlink()
    assert main([*argv, "--mode", "copy"]) == 0
    copied = sorted(p.relative_to(packpath) for p in packpath.rglob("*") if p.is_file())
    assert files == [p for p in copied if p.name != "manifest.md5"]
    return expected, _actual(packpath)


@pytest.mark.parametrize("name", ["project229", "nrao"])
def test_a_ticket_gives_the_copy_packages_size_exactly(name: str, tmp_path: Path) -> None:
    """Issue 17: the sizes a ticket gives are the delivered package's, byte for byte, with
    MSes reduced (cycle 0: a data column dropped) and images gzipped (cycle 4) on the way."""
    case = make_case(name, tmp_path)
    argv, _ = case.commands("copy")
    at = argv.index("--mode")
    del argv[at : at + 2]
    expected, actual = _ticket_then_copy(argv, case.packpath)
    assert {k: expected[k] for k in actual} == actual


def test_a_pipeline_ticket_gives_the_copy_packages_size_exactly(tmp_path: Path) -> None:
    """Issue 17, with the pipeline's rewritten manifest and tgz bundles of tables."""
    argv, packpath = case2_argv(tmp_path)
    expected, actual = _ticket_then_copy([*argv, "--style", "cycle4-pipe"], packpath)
    assert next(packpath.rglob("*.tgz"), None) is not None, "a bundle is sized"
    assert {k: expected[k] for k in actual} == actual
