"""``qa2 clear``: exactly the listed files stay, the question is answered on stdin, an ASDM
is never deleted, and an unrecognised directory is refused."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from almaqa2.cli import main as cli_main

from conftest import QA2, make_case, tree_state

EB = "uid___A002_X3c7a84_X2cd"


def qa2(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The installed command, as a reducer runs it, its questions answered from ``stdin``."""
    return subprocess.run([*QA2, *argv], input=stdin, capture_output=True, text=True)


@pytest.fixture
def origpath(tmp_path: Path) -> Path:
    return make_case("nrao", tmp_path).origpath


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_eb_directory_keeps_the_asdm_and_the_script(origpath: Path) -> None:
    eb_dir = origpath / "Calibration_X2cd"
    outside = tree_state(origpath / "Calibration_X443")
    (eb_dir / "link_to_other_eb").symlink_to("../Calibration_X443")
    done = qa2("clear", str(eb_dir), stdin="y\n")
    assert done.returncode == 0, done.stderr
    assert f" - {EB}\n - {EB}.ms.scriptForCalibration.py\n" in done.stdout
    assert _names(eb_dir) == [EB, f"{EB}.ms.scriptForCalibration.py"]
    assert (eb_dir / EB / "ASDM.xml").is_file()
    assert tree_state(origpath / "Calibration_X443") == outside, "links are not followed"


@pytest.mark.parametrize("answer", ["n\n", "\n", "N\n"])
def test_anything_but_yes_deletes_nothing(answer: str, origpath: Path) -> None:
    before = tree_state(origpath)
    done = qa2("clear", str(origpath / "Calibration_X2cd"), stdin=answer)
    assert done.returncode == 0 and "[y/N]" in done.stdout
    assert tree_state(origpath) == before


@pytest.mark.parametrize("closed", [False, True], ids=["at its end", "closed"])
def test_no_answer_to_read_deletes_nothing(closed: bool, origpath: Path) -> None:
    """Run by a script with no input (at its end: </dev/null; or closed: <&-), the question
    gets no answer.  A closed input ended in a traceback ("input(): lost sys.stdin")."""
    before = tree_state(origpath)
    done = subprocess.run(
        [*QA2, "clear", str(origpath / "Calibration_X2cd")],
        stdin=subprocess.DEVNULL,
        preexec_fn=(lambda: os.close(0)) if closed else None,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stderr.strip() == "aborted", done.stderr
    assert tree_state(origpath) == before


def test_yes_dry_run_and_json(origpath: Path, capsys: pytest.CaptureFixture[str]) -> None:
    eb_dir = origpath / "Calibration_X443"
    before = tree_state(origpath)
    assert cli_main(["clear", str(eb_dir), "--dry-run", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["kind"] == "eb" and found["keep"] == [
        "uid___A002_X3c7a84_X443.ms.scriptForCalibration.py"
    ]
    assert "uid___A002_X3c7a84_X443.ms.split.cal" in found["delete"]
    assert tree_state(origpath) == before
    assert cli_main(["clear", str(eb_dir), "--yes"]) == 0
    assert _names(eb_dir) == found["keep"]


def test_calibrated_keeps_the_combination_inputs(origpath: Path) -> None:
    calibrated = origpath / "Combination" / "calibrated"
    asdm = calibrated / "uid___A002_X3c7a84_X999"
    asdm.mkdir()
    (asdm / "ASDM.xml").write_text("<ASDM/>")
    (calibrated / "scriptForImaging.py").write_text("# imaging\n")
    assert qa2("clear", str(calibrated), "--yes").returncode == 0
    assert _names(calibrated) == [
        "scriptForFluxCalibration.py",
        "scriptForImaging.py",
        "uid___A002_X3c7a84_X2cd.ms.split.cal",
        "uid___A002_X3c7a84_X2cd.ms.split.fluxscale",
        "uid___A002_X3c7a84_X443.ms.split.cal",
        "uid___A002_X3c7a84_X443.ms.split.fluxscale",
        "uid___A002_X3c7a84_X999",
    ]
    assert (asdm / "ASDM.xml").is_file(), "an ASDM is never deleted"


@pytest.mark.parametrize("where", ["Imaging", ".", "Combination"])
def test_refuses_a_directory_it_does_not_recognise(where: str, origpath: Path) -> None:
    before = tree_state(origpath)
    done = qa2("clear", str(origpath / where), "--yes")
    assert done.returncode == 2
    assert "not an EB directory" in " ".join(done.stderr.split())
    assert tree_state(origpath) == before
