"""MeasurementSets (SPEC §4.2): cycle-0 copy and hard modes deliver reduced MSes, read and
checked here with casacore itself; bad MSes and a missing casacore are clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from casacore import tables

from almaqa2 import manyfiles
from almaqa2.copying import copy_file
from almaqa2.data import ms
from almaqa2.package import scan
from almaqa2.package.rules import Transform
from almaqa2.testing import measurementsets as example_ms
from test_real_casa import REAL, REAL_MS

from conftest import Case, filled_only_in, md5sum_check, tree_state

SCRATCH = ("CORRECTED_DATA", "MODEL_DATA")
EBS = ("uid___A002_X3c9295_X8c", "uid___A002_X3dc0e7_X528")
SOURCE_DIRS = {"uid___A002_X3c9295_X8c": "X8c", "uid___A002_X3dc0e7_X528": "X528"}


def _open(path: Path) -> tables.table:
    return tables.table(str(path), ack=False)


def _column_bytes(path: Path, column: str) -> bytes:
    table = _open(path)
    try:
        return table.getcol(column).tobytes()
    finally:
        table.close()


def _subtables(path: Path) -> dict[str, int]:
    """{subtable keyword: rows}, each subtable opened through the MS's own keyword."""
    table = _open(path)
    found = {}
    for name, value in table.getkeywords().items():
        if isinstance(value, str) and value.startswith("Table: "):
            sub = tables.table(value, ack=False)
            found[name] = sub.nrows()
            sub.close()
    table.close()
    return found


@pytest.mark.parametrize("mode", ["copy", "hard"])
def test_project229_delivers_reduced_measurement_sets(case229: Case, mode: str) -> None:
    before = tree_state(case229.origpath)
    assert case229.run_cli(mode) == 0
    member = next(case229.packpath.glob("*/*/*"))
    for eb in EBS:
        source = case229.origpath / SOURCE_DIRS[eb] / f"{eb}.ms.split"
        raw = member / "raw" / f"{eb}.ms.split"
        calibrated = member / "calibrated" / f"{eb}.ms.split.cal"
        for packaged in (raw, calibrated):
            columns = _open(packaged).colnames()
            assert "DATA" in columns and not set(SCRATCH) & set(columns), packaged
            assert _subtables(packaged) == _subtables(source)
            assert _open(packaged).nrows() == _open(source).nrows()
        assert _column_bytes(raw, "DATA") == _column_bytes(source, "DATA")
        source_cal = source.with_name(f"{eb}.ms.split.cal")
        assert _column_bytes(calibrated, "DATA") == _column_bytes(source_cal, "CORRECTED_DATA")
        assert _column_bytes(calibrated, "UVW") == _column_bytes(source_cal, "UVW")
    assert tree_state(case229.origpath) == before, "the source MSes must not change"
    done = md5sum_check(case229.packpath)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hard_mode_never_links_a_reduced_ms_to_its_source(case229: Case) -> None:
    """casacore writes into the reduced MS: a hard link would carry that into the source."""
    assert case229.run_cli("hard") == 0
    sources = {p.stat().st_ino for p in case229.origpath.rglob("*") if p.is_file()}
    member = next(case229.packpath.glob("*/*/*"))
    reduced = [p for d in ("raw", "calibrated") for p in (member / d).rglob("*") if p.is_file()]
    assert len(reduced) > 50
    assert not [p for p in reduced if p.stat().st_ino in sources]


def test_reduced_ms_is_smaller_than_its_source(case229: Case) -> None:
    assert case229.run_cli("copy") == 0
    packaged = next(case229.packpath.rglob("uid___A002_X3c9295_X8c.ms.split.cal"))
    source = case229.origpath / "X8c" / "uid___A002_X3c9295_X8c.ms.split.cal"

    def main_table_size(path: Path) -> int:
        return sum(p.stat().st_size for p in path.iterdir() if p.is_file())

    # two of the three visibility columns are gone; the rest is small
    assert main_table_size(packaged) < 0.5 * main_table_size(source)


def test_calibrated_ms_without_corrected_data_keeps_data(case229: Case) -> None:
    cal = case229.origpath / "X8c" / "uid___A002_X3c9295_X8c.ms.split.cal"
    table = tables.table(str(cal), readonly=False, ack=False)
    table.removecols(["CORRECTED_DATA"])
    table.close()
    assert case229.run_cli("copy") == 0
    packaged = next(case229.packpath.rglob("uid___A002_X3c9295_X8c.ms.split.cal"))
    assert _column_bytes(packaged, "DATA") == _column_bytes(cal, "DATA")


def test_raw_ms_without_data_is_an_error(case229: Case, capsys: pytest.CaptureFixture[str]) -> None:
    raw = case229.origpath / "X528" / "uid___A002_X3dc0e7_X528.ms.split"
    table = tables.table(str(raw), readonly=False, ack=False)
    table.removecols(["DATA"])
    table.close()
    assert case229.run_cli("copy") == 2
    err = capsys.readouterr().err
    assert "no DATA column" in err and "uid___A002_X3dc0e7_X528.ms.split" in err
    assert not case229.packpath.exists()


@pytest.mark.parametrize("mode", ["copy", "hard"])
def test_a_calibrated_column_that_holds_no_data_is_refused(
    case229: Case, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    """A CORRECTED_DATA column added and never filled would be delivered as an MS without
    visibilities (and DATA in its stead would be uncalibrated data as calibrated):
    refused, naming the MS, before anything is written."""
    cal = case229.origpath / "X8c" / "uid___A002_X3c9295_X8c.ms.split.cal"
    filled_only_in(cal, "CORRECTED_DATA")
    before = tree_state(case229.origpath)
    assert case229.run_cli(mode) == 2
    err = capsys.readouterr().err
    assert "CORRECTED_DATA column, which would be delivered, holds no data" in err
    assert str(cal) in err
    assert not case229.packpath.exists()
    assert tree_state(case229.origpath) == before


@pytest.mark.parametrize(
    ("column", "refused"), [("CORRECTED_DATA", True), ("DATA", False), ("MODEL_DATA", False)]
)
def test_a_data_cube_cut_short_is_refused_if_it_would_be_delivered(
    case229: Case, capsys: pytest.CaptureFixture[str], column: str, refused: bool
) -> None:
    """A data file of an MS cut short (a partial copy) was delivered as it was: the cycle-0
    reduction copies the cubes it keeps without reading them, and the PI got an MS that
    casacore cannot read.  Refused, naming the MS and the files, before anything is
    written; a cube of a column the package drops is no reason."""
    cal = case229.origpath / "X8c" / "uid___A002_X3c9295_X8c.ms.split.cal"
    with tables.table(str(cal), ack=False) as table:
        seq = next(dm["SEQNR"] for dm in table.getdminfo().values() if column in dm["COLUMNS"])
    cube = max(cal.glob(f"table.f{seq}_TSM*"), key=lambda p: p.stat().st_size)
    os.truncate(cube, cube.stat().st_size // 2)
    before = tree_state(case229.origpath)
    code = case229.run_cli("copy")
    err = " ".join(capsys.readouterr().err.split())
    if refused:
        assert code == 2, err
        assert f"the data of {column}, which would be delivered, are cut short" in err
        assert f"(table.f{seq}_TSM*: " in err and f": {cal};" in err
        assert not case229.packpath.exists()
    else:
        assert code == 0, err
        assert md5sum_check(case229.packpath).returncode == 0
    assert tree_state(case229.origpath) == before


def test_the_tiles_of_casa_s_own_ms_fill_its_cubes_exactly() -> None:
    """``cut_short``'s rule (a hypercube takes its tiles' buckets) on the MS that CASA
    wrote (pyuvdata's real ALMA MS): every tiled storage manager's files hold exactly
    the bytes its tiles take; one file cut short is found."""
    real = REAL / REAL_MS
    with tables.table(str(real), ack=False) as table:
        dminfo = table.getdminfo()
    sizes = {p.name: p.stat().st_size for p in real.iterdir() if p.is_file()}
    tiled = [m for m in dminfo.values() if m["TYPE"].startswith("Tiled")]
    assert len(tiled) >= 5 and ms.cut_short(dminfo, sizes) == ()
    needed = {f"table.f{m['SPEC']['SEQNR']}_TSM*": m for m in tiled}
    name = max((n for n in sizes if "_TSM" in n), key=lambda n: sizes[n])
    sizes[name] -= 1
    [short] = ms.cut_short(dminfo, sizes)
    assert short.files == f"{name.rsplit('_TSM', 1)[0]}_TSM*" and short.needs - short.has == 1
    assert short.files in needed


def _corrupt_without_table_dat(ms_dir: Path) -> None:
    (ms_dir / "table.dat").unlink()


def _corrupt_table_dat(ms_dir: Path) -> None:
    (ms_dir / "table.dat").write_bytes(b"this is not a casacore table description")


@pytest.mark.parametrize("corrupt", [_corrupt_without_table_dat, _corrupt_table_dat])
@pytest.mark.parametrize("mode", ["copy", "hard"])
def test_corrupt_ms_is_named_and_nothing_is_written(
    case229: Case, capsys: pytest.CaptureFixture[str], corrupt, mode: str
) -> None:
    bad = case229.origpath / "X8c" / "uid___A002_X3c9295_X8c.ms.split.cal"
    corrupt(bad)
    before = tree_state(case229.origpath)
    assert case229.run_cli(mode) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err
    assert "almaqa2-ms-" not in err, "the shadow tree read through is never named"
    assert len(err.strip().splitlines()) == 1
    assert os.listdir(case229.packpath.parent) == [], "nothing half-written"
    assert tree_state(case229.origpath) == before


def test_source_without_lock_files_is_left_without(case229: Case) -> None:
    """casacore creates table.lock where it opens a table: never in the reduction."""
    removed = list(case229.origpath.rglob("table.lock"))
    for path in removed:
        path.unlink()
    assert removed
    assert case229.run_cli("hard") == 0
    assert not list(case229.origpath.rglob("table.lock"))


def _without_casacore(argv: list[str]) -> subprocess.CompletedProcess:
    """Run qa2 in a Python where ``import casacore`` fails, as without the extra."""
    code = (
        "import sys; sys.modules['casacore'] = None\n"
        "from almaqa2.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=False
    )


def test_without_casacore_cycle0_copy_names_the_extra(case229: Case) -> None:
    for mode in ("copy", "hard", "ticket"):  # a ticket is sized by reducing the MSes
        argv, _ = case229.commands(mode)
        done = _without_casacore(argv)
        assert done.returncode == 2, done.stderr
        assert "pip install 'almaqa2[ms]'" in done.stderr
        assert "Traceback" not in done.stderr
        assert os.listdir(case229.packpath.parent) == []


def test_without_casacore_fake_mode_works(case229: Case) -> None:
    argv, _ = case229.commands("fake")
    done = _without_casacore(argv)
    assert done.returncode == 0, done.stderr
    readme = next(case229.packpath.glob("*/*/*/README")).read_text()
    assert "python-casacore is not installed" in readme


def test_metadata_read_with_casacore_matches_the_fixture(tmp_path: Path) -> None:
    path = tmp_path / "uid___A002_X3c9295_X8c.ms.split.cal"
    example_ms.write_ms(path, "uid___A002_X3c9295_X8c", "2011.0.00229.S", nchan=16, times=4)
    info = ms.describe(path)
    assert info.eb == "uid___A002_X3c9295_X8c"
    assert info.project == "2011.0.00229.S"
    assert info.start == datetime(2012, 12, 1, tzinfo=UTC)
    scans = len(example_ms.FIELD_STATES)
    observed = scans * 4 * example_ms.INTEGRATION_S + (scans - 1) * 30.0
    assert abs((info.end - info.start).total_seconds() - observed) < 1e-3
    assert info.antennas == ("DA41", "DA42", "DV03", "PM01")
    assert [(s.id, s.channels) for s in info.spws] == [(0, 16), (1, 16)]
    half = example_ms.CHANNEL_HZ / 2
    assert info.spws[0].low_hz == 230.0e9 - half
    assert info.spws[1].high_hz == 232.0e9 + 15 * example_ms.CHANNEL_HZ + half
    assert info.fields == (
        ("J1229+0203", ("CALIBRATE_BANDPASS", "CALIBRATE_WVR", "CALIBRATE_PHASE")),
        ("IRC+10216", ("OBSERVE_TARGET",)),
    )


def test_readme_describes_each_eb(case229: Case) -> None:
    assert case229.run_cli("fake") == 0
    text = next(case229.packpath.glob("*/*/*/README")).read_text()
    section = text.split("Execution blocks\n================\n", 1)[1].split("Products\n", 1)[0]
    for eb in EBS:
        assert f"{eb} (read from {eb}.ms.split.cal)" in section
    assert "  Project:           2011.0.00229.S" in section
    assert "  Observed:          2012-12-01 00:00:00 to 2012-12-01 00:02:12 UTC" in section
    assert "  Antennas (4):      DA41 DA42 DV03 PM01" in section
    assert "      0  ALMA_RB_06#BB_1#SW-01  16 channels  229.9922 - 230.2422 GHz" in section
    assert "      1  ALMA_RB_06#BB_2#SW-01  16 channels  231.9922 - 232.2422 GHz" in section
    assert "    J1229+0203: CALIBRATE_BANDPASS, CALIBRATE_WVR, CALIBRATE_PHASE" in section
    assert "    IRC+10216: OBSERVE_TARGET" in section


def _cube_files(ms_path: Path, columns: tuple[str, ...]) -> list[str]:
    """The files of the tiled storage managers holding only ``columns``."""
    table = _open(ms_path)
    try:
        seqnrs = [
            dm["SEQNR"]
            for dm in table.getdminfo().values()
            if dm["TYPE"].startswith("Tiled") and set(dm["COLUMNS"]) <= set(columns)
        ]
    finally:
        table.close()
    return [p.name for n in seqnrs for p in ms_path.glob(f"table.f{n}_TSM*")]


@pytest.mark.parametrize("shared_tiles", [False, True], ids=["own-managers", "value-copy"])
def test_reduction_of_a_larger_ms_keeps_every_value(tmp_path: Path, shared_tiles: bool) -> None:
    """Columns with managers of their own are removed from a copy; columns sharing one
    hypercube cannot be, and casacore value-copies the rest instead: same values."""
    source = tmp_path / "uid___A002_X1_X2.ms.split.cal"
    example_ms.write_ms(
        source, "uid___A002_X1_X2", "2011.0.00229.S", nchan=64, times=200,
        shared_tiles=shared_tiles,
    )  # fmt: skip
    before = tree_state(source)
    dest = tmp_path / "out.ms.split.cal"
    copied: list[str] = []

    def copy(src: str, dst: str) -> None:
        copied.append(os.path.relpath(src, source))
        copy_file(src, dst)

    inside, _ = scan.members(str(source))
    files = ms.reduce(
        source, dest, Transform.CALIBRATED_MS, copy, ms.read(source, False, inside), inside
    )
    if not shared_tiles:  # the cubes of the removed columns are never written
        dropped = _cube_files(source, ("DATA", "MODEL_DATA"))
        assert dropped and not set(dropped) & set(copied)
    assert files and not [f.path for f in files if os.path.islink(f.path)]
    assert sorted(f.path for f in files) == sorted(str(p) for p in dest.rglob("*") if p.is_file())
    got, want = _open(dest), _open(source)
    assert [c for c in got.colnames() if c.endswith("DATA")] == ["DATA"]
    assert got.getcol("DATA").tobytes() == want.getcol("CORRECTED_DATA").tobytes()
    for column in ("UVW", "TIME", "FLAG", "ANTENNA1", "FIELD_ID"):
        assert got.getcol(column).tobytes() == want.getcol(column).tobytes()
    assert _subtables(dest) == _subtables(source)
    assert tree_state(source) == before
    verified = [(Path(f.path), Path(f.source)) for f in files if f.source is not None]
    assert verified and all(p.read_bytes() == src.read_bytes() for p, src in verified)


def test_a_value_copy_keeps_cells_of_any_shape_and_leaves_undefined_cells_undefined(
    tmp_path: Path,
) -> None:
    """copy_rows moves array columns in runs of one data description, a shape assumed per
    run; a run whose cells differ in shape, and cells never written, come through as
    they are, in the selected rows' order."""
    source = tmp_path / "cells.tab"
    desc = tables.maketabdesc([
        tables.makescacoldesc("DATA_DESC_ID", 0),
        tables.makearrcoldesc("ANY_SHAPE", 0.0, ndim=1),
        tables.makearrcoldesc("SOMETIMES", 0, ndim=2),
        tables.makearrcoldesc("NEVER", False, ndim=2),
    ])  # fmt: skip
    dds = [0, 0, 0, 1, 1, 2, 2, 2, 0, 0]
    table = tables.table(str(source), desc, nrow=len(dds), ack=False)
    table.putcol("DATA_DESC_ID", np.array(dds, np.int32))
    for row, dd in enumerate(dds):
        table.putcell("ANY_SHAPE", row, np.arange(row % 4 + 1) + 0.5 * row)
        if row % 3:
            table.putcell("SOMETIMES", row, np.full((2, dd + 1), row))
    table.close()
    dest = tmp_path / "copy.tab"
    with ms.opened(source, None) as shadow:
        query = "SELECT * FROM $1 WHERE DATA_DESC_ID IN [0,2]"
        assert ms.copy_rows(shadow, source, query, dest, copy_file, "test directory") == 8
    got, want = _open(dest), _open(source)
    rows = [row for row, dd in enumerate(dds) if dd in (0, 2)]
    assert got.getcol("DATA_DESC_ID").tolist() == [dds[row] for row in rows]
    for new, old in enumerate(rows):
        assert np.array_equal(got.getcell("ANY_SHAPE", new), want.getcell("ANY_SHAPE", old))
        assert got.iscelldefined("SOMETIMES", new) == bool(old % 3)
        if old % 3:
            assert np.array_equal(got.getcell("SOMETIMES", new), want.getcell("SOMETIMES", old))
        assert not got.iscelldefined("NEVER", new)


def test_each_source_ms_is_opened_once_in_a_hard_package(
    case229: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check, the README's facts and the reduction share one open of each source MS
    (issue 15); the reduction's own opens are of its copy in the package."""
    from collections import Counter

    import casacore.tables

    opened: Counter[str] = Counter()
    real_table = casacore.tables.table

    class Counting(real_table):  # type: ignore[misc, valid-type]
        def __init__(self, name: object = None, *args: object, **kwargs: object) -> None:
            if isinstance(name, str):
                opened[name.removeprefix("Table: ")] += 1
            super().__init__(name, *args, **kwargs)

    monkeypatch.setattr(casacore.tables, "table", Counting)
    assert case229.run_cli("hard") == 0
    sources = {p.name for p in case229.origpath.rglob("*.ms.split*") if p.is_dir()} - {
        p.name for p in case229.origpath.rglob("*.ms.split.*") if not p.name.endswith(".cal")
    }
    of_sources = Counter(
        Path(name).name
        for name in opened
        for _ in range(opened[name])
        if Path(name).name in sources and "almaqa2-staging" not in name  # not the copies
    )
    assert sorted(of_sources) == sorted(sources) and set(of_sources.values()) == {1}, of_sources


def test_the_reduction_is_listed_once_in_a_hard_package(
    case229: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15: the scan lists each directory of the reduction once; the shadows the MSes
    are read through and the reductions' copies are made from that listing."""
    from collections import Counter

    listed: Counter[str] = Counter()

    def counted(real: Any) -> Any:
        def listing(path: object = ".", *more: object) -> object:
            if isinstance(path, int):  # a directory listed through a descriptor of it
                listed[os.readlink(f"/proc/self/fd/{path}")] += 1
            elif isinstance(path, str | os.PathLike):
                listed[os.path.realpath(path)] += 1
            return real(path, *more)

        return listing

    monkeypatch.setattr(os, "scandir", counted(os.scandir))
    monkeypatch.setattr(os, "listdir", counted(os.listdir))
    monkeypatch.setattr(manyfiles, "plain_files", counted(manyfiles.plain_files))  # (tables)
    assert case229.run_cli("hard") == 0
    origpath = os.path.realpath(case229.origpath)
    # below origpath: the layouts look at origpath's own names before its scan
    of_reduction = {p: n for p, n in listed.items() if p.startswith(origpath + "/")}
    tables = [p for p in of_reduction if p.endswith((".ms.split", ".ms.split.cal"))]
    assert len(tables) >= 4, of_reduction  # raw and calibrated MS of each EB were listed
    assert {p: n for p, n in of_reduction.items() if n > 1} == {}


def test_a_hard_package_is_not_walked_again_once_written(
    case229: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15: building writes the member without listing it back (its manifest is hashed
    as it is written); only the reduced MSes are listed, by the reduction itself."""
    listed: list[str] = []
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:
        if isinstance(path, str | os.PathLike):
            listed.append(os.fspath(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    assert case229.run_cli("hard") == 0
    member = "/sg_ouss_id/group_ouss_id/member_ouss_id"
    inside = [p for p in listed if member in p and "almaqa2-staging" in p]
    relisted = [
        p for p in inside if not any(f"{member}/{d}/" in p + "/" for d in ("raw", "calibrated"))
    ]
    assert relisted == [] and inside, relisted


def test_a_shadow_left_by_a_killed_run_is_removed_by_the_next_not_one_being_read(
    tmp_path: Path,
) -> None:
    source = tmp_path / "uid___A002_X3c9295_X8c.ms.split.cal"
    example_ms.write_ms(source, "uid___A002_X3c9295_X8c", "2011.0.00229.S", nchan=4, times=2)
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    reads = (
        "import sys, time\nfrom pathlib import Path\nfrom almaqa2.data import ms\n"
        "with ms.opened(Path(sys.argv[1]), None):\n"
        "    print('reading', flush=True)\n    time.sleep(float(sys.argv[2]))\n"
    )

    def reader(seconds: float) -> tuple[subprocess.Popen[str], Path]:
        before = set(temp.iterdir())
        process = subprocess.Popen(
            [sys.executable, "-c", reads, str(source), str(seconds)],
            stdout=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
        assert process.stdout is not None and process.stdout.readline() == "reading\n"
        (shadow,) = set(temp.iterdir()) - before
        return process, shadow

    killed, abandoned = reader(60)
    killed.kill()
    killed.wait()
    assert abandoned.exists()  # SIGKILL: nobody tidied up
    live, held = reader(60)
    try:
        assert not abandoned.exists(), "the next run removes what the killed one left"
        later, _own = reader(0)
        later.communicate()
        assert later.returncode == 0
        assert sorted(temp.iterdir()) == [held], "a shadow being read through is kept"
    finally:
        for process in (killed, live):
            process.kill()
            process.communicate()


_FORKED_NUMPY = """
import os
import almaqa2.data
if os.fork() == 0:
    import numpy
    threads = len(os.listdir("/proc/self/task"))
    print(threads, os.environ.get("OPENBLAS_NUM_THREADS"))
    os._exit(0)
os.wait()
"""


@pytest.mark.parametrize("users", [None, "2"])
def test_numpy_imported_for_the_data_starts_no_blas_threads(users: str | None) -> None:
    """casacore and astropy bring numpy, whose OpenBLAS would start a spinning thread per
    core beside the packaging's own processes: importing ``almaqa2.data`` first (as every
    user of casacore or astropy here does) leaves numpy its one thread, in a process it
    forks too; a user's own setting stands."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    if users is not None:
        env["OPENBLAS_NUM_THREADS"] = users
    run = subprocess.run([sys.executable, "-c", _FORKED_NUMPY], env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    threads, setting = run.stdout.split()
    assert setting == (users or "1")
    if users is None:
        assert threads == "1"
