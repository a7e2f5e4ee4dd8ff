"""What the benchmarks share: their options, a work directory, and timing one command
from the same slate as its baseline (its output removed, the disk's write-back flushed)."""

from __future__ import annotations

import argparse
import contextlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

QA2 = [sys.executable, "-c", "from almaqa2.cli import entrypoint; entrypoint()", "-q"]
"""``qa2 -q`` run by this Python (the benchmarks run in the project's .venv)."""


def options(doc: str, repeat: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="where to make the data")
    parser.add_argument("--keep", action="store_true", help="keep the data afterwards")
    parser.add_argument("--repeat", type=int, default=repeat, help="runs of each command")
    return parser.parse_args()


@contextlib.contextmanager
def workdir(args: argparse.Namespace, name: str) -> Iterator[Path]:
    """A fresh directory for the data, removed afterwards unless ``--keep``."""
    work = Path(tempfile.mkdtemp(prefix=f"almaqa2-{name}-", dir=args.workdir))
    try:
        yield work
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def timed(
    cmd: list[str], cwd: Path | None = None, clear: Path | None = None, make: bool = False
) -> float:
    """Seconds ``cmd`` takes, after removing its output ``clear`` (made again, empty, with
    ``make``) and a ``sync``, so that no write-back of an earlier run lands in this one."""
    return timed_with_cpu(cmd, cwd, clear, make)[0]


def timed_with_cpu(
    cmd: list[str], cwd: Path | None = None, clear: Path | None = None, make: bool = False
) -> tuple[float, float]:
    """``timed``, and the CPU seconds (user and system) ``cmd`` and its children used."""
    if clear is not None:
        shutil.rmtree(clear, ignore_errors=True)
        if make:
            clear.mkdir()
    subprocess.run(["sync"], check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=cwd, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


class Measured(NamedTuple):
    seconds: float
    rss_mb: int  # peak resident memory of the largest process
    cpu: float  # seconds of CPU (user and system) of all its processes


def measured(
    cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> Measured:
    """Wall time, peak RSS and CPU time of ``cmd``, run as the only child of a fresh
    process: a child forked from a benchmark that holds data counts the benchmark's memory
    too."""
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
    if code not in ("0", "1"):
        raise SystemExit(f"{' '.join(cmd[4:6])} failed with exit {code}: {done.stderr.strip()}")
    return Measured(float(seconds), int(rss_kb) // 1024, float(cpu))
