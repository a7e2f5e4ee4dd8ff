"""Cycle-5+ naming (SPEC §4.1): ``member.<MOUS>.`` prefixes and tgz bundles, each of which
holds exactly what the older layout delivered as a directory."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from almaqa2.cli import main as cli_main
from almaqa2.package.legacy import QA_Packager

from conftest import Case, listing, make_case, md5sum_check

MOUS = "uid___A001_X13e_X1fe"
MEMBER = f"sg_ouss_id/group_ouss_id/member.{MOUS}"


def _package(case: Case, style: str, out: Path, mode: str = "copy") -> Path:
    out.mkdir()
    packpath = out / case.packpath.name
    pi_script = case.origpath.parent / "scriptForPI.py"
    argv = ["package", str(case.origpath), str(packpath), "--readme", str(case.readme)]
    assert cli_main([*argv, "--style", style, "--mode", mode, "--pi-script", str(pi_script)]) == 0
    return packpath


def _md5s(top: Path) -> dict[str, str]:
    return {
        p.relative_to(top).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(top.rglob("*"))
        if p.is_file()
    }


def _extract(tgz: Path, into: Path) -> Path:
    into.mkdir()
    subprocess.run(["tar", "-xzf", str(tgz), "-C", str(into)], check=True)
    return into


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, Path, Path]:
    """The nrao case packaged with cycle5-nopipe and, for reference, cycle4-nopipe."""
    root = tmp_path_factory.mktemp("modern")
    case = make_case("nrao", root)
    return (
        case,
        _package(case, "cycle5-nopipe", root / "c5"),
        _package(case, "cycle4-nopipe", root / "c4"),
    )


def test_names_follow_spec_4_1(packages: tuple[Case, Path, Path]) -> None:
    case, cycle5, _ = packages
    assert listing(cycle5) == (case.dir / "expected_cycle5-nopipe.txt").read_text().split()
    assert md5sum_check(cycle5).returncode == 0


def test_each_tgz_holds_exactly_its_source_directory(
    packages: tuple[Case, Path, Path], tmp_path: Path
) -> None:
    case, cycle5, cycle4 = packages
    new, old = cycle5 / MEMBER, cycle4 / MEMBER
    tgzs = sorted(new.rglob("*.tgz"))
    assert len(tgzs) == 8
    for tgz in tgzs:
        top = _extract(tgz, tmp_path / tgz.name)
        (inside,) = [p.name for p in top.iterdir()]  # one directory
        if tgz.parent.name == "product":  # a CASA image keeps its name inside
            assert inside == "Elias29_cont.mask"
            expected = _md5s(case.origpath / "Imaging" / inside)
        else:
            assert inside == tgz.name.removesuffix(".tgz"), "named like the tgz"
        if tgz.parent.name == "calibration":
            expected = _md5s(old / "calibration" / inside)
        elif tgz.parent.name == "log":  # the older package's logs of that EB or SB-level dir
            eb = inside.removeprefix(f"member.{MOUS}.").removesuffix(".log")
            if eb.startswith("uid___"):
                expected = {
                    p.name.removeprefix(f"{eb}__"): hashlib.md5(p.read_bytes()).hexdigest()
                    for p in (old / "log").glob(f"{eb}__*")
                }
            else:
                found = _md5s(case.origpath / eb)  # its logs, at any depth, go in flat
                expected = {Path(k).name: v for k, v in found.items() if k.endswith(".log")}
        assert expected, tgz.name
        assert _md5s(top / inside) == expected, tgz.name


def test_tgz_are_reproducible(packages: tuple[Case, Path, Path], tmp_path: Path) -> None:
    case, cycle5, _ = packages
    again = _package(case, "cycle5-nopipe", tmp_path / "again")
    first = {k: v for k, v in _md5s(cycle5).items() if k.endswith(".tgz")}
    assert first and first == {k: v for k, v in _md5s(again).items() if k.endswith(".tgz")}


def test_fake_mode_through_the_legacy_call(tmp_path: Path) -> None:
    case = make_case("nrao", tmp_path)
    QA_Packager(
        origpath=str(case.origpath), readme=str(case.readme), packpath=str(case.packpath),
        style="cycle5-nopipe", mode="fake", PIscript=str(case.origpath.parent) + "/",
    )  # fmt: skip
    expected = (case.dir / "expected_cycle5-nopipe.txt").read_text().split()
    expected.remove(f"{case.packpath.name}/manifest.md5")
    assert listing(case.packpath) == expected
    assert all(p.stat().st_size == 0 for p in case.packpath.rglob("*.tgz"))


def test_a_modern_style_needs_the_mous_uid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = make_case("project229", tmp_path)
    argv = ["package", str(case.origpath), str(case.packpath), "--readme", str(case.readme)]
    assert cli_main([*argv, "--style", "cycle7-nopipe"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "cycle7-nopipe names files by the member OUS UID and none was found" in err
    assert "--mous" in err and "Traceback" not in err
    assert not case.packpath.exists()
    assert cli_main([*argv, "--style", "cycle7-nopipe", "--mous", "uid://A001/X1/X2"]) == 0
    assert (case.packpath / "sg_ouss_id/group_ouss_id/member.uid___A001_X1_X2").is_dir()


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]], ids=["run", "dry-run"])
def test_a_name_too_long_once_the_uid_is_put_before_it_is_refused_before_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dry_run: list[str]
) -> None:
    """A plot named with 234 characters fits its own disk, and not once its member's UID
    is put before it: the run failed at that file ("File name too long ...; fix this"),
    and the dry run said nothing of it."""
    case = make_case("project229", tmp_path)
    qa2 = next(p for p in sorted(case.origpath.rglob("qa2")) if p.is_dir())
    long = qa2 / f"{'p' * 230}.png"
    long.write_bytes(b"\x89PNG\r\n")
    argv = ["-q", "package", str(case.origpath), str(case.packpath), "--readme", str(case.readme)]
    capsys.readouterr()
    assert (
        cli_main([*argv, "--style", "cycle7-nopipe", "--mous", "uid://A001/X1/X2", *dry_run]) == 2
    )
    said = " ".join(capsys.readouterr().err.split())
    assert said.startswith("error: the name this file takes in the package, member.uid___A001"), (
        said
    )
    assert said.endswith(
        f"p.png, is longer than file systems allow (255 bytes): {long}; give the file a shorter"
        " name in the reduction."
    ), said
    assert not case.packpath.exists() and os.listdir(case.packpath.parent) == []
