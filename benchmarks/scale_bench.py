"""Cost per file as a package grows: 10^4 and 10^5 small files (10^6 with --million).

A reduction of N files of 64 bytes in 20 calibration tables of one EB (``cycle1-nopipe``),
as ALMA calibration tables and plot directories are made of small files.  For each N, each
step runs as its own process; printed: the time per file, the peak RSS, and the floor the
system tools need for the same work in the same run:

    fake package      qa2 package --mode fake          floor: cp -al
    copy package      qa2 package --mode copy          floor: cp -a  (+ md5sum of it)
    verify package    qa2 verify PACKAGE               floor: md5sum -c manifest.md5
    tarsplit          qa2 tarsplit (one chunk, md5s)   floor: tar cf - | split, md5sum
    verify chunks     qa2 verify CHUNKS                floor: md5sum -c of the .md5sums

Targets (issue 20): time per file at the largest N within 1.3 x of that at 10^4; peak RSS
at 10^6 <= 600 MB.  Run on tmpfs for the CPU's share (``--workdir /dev/shm``).
Usage: python benchmarks/scale_bench.py [--workdir DIR] [--keep] [--million]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from common import QA2, measured, workdir

from almaqa2.testing.reductions import HEADER

PROJECT = "2019.1.01234.S"
TABLES = 20
UID = "uid___A002_Xb00001_X1"


def make_reduction(root: Path, files: int) -> Path:
    eb = root / "reduction" / "SB1" / "X1"
    eb.mkdir(parents=True)
    (eb / f"{UID}.ms.scriptForCalibration.py").write_text("# calibration\n")
    for t in range(TABLES):
        table = eb / f"{UID}.ms.split.cal{t:02d}"
        table.mkdir()
        (table / "table.dat").write_bytes(b"table")
        for i in range(files // TABLES - 1):
            (table / f"table.f{i:07d}").write_bytes(f"{t} {i}".encode().ljust(64))
    return eb.parent


def run(root: Path, files: int) -> dict[str, tuple[float, int, float]]:
    """{step: (seconds, RSS MB, floor seconds)} for a reduction of ``files`` files."""
    origpath = make_reduction(root, files)
    readme = root / "README.header.txt"
    readme.write_text(HEADER)
    out, chunks, floors = root / "out", root / "chunks", root / "floors"
    for made in (out, chunks, floors):
        made.mkdir()
    package = out / PROJECT
    argv = [*QA2, "package", str(origpath), str(package), "--readme", str(readme),
            "--style", "cycle1-nopipe", "--mode"]  # fmt: skip
    found: dict[str, tuple[float, int, float]] = {}

    fake = measured([*argv, "fake"])
    shutil.rmtree(package)
    floor = measured(["cp", "-al", str(origpath), str(floors / "linked")])[0]
    found["fake package"] = (*fake, floor)

    copy = measured([*argv, "copy"])
    cp = measured(["cp", "-a", str(origpath), str(floors / "copied")])[0]
    found["copy package"] = (*copy, cp)
    for floor_tree in floors.iterdir():  # a tmpfs has ~3 million inodes: free these
        shutil.rmtree(floor_tree)

    found["verify package"] = (
        *measured([*QA2, "verify", str(package)]),
        measured(["md5sum", "-c", "--quiet", f"{PROJECT}/manifest.md5"], cwd=out)[0],
    )
    split = measured([*QA2, "tarsplit", str(package), "--out", str(chunks), "--date",
                      "2019-10-01"])  # fmt: skip
    tar = f"tar cf - {PROJECT} | split -b 10G - {floors}/x_ && md5sum {floors}/x_* > /dev/null"
    found["tarsplit"] = (*split, measured(["sh", "-c", tar], cwd=out)[0])
    sums = next(chunks.glob("*.md5sums")).name
    found["verify chunks"] = (
        *measured([*QA2, "verify", str(chunks)]),
        measured(["md5sum", "-c", "--quiet", sums], cwd=chunks)[0],
    )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="where to make the data")
    parser.add_argument("--keep", action="store_true", help="keep the data afterwards")
    parser.add_argument("--million", action="store_true", help="also 10^6 files")
    parser.add_argument("--only", type=int, help="this number of files only")
    args = parser.parse_args()
    sizes = [10_000, 100_000] + ([1_000_000] if args.million else [])
    if args.only:
        sizes = [args.only]
    results = {}
    for files in sizes:
        with workdir(args, f"scale{files}") as root:
            started = time.perf_counter()
            results[files] = run(root, files)
            print(f"{files:>9,} files: measured in {time.perf_counter() - started:.0f} s")
    print(f"{'step':<16}" + "".join(f"{n:>28,}" for n in sizes))
    print(f"{'':<16}" + "".join(f"{'us/file  RSS MB  / floor':>28}" for _ in sizes))
    for step in results[sizes[0]]:
        cells = []
        for files in sizes:
            seconds, rss, floor = results[files][step]
            cells.append(f"{seconds / files * 1e6:>9.1f} {rss:>7} {seconds / floor:>8.1f}x ")
        first, last = results[sizes[0]][step][0] / sizes[0], results[sizes[-1]][step][0] / sizes[-1]
        print(f"{step:<16}" + "".join(f"{c:>28}" for c in cells)
              + f"   per-file growth {last / first:.2f} (target <= 1.3)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
