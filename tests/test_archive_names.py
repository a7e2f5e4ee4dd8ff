"""The names the ALMA archive delivers (issue 14, acceptance 1): the Cycle-5 manual
reduction of 2017.1.01185.S (MOUS uid://A001/X12a3/Xe9), packaged ``cycle5-nopipe`` and split
with ``--auxiliary``, holds in each tar exactly the files the archive's DataLink service
lists for that tar (tests/acceptance/archive2017/datalink.txt, from astroquery's test data),
plus our manifest, marker and README."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path, PurePosixPath

from almaqa2.cli import main

from conftest import make_case

OURS = {".almaqa2.json", "manifest.md5", "member.uid___A001_X12a3_Xe9.README.txt"}


def _archive(case_dir: Path) -> dict[str, set[str]]:
    listed: dict[str, set[str]] = defaultdict(set)
    for line in (case_dir / "datalink.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            tar, name = line.split()
            listed[tar].add(name)
    return listed


def test_a_cycle5_manual_delivery_has_the_archives_names_in_the_archives_tars(
    tmp_path: Path,
) -> None:
    case = make_case("archive2017", tmp_path)
    assert case.run_cli("copy", "--strict") == 0
    chunks = tmp_path / "chunks"
    chunks.mkdir()
    assert main(["tarsplit", str(case.packpath), "--auxiliary", "--out", str(chunks)]) == 0
    found: dict[str, set[str]] = {}
    for tar in sorted(chunks.glob("*.tar")):
        listing = subprocess.run(
            ["tar", "tf", str(tar)], capture_output=True, text=True, check=True
        )
        found[tar.name] = {
            PurePosixPath(line).name
            for line in listing.stdout.splitlines()
            if not line.endswith("/")
        }
    expected = _archive(case.dir)
    expected["2017.1.01185.S_uid___A001_X12a3_Xe9_auxiliary.tar"] |= OURS
    assert found == expected
