"""``qa2 check``: seed 004's final checklist. A complete NRAO reduction passes; each item
taken away fails alone, exit 1, named."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from almaqa2.cli import main as cli_main

from conftest import make_case

X2CD = "uid___A002_X3c7a84_X2cd"
SCRIPT = f"Calibration_X2cd/{X2CD}.ms.scriptForCalibration.py"


@pytest.fixture
def complete(tmp_path: Path) -> Path:
    """The nrao case made complete: scripts that run every step, and a README."""
    origpath = make_case("nrao", tmp_path).origpath
    for script in origpath.glob("Calibration_*/*.scriptForCalibration.py"):
        script.write_text("thesteps = []\nstep_title = {0: 'Import'}\n# thesteps = [0]\n")
    (origpath / "Calibration_X443" / "qa2").mkdir(exist_ok=True)
    (origpath / "README").write_text("README for the PI\n")
    return origpath


def _check(origpath: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    capsys.readouterr()
    code = cli_main(["check", str(origpath), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_complete_reduction_passes(complete: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, found = _check(complete, capsys)
    assert code == 0 and found["ok"]
    assert len(found["items"]) == 2 * 3 + 7
    assert cli_main(["check", str(complete)]) == 0
    text = capsys.readouterr().out
    assert text.count("│ pass │") == 13 and "FAIL" not in text


def _remove(relative: str) -> Callable[[Path], None]:
    def change(origpath: Path) -> None:
        for path in origpath.glob(relative):
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    return change


def _append(relative: str, text: str) -> Callable[[Path], None]:
    def change(origpath: Path) -> None:
        with (origpath / relative).open("a") as f:
            f.write(text)

    return change


BREAKS = {
    "clean CASA log (missing)": (_remove("Calibration_X2cd/casa-*.log"), "no casa-*.log"),
    "clean CASA log (two)": (
        _append("Calibration_X2cd/casa-20150809-000000.log", "INFO another\n"),
        "2 CASA logs",
    ),
    "clean CASA log (SEVERE)": (
        _append("Calibration_X2cd/casa-20150801-101010.log", "SEVERE applycal failed\n"),
        "has 1 SEVERE line",
    ),
    "complete calibration script (missing)": (
        _remove(SCRIPT),
        f"{X2CD}.ms.scriptForCalibration.py is missing",
    ),
    "complete calibration script (some steps)": (
        _append(SCRIPT, "thesteps = [0, 1]\n"),
        "not every step runs",
    ),
    "qa2 directory": (_remove("Calibration_X2cd/qa2"), "no qa2/"),
    "README": (_remove("README"), "no README*"),
    "imaging script": (_remove("Imaging/scriptForImaging.py"), "scriptForImaging.py is missing"),
    "flux calibration script": (
        _remove("Combination/calibrated/scriptForFluxCalibration.py"),
        "scriptForFluxCalibration.py is missing",
    ),
    "combination log": (_remove("Combination/calibrated/casa-*.log"), "no casa-*.log"),
    "imaging log": (_remove("Imaging/casa-*.log"), "no casa-*.log"),
    "primary-beam-corrected image": (_remove("Imaging/*.pbcor.fits"), "no *.pbcor.fits"),
    "primary-beam image": (_remove("Imaging/*.flux.fits"), "no *.flux.fits or *.pb.fits"),
}


@pytest.mark.parametrize("broken", BREAKS)
def test_each_missing_item_fails_alone(
    broken: str, complete: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change, detail = BREAKS[broken]
    change(complete)
    code, found = _check(complete, capsys)
    assert code == 1 and not found["ok"]
    failed = [item for item in found["items"] if not item["ok"]]
    assert [item["item"] for item in failed] == [broken.split(" (")[0]]
    assert detail in failed[0]["detail"]
    assert cli_main(["check", str(complete)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_not_a_reduction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["check", str(tmp_path)]) == 2
    assert "no execution block found" in " ".join(capsys.readouterr().err.split())


def test_an_allegro_sb_gets_the_allegro_list_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17 (seed 002): checklists and README header beside origpath, casapy logs,
    calibrated/ for the combination; not NRAO's Combination/ and Imaging/."""
    case = make_case("allegro", tmp_path)
    origpath = case.origpath
    for script in origpath.glob("X*/*.scriptForCalibration.py"):
        script.write_text("thesteps = []\n")
    (origpath.parent / "README.header.txt").write_text(case.readme.read_text())
    code, found = _check(origpath, capsys)
    assert found["list"] == "Allegro (seed 002)"
    items = {(i["item"], i["where"]): i for i in found["items"]}
    assert not [w for _, w in items if w.startswith(("Combination", "Imaging"))]
    assert items[("clean CASA log", "X66d")]["detail"] == "casapy-20140827-170100.log"
    assert code == 0 and found["ok"], [i for i in found["items"] if not i["ok"]]

    (origpath.parent / "Checklist_SB_B6_IRAS12345_uid___A002_X4sda4d_Xa12.txt").unlink()
    (origpath / "calibrated" / "uid___A002_Xdd9c61_X66d.ms.split.cal.fluxscale").unlink()
    (origpath.parent / "README.header.txt").write_text("PI name:\nProject title: x\n")
    code, found = _check(origpath, capsys)
    failed = {i["item"]: i["detail"] for i in found["items"] if not i["ok"]}
    assert code == 1 and set(failed) == {
        "EB checklists", "EBs linked for the combination", "README header filled",
    }  # fmt: skip
    assert "uid___A002_X4sda4d_Xa12" in failed["EB checklists"]
    assert "PI name" in failed["README header filled"]
    cli_main(["check", str(origpath)])
    assert "final checklist, Allegro (seed 002)" in capsys.readouterr().out

    (origpath.parent / "README.header.txt").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    code, found = _check(origpath, capsys)  # the wrong file, as the package would refuse it
    failed = {i["item"]: i["detail"] for i in found["items"] if not i["ok"]}
    assert code == 1 and failed["README header filled"] == "the README header is not text"
