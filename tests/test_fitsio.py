"""FITS products: PB and mask images gzipped from cycle 3 on (standard gzip, same data and
header in astropy), other FITS untouched, header facts in the README, non-FITS refused."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from almaqa2.data import fitsio

from conftest import make_case

COMPRESSED = ("Elias29_cont.flux.fits", "Elias29_cont.mask.fits")  # in the nrao case


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_pb_and_mask_images_are_gzipped_from_cycle3(tmp_path: Path) -> None:
    case = make_case("nrao", tmp_path)  # cycle4-nopipe
    assert case.run_cli("copy") == 0
    product = next(case.packpath.rglob("product"))
    for name in COMPRESSED:
        packed = product / f"{name}.gz"
        source = case.origpath / "Imaging" / name
        assert not (product / name).exists()
        test = subprocess.run(["gzip", "-t", str(packed)], capture_output=True, text=True)
        assert test.returncode == 0, test.stderr
        with fits.open(packed) as got, fits.open(source) as want:
            assert got[0].header.tostring() == want[0].header.tostring()
            assert np.array_equal(got[0].data, want[0].data, equal_nan=True)
            assert got[0].data.dtype == want[0].data.dtype
    other = product / "Elias29_cont.pbcor.fits"  # a primary-beam *corrected* image
    assert _md5(other) == _md5(case.origpath / "Imaging" / "Elias29_cont.pbcor.fits")


@pytest.mark.parametrize("style", ["cycle1-nopipe", "cycle2-nopipe"])
def test_no_compression_before_cycle3(tmp_path: Path, style: str) -> None:
    case = make_case("nrao", tmp_path)
    assert case.run_cli("copy", "--style", style) == 0
    product = next(case.packpath.rglob("product"))
    assert not list(product.glob("*.gz"))
    for name in COMPRESSED:
        assert _md5(product / name) == _md5(case.origpath / "Imaging" / name)


def test_no_compression_in_cycle0(tmp_path: Path) -> None:
    case = make_case("nrao", tmp_path)
    assert case.run_cli("fake", "--style", "cycle0-nopipe") == 0
    product = next(case.packpath.rglob("product"))
    expected = [*COMPRESSED, "Elias29_cont.pbcor.fits"]
    assert sorted(p.name for p in product.iterdir()) == sorted(expected)


@pytest.mark.parametrize("mode", ["fake", "copy"])
def test_a_fits_file_that_is_not_fits_is_named(
    tmp_path: Path, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    case = make_case("nrao", tmp_path)
    bad = case.origpath / "Imaging" / "Elias29_cont.pbcor.fits"
    bad.write_text("exportfits failed: this is not an image\n")
    assert case.run_cli(mode) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "not a readable FITS image" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert os.listdir(case.packpath.parent) == []


def test_readme_summarises_each_product(tmp_path: Path) -> None:
    case = make_case("flat", tmp_path)
    assert case.run_cli("fake") == 0
    text = next(case.packpath.rglob("README")).read_text()
    section = text.split("Products\n========\n", 1)[1].split("Contents\n", 1)[0]
    facts = (
        'object IRC+10216; beam 0.432" x 0.360" PA 35.0 deg; rest frequency 230.538000 GHz;'
        " unit Jy/beam; shape 8 x 8 x 1 x 1 (RA---SIN, DEC--SIN, FREQ, STOKES)"
    )
    for dest in ("IRC10216.clean.fits", "IRC10216.clean.pb.fits.gz", "IRC10216.line.fits"):
        assert f"product/{dest}\n  {facts}\n" in section


def test_per_channel_beams_are_summarised_by_their_median(tmp_path: Path) -> None:
    header = fits.Header({"OBJECT": "Elias29", "BUNIT": "Jy/beam", "CTYPE1": "RA---SIN"})
    beams = fits.BinTableHDU.from_columns(
        [
            fits.Column("BMAJ", "E", unit="arcsec", array=[0.50, 0.40, 0.45]),
            fits.Column("BMIN", "E", unit="arcsec", array=[0.30, 0.20, 0.25]),
            fits.Column("BPA", "E", unit="deg", array=[10.0, 20.0, 30.0]),
            fits.Column("CHAN", "J", array=[0, 1, 2]),
            fits.Column("POL", "J", array=[0, 0, 0]),
        ],
        name="BEAMS",
    )
    path = tmp_path / "cube.fits"
    fits.HDUList([fits.PrimaryHDU(np.zeros((3, 4, 4), np.float32), header), beams]).writeto(path)
    info = fitsio.summary(path)
    assert info.beam == pytest.approx((0.45, 0.25, 30.0))
    assert info.beams == 3
    assert info.shape == (("RA---SIN", 4), ("AXIS2", 4), ("AXIS3", 3))
