"""Cost per file as a package grows: 10^4 and 10^5 small files (10^6 with --million).

A reduction of N files of 64 bytes in 20 calibration tables of one EB (``cycle1-nopipe``),
as ALMA calibration tables and plot directories are made of small files.  For each N, each
step runs as its own process; printed: the time per file, the peak RSS, and the floor the
system tools need for the same work in the same run, each the best of ``--repeat`` runs
(default 3; the peak RSS is the largest), ours and the floor alternating.  Last, the ratio
ours would have if all the CPU time it used (user and system, all its processes) were
spread evenly over the machine's two cores: how far below its ratio less work per file,
not more overlap, would have to take it.

    fake package      qa2 package --mode fake          floor: cp -al
    copy package      qa2 package --mode copy          floor: cp -a  (+ md5sum of it)
    verify package    qa2 verify PACKAGE               floor: md5sum -c manifest.md5
    tarsplit          qa2 tarsplit (one chunk, md5s)   floor: tar cf - | split, md5sum
    verify chunks     qa2 verify CHUNKS                floor: md5sum -c of the .md5sums

Targets (issue 20): time per file at the largest N within 1.3 x of that at 10^4; peak RSS
at 10^6 <= 600 MB.  Run on tmpfs for the CPU's share (``--workdir /dev/shm``).

On a disk, give ``--defer-removal`` (see ``common.defer_removal_option``): each run's tree
is then moved aside, and all are removed at the end.
Usage: python benchmarks/scale_bench.py [--workdir DIR] [--keep] [--million] [--only N]
       [--repeat N] [--defer-removal]
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from common import QA2, Measured, argument_parser, aside_in, measured, remove, workdir

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


@dataclass(frozen=True)
class Run:
    """A command, and what it makes (a path, or a glob), removed (or moved ``aside``)
    before each run of it."""

    command: list[str | Path]
    makes: Path | None = None
    aside: Path | None = None

    def clear(self) -> None:
        if self.makes is not None:
            for path in self.makes.parent.glob(self.makes.name):
                remove(path, self.aside)

    def fresh(self, cwd: Path | None) -> Measured:
        self.clear()
        return measured([str(part) for part in self.command], cwd=cwd)


class Best(NamedTuple):
    seconds: float  # ours, the best run
    rss_mb: int  # ours, the largest
    floor: float  # the floor's best run
    cpu: float  # ours, the least CPU time of a run


def run(root: Path, files: int, repeat: int, aside: Path | None) -> dict[str, Best]:
    """{step: what ``repeat`` runs each of ours and its floor measured} for a reduction of
    ``files`` files; the trees of the runs are moved into ``aside``, if given."""
    origpath = make_reduction(root, files)
    readme = root / "README.header.txt"
    readme.write_text(HEADER)
    out, chunks, floors = root / "out", root / "chunks", root / "floors"
    for made in (out, chunks, floors):
        made.mkdir()
    package = out / PROJECT
    manifest_of = f"{PROJECT}/manifest.md5"
    argv = [*QA2, "package", str(origpath), str(package), "--readme", str(readme),
            "--style", "cycle1-nopipe", "--mode"]  # fmt: skip
    found: dict[str, Best] = {}

    def best(step: str, ours: Run, floor: Run, cwd: Path | None = None) -> None:
        """Record the best of ``repeat`` runs of ``ours`` and of its ``floor``, alternating,
        with the largest peak RSS of ours.  One tree of a million files at a time beside the
        reduction (a tmpfs counts each hard link as an inode, and holds ~3 million): the
        floor's is removed (or moved aside) after it, and ours, run last, is left for the
        next step."""
        runs: list[tuple[Measured, Measured]] = []
        for _ in range(repeat):
            ours.clear()
            base = floor.fresh(cwd)
            floor.clear()
            runs.append((ours.fresh(cwd), base))
        found[step] = Best(
            min(mine.seconds for mine, _ in runs),
            max(mine.rss_mb for mine, _ in runs),
            min(base.seconds for _, base in runs),
            min(mine.cpu for mine, _ in runs),
        )

    linked, copied = floors / "linked", floors / "copied"
    fake, copy = Run([*argv, "fake"], package, aside), Run([*argv, "copy"], package, aside)
    best("fake package", fake, Run(["cp", "-al", origpath, linked], linked, aside))
    fake.clear()
    best("copy package", copy, Run(["cp", "-a", origpath, copied], copied, aside))
    md5sum = ["md5sum", "-c", "--quiet"]
    best("verify package", Run([*QA2, "verify", package]), Run([*md5sum, manifest_of]), cwd=out)
    tar = f"tar cf - {PROJECT} | split -b 10G - {floors}/x_ && md5sum {floors}/x_* > /dev/null"
    split: list[str | Path] = [*QA2, "tarsplit", package, "--out", chunks, "--date", "2019-10-01"]
    best("tarsplit", Run(split, chunks), Run(["sh", "-c", tar], floors / "x_*"), cwd=out)
    sums = next(chunks.glob("*.md5sums")).name
    best("verify chunks", Run([*QA2, "verify", chunks]), Run([*md5sum, sums]), cwd=chunks)
    return found


def main() -> int:
    options = argument_parser(__doc__, repeat=3, deferrable=True)
    options.add_argument("--million", action="store_true", help="also 10^6 files")
    options.add_argument("--only", type=int, help="this number of files only")
    args = options.parse_args()
    sizes = [10_000, 100_000] + ([1_000_000] if args.million else [])
    if args.only:
        sizes = [args.only]
    results = {}
    with contextlib.ExitStack() as later:  # each N's data, removed at the end if deferred
        for files in sizes:
            root = later.enter_context(workdir(args, f"scale{files}"))
            aside = aside_in(root, args)
            started = time.perf_counter()
            results[files] = run(root, files, args.repeat, aside)
            print(f"{files:>9,} files: measured in {time.perf_counter() - started:.0f} s")
            if aside is None:
                later.close()
    width = 38
    print(f"{'step':<16}" + "".join(f"{n:>{width},}" for n in sizes))
    heading = "us/file  RSS MB  / floor  CPU/2 cores"
    print(f"{'':<16}" + "".join(f"{heading:>{width}}" for _ in sizes))
    for step in results[sizes[0]]:
        cells = []
        for files in sizes:
            one = results[files][step]
            per_file, ratio, spread = (
                one.seconds / files * 1e6,
                one.seconds / one.floor,
                one.cpu / 2 / one.floor,
            )
            cells.append(f"{per_file:>9.1f} {one.rss_mb:>7} {ratio:>6.2f}x {spread:>10.2f}x ")
        first = results[sizes[0]][step].seconds / sizes[0]
        last = results[sizes[-1]][step].seconds / sizes[-1]
        print(f"{step:<16}" + "".join(f"{c:>{width}}" for c in cells)
              + f"   per-file growth {last / first:.2f} (target <= 1.3)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
