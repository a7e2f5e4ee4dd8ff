"""Killed at random moments (issue 13, acceptance 3): ``package``, an append, ``tarsplit``,
``untar``, ``deliver`` and ``stage`` are each SIGKILLed at 20 random points of a real run
(more while fewer than 3 have landed inside the work).
After every kill the destination holds the old state or the new one, never a mix; the next
run succeeds, leaves nothing of the killed one behind, and what it made verifies clean.

The killed runs are forked from this process (the libraries already imported, so a kill
point falls in the work, not in Python's start-up), and their delays are drawn from a
seeded generator over 1.2 times the length of an undisturbed run, measured first.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from almaqa2.cli import main
from almaqa2.package import package_dir
from test_append import _append, _second
from test_stage import build_run

from conftest import Case, make_case, tree_state

KILLS = 20


def _run_killed(argv: list[str], delay: float) -> None:
    """Run ``qa2 argv`` in a forked child and SIGKILL it after ``delay`` seconds."""
    pid = os.fork()
    if pid == 0:  # the child: quiet, and never back into pytest
        code = 70
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            code = main(argv)
        finally:
            os._exit(code)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _timed(run: Callable[[], int]) -> float:
    start = time.monotonic()
    assert run() == 0
    return time.monotonic() - start


MIDWAY = 3


def _delays(length: float, seed: int, hits: list[bool]) -> Iterator[float]:
    """``KILLS`` delays drawn over 1.2 times ``length``, and more (up to three times as
    many) while fewer than ``MIDWAY`` of the kills have landed inside the work (``hits``,
    which the loop appends to): where the work is a small part of a short run, 20 draws
    alone miss it now and then."""
    draw = random.Random(seed)
    for n in range(3 * KILLS):
        if n >= KILLS and sum(hits) >= MIDWAY:
            return
        yield draw.uniform(0, 1.2 * length)


def _caught_midway(hits: list[bool]) -> None:
    """Some kills must have landed inside the work (something left to tidy), or the loop
    tested nothing."""
    assert sum(hits) >= MIDWAY, f"only {sum(hits)} of {len(hits)} kills landed inside the run"


def _ours_beside(where: Path) -> list[str]:
    """Hidden entries of ours (staging, tickets being written, old packages, locks)."""
    return sorted(n for n in os.listdir(where) if n.startswith(".") and "almaqa2" in n)


def _verifies(path: Path) -> bool:
    return main(["verify", str(path)]) == 0


def _argv(case: Case, mode: str) -> list[str]:
    return case.commands(mode)[0]


def test_package_killed_anywhere(tmp_path: Path) -> None:
    case = make_case("nrao", tmp_path)
    length = _timed(lambda: main(_argv(case, "hard")))
    hits = []
    for delay in _delays(length, 1, hits):
        before = tree_state(case.packpath)
        _run_killed(_argv(case, "copy"), delay)
        hits.append(bool(_ours_beside(case.packpath.parent)))
        assert tree_state(case.packpath) == before or _verifies(case.packpath), delay
        assert main(_argv(case, "hard")) == 0
        assert _ours_beside(case.packpath.parent) == [] and _verifies(case.packpath)
    _caught_midway(hits)


def test_append_killed_anywhere(tmp_path: Path) -> None:
    case = make_case("nrao", tmp_path)
    second = _second(case)
    assert main(_argv(case, "hard")) == 0
    length = _timed(lambda: _append(case, second, "member", mode="hard"))
    group = next(case.packpath.glob("*/*"))
    hits = []
    for delay in _delays(length, 2, hits):
        if len(list(group.iterdir())) > 4:  # start again from one member now and then
            assert main(_argv(case, "hard")) == 0
        before, members = tree_state(case.packpath), len(list(group.iterdir()))
        _run_killed(
            [*_argv(case, "hard")[:1], str(second), *_argv(case, "hard")[2:], "--append", "member"],
            delay,
        )
        hits.append(bool(_ours_beside(case.packpath.parent)))
        now = len(list(group.iterdir()))
        assert (tree_state(case.packpath) == before) or (
            now == members + 1 and _verifies(case.packpath)
        ), delay
        assert _append(case, second, "member", mode="hard") == 0
        assert len(list(group.iterdir())) == now + 1
        assert _ours_beside(case.packpath.parent) == [] and _verifies(case.packpath)
    _caught_midway(hits)


@pytest.fixture
def packaged(tmp_path: Path) -> Case:
    case = make_case("nrao", tmp_path)
    assert main(_argv(case, "copy")) == 0
    return case


def _split(case: Case, out: Path) -> list[str]:
    return ["tarsplit", str(case.packpath), "--max-size", "20K", "--out", str(out)]


def test_tarsplit_killed_anywhere(packaged: Case, tmp_path: Path) -> None:
    out = tmp_path / "chunks"
    out.mkdir()
    length = _timed(lambda: main(_split(packaged, out)))
    hits = []
    for delay in _delays(length, 3, hits):
        started = time.time()
        _run_killed(_split(packaged, out), delay)
        hits.append(_split_midway(out, started))
        for md5 in out.glob("*.tar.md5sum"):  # every finished chunk is whole
            assert md5.with_suffix("").is_file()
            assert main(["verify", str(md5.with_suffix(""))]) in (0, 1)
        assert main(_split(packaged, out)) == 0
        assert not list(out.glob("*.part")) and _ours_beside(out) == []
        assert _verifies(out)
    _caught_midway(hits)


def _split_midway(out: Path, started: float) -> bool:
    """Whether a split killed after ``started`` was writing: a chunk being written, or
    chunks it wrote but not yet the list of their md5s (the last it writes)."""
    listing = next(out.glob("*.md5sums"), None)
    listed = listing.stat().st_mtime if listing else 0.0
    wrote = [p.stat().st_mtime for p in out.glob("*.tar*")]
    return bool(list(out.glob("*.part"))) or any(listed < t and t >= started for t in wrote)


def test_untar_killed_anywhere(packaged: Case, tmp_path: Path) -> None:
    chunks = tmp_path / "chunks"
    chunks.mkdir()
    assert main(_split(packaged, chunks)) == 0
    length = _timed(lambda: main(["untar", str(chunks), "--out", str(tmp_path)]))
    out = tmp_path / "out-untar"
    hits = []
    for n, delay in enumerate(_delays(length, 4, hits)):
        target = out / str(n)
        target.mkdir(parents=True)
        argv = ["untar", str(chunks), "--out", str(target)]
        _run_killed(argv, delay)
        hits.append(bool(_ours_beside(target)))
        package = target / packaged.packpath.name
        assert not package.exists() or _verifies(package), delay
        if not package.exists():
            assert main(argv) == 0
        else:
            assert main(argv) == 2  # never over a package: but the leftovers are tidied
        assert _ours_beside(target) == [] and _verifies(package)
    _caught_midway(hits)


def test_deliver_killed_anywhere(packaged: Case, tmp_path: Path) -> None:
    chunks = tmp_path / "chunks"
    chunks.mkdir()
    assert main(_split(packaged, chunks)) == 0
    web = tmp_path / "web"
    web.mkdir()
    length = _timed(lambda: main(["deliver", str(chunks), "--web-root", str(web)]))
    hits = []
    for delay in _delays(length, 5, hits):
        shutil.rmtree(web)
        web.mkdir()
        _run_killed(["deliver", str(chunks), "--web-root", str(web)], delay)
        hits.append(bool(_ours_beside(web)))
        visible = [p for p in web.iterdir() if not p.name.startswith(".")]
        assert len(visible) <= 1 and all(_verifies(p) for p in visible), delay
        assert main(["deliver", str(chunks), "--web-root", str(web)]) == 0
        assert _ours_beside(web) == []
        assert all(_verifies(p) for p in web.iterdir())
    _caught_midway(hits)


def test_stage_killed_anywhere(tmp_path: Path) -> None:
    run = build_run(tmp_path)
    staged = tmp_path / "staged" / "2013.1.00456.S"
    staged.parent.mkdir()
    argv = ["stage", str(run), str(staged), "--mode", "copy"]
    assert main(argv) == 0  # the killed runs stage again over this: time one such run
    length = _timed(lambda: main(argv))
    hits = []
    for delay in _delays(length, 6, hits):
        before = tree_state(staged)
        _run_killed(argv, delay)
        hits.append(bool(_ours_beside(staged.parent)))
        assert tree_state(staged) == before or _verifies(staged), delay
        assert main(argv) == 0
        assert _ours_beside(staged.parent) == [] and _verifies(staged)
    _caught_midway(hits)
    assert package_dir.is_ours(staged)
