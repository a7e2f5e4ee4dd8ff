"""Input that used to end in a Python traceback (issue 13): file names that are not UTF-8,
fluxscale numbers no fit can use, a FITS beam written as text.  Each gives a result or one
sentence, never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from astropy.io import fits

from almaqa2.cli import main

from conftest import MODES, make_case

DATA = Path(__file__).parent / "data"
EB = "uid___A002_Xdd9c61_X66d"


def _no_traceback(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    found = capsys.readouterr()
    assert "Traceback" not in found.err + found.out
    return found.out, found.err


@pytest.mark.parametrize("mode", MODES)
def test_file_names_that_are_not_utf8_are_packaged(
    mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = make_case("project229", tmp_path)
    for where, name in (("X8c/qa2", b"caf\xe9.png"), (".", b"scriptForImaging\xff.py")):
        with open(os.fsencode(case.origpath / where) + b"/" + name, "wb") as f:
            f.write(b"bytes of a file with a Latin-1 name\n")
    assert case.run_cli(mode) == 0
    _no_traceback(capsys)
    readme = next(case.packpath.rglob("README")).read_bytes().decode("utf-8")  # valid UTF-8
    assert "caf\\xe9.png" in readme
    zipped = case.packpath.parent / f"{case.packpath.name}.ticket.zip"
    assert subprocess.run(["unzip", "-tq", str(zipped)], capture_output=True).returncode == 0
    if mode not in ("copy", "hard"):
        return
    assert _md5sum_c(case.packpath) == 0
    chunks, out = tmp_path / "chunks", tmp_path / "back"
    chunks.mkdir()
    out.mkdir()
    assert main(["tarsplit", str(case.packpath), "--out", str(chunks), "-n", "2012-06-20"]) == 0
    assert main(["untar", str(chunks), "--out", str(out)]) == 0
    assert _md5sum_c(out / case.packpath.name) == 0
    _no_traceback(capsys)


def _md5sum_c(package: Path) -> int:
    """GNU md5sum -c on the manifest, its output left as bytes (names are not UTF-8)."""
    check = ["md5sum", "-c", "--strict", "--quiet", f"{package.name}/manifest.md5"]
    return subprocess.run(check, cwd=package.parent, capture_output=True).returncode


def _fluxscale(tmp_path: Path, text: str) -> Path:
    eb_dir = tmp_path / "SB" / "X66d"
    eb_dir.mkdir(parents=True)
    (eb_dir / f"{EB}.ms.split.fluxscale").write_text(text)
    return tmp_path / "SB"


FLUX = "Flux density for J1 in SpW={spw} (freq=2.3e+11 Hz) is: {flux} +/- 0.01 (SNR = 9, N = {n})"
FIT = "Fitted spectrum for J1 with fitorder=1: Flux density = 1.0 +/- 0.1 (freq={ghz} GHz)"


def test_fluxes_that_sum_to_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sb = _fluxscale(tmp_path, FLUX.format(spw=0, flux=0.0, n=9) + "\n")
    second = sb / "Xa12"
    second.mkdir()
    (second / "uid___A002_X4sda4d_Xa12.ms.split.fluxscale").write_text(
        FLUX.format(spw=0, flux=0.0, n=9) + "\n"
    )
    assert main(["fluxscale", str(sb)]) == 0
    out, _ = _no_traceback(capsys)
    assert "n/a" in out


def test_a_5000_digit_count_is_not_a_casa_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = "9" * 5000
    lines = [FLUX.format(spw=huge, flux=1.0, n=9), FLUX.format(spw=0, flux=1.0, n=huge)]
    assert main(["fluxscale", str(_fluxscale(tmp_path, "\n".join(lines)))]) == 1
    _, err = _no_traceback(capsys)
    assert "no 'Flux density for" in " ".join(err.split())


def test_a_fit_at_zero_frequency_is_not_drawn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = FLUX.format(spw=0, flux=1.0, n=9) + "\n" + FIT.format(ghz=0) + "\n"
    png = tmp_path / "flux.png"
    assert main(["fluxscale", str(_fluxscale(tmp_path, text)), "--plot", str(png)]) == 0
    _no_traceback(capsys)
    assert png.read_bytes().startswith(b"\x89PNG")


@pytest.fixture
def calibrated(tmp_path: Path) -> Path:
    case = make_case("nrao", tmp_path)
    where = case.origpath / "Combination" / "calibrated"
    (where / "allFluxes.txt").unlink()
    text = (DATA / "X66d.fluxscale").read_text()
    for eb in ("uid___A002_X3c7a84_X2cd", "uid___A002_X3c7a84_X443"):
        (where / f"{eb}.ms.split.fluxscale").write_text(text)
    return where


def test_allfluxes_with_a_fitted_flux_of_zero(
    calibrated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in calibrated.glob("*.fluxscale"):
        text = re.sub(r"Flux density = [\d.]+", "Flux density = 0", path.read_text())
        path.write_text(text)
    assert main(["allfluxes", str(calibrated)]) in (0, 1)
    out, _ = _no_traceback(capsys)
    assert "inf" in out  # every spw infinitely far from a fit of 0 Jy, and said so


def test_allfluxes_of_a_file_that_is_not_utf8(
    calibrated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["allfluxes", str(calibrated)]) in (0, 1)
    path = calibrated / "allFluxes.txt"
    path.write_bytes(path.read_bytes().replace(b'"J1751+0939"', b'"J1751+0939\xff"'))
    capsys.readouterr()
    assert main(["allfluxes", str(calibrated)]) in (0, 1)
    _no_traceback(capsys)


def test_a_fits_beam_written_as_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = make_case("flat", tmp_path)
    image = case.origpath / "IRC10216.clean.fits"
    with fits.open(image, mode="update") as hdus:
        hdus[0].header["BMAJ"] = "n/a"
    assert case.run_cli("fake") == 0
    _no_traceback(capsys)
    text = next(case.packpath.rglob("README")).read_text()
    section = text.split("product/IRC10216.clean.fits\n", 1)[1].split("\n", 1)[0]
    assert "beam 0." not in section and "object IRC+10216" in section
