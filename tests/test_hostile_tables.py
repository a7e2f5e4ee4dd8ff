"""Links inside MeasurementSets, calibration tables and plot directories (issue 13, items 7,
8 and 16): the package holds the files they reach, never a link, in every mode; a link loop
is named as one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from casacore import tables

from almaqa2.cli import main

from conftest import Case, md5sum_check, tree_state

EB = "uid___A002_X3c9295_X8c"


def _links_in(root: Path) -> list[str]:
    return [
        os.path.join(d, n)
        for d, dirs, files in os.walk(root)
        for n in dirs + files
        if os.path.islink(os.path.join(d, n))
    ]


def _rows(path: Path) -> int:
    table = tables.table(str(path), ack=False)
    try:
        return table.nrows()
    finally:
        table.close()


@pytest.mark.parametrize("mode", ["copy", "hard"])
def test_an_ms_with_a_linked_subtable_is_delivered_whole(
    case229: Case, mode: str, tmp_path: Path
) -> None:
    """CASA's multi-MS outputs link their subtables: the package must hold them."""
    ms = case229.origpath / "X8c" / f"{EB}.ms.split.cal"
    shared = tmp_path / "shared-subtables" / "ANTENNA"
    shared.parent.mkdir()
    shutil.move(ms / "ANTENNA", shared)
    (ms / "ANTENNA").symlink_to(shared)
    antennas = _rows(ms / "ANTENNA")
    before = tree_state(case229.origpath)
    assert case229.run_cli(mode) == 0
    packaged = next(case229.packpath.glob(f"*/*/*/calibrated/{EB}.ms.split.cal"))
    assert (packaged / "ANTENNA").is_dir() and not (packaged / "ANTENNA").is_symlink()
    assert _rows(packaged / "ANTENNA") == antennas
    assert sorted(os.listdir(packaged / "ANTENNA")) == sorted(os.listdir(shared))
    assert _links_in(case229.packpath) == []
    assert md5sum_check(case229.packpath).returncode == 0
    assert tree_state(case229.origpath) == before


def test_hard_mode_links_the_files_that_links_in_tables_reach(
    case229: Case, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "table.f9").write_bytes(b"bytes of a table file kept elsewhere")
    (outside / "plot.png").write_bytes(b"\x89PNG plot kept elsewhere")
    table = case229.origpath / "X8c" / f"{EB}.ms.split.bandpass"
    plots = case229.origpath / "X8c" / f"{EB}.ms.split.bandpass.plots"
    (table / "table.f9").symlink_to(outside / "table.f9")  # absolute, to outside
    (plots / "linked.png").symlink_to(os.path.relpath(outside / "plot.png", plots))
    assert case229.run_cli("hard") == 0
    assert _links_in(case229.packpath) == []
    member = next(case229.packpath.glob("*/*/*"))
    for found, target in (
        (next(member.glob(f"calibration/*/{EB}.ms.split.bandpass/table.f9")), "table.f9"),
        (next(member.glob(f"calibration/*/{EB}.ms.split.bandpass.plots/linked.png")), "plot.png"),
    ):
        assert os.stat(found).st_ino == os.stat(outside / target).st_ino
    out = tmp_path / "chunks"
    out.mkdir()
    assert main(["tarsplit", str(case229.packpath), "--out", str(out), "-n", "2012-06-20"]) == 0
    assert main(["verify", str(out)]) == 0


def test_a_link_loop_in_a_table_is_named_as_one(
    case229: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    table = case229.origpath / "X8c" / f"{EB}.ms.split.bandpass"
    (table / "loop").symlink_to("loop")
    (table / "up").symlink_to("..")
    assert case229.run_cli("fake") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "symbolic link loop" in err and "readable" not in err and "Traceback" not in err
    assert not case229.packpath.exists()
