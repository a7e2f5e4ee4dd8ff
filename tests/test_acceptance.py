"""The acceptance cases (tests/acceptance/*): every mode, through the CLI and the legacy call.

The package must equal expected.txt exactly (plus the marker, and the manifest where the
mode writes one), the ticket files must stand beside it, table and plots directories must
mirror their sources, and the reduction must be untouched, byte for byte and mtime.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from almaqa2.scan import Kind, scan

from conftest import CASES, MODES, Case, listing, make_case, tree_state


def _run(case: Case, mode: str, how: str) -> None:
    if how == "cli":
        assert case.run_cli(mode) == 0
    else:
        case.run_legacy(mode)


def _expected_with_bookkeeping(case: Case, mode: str) -> list[str]:
    project = case.packpath.name
    extra = [f"{project}/.almaqa2.json"]
    if mode in ("copy", "hard"):
        extra.append(f"{project}/manifest.md5")
    return sorted(case.expected + extra)


@pytest.mark.parametrize("how", ["cli", "legacy"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CASES)
def test_case_produces_expected_package(name: str, mode: str, how: str, tmp_path: Path) -> None:
    case = make_case(name, tmp_path)
    before = tree_state(case.origpath.parent)

    _run(case, mode, how)

    assert listing(case.packpath) == _expected_with_bookkeeping(case, mode)
    for ticket in case.expected_beside:
        assert (case.packpath.parent / ticket).is_file(), ticket
    assert sorted(os.listdir(case.packpath.parent)) == sorted(
        [case.packpath.name, *case.expected_beside]
    ), "nothing else (staging, lock, temporary files) may be left beside packpath"
    assert tree_state(case.origpath.parent) == before, "the reduction must not change"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CASES)
def test_table_and_plot_directories_mirror_their_sources(
    name: str, mode: str, tmp_path: Path
) -> None:
    case = make_case(name, tmp_path)
    assert case.run_cli(mode) == 0
    sources = {e.name: e for e in scan(case.origpath) if e.kind in (Kind.TABLE, Kind.PLOTS)}
    reduced = ("raw", "calibrated") if mode in ("copy", "hard") else ()  # see test_ms.py
    checked = 0
    for dirpath, dirnames, _ in os.walk(case.packpath):
        if Path(dirpath).name in reduced:
            continue
        for d in dirnames:
            if d in sources and not d.endswith(".calibration.plots"):
                packaged = Path(dirpath, d)
                inside = sorted(p.relative_to(packaged).as_posix() for p in packaged.rglob("*"))
                assert inside == sorted(m.rel for m in sources[d].members)
                checked += 1
    assert checked > 0
