"""``qa2 allfluxes``: allFluxes.txt in seed 004's format from the EBs' fluxscale results,
weighted means with weights 1/err², byte-identical round trips, spws off the fit flagged."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from almaqa2.cli import main as cli_main
from almaqa2.helpers.allfluxes import read, write

from conftest import make_case

DATA = Path(__file__).parent / "data"
EBS = ("uid___A002_X3c7a84_X2cd", "uid___A002_X3c7a84_X443")
_ROOT = "root_path/Combination/calibrated"
SEED_LINES = (  # seed 004, as a reducer edits the file
    f'"J1626-2951" 0 230.56 1.02 1.02 2014-03-23T06:42:25 {_ROOT}/uid___A002_X7d44e7_X13d1.ms.split.cal\n'  # noqa: E501
    f'"J1626-2951" 0 230.56 1.02 1.02 2014-03-24T06:20:02 {_ROOT}/uid___A002_X7d6d46_X38a.ms.split.cal\n'  # noqa: E501
    f'"J1626-2951" 2 245.43 1.00 1.00 2014-03-24T06:20:02 {_ROOT}/uid___A002_X7d6d46_X38a.ms.split.cal\n'  # noqa: E501
)
LINE = re.compile(
    r'"(?P<source>[^"]+)" (?P<spw>\d+) (?P<ghz>\d+\.\d\d) (?P<flux>\d+\.\d{4}) (?P<mean>\d+\.\d{4})'
    r" (?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d) (?P<ms>/\S+\.ms\.split\.cal)"
)


@pytest.fixture
def calibrated(tmp_path: Path) -> Path:
    """The nrao case's Combination/calibrated (real MSes) with seed-002 fluxscale results;
    the second EB's flux densities 5 % higher and twice as uncertain, and its J1851+0035
    in spw 7 25 % above the fitted spectrum."""
    case = make_case("nrao", tmp_path)
    where = case.origpath / "Combination" / "calibrated"
    (where / "allFluxes.txt").unlink()
    text = (DATA / "X66d.fluxscale").read_text()
    second = re.sub(
        r"is: ([\d.]+) \+/- ([\d.]+)",
        lambda m: f"is: {float(m[1]) * 1.05:.6g} +/- {float(m[2]) * 2:.6g}",
        text,
    )
    (where / f"{EBS[0]}.ms.split.fluxscale").write_text(text)
    second = second.replace("is: 0.281988", "is: 0.33570")  # 0.26856 * 1.05 -> * 1.25
    (where / f"{EBS[1]}.ms.split.fluxscale").write_text(second)
    return where


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    """The JSON of ``qa2 allfluxes``, whose exit code says whether a row is flagged."""
    capsys.readouterr()
    code = cli_main(["allfluxes", *argv, "--json"])
    found = json.loads(capsys.readouterr().out)
    assert code == (1 if found["flags"] else 0)
    return found


def test_written_in_the_seed_format_with_weighted_means(
    calibrated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _json(capsys, str(calibrated))
    assert found["written"]
    lines = (calibrated / "allFluxes.txt").read_text().splitlines()
    assert len(lines) == 12  # 6 measurements x 2 EBs
    parsed = [LINE.fullmatch(line) for line in lines]
    assert all(parsed), lines
    first = [p for p in parsed if p and p["source"] == "J1751+0939" and p["spw"] == "0"]
    assert [p["ms"] for p in first] == [str(calibrated / f"{eb}.ms.split.cal") for eb in EBS]
    s1, e1 = 2.22776, 0.00677892
    s2, e2 = float(f"{s1 * 1.05:.6g}"), float(f"{e1 * 2:.6g}")  # as the fixture wrote them
    mean = (s1 / e1**2 + s2 / e2**2) / (1 / e1**2 + 1 / e2**2)
    assert {p["mean"] for p in first} == {f"{mean:.4f}"}
    assert [p["flux"] for p in first] == [f"{s1:.4f}", f"{s2:.4f}"]
    assert first[0]["ghz"] == "216.28"


def test_read_and_write_back_is_byte_identical(calibrated: Path) -> None:
    assert write(read(SEED_LINES)) == SEED_LINES
    assert cli_main(["allfluxes", str(calibrated)]) == 1  # the fixture has flagged rows
    made = (calibrated / "allFluxes.txt").read_text()
    assert write(read(made)) == made


def test_spws_off_the_fitted_spectrum_are_flagged(
    calibrated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _json(capsys, str(calibrated))
    # Recomputed here from the fitted spectra of seed 002's lines.
    flagged = {(f["source"], f["spw"], Path(f["ms"]).name.split(".")[0]) for f in found["flags"]}
    expected = set()
    for row in found["rows"]:
        fit = {"J1751+0939": (2.19474, -0.549826), "J1851+0035": (0.285309, -1.4004)}[row["source"]]
        fitted = fit[0] * (row["freq_ghz"] / 223.031) ** fit[1]  # numbers, as numbers
        if abs(row["flux"] / fitted - 1) > 0.10:
            expected.add((row["source"], row["spw"], Path(row["ms"]).name.split(".")[0]))
    assert flagged == expected
    assert ("J1851+0035", 7, EBS[1]) in flagged
    assert all(isinstance(f["deviation"], float) for f in found["flags"])
    loose = _json(capsys, str(calibrated), "--threshold", "0.5")
    assert loose["flags"] == []


@pytest.mark.parametrize("command", ["allfluxes", "fluxscale"])
@pytest.mark.parametrize("threshold", ["-0.1", "nan"])
def test_a_threshold_that_is_no_fraction_is_refused(
    calibrated: Path, capsys: pytest.CaptureFixture[str], command: str, threshold: str
) -> None:
    """A negative threshold flagged every flux density, and "nan" none, each silently."""
    assert cli_main([command, str(calibrated), "--threshold", threshold]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"is not a fraction of 0 or more, such as 0.1; see 'qa2 {command} --help'." in err
    assert not (calibrated / "allFluxes.txt").exists()


def test_an_existing_file_is_checked_not_replaced(
    calibrated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = calibrated / "allFluxes.txt"
    mine.write_text(SEED_LINES)
    found = _json(capsys, str(calibrated))
    assert not found["written"] and mine.read_text() == SEED_LINES
    assert len(found["rows"]) == 3
    found = _json(capsys, str(calibrated), "--recompute")
    assert found["written"] and len(found["rows"]) == 12
    assert (calibrated / "allFluxes.txt.previous").read_text() == SEED_LINES


def test_a_malformed_line_is_named(calibrated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (calibrated / "allFluxes.txt").write_text(SEED_LINES + '"J1626-2951" two 245.43\n')
    assert cli_main(["allfluxes", str(calibrated)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "line 4 is not" in err and "allFluxes.txt" in err
