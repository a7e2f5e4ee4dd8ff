"""The acceptance cases (tests/acceptance/*): every mode, through the CLI and the legacy call.

The package must equal expected.txt exactly (plus the marker, and the manifest where the
mode writes one), the ticket files must stand beside it, table and plots directories must
mirror their sources, and the reduction must be untouched, byte for byte and mtime.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath

import pytest

from almaqa2.package.scan import Kind, scan

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
    beside = list(case.expected_beside)
    if mode != "fake":  # the DRM's review page beside real tickets
        beside += [t.replace(".ticket.zip", ".review.html") for t in beside if ".zip" in t]
    for ticket in beside:
        assert (case.packpath.parent / ticket).is_file(), ticket
    assert sorted(os.listdir(case.packpath.parent)) == sorted([case.packpath.name, *beside]), (
        "nothing else (staging, lock, temporary files) may be left beside packpath"
    )
    assert tree_state(case.origpath.parent) == before, "the reduction must not change"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CASES)
def test_table_and_plot_directories_mirror_their_sources(
    name: str, mode: str, tmp_path: Path
) -> None:
    case = make_case(name, tmp_path)
    assert case.run_cli(mode) == 0
    sources = {e.name: e for e in scan(case.origpath) if e.kind in (Kind.TABLE, Kind.PLOTS)}
    reduced = ("raw", "calibrated") if mode != "fake" else ()  # see test_ms.py
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
    bundled = _inside_tgz(case.packpath)  # cycle 5 on: tables and plots travel in tgz files
    for d, inside in bundled.items():
        if d in sources:
            assert sorted(inside) == sorted(m.rel for m in sources[d].members), d
            checked += 1
    fake_tgz = mode in ("fake", "ticket") and any(case.packpath.rglob("*.tgz"))
    assert checked > 0 or fake_tgz, "an empty placeholder is all a fake tgz holds"


def _inside_tgz(package: Path) -> dict[str, set[str]]:
    """{directory name inside a tgz of the package: the paths below it}."""
    found: dict[str, set[str]] = {}
    for tgz in package.rglob("*.tgz"):
        if tgz.stat().st_size == 0:
            continue
        with tarfile.open(tgz) as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                for i, name in enumerate(parts[:-1]):
                    found.setdefault(name, set()).add("/".join(parts[i + 1 :]))
    return found
