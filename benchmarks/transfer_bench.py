"""Transfer speed against the standard tools, measured in one run on a synthetic package.

The package has ~20,000 small files (calibration tables, plots, logs: 4-32 KB) and a few
large products (4 cubes of ~420 MB): ~2 GB, with its md5 manifest.  Printed:

    read floor        cat of every file to /dev/null (what any tool must at least pay)
    tarsplit          qa2 tarsplit (chunks + per-chunk md5 files + list)
      vs              tar cf - | split -b, then md5sum of the chunks        target <= 0.75
    verify            qa2 verify of the package against its manifest
      vs              md5sum -c of the manifest                            target <= 0.6
    verify chunks     qa2 verify of the chunks (chunk md5s and every member) vs md5sum -c
                      of the chunk list                                    target <= 0.6

Then the floors of both verifies, measured in the same runs: md5sum -c on both cores (the
manifest in two halves of equal bytes, checked at once); for the chunks, every byte hashed
twice on both cores (md5sum -c of the chunk list and of the manifest at once), what
checking each chunk's md5 and each member's costs when each md5 is a pass of its own, and
the chunks' md5s alone on both cores (the chunk list in two halves of about equal bytes),
what no check of the chunks can avoid.  (qa2 hashes a chunk and its members in one pass,
the two md5s interleaved: ``almaqa2.md5pair``.)

Each pair runs ``--repeat`` times (default 3), the baseline and ours alternating, each from
the same slate (outputs removed, ``sync``); printed are the best times, their ratio and the
median of the pairs' ratios.  The page cache is warm for all.
Usage: python benchmarks/transfer_bench.py [--workdir DIR] [--keep] [--repeat N]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from common import QA2, options, timed, workdir

from almaqa2 import manifest

PROJECT = "2011.0.00229.S"
MEMBER = "science_goal.uid___A001_X1_X1/group.uid___A001_X1_X2/member.uid___A001_X1_X3"
SMALL = {"calibration": 8000, "qa": 6000, "log": 2000, "script": 40, "product": 3960}
LARGE, LARGE_MB = 4, 420
MAX_SIZE = "500M"


def make_package(root: Path) -> tuple[int, int]:
    """The synthetic package with its manifest; returns (files, bytes)."""
    member = root / PROJECT / MEMBER
    files = size = 0
    for sub, count in SMALL.items():
        for i in range(count):
            folder = member / sub / f"set{i // 500:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            kb = (4, 8, 16, 32)[i % 4]
            data = os.urandom(kb << 10)
            (folder / f"file{i:05d}.dat").write_bytes(data)
            files, size = files + 1, size + len(data)
    block = os.urandom(1 << 20)
    for n in range(LARGE):
        with open(member / "product" / f"cube{n}.image.pbcor.fits", "wb") as f:
            for i in range(LARGE_MB):
                f.write(block[i % 997 :] + block[: i % 997])  # every MB different
        files, size = files + 1, size + (LARGE_MB << 20)
    package = root / PROJECT
    with manifest.Hasher() as hasher:
        for rel, bytes_ in manifest.files_under(package).items():
            hasher.add(str(package / rel), bytes_)
        digests = hasher.results()
    manifest.write(
        package, PROJECT, {str(Path(p).relative_to(package)): d for p, d in digests.items()}
    )
    return files, size


Run = tuple[list[str], Path, Path | None]  # command, where, output directory made afresh


def _best(pairs: int, ours: Run, *theirs: Run) -> tuple[float, list[float], float]:
    """Best times of ours and of each baseline, run in turn, and the median ratio of ours
    to the first baseline in the same round (the disk's write-back makes single runs of
    either vary by up to 2x)."""
    runs = (*theirs, ours)  # the baselines first in each round
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(pairs):
        for (cmd, cwd, fresh), kept in zip(runs, times, strict=True):
            kept.append(timed(cmd, cwd, clear=fresh, make=True))
    *bases, mine = times
    median = statistics.median(m / b for m, b in zip(mine, bases[0], strict=True))
    return min(mine), [min(t) for t in bases], median


def _halves(listing: Path, into: Path) -> list[Path]:
    """The lines of an md5 list in two lists of about equal bytes (the largest file first,
    each to the lighter list), written into ``into`` with the files' paths as the list has
    them (where it is): md5sum -c on both cores, run where the list is."""
    lines = listing.read_text().splitlines(keepends=True)
    where = listing.parent.parent if listing.name == manifest.NAME else listing.parent
    size = {line: (where / line.split("  ", 1)[1].rstrip("\n")).stat().st_size for line in lines}
    halves: list[list[str]] = [[], []]
    weight = [0, 0]
    for line in sorted(lines, key=size.__getitem__, reverse=True):
        lighter = weight.index(min(weight))
        halves[lighter].append(line)
        weight[lighter] += size[line]
    paths = [into / f".half{i}.md5" for i in range(2)]
    for path, half in zip(paths, halves, strict=True):
        path.write_text("".join(half))
    return paths


def _at_once(*commands: str) -> list[str]:
    """One shell running ``commands`` at once (both cores), failing if any fails."""
    started = " ".join(f"{c} & p{i}=$!;" for i, c in enumerate(commands))
    waited = " && ".join(f"wait $p{i}" for i in range(len(commands)))
    return ["sh", "-c", f"{started} {waited}"]


def main() -> int:
    args = options(__doc__, repeat=3)
    with workdir(args, "transfer") as work:
        start = time.perf_counter()
        files, size = make_package(work)
        print(
            f"synthetic package: {files} files, {size / 1e9:.2f} GB "
            f"(made in {time.perf_counter() - start:.1f} s) in {work / PROJECT}"
        )
        every_file = ["sh", "-c", f"find {PROJECT} -type f -exec cat {{}} + > /dev/null"]
        timed(every_file, work)  # warm the page cache for every command alike
        floor = min(timed(every_file, work) for _ in range(args.repeat))
        print(f"read floor (cat of every file): {floor:.2f} s, {size / 1e9 / floor:.2f} GB/s")
        print(
            f"{'':<16} {'almaqa2 s':>10} {'baseline s':>11} {'ratio':>7} {'median':>7}"
            f" {'target':>7}"
        )

        def show(what: str, times: tuple[float, list[float], float], target: str) -> None:
            mine, theirs, median = times
            print(
                f"{what:<16} {mine:>10.2f} {theirs[0]:>11.2f} {mine / theirs[0]:>7.2f}"
                f" {median:>7.2f} {target:>7}"
            )

        ours_out, base_out = work / "chunks", work / "split"
        tarsplit = [*QA2, "tarsplit", PROJECT, "--out", str(ours_out), "-n", "2012-06-20"]
        baseline = [
            "sh",
            "-c",
            f"tar cf - {PROJECT} | split -b {MAX_SIZE} - {base_out}/{PROJECT}_ "
            f"&& cd {base_out} && md5sum {PROJECT}_* > {PROJECT}.md5sums",
        ]
        runs = _best(
            args.repeat,
            ([*tarsplit, "--max-size", MAX_SIZE], work, ours_out),
            (baseline, work, base_out),
        )
        show("tarsplit", runs, "0.75")
        check = "md5sum -c --quiet"
        manifest_md5 = f"{PROJECT}/manifest.md5"
        halves = _at_once(*(f"{check} {half}" for half in _halves(work / manifest_md5, work)))
        verify = _best(
            args.repeat,
            ([*QA2, "verify", PROJECT], work, None),
            ([*check.split(), manifest_md5], work, None),
            (halves, work, None),
        )
        show("verify", verify, "0.6")
        listed = f"{PROJECT}_2012_06_20.md5sums"
        twice = _at_once(f"{check} {listed}", f"(cd {work} && {check} {manifest_md5})")
        chunk_halves = _at_once(*(f"{check} {h}" for h in _halves(ours_out / listed, work)))
        chunks = _best(
            args.repeat,
            ([*QA2, "verify", "."], ours_out, None),
            ([*check.split(), listed], ours_out, None),
            (twice, ours_out, None),
            (chunk_halves, ours_out, None),
        )
        show("verify chunks", chunks, "0.6")
        print("floors, whatever the tool (same runs):")
        for what, (mine, (md5sum, *floors), _), hows in (
            ("verify", verify, ["md5sum -c on both cores"]),
            (
                "verify chunks",
                chunks,
                ["every byte hashed twice, on both cores", "the chunks' md5s alone, on both cores"],
            ),
        ):
            for floor, how in zip(floors, hows, strict=True):
                print(
                    f"  {what}: {how} {floor:.2f} s ({floor / md5sum:.2f} x md5sum -c);"
                    f" {what} / floor = {mine / floor:.2f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
