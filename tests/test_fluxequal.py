"""``qa2 fluxequal``: the links of SPEC §9 in calibrated/, in the Allegro and NRAO layouts;
a rerun changes nothing, a file in the way is never replaced."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from almaqa2.cli import main as cli_main

from conftest import make_case, tree_state

EBS = {"X2cd": "uid___A002_X3c7a84_X2cd", "X443": "uid___A002_X3c7a84_X443"}


def _links(calibrated: Path) -> dict[str, str]:
    return {p.name: str(p.resolve()) for p in calibrated.iterdir() if p.is_symlink()}


@pytest.fixture
def nrao(tmp_path: Path) -> Path:
    """The nrao case with an empty Combination/calibrated (the links are what we make)."""
    case = make_case("nrao", tmp_path)
    calibrated = case.origpath / "Combination" / "calibrated"
    for entry in calibrated.iterdir():
        if entry.name.startswith("uid___"):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return calibrated


def test_nrao_links_and_rerun(nrao: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["fluxequal", str(nrao)]) == 0
    assert capsys.readouterr().out.count("(made)") == 4
    origpath = nrao.parent.parent
    expected = {
        name: str(origpath / f"Calibration_{short}" / target)
        for short, uid in EBS.items()
        for name, target in (
            (f"{uid}.ms.split.cal", f"{uid}.ms.split.cal"),
            (f"{uid}.ms.split.cal.fluxscale", f"{uid}.ms.split.fluxscale"),
        )
    }
    assert _links(nrao) == expected
    assert all(not os.readlink(nrao / name).startswith("/") for name in expected), "relative"
    before = tree_state(origpath)
    assert cli_main(["fluxequal", str(nrao)]) == 0
    assert capsys.readouterr().out.count("(already there)") == 4
    assert tree_state(origpath) == before, "a rerun changes nothing"


def test_dry_run_and_json(nrao: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = sorted(p.name for p in nrao.iterdir())
    assert cli_main(["fluxequal", str(nrao), "--dry-run", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["dry_run"] and len(found["links"]) == 4
    assert {row["state"] for row in found["links"]} == {"would be made"}
    assert (
        found["links"][0]["target"] == "../../Calibration_X2cd/uid___A002_X3c7a84_X2cd.ms.split.cal"
    )
    assert sorted(p.name for p in nrao.iterdir()) == before


def test_allegro_layout_makes_the_links_of_seed_002(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The allegro case's calibrated/ holds the links seed 002 shows: remove them, remake."""
    case = make_case("allegro", tmp_path)
    calibrated = case.origpath / "calibrated"
    seed = {p.name: os.readlink(p) for p in calibrated.iterdir() if p.is_symlink()}
    assert len(seed) == 4
    for name in seed:
        (calibrated / name).unlink()
    monkeypatch.chdir(calibrated)
    assert cli_main(["fluxequal"]) == 0
    assert {p.name: os.readlink(p) for p in calibrated.iterdir() if p.is_symlink()} == seed


def test_a_file_in_the_way_is_not_replaced(nrao: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = nrao / "uid___A002_X3c7a84_X443.ms.split.cal.fluxscale"
    blocker.write_text("my own notes\n")
    assert cli_main(["fluxequal", str(nrao)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "in the way" in err and "Traceback" not in err
    assert blocker.read_text() == "my own notes\n"
    assert not _links(nrao), "nothing made when one link cannot be"


def test_two_ebs_with_an_ms_of_one_name_make_no_link(
    nrao: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An MS of one name in two EB directories (one copied into the other's by mistake)
    would need two links of one name: refused, both named, before any link is made (the
    first EB's links were made, then the system's 'File exists' named the other MS)."""
    sb = nrao.parent.parent
    first = next(sb.glob(f"*/{EBS['X2cd']}.ms.split.cal"))
    second_dir = next(sb.glob(f"*/{EBS['X443']}.ms.split.cal")).parent
    shutil.copytree(first, second_dir / first.name, symlinks=True)
    assert cli_main(["fluxequal", str(nrao)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"two EB directories hold {first.name} (the other: {first.parent})" in err
    assert f": {second_dir};" in err and "Traceback" not in err
    assert not _links(nrao)
