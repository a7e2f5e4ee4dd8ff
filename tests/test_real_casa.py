"""Real CASA output (issue 14, acceptance 4), on real bytes: the ALMA MeasurementSet and the
SMA calibration tables pyuvdata 3.2.3 ships (``make real-data`` unpacks them), changed with
casacore only where CASA's split or flagmanager would have changed them, and CASA 6 log and
fluxscale lines as CASA writes them."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from casacore import tables

from almaqa2.cli import main
from almaqa2.data import ms
from almaqa2.helpers.fluxscale import parse
from almaqa2.testing import reductions as example

from conftest import md5sum_check, tree_state

REAL = Path(__file__).parent.parent / ".cache" / "real-data"
REAL_MS = "X5707_1spw_1scan_10chan_1time_1bl_noatm.ms"
EB = "uid___A002_Xca5b1c_X5707"  # its OBSERVATION/SCHEDULE says ExecBlock uid://A002/Xca5b1c/X5707
CALTABLES = ("sma.ms.bcal", "sma.ms.amp.gcal", "sma.ms.pha.gcal", "sma.ms.tcal")


@pytest.fixture
def real(tmp_path: Path) -> Path:
    """A copy of the real data (tests change it)."""
    if not (REAL / ".done").is_file():
        pytest.fail("the real data is missing: run 'make real-data' (make test does)")
    return Path(shutil.copytree(REAL, tmp_path / "real", ignore=shutil.ignore_patterns(".done")))


def _eb_dir(real: Path, where: Path) -> Path:
    """An EB directory of a manual reduction made of the real MS and caltables."""
    eb_dir = where / "SB" / "X5707"
    eb_dir.mkdir(parents=True)
    shutil.copytree(real / REAL_MS, eb_dir / f"{EB}.ms.split.cal")
    for name in CALTABLES:
        shutil.copytree(real / name, eb_dir / f"{EB}.ms.split.{name.removeprefix('sma.ms.')}")
    (eb_dir / f"{EB}.ms.scriptForCalibration.py").write_text("# calibration\n")
    return eb_dir


def test_the_real_alma_ms_is_described(real: Path) -> None:
    info = ms.describe(real / REAL_MS)
    assert info.eb == EB and info.project == "uid://A001/X1221/X673"
    assert info.start.date() == datetime(2018, 3, 16, tzinfo=UTC).date()
    assert info.antennas == ("DA41", "DA42") and info.spws[0].channels == 11
    assert info.fields == (("GAMA567624", ("OBSERVE_TARGET",)),)


def _as_split_leaves_it(path: Path) -> float:
    """OBSERVATION as CASA's split, concat and importuvfits leave it: SCHEDULE cells
    undefined, TIME_RANGE start == end.  Returns the main table's first TIME."""
    obs = tables.table(str(path / "OBSERVATION"), readonly=False, ack=False)
    obs.removecols(["SCHEDULE"])
    obs.addcols(tables.makearrcoldesc("SCHEDULE", "", ndim=1, valuetype="string"))
    ranges = obs.getcol("TIME_RANGE")
    ranges[:, 1] = ranges[:, 0]
    obs.putcol("TIME_RANGE", ranges)
    assert not obs.iscelldefined("SCHEDULE", 0)
    obs.close()
    main_table = tables.table(str(path), ack=False)
    times = main_table.getcol("TIME")
    main_table.close()
    return float(times.min()), float(times.max())


def test_an_ms_as_split_leaves_it_is_described(real: Path) -> None:
    path = real / f"{EB}.ms.split"
    (real / REAL_MS).rename(path)
    low, high = _as_split_leaves_it(path)
    info = ms.describe(path)
    assert info.eb == EB  # from the name, the SCHEDULE cell being undefined
    assert info.start.timestamp() == pytest.approx(low - 3506716800, abs=1e-3)
    assert (info.end - info.start).total_seconds() == pytest.approx(high - low, abs=1e-3)


def _flagversions(ms_path: Path) -> Path:
    """``<ms>.flagversions`` as CASA's flagmanager saves it: a plain directory with
    FLAG_VERSION_LIST and one flags table per version (the MS's FLAG and FLAG_ROW)."""
    saved = ms_path.with_name(ms_path.name + ".flagversions")
    saved.mkdir()
    (saved / "FLAG_VERSION_LIST").write_text("Original : Original flags at import into CASA\n")
    source = tables.table(str(ms_path), ack=False)
    flags = source.getcol("FLAG")
    desc = tables.maketabdesc(
        [
            tables.makearrcoldesc("FLAG", False, ndim=2, shape=list(flags.shape[1:])),
            tables.makescacoldesc("FLAG_ROW", False),
        ]
    )
    saved_flags = tables.table(str(saved / "flags.Original"), desc, nrow=len(flags), ack=False)
    saved_flags.putcol("FLAG", flags)
    saved_flags.putcol("FLAG_ROW", source.getcol("FLAG_ROW"))
    saved_flags.close()
    source.close()
    return saved


@pytest.mark.parametrize("mode", ["copy", "hard"])
def test_a_reduction_of_real_tables_packages_strictly(
    real: Path, tmp_path: Path, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    eb_dir = _eb_dir(real, tmp_path)
    _flagversions(eb_dir / f"{EB}.ms.split.cal")
    (eb_dir / "casa-20250101-000000.log").write_text(
        "2025-01-01 00:00:00\tINFO\t::casa\tCASA Version MODULAR 6.7.0.31\n"
        "2025-01-01 00:00:00\tINFO\t::casa\tChecking Measures tables in data repository\n"
    )
    readme = tmp_path / "README.header.txt"
    readme.write_text(example.HEADER)
    packpath = tmp_path / "out" / "2017.1.00001.S"
    packpath.parent.mkdir()
    before = tree_state(eb_dir.parent)
    argv = ["package", str(eb_dir.parent), str(packpath), "--readme", str(readme)]
    assert main([*argv, "--style", "cycle0-nopipe", "--mode", mode, "--strict"]) == 0
    assert "unclassified" not in capsys.readouterr().err
    member = packpath / "sg_ouss_id" / "group_ouss_id" / "member_ouss_id"
    assert not list(member.rglob("*.flagversions"))
    calibrated = member / "calibrated" / f"{EB}.ms.split.cal"
    source = tables.table(str(eb_dir / f"{EB}.ms.split.cal"), ack=False)
    packaged = tables.table(str(calibrated), ack=False)
    assert np.array_equal(packaged.getcol("DATA"), source.getcol("DATA"))
    asdm = sorted(k for k in packaged.getkeywords() if k.startswith("ASDM_"))
    assert asdm == sorted(k for k in source.getkeywords() if k.startswith("ASDM_")) and asdm
    packaged.close()
    source.close()
    for name in CALTABLES:
        table = f"{EB}.ms.split.{name.removeprefix('sma.ms.')}"
        copy = member / "calibration" / f"{EB}.calibration" / table
        assert _contents(copy) == _contents(real / name)
        opened = tables.table(str(copy), ack=False)
        assert opened.nrows() > 0
        opened.close()
    text = (member / "README").read_text()
    assert "6.7.0.31" in text and "Execution blocks" in text and "GAMA567624" in text
    assert md5sum_check(packpath).returncode == 0
    assert tree_state(eb_dir.parent) == before


def _contents(table: Path) -> dict[str, object]:
    """Every file of a table directory by its md5."""
    return {k: v[1] for k, v in tree_state(table).items() if v[0] == "file"}


def test_casa_6_7_fluxscale_lines_keep_the_spectral_index() -> None:
    text = (
        "Flux density for 3C286 in SpW=0 (freq=1.41342e+09 Hz) is: 14.8 +/- 0.01 "
        "(SNR = 1480, N = 54)\n"
        "Flux density for 3C286 in SpW=1 (freq=1.41392e+09 Hz) is: 14.9 +/- 0.01 "
        "(SNR = 1490, N = 54)\n"
        "Fitted spectrum for 3C286 with fitorder=1: Flux density = 14.85 +/- 0.0121 "
        "(freq=1.41342 GHz) spidx: a_1 (spectral index) =-4.72419 +/- 1.69899 covariance "
        "matrix for the fit:  covar(0,0)=1.2e-07 covar(0,1)=3.4e-06 covar(1,0)=3.4e-06 "
        "covar(1,1)=0.00288\n"
    )
    measurements, fits = parse(text, EB)
    assert [f.spidx for f in fits] == [-4.72419] and fits[0].spidx_error == 1.69899
    from almaqa2.helpers.fluxscale import Fluxes

    rows = Fluxes((EB,), tuple(measurements), tuple(fits)).by_spw("3C286")
    assert [r.spw for r in rows] == [0, 1], "spws 0.5 MHz apart stay apart"
