"""``make interop``: ``qa2 split`` against CASA's own split, value by value.

Runs seed 003's steps with CASA (casatools/casatasks/casadata from PyPI, in the Python
given by ``--casa-python``; measures from casadata, no auto-update, no network) and
``qa2 split`` on the same MSes, then compares every main-table column, every subtable
(but HISTORY, where each tool writes its own lines) and the saved flags.  The MSes: the
ALMA-like example MS (several spws, 4- and 1-channel ones among them, calibrators and
targets, a mosaic, SOURCE and FEED rows per spw) and pyuvdata's real ALMA MS (its
dangling ASDM_CALATMOSPHERE keyword removed from the copy: CASA's split stops on it).
Prints one line per comparison; exit 1 if any differs.

Usage: ``python scripts/interop_split.py --casa-python PYTHON [--keep DIR]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from casacore import tables as pt

from almaqa2.cli import main as qa2
from almaqa2.testing import casa
from almaqa2.testing import measurementsets as example_ms

REAL = (
    Path(__file__).parent.parent
    / ".cache"
    / "real-data"
    / ("X5707_1spw_1scan_10chan_1time_1bl_noatm.ms")
)
EB = "uid___A002_Xc1f2b3_X4d5"
REAL_EB = "uid___A002_Xca5b1c_X5707"

SKIPPED_SUBTABLES = {"HISTORY"}  # each tool writes its own history
SKIPPED_COLUMNS = {"FLAG_CATEGORY"}  # undefined in both


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--casa-python", required=True, type=Path)
    parser.add_argument("--keep", type=Path, help="work here and keep what was made")
    args = parser.parse_args()
    if args.casa_python:  # absolute, not resolved: a venv's python is a link out of it
        args.casa_python = Path(os.path.abspath(args.casa_python))
    top = args.keep or Path(tempfile.mkdtemp(prefix="qa2-interop-"))
    top.mkdir(parents=True, exist_ok=True)
    try:
        cases = [
            ("ALMA-like example MS", _example(top / "source"), "corrected", "J1256-0547"),
            ("pyuvdata's real ALMA MS", _real(top / "source"), "data", "GAMA567624"),
        ]
        differences = 0
        for label, ms, datacolumn, field in cases:
            print(f"== {label}: {ms.name} (--datacolumn {datacolumn})")
            casa_dir = _casa(args.casa_python, ms, datacolumn, field, top / "casa" / ms.stem)
            ours = _qa2(ms, datacolumn, field, top / "qa2" / ms.stem)
            for end in (".split.cal", ".split.cal.source", ".split.cal.field"):
                name = ms.name + end
                found = compare(casa_dir / name, ours / name)
                found += _compare_flags(casa_dir / f"{name}.flagversions",
                                        ours / f"{name}.flagversions")  # fmt: skip
                differences += len(found)
                print(f"   {name}: " + ("same values as CASA's split" if not found else "DIFFERS"))
                for line in found:
                    print(f"      {line}")
        print("interop: " + ("all the same" if not differences else f"{differences} difference(s)"))
        return 1 if differences else 0
    finally:
        if args.keep is None:
            shutil.rmtree(top, ignore_errors=True)


def _example(where: Path) -> Path:
    ms = where / f"{EB}.ms"
    where.mkdir(parents=True, exist_ok=True)
    example_ms.write_ms(ms, EB, "2019.1.00001.S", nchan=16, times=5, layout=example_ms.ALMA)
    return ms


def _real(where: Path) -> Path:
    ms = where / f"{REAL_EB}.ms"
    shutil.copytree(REAL, ms)
    with pt.table(str(ms), readonly=False, ack=False) as table:  # our copy
        table.removekeyword("ASDM_CALATMOSPHERE")
    return ms


def _casa(python: Path, ms: Path, datacolumn: str, field: str, where: Path) -> Path:
    """Seed 003's steps run by CASA on ``ms``, into ``where``."""
    where.mkdir(parents=True)
    done = subprocess.run(
        [str(python), "-c", casa.SEED_003, str(ms), datacolumn, str(where), field],
        cwd=where, env=casa.environment(where / "home"), capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"CASA failed on {ms}:\n{done.stdout}\n{done.stderr}")
    return where


def _qa2(ms: Path, datacolumn: str, field: str, where: Path) -> Path:
    """The same with qa2 split: the science split and the targets, then a field split."""
    common = ["split", str(ms), "--datacolumn", datacolumn]
    where.mkdir(parents=True)
    if qa2([*common, "--out", str(where)]) != 0:
        sys.exit(f"qa2 split failed on {ms}")
    other = where / "field"
    if qa2([*common, "--out", str(other), "--intent", "*", "--field", field]) != 0:
        sys.exit(f"qa2 split --field failed on {ms}")
    for end in ("", ".flagversions"):
        os.rename(
            other / f"{ms.name}.split.cal.source{end}", where / f"{ms.name}.split.cal.field{end}"
        )
    return where


def compare(casa: Path, ours: Path) -> list[str]:
    """What differs between two MSes, value by value (main table and subtables)."""
    found: list[str] = []
    with pt.table(str(casa), ack=False) as a, pt.table(str(ours), ack=False) as b:
        found += _table_differences(a, b, "main table")
        subs_a, subs_b = _subtables(a), _subtables(b)
        if set(subs_a) != set(subs_b):
            found.append(f"subtables: CASA {sorted(subs_a)}, qa2 {sorted(subs_b)}")
        for name in sorted(set(subs_a) & set(subs_b) - SKIPPED_SUBTABLES):
            with pt.table(subs_a[name], ack=False) as sa, pt.table(subs_b[name], ack=False) as sb:
                found += _table_differences(sa, sb, name)
    return found


def _subtables(table: Any) -> dict[str, str]:
    return {k: str(v)[7:] for k, v in table.getkeywords().items() if str(v).startswith("Table: ")}


def _table_differences(a: Any, b: Any, what: str) -> list[str]:
    if a.nrows() != b.nrows():
        return [f"{what}: {a.nrows()} rows in CASA's, {b.nrows()} in qa2's"]
    found = []
    columns_a, columns_b = set(a.colnames()), set(b.colnames())
    if columns_a != columns_b:
        found.append(f"{what}: columns only in CASA's {sorted(columns_a - columns_b)},"
                     f" only in qa2's {sorted(columns_b - columns_a)}")  # fmt: skip
    for column in sorted(columns_a & columns_b - SKIPPED_COLUMNS):
        for row in range(a.nrows()):
            defined = a.iscelldefined(column, row), b.iscelldefined(column, row)
            if defined == (False, False):
                continue
            if defined != (True, True) or not _same(a.getcell(column, row), b.getcell(column, row)):
                found.append(f"{what}: {column} differs from row {row}")
                break
    return found


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        x, y = np.asarray(x), np.asarray(y)
        return x.shape == y.shape and bool(np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"))
    return bool(x == y)


def _compare_flags(casa: Path, ours: Path) -> list[str]:
    found = []
    listed = [(p / "FLAG_VERSION_LIST").read_text() for p in (casa, ours)]
    if listed[0] != listed[1]:
        found.append(f"FLAG_VERSION_LIST: CASA's {listed[0]!r}, qa2's {listed[1]!r}")
    with (
        pt.table(str(casa / "flags.original_flags"), ack=False) as a,
        pt.table(str(ours / "flags.original_flags"), ack=False) as b,
    ):
        found += _table_differences(a, b, "flags.original_flags")
    return found


if __name__ == "__main__":
    sys.exit(main())
