"""What the benchmarks share: their options, a work directory, and timing one command
from the same slate as its baseline (its output removed, the disk's write-back flushed)."""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

QA2 = [sys.executable, "-c", "from almaqa2.launch import qa2; qa2()", "-q"]
"""``qa2 -q`` run by this Python (the benchmarks run in the project's .venv)."""


def options(doc: str, repeat: int, deferrable: bool = False) -> argparse.Namespace:
    """The options every benchmark takes, parsed; ``deferrable``: ``--defer-removal`` too."""
    return argument_parser(doc, repeat, deferrable).parse_args()


def argument_parser(doc: str, repeat: int, deferrable: bool = False) -> argparse.ArgumentParser:
    """The parser of ``options``, for a benchmark to add its own to."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="where to make the data")
    parser.add_argument("--keep", action="store_true", help="keep the data afterwards")
    parser.add_argument("--repeat", type=int, default=repeat, help="runs of each command")
    if deferrable:
        defer_removal_option(parser)
    return parser


def defer_removal_option(parser: argparse.ArgumentParser) -> None:
    """``--defer-removal``: on a disk, each run's output is moved aside (``remove``) and
    removed with the data at the end.  An ext4 without a journal passes over the inodes
    freed in the last minutes each time it makes a file, so a run right after another's
    tree was removed makes its files several times slower, whichever tool it is (seen
    here: 20 s for ``cp -a`` of 10^5 small files, against 3 s)."""
    parser.add_argument(
        "--defer-removal", action="store_true", help="remove the runs' output at the end (disk)"
    )


def aside_in(work: Path, args: argparse.Namespace) -> Path | None:
    """The directory in ``work`` where runs' output is moved with ``--defer-removal``.
    Without it on a disk, says that the figures will not be worth much (a scale run at
    10^5 files on ext4 gave copy 10 x its floor, against 0.7 x with it)."""
    if not args.defer_removal:
        kind = subprocess.run(
            ["stat", "-f", "-c", "%T", str(work)], capture_output=True, text=True, check=True
        ).stdout.strip()
        if kind != "tmpfs":
            print(
                f"warning: {work} is on {kind}, not tmpfs: give --defer-removal, or each run "
                "pays for the inodes the one before freed",
                file=sys.stderr,
            )
        return None
    aside = work / "aside"
    aside.mkdir(exist_ok=True)
    return aside


def remove(path: Path, aside: Path | None = None) -> None:
    """Remove ``path``, or move it into the directory ``aside``, if given, its pages
    dropped from memory (``_forget``)."""
    if aside is not None:
        moved = aside / str(len(os.listdir(aside)))
        path.rename(moved)
        _forget(moved)
    elif path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _forget(path: Path) -> None:
    """Drop the cached pages of the files under ``path``, once written out (``sync``).
    Kept in memory, the runs moved aside fill it: copy mode's runs and ``cp -a``'s write
    11 GB on disk, and the next runs' writes then wait while the kernel reclaims pages
    (``cp -a`` of hard mode's reduced MSes, 420 MB: 1.1 s after them, 0.2 s before).
    A removed tree gives its pages back; this makes one moved aside do so too.  A file
    with other links is left alone: it is the data's own, linked (``cp -al``, hard mode),
    whose pages the next runs read."""
    subprocess.run(["sync"], check=True)
    for folder, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_NOFOLLOW)
            try:
                if os.fstat(fd).st_nlink == 1:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


@contextlib.contextmanager
def workdir(args: argparse.Namespace, name: str) -> Iterator[Path]:
    """A fresh directory for the data, removed afterwards unless ``--keep``; in
    ``--workdir``, made if it is not there yet."""
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"almaqa2-{name}-", dir=args.workdir))
    try:
        yield work
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def timed(
    cmd: list[str],
    cwd: Path | None = None,
    clear: Path | None = None,
    make: bool = False,
    aside: Path | None = None,
) -> float:
    """Seconds ``cmd`` takes, after removing its output ``clear`` (or moving it ``aside``;
    made again, empty, with ``make``) and a ``sync``, so that no write-back of an earlier
    run lands in this one."""
    return timed_with_cpu(cmd, cwd, clear, make, aside)[0]


def timed_with_cpu(
    cmd: list[str],
    cwd: Path | None = None,
    clear: Path | None = None,
    make: bool = False,
    aside: Path | None = None,
) -> tuple[float, float]:
    """``timed``, and the CPU seconds (user and system) ``cmd`` and its children used."""
    if clear is not None:
        if clear.exists():
            remove(clear, aside)
        if make:
            clear.mkdir()
    done = measured(cmd, cwd, codes=(0,))
    return done.seconds, done.cpu


class Measured(NamedTuple):
    seconds: float
    rss_mb: int  # peak resident memory of the largest process
    cpu: float  # seconds of CPU (user and system) of all its processes


def measured(
    cmd: list[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    codes: tuple[int, ...] = (0, 1),
) -> Measured:
    """Wall time, peak RSS and CPU time of ``cmd`` (which must exit with one of ``codes``),
    after a ``sync``, so that no write-back of an earlier run lands in this one.  It runs
    as the only child of a fresh process: a child forked from a benchmark that holds data
    counts the benchmark's memory too."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
        "used = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(time.perf_counter() - t, used.ru_maxrss, used.ru_utime + used.ru_stime, code)\n"
    )
    subprocess.run(["sync"], check=True)
    done = subprocess.run(
        [sys.executable, "-c", probe, *cmd], capture_output=True, text=True, cwd=cwd, env=env,
        check=True,
    )  # fmt: skip
    seconds, rss_kb, cpu, code = done.stdout.split()
    if int(code) not in codes:
        raise SystemExit(f"{shlex.join(cmd)} failed with exit {code}: {done.stderr.strip()}")
    return Measured(float(seconds), int(rss_kb) // 1024, float(cpu))
