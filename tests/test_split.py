"""Issue 21: ``qa2 split``, seed 003's science split without CASA.

What CASA 6.7's split makes, observed with CASA itself (``make interop`` compares value by
value): a spw selection renumbers SPECTRAL_WINDOW, DATA_DESCRIPTION and the rows of SOURCE,
FEED, SYSCAL, CALDEVICE and SYSPOWER; an intent selection renumbers STATE, not FIELD; a
field selection renumbers FIELD and SOURCE; POLARIZATION never; splitting the corrected
column sets SIGMA = 1/sqrt(WEIGHT) (-1 where WEIGHT is 0).  The expectations below are
computed here from the source MS with numpy, row by row, not with the code under test.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from casacore import tables as pt

from almaqa2.cli import main
from almaqa2.data import split
from almaqa2.errors import DestinationError
from almaqa2.package import package_dir
from almaqa2.testing import measurementsets as example_ms
from test_footprint import QA2
from test_real_casa import REAL, REAL_MS

from conftest import filled_only_in, run_limited, run_on_disk, tree_state

EB = "uid___A002_Xc1f2b3_X4d5"
SCIENCE = (1, 3)  # in example_ms.ALMA: the target's spws of more than 4 channels
TARGET_STATE = 3  # OBSERVE_TARGET#ON_SOURCE
ANY_INTENT = "*"


@pytest.fixture(scope="module")
def alma_ms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ALMA-like MS (example_ms.ALMA), never changed by the tests."""
    path = tmp_path_factory.mktemp("alma") / "working" / f"{EB}.ms"
    path.parent.mkdir()
    example_ms.write_ms(path, EB, "2019.1.00001.S", nchan=16, times=5, layout=example_ms.ALMA)
    return path


@pytest.fixture
def calibrated(alma_ms: Path, tmp_path: Path) -> Path:
    """``calibrated/`` as the restore leaves it: ``uid.ms -> working/uid.ms``."""
    where = tmp_path / "calibrated"
    shutil.copytree(alma_ms.parent, where / "working")
    (where / alma_ms.name).symlink_to(f"working/{alma_ms.name}")
    return where


def _open(path: Path, sub: str = "") -> Any:
    return pt.table(str(path / sub) if sub else str(path), ack=False)


def _cells(table: Any, column: str) -> list[np.ndarray]:
    return [table.getcell(column, row) for row in range(table.nrows())]


def _rows(source: Path, spws: tuple[int, ...], states: tuple[int, ...] | None) -> list[int]:
    """The source rows a selection keeps, found row by row."""
    with _open(source) as t:
        dds, st = t.getcol("DATA_DESC_ID"), t.getcol("STATE_ID")
        return [r for r in range(t.nrows())
                if dds[r] in spws and (states is None or st[r] in states)]  # fmt: skip


def _sigma_from_weight(weight: np.ndarray) -> np.ndarray:
    """CASA's SIGMA of a split corrected column, in single precision; -1 for no weight."""
    with np.errstate(divide="ignore"):
        return np.where(weight > 0, np.float32(1) / np.sqrt(weight), -1).astype(np.float32)


def _weight_from_sigma(sigma: np.ndarray) -> np.ndarray:
    """CASA's WEIGHT of a split data column, in single precision; 0 for no sigma."""
    with np.errstate(divide="ignore"):
        return np.where(sigma > 0, np.float32(1) / (sigma * sigma), 0).astype(np.float32)


def _check_rows(made: Path, source: Path, rows: list[int], then_data: bool = False) -> None:
    """The main table holds the source's ``rows``: CORRECTED_DATA as DATA, FLAG, FLAG_ROW,
    UVW, TIME copied; SIGMA from WEIGHT; ``then_data``: split again as the data column
    (the .source), WEIGHT from that SIGMA."""
    with _open(made) as got, _open(source) as want:
        assert got.nrows() == len(rows)
        assert "CORRECTED_DATA" not in got.colnames() and "MODEL_DATA" not in got.colnames()
        for i, row in enumerate(rows):
            assert np.array_equal(got.getcell("DATA", i), want.getcell("CORRECTED_DATA", row))
            assert np.array_equal(got.getcell("FLAG", i), want.getcell("FLAG", row))
            weight = want.getcell("WEIGHT", row)
            sigma = _sigma_from_weight(weight)
            if then_data:
                weight = _weight_from_sigma(sigma)
            assert np.array_equal(got.getcell("WEIGHT", i), weight)
            assert np.array_equal(got.getcell("SIGMA", i), sigma)
        for column in ("FLAG_ROW", "UVW", "TIME", "ANTENNA1", "ANTENNA2", "SCAN_NUMBER"):
            assert np.array_equal(got.getcol(column), want.getcol(column)[rows]), column


def test_science_split_and_source_as_casa_makes_them(calibrated: Path) -> None:
    working = calibrated / "working"
    before = tree_state(working)
    assert main(["split", str(calibrated)]) == 0
    assert tree_state(working) == before, "the source MS is never changed"
    assert sorted(os.listdir(calibrated)) == sorted([
        "working", f"{EB}.ms", f"{EB}.ms.split.cal", f"{EB}.ms.split.cal.flagversions",
        f"{EB}.ms.split.cal.source", f"{EB}.ms.split.cal.source.flagversions",
    ])  # fmt: skip
    source = working / f"{EB}.ms"
    cal, target = calibrated / f"{EB}.ms.split.cal", calibrated / f"{EB}.ms.split.cal.source"

    _check_rows(cal, source, _rows(source, SCIENCE, None))
    with _open(cal) as t, _open(source) as s:
        old_dd = s.getcol("DATA_DESC_ID")[_rows(source, SCIENCE, None)]
        assert np.array_equal(t.getcol("DATA_DESC_ID"), np.searchsorted(SCIENCE, old_dd))
        assert np.array_equal(
            t.getcol("STATE_ID"), s.getcol("STATE_ID")[_rows(source, SCIENCE, None)]
        )
    _check_subtables(cal, source, states=None)
    _opens_as_an_ms(cal)

    _check_rows(target, source, _rows(source, SCIENCE, (TARGET_STATE,)), then_data=True)
    with _open(target) as t:
        assert set(t.getcol("STATE_ID")) == {0}
        assert set(t.getcol("FIELD_ID")) == {2, 3}  # FIELD is not renumbered by intent
    _check_subtables(target, source, states=(TARGET_STATE,))


def _check_subtables(made: Path, source: Path, states: tuple[int, ...] | None) -> None:
    spw_names = [example_ms.ALMA.spws[i].name for i in SCIENCE]
    with _open(made, "SPECTRAL_WINDOW") as spw, _open(source, "SPECTRAL_WINDOW") as old:
        assert list(spw.getcol("NAME")) == spw_names
        for new, was in enumerate(SCIENCE):
            assert np.array_equal(spw.getcell("CHAN_FREQ", new), old.getcell("CHAN_FREQ", was))
    with _open(made, "DATA_DESCRIPTION") as dd:
        assert list(dd.getcol("SPECTRAL_WINDOW_ID")) == [0, 1]
        assert list(dd.getcol("POLARIZATION_ID")) == [0, 0]  # POLARIZATION keeps its ids
    with _open(made, "POLARIZATION") as pol, _open(source, "POLARIZATION") as old:
        assert pol.nrows() == old.nrows() == 2
    with _open(made, "SOURCE") as src:  # a row per source per spw kept, spw renumbered
        assert list(zip(src.getcol("SOURCE_ID"), src.getcol("SPECTRAL_WINDOW_ID"),
                        strict=True)) == [(s, w) for s in (0, 1, 2) for w in (0, 1)]  # fmt: skip
    with _open(made, "FEED") as feed:
        assert list(feed.getcol("SPECTRAL_WINDOW_ID")) == [0, 1] * len(example_ms.ANTENNAS)
    with _open(made, "STATE") as st, _open(source, "STATE") as old:
        want = list(old.getcol("OBS_MODE"))
        assert list(st.getcol("OBS_MODE")) == (
            want if states is None else [want[i] for i in states]
        )
    with _open(made, "FIELD") as field, _open(source, "FIELD") as old:
        assert list(field.getcol("NAME")) == list(old.getcol("NAME"))


def test_flags_are_saved_as_flagmanager_saves_them_and_restore(calibrated: Path) -> None:
    assert main(["split", str(calibrated / f"{EB}.ms"), "--no-source"]) == 0
    cal = calibrated / f"{EB}.ms.split.cal"
    versions = calibrated / f"{EB}.ms.split.cal.flagversions"
    assert sorted(os.listdir(versions)) == ["FLAG_VERSION_LIST", "flags.original_flags"]
    assert (versions / "FLAG_VERSION_LIST").read_text() == "original_flags : \n"
    assert not (calibrated / f"{EB}.ms.split.cal.source").exists()
    with _open(cal) as t:
        saved = _cells(t, "FLAG")
        saved_rows = t.getcol("FLAG_ROW")
    assert any(f.any() for f in saved) and not all(f.all() for f in saved)
    with pt.table(str(cal), readonly=False, ack=False) as t:  # flag everything, then restore
        for row in range(t.nrows()):
            t.putcell("FLAG", row, np.ones_like(saved[row]))
        t.putcol("FLAG_ROW", np.ones(t.nrows(), bool))
    with (
        pt.table(str(cal), readonly=False, ack=False) as t,
        _open(versions, "flags.original_flags") as flags,
    ):
        assert flags.nrows() == t.nrows()
        for row in range(t.nrows()):
            t.putcell("FLAG", row, flags.getcell("FLAG", row))
        t.putcol("FLAG_ROW", flags.getcol("FLAG_ROW"))
    with _open(cal) as t:
        assert all(np.array_equal(a, b) for a, b in zip(_cells(t, "FLAG"), saved, strict=True))
        assert np.array_equal(t.getcol("FLAG_ROW"), saved_rows)


def test_a_field_selection_renumbers_fields_and_sources(alma_ms: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["split", str(alma_ms), "--out", str(out), "--intent", ANY_INTENT,
            "--field", "J1256-0547"]  # fmt: skip
    assert main(argv) == 0
    target = out / f"{EB}.ms.split.cal.source"
    with _open(target) as t:
        assert set(t.getcol("FIELD_ID")) == {0}
        assert set(t.getcol("STATE_ID")) == {2}  # every state kept: ids unchanged
    with _open(target, "FIELD") as field:
        assert list(field.getcol("NAME")) == ["J1256-0547"]
        assert list(field.getcol("SOURCE_ID")) == [0]
    with _open(target, "SOURCE") as src:
        assert list(src.getcol("NAME")) == ["J1256-0547"] * 2
        assert list(src.getcol("SOURCE_ID")) == [0, 0]
        assert list(src.getcol("SPECTRAL_WINDOW_ID")) == [0, 1]


def test_spw_list_and_data_column(alma_ms: Path, tmp_path: Path) -> None:
    """``--spw 0,5`` keeps the WVR spw (one correlation, its own POLARIZATION row) and the
    calibrator-only spw; ``--datacolumn data`` sets WEIGHT from SIGMA, as CASA does."""
    out = tmp_path / "out"
    assert main(["split", str(alma_ms), "--out", str(out), "--spw", "0,5",
                 "--datacolumn", "data", "--no-source"]) == 0  # fmt: skip
    cal = out / f"{EB}.ms.split.cal"
    rows = _rows(alma_ms, (0, 5), None)
    with _open(cal) as got, _open(alma_ms) as want:
        assert got.nrows() == len(rows)
        for i, r in enumerate(rows):
            assert np.array_equal(got.getcell("DATA", i), want.getcell("DATA", r))
            assert np.array_equal(got.getcell("SIGMA", i), want.getcell("SIGMA", r))
            assert np.array_equal(
                got.getcell("WEIGHT", i), _weight_from_sigma(want.getcell("SIGMA", r))
            )
        assert any(not np.array_equal(got.getcell("WEIGHT", i), want.getcell("WEIGHT", r))
                   for i, r in enumerate(rows))  # fmt: skip
    with _open(cal, "DATA_DESCRIPTION") as dd:
        assert list(dd.getcol("POLARIZATION_ID")) == [1, 0]


def test_dry_run_says_what_would_be_made_and_writes_nothing(
    calibrated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree_state(calibrated)
    assert main(["split", str(calibrated), "--dry-run", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    made = found["splits"][0]["makes"]
    assert [m["name"] for m in made] == [f"{EB}.ms.split.cal", f"{EB}.ms.split.cal.source"]
    assert [s["id"] for s in made[0]["spws"]] == list(SCIENCE)
    assert made[1]["states"] == ["OBSERVE_TARGET#ON_SOURCE"]
    assert tree_state(calibrated) == before


def test_the_real_alma_ms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """pyuvdata's real ALMA MS: DATA only (no CORRECTED_DATA), one spw of 11 channels,
    OBSERVE_TARGET; its ASDM_* subtables come along."""
    if not (REAL / ".done").is_file():
        pytest.fail("the real data is missing: run 'make real-data' (make test does)")
    calibrated = tmp_path / "calibrated"
    shutil.copytree(REAL / REAL_MS, calibrated / "uid___A002_Xca5b1c_X5707.ms")
    before = tree_state(calibrated)
    assert main(["split", str(calibrated)]) == 2
    assert "no CORRECTED_DATA column" in capsys.readouterr().err
    assert tree_state(calibrated) == before, "nothing written"
    assert main(["split", str(calibrated), "--datacolumn", "data"]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert "names a subtable ASDM_CALATMOSPHERE that does not exist" in said  # pyuvdata's cut
    source = calibrated / "uid___A002_Xca5b1c_X5707.ms"
    for made in (
        "uid___A002_Xca5b1c_X5707.ms.split.cal",
        "uid___A002_Xca5b1c_X5707.ms.split.cal.source",
    ):
        with _open(calibrated / made) as got, _open(source) as want:
            assert got.nrows() == want.nrows() == 40
            assert np.array_equal(got.getcol("DATA"), want.getcol("DATA"))
            assert np.array_equal(got.getcol("SIGMA"), want.getcol("SIGMA"))
            asdm = sorted(
                k for k in want.getkeywords() if k.startswith("ASDM_") and (source / k).is_dir()
            )
            assert asdm and sorted(k for k in got.getkeywords() if k.startswith("ASDM_")) == asdm
            for name in asdm:
                with _open(calibrated / made, name) as a, _open(source, name) as b:
                    assert a.nrows() == b.nrows()
        _opens_as_an_ms(calibrated / made)


def _opens_as_an_ms(path: Path) -> None:
    """casacore opens the MS and every subtable it names."""
    with _open(path) as ms:
        assert ms.getkeyword("MS_VERSION") == 2.0
        subtables = [k for k, v in ms.getkeywords().items() if str(v).startswith("Table: ")]
        assert {"ANTENNA", "SPECTRAL_WINDOW", "FIELD", "STATE"} <= set(subtables)
        for name in subtables:
            with pt.table(ms.getkeyword(name), ack=False) as sub:
                assert sub.nrows() >= 0


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--intent", "NOTHING*"], "selects no data"),
        (["--spw", "9"], "has no spw 9"),
        (["--spw", "one"], "is not a list of spw ids"),
        (["--field", "NGC253"], "has no field NGC253"),
        (["--field", "J1229+0203", "--no-source"], "--no-source makes none"),
    ],
)
def test_a_selection_that_cannot_be_made_is_refused(
    calibrated: Path, argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree_state(calibrated)
    assert main(["split", str(calibrated), *argv]) == 2
    err = capsys.readouterr().err
    assert said in " ".join(err.split()) and err.count("error:") == 1 and "Traceback" not in err
    assert tree_state(calibrated) == before


def test_not_an_ms_and_an_existing_output_are_refused(
    calibrated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["split", str(empty)]) == 2
    assert "no MeasurementSet" in capsys.readouterr().err
    fake = tmp_path / "fake.ms"
    fake.mkdir()
    (fake / "table.dat").write_bytes(b"not a table")
    assert main(["split", str(fake)]) == 2
    assert "casacore cannot read this MeasurementSet" in capsys.readouterr().err
    (calibrated / f"{EB}.ms.split.cal.source").mkdir()
    before = tree_state(calibrated)
    assert main(["split", str(calibrated)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert tree_state(calibrated) == before


@pytest.mark.parametrize("column", ["CORRECTED_DATA", "FLAG"])
def test_an_ms_whose_data_are_cut_short_is_refused_as_unreadable(
    alma_ms: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], column: str
) -> None:
    """A data file of the MS cut short (a partial copy) fails in casacore as the split
    reads it: the MS is named as unreadable, not the output as unwritable; nothing is
    written."""
    damaged = tmp_path / alma_ms.name
    shutil.copytree(alma_ms, damaged)
    with _open(damaged) as table:  # (a copy: casacore may write its lock file)
        seq = next(dm["SEQNR"] for dm in table.getdminfo().values() if column in dm["COLUMNS"])
    cube = max(damaged.glob(f"table.f{seq}_TSM*"), key=lambda p: p.stat().st_size)
    os.truncate(cube, 100)
    out = tmp_path / "out"
    assert main(["split", str(damaged), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "casacore cannot read this MeasurementSet" in err and f": {damaged};" in err
    assert not out.exists() or os.listdir(out) == []


@pytest.mark.parametrize(
    ("column", "filled_spws"),
    [("CORRECTED_DATA", ()), ("CORRECTED_DATA", (0, *SCIENCE)), ("FLAG", ())],
)
def test_a_column_without_data_in_the_rows_to_split_is_refused(
    alma_ms: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], column: str,
    filled_spws: tuple[int, ...],
) -> None:  # fmt: skip
    """A CORRECTED_DATA (or FLAG) column whose cells are undefined in rows the split takes
    (added, never filled) would split into an MS without visibilities (or without its
    flags saved): refused before anything is written; without CORRECTED_DATA's, the data
    column still splits.  Cells undefined only in rows the split does not take (spw 2
    here, not a science spw) are no reason to refuse."""
    ms = tmp_path / alma_ms.name
    shutil.copytree(alma_ms, ms)
    filled_only_in(ms, column, filled_spws)
    out = tmp_path / "out"
    if not filled_spws:
        assert main(["split", str(ms), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"{column} column holds no data" in err and f": {ms};" in err
        assert not out.exists()
        data = main(["split", str(ms), "--out", str(out), "--datacolumn", "data"])
        assert data == (0 if column == "CORRECTED_DATA" else 2)
        return
    assert main(["split", str(ms), "--out", str(out)]) == 0
    with _open(out / f"{ms.name}.split.cal") as made:
        assert made.nrows() == len(_rows(ms, SCIENCE, None))
        assert all(made.iscelldefined("DATA", row) for row in range(made.nrows()))


def _spw_of_dd_0(ms: Path, spw: int) -> None:
    with pt.table(str(ms / "DATA_DESCRIPTION"), readonly=False, ack=False) as dds:
        dds.putcell("SPECTRAL_WINDOW_ID", 0, spw)


def _no_spws(ms: Path) -> None:
    with pt.table(str(ms / "SPECTRAL_WINDOW"), readonly=False, ack=False) as spws:
        spws.removerows(list(range(spws.nrows())))


def _without(column: str) -> Any:
    def remove(ms: Path) -> None:
        with pt.table(str(ms), readonly=False, ack=False) as table:
            table.removecols([column])

    return remove


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda ms: _spw_of_dd_0(ms, 99), "data description 0 names spectral window 99"),
        (_no_spws, "data description 0 names spectral window 0, which it does not have"),
        (_without("FLAG"), "the MS has no FLAG column, which every MS has"),
        (_without("FLAG_ROW"), "the MS has no FLAG_ROW column, which every MS has"),
        (_without("WEIGHT"), "the MS has no WEIGHT column, which every MS has"),
        (_without("SIGMA"), "the MS has no SIGMA column, which every MS has"),
    ],
    ids=["dd-to-a-spw-beyond", "no-spw-rows", "no-FLAG", "no-FLAG_ROW", "no-WEIGHT", "no-SIGMA"],
)
def test_an_inconsistent_ms_is_refused_in_one_sentence(
    alma_ms: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    damage: Any, said: str,
) -> None:  # fmt: skip
    """Ids that point nowhere, or a column every MS has missing, stop the split before
    anything is written, with one sentence naming the MS (they raised an IndexError, or
    casacore's TaQL error as the flags were saved; without WEIGHT or SIGMA the split made
    MSes that CASA 6.7 does not open: 'table is not a valid MS', as it does not open
    the source)."""
    ms = tmp_path / alma_ms.name
    shutil.copytree(alma_ms, ms)
    damage(ms)
    out = tmp_path / "out"
    assert main(["split", str(ms), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert said in err and f": {ms};" in err and "Traceback" not in err
    assert not out.exists()


def test_a_pipe_in_the_ms_is_refused_as_never_read(
    alma_ms: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A data file of the MS that is a pipe (which casacore would wait on) stops the split
    before anything is written, named, in words that fit a split (they spoke of packaging
    and of the reduction directory)."""
    ms = tmp_path / alma_ms.name
    shutil.copytree(alma_ms, ms)
    (ms / "table.f1").unlink()
    os.mkfifo(ms / "table.f1")
    out = tmp_path / "out"
    assert main(["split", str(ms), "--out", str(out)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"(a pipe, socket or device), which is never read or packaged: {ms}/table.f1;" in err
    assert "reduction" not in err and not out.exists()


@pytest.mark.parametrize("limit", [16 << 10, 48 << 10])
def test_a_write_that_fails_midway_is_one_sentence_and_leaves_nothing(
    alma_ms: Path, tmp_path: Path, limit: int
) -> None:
    """A disk that fills up while the split writes (here a limit on the size of a file,
    which fails casacore's writes the same way, as EFBIG): one sentence, exit 2, nothing
    left.  casacore, closing a table whose writes failed, wrote again and threw out of a
    C++ destructor, which aborted the process (exit 134) and left its staging behind."""
    ms = tmp_path / "working" / alma_ms.name
    shutil.copytree(alma_ms, ms)
    before = tree_state(ms.parent)
    out = tmp_path / "out"

    done = run_limited(["split", str(ms), "--out", str(out)], limit)
    assert done.returncode == 2, done.stderr
    assert "terminate called" not in done.stderr and "Traceback" not in done.stderr
    said = " ".join(done.stderr.split())
    assert said.startswith("error: casacore could not write the MeasurementSet"), said
    assert said.endswith("check the free space and permissions of the output directory's"
                         " file system."), said  # fmt: skip
    assert f": {out}/{ms.name}.split.cal" in said and "staging" not in said, (
        "the MS named where it was to be, not in the hidden staging gone with the run"
    )
    assert not out.exists(), "nothing left, not even the --out made for it"
    assert tree_state(ms.parent) == before


def test_a_real_disk_that_fills_midway_is_one_sentence_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    """The same on a real disk of 40 MB, more than the 16 MB the split asks to start, that
    a split of 88 MB fills: casacore's own write fails (no file-size limit standing in)."""
    ms = tmp_path / "working" / f"{EB}.ms"
    ms.parent.mkdir()
    example_ms.write_ms(ms, EB, "2019.1.00001.S", nchan=1024, times=120, layout=example_ms.ALMA)
    disk = tmp_path / "disk"
    disk.mkdir()
    done, left = run_on_disk(["split", str(ms), "--out", str(disk / "out")], disk, "size=40m")
    assert done.returncode == 2, done.stderr
    assert "terminate called" not in done.stderr and "Traceback" not in done.stderr
    said = " ".join(done.stderr.split())
    assert said.startswith("error: casacore could not write the MeasurementSet"), said
    assert f": {disk}/out/{ms.name}.split.cal;" in said, said
    assert left == []


def test_a_file_system_all_but_full_is_refused_before_casacore_writes(
    alma_ms: Path, tmp_path: Path
) -> None:
    """casacore's copy of a table's structure aborts the process when a write fails inside
    it (an exception out of a destructor: seen with a file-size limit of 4 KB), so a file
    system with less than ``ROOM`` free is refused before it starts: one sentence naming
    --out, nothing left (a real disk of 8 MB)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / "out"
    done, left = run_on_disk(["split", str(alma_ms), "--out", str(out)], disk, "size=8m")
    assert done.returncode == 2, done.stderr
    said = " ".join(done.stderr.split())
    assert said == (
        f"error: the file system has less than 16 MB free to write the MeasurementSet: {out};"
        " free some space, or choose another output directory, then run again."
    ), said
    assert left == []


def test_what_a_killed_split_left_is_removed_by_the_next(alma_ms: Path, tmp_path: Path) -> None:
    """A split killed midway (SIGKILL: no clean-up of its own runs) left its staging in
    --out for ever.  The next split of that MS removes it, under the lock that keeps two
    splits of one MS apart (and leaves neither lock nor staging); what is not a split's
    staging is left alone."""
    out = tmp_path / "out"
    left = out / f"{package_dir.staging_prefix(out / f'{EB}.ms.split.cal')}k1lled"
    (left / f"{EB}.ms.split.cal").mkdir(parents=True)
    (left / f"{EB}.ms.split.cal" / "table.f1").write_bytes(b"half-written")
    theirs = out / f".{EB}.ms.split.cal.mine"
    theirs.mkdir()
    assert main(["split", str(alma_ms), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [theirs.name, *(f"{EB}.ms.split.cal{s}" for s in ("", ".flagversions", ".source",
                                                            ".source.flagversions"))]
    )  # fmt: skip
    _opens_as_an_ms(out / f"{EB}.ms.split.cal")


@pytest.mark.parametrize("inside", ["", "ANTENNA", "new"])
def test_an_out_inside_the_ms_split_is_refused(
    calibrated: Path, capsys: pytest.CaptureFixture[str], inside: str
) -> None:
    """--out in the MS split (itself, a subtable, a new directory in it; named through
    the restore's link) would write into the PI's MS: refused, nothing written."""
    before = tree_state(calibrated)
    out = calibrated / f"{EB}.ms" / inside
    assert main(["split", str(calibrated), "--out", str(out)]) == 2
    assert "inside the MS they are split from" in capsys.readouterr().err
    assert tree_state(calibrated) == before


def test_out_is_made_as_its_last_level_only(alma_ms: Path, tmp_path: Path) -> None:
    typo = tmp_path / "typo" / "new"
    assert main(["split", str(alma_ms), "--out", str(typo), "--no-source"]) == 2
    assert not typo.parent.exists()
    assert main(["split", str(alma_ms), "--out", str(tmp_path / "new"), "--no-source"]) == 0
    assert sorted(os.listdir(tmp_path / "new")) == [
        f"{EB}.ms.split.cal",
        f"{EB}.ms.split.cal.flagversions",
    ]


def test_an_ms_named_inside_working_splits_beside_its_link(calibrated: Path) -> None:
    assert main(["split", str(calibrated / "working" / f"{EB}.ms"), "--no-source"]) == 0
    assert (calibrated / f"{EB}.ms.split.cal").is_dir()
    assert sorted(os.listdir(calibrated / "working")) == [f"{EB}.ms"]


@pytest.mark.parametrize("which", ["a link to nothing", "an incomplete directory"])
def test_a_calibrated_ms_missing_among_others_is_refused(
    calibrated: Path, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    """Among ``calibrated/``'s MSes, one that is none (the restore's link to an MS not
    there, or a directory without table.dat) would leave its EB unsplit, unsaid: refused,
    named, before anything is written."""
    other = calibrated / "uid___A002_Xc1f2b3_X9e9.ms"
    if which == "a link to nothing":
        other.symlink_to("working/uid___A002_Xc1f2b3_X9e9.ms")
    else:
        other.mkdir()
    before = tree_state(calibrated)
    assert main(["split", str(calibrated)]) == 2
    err = capsys.readouterr().err
    assert "this is none" in err and str(other) in err
    assert ("a link to nothing" in err) == (which == "a link to nothing")
    assert tree_state(calibrated) == before


# -- several MSes: their parts shared by two processes ---------------------------------------

THREE = ("uid___A002_Xc1f2b3_X1e1", "uid___A002_Xc1f2b3_X2e2", "uid___A002_Xc1f2b3_X3e3")


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """calibrated/ with three ALMA-like MSes of different sizes, never changed."""
    where = tmp_path_factory.mktemp("three") / "calibrated"
    where.mkdir()
    for uid, times in zip(THREE, (5, 11, 3), strict=True):
        example_ms.write_ms(where / f"{uid}.ms", uid, "2019.1.00001.S", nchan=16, times=times,
                            layout=example_ms.ALMA)  # fmt: skip
    return where


@pytest.fixture(scope="module")
def alone(three: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each of the three MSes split alone, one after the other: every file made by its md5
    (casacore writes the same bytes for the same split)."""
    out = tmp_path_factory.mktemp("alone")
    for uid in THREE:
        split.split(split.Request((three / f"{uid}.ms",), out=out))
    return _files(out)


_OUTPUTS = {
    f"{uid}.ms.split.cal{more}"
    for uid in THREE
    for more in ("", ".flagversions", ".source", ".source.flagversions")
}


def _files(out: Path) -> dict[str, str]:
    """Every file below ``out`` by its md5; ``out`` holds outputs only (no staging left)."""
    assert set(os.listdir(out)) <= _OUTPUTS
    return {rel: value[1] for rel, value in tree_state(out).items() if value[0] == "file"}


def test_several_mses_are_shared_by_two_processes_and_split_as_each_alone(
    three: Path, alone: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The six parts of three MSes are made by both processes; every file is the same as
    when each MS is split alone."""
    caplog.set_level(logging.DEBUG, logger="almaqa2.forked")
    done: list[tuple[int, int, str]] = []
    made = split.split(split.Request((three,), out=tmp_path), lambda *a: done.append(a))
    assert [m.path.name for m in made] == [
        f"{uid}.ms.split.cal{more}" for uid in THREE for more in ("", ".source")
    ]
    assert _files(tmp_path) == alone
    theirs = re.search(r"(\d+) of 6 parts were made by a helper", caplog.text)
    assert theirs and 0 < int(theirs[1]) < 6
    assert [(n, total) for n, total, _ in done] == [(1, 3), (2, 3), (3, 3)]
    assert sorted(name for *_, name in done) == [f"{uid}.ms" for uid in THREE]


@pytest.mark.parametrize("killed_after", [0, 1, 2], ids=lambda n: f"after-{n + 1}-writes")
def test_the_parts_a_dying_helper_left_are_made_here(
    three: Path, alone: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    killed_after: int,
) -> None:  # fmt: skip
    """If the helper dies (here: killed by itself once it has written an MS or an MS's flag
    versions, before it says its part is made), the parts it did not finish are made
    afresh here, over what it left: every file is still as when each MS is split alone."""
    us, count = os.getpid(), [0]

    def dying(write: Any) -> Any:
        def written(*args: Any) -> Any:
            done = write(*args)
            if os.getpid() != us:
                if count[0] == killed_after:
                    os.kill(os.getpid(), signal.SIGKILL)
                count[0] += 1
            return done

        return written

    monkeypatch.setattr(split, "_make", dying(split._make))
    monkeypatch.setattr(split, "_save_flags", dying(split._save_flags))
    split.split(split.Request((three,), out=tmp_path))
    assert _files(tmp_path) == alone


def test_a_part_that_fails_leaves_only_whole_mses(
    three: Path, alone: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part that fails, in either process (the helper's is made again here, and fails
    here), stops the split: the MSes completed meanwhile are whole, as when split alone;
    of the others nothing is left, and no staging."""
    make = split._make
    failing = f"{THREE[1]}.ms.split.cal.source"

    def fails(table: Any, one: split.Planned, staging: Path, step: split.Step) -> int:
        if step.name == failing:
            raise DestinationError("the disk is full", staging / step.name)
        return make(table, one, staging, step)

    monkeypatch.setattr(split, "_make", fails)
    with pytest.raises(DestinationError, match="the disk is full"):
        split.split(split.Request((three,), out=tmp_path))
    present = set(os.listdir(tmp_path))
    for uid in THREE:  # each MS's four outputs, all or none
        assert len({name for name in present if name.startswith(f"{uid}.")}) in (0, 4)
    assert not any(name.startswith(THREE[1]) for name in present)
    assert _files(tmp_path) == {
        rel: md5 for rel, md5 in alone.items() if rel.split("/")[0] in present
    }


def test_the_row_buckets_of_the_ms_are_read_once_a_pass_not_once_a_column(tmp_path: Path) -> None:
    """The main table's scalar columns live in the buckets of a StandardStMan (each holds
    every column's values of a range of rows); copied one column after the other through
    the 2 buckets an MS caches by default, they were read again for each column.  Seen by
    strace: the file is read about three times in all (for the plan, then by each
    process), not once per column."""
    ms = tmp_path / f"{EB}.ms"
    example_ms.write_ms(ms, EB, "2019.1.00001.S", nchan=4, times=60, layout=example_ms.ALMA)
    with _open(ms) as table:
        (seqnr,) = (
            dm["SEQNR"] for dm in table.getdminfo().values() if dm["TYPE"] == "StandardStMan"
        )
    bucketed = ms / f"table.f{seqnr}"
    assert bucketed.stat().st_size > 100 * 4096, "too few buckets to tell"
    log = tmp_path / "strace"
    out = tmp_path / "out"
    argv = [*QA2, "split", str(ms), "--out", str(out)]
    trace = ["strace", "-f", "-qq", "-y", "-e", "trace=read,pread64", "-o", str(log)]
    subprocess.run([*trace, *argv], check=True, capture_output=True)
    read = sum(
        int(m[1])
        for m in re.finditer(rf"read(?:64)?\(\d+<{re.escape(str(bucketed))}>, .*\) = (\d+)",
                             log.read_text())
    )  # fmt: skip
    assert 0 < read <= 3.5 * bucketed.stat().st_size
