"""``qa2 lock``: one winner among racing reducers, a status naming holder and time, and
--force that says whose lock it broke."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from almaqa2.cli import main as cli_main
from almaqa2.errors import LockedError
from almaqa2.helpers import lock

RACERS = 20
TRIALS = 20


def _race(directory: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()
    try:
        lock.take(Path(directory), "analysisUtils")
    except LockedError:
        os._exit(1)
    os._exit(0)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_twenty_racers_one_winner(trial: int, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(RACERS)
    racers = [ctx.Process(target=_race, args=(str(tmp_path), barrier)) for _ in range(RACERS)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(30)
    codes = sorted(r.exitcode for r in racers)
    assert codes == [0] + [1] * (RACERS - 1), codes
    assert [p.name for p in tmp_path.iterdir()] == ["analysisUtils.lock"], "no drafts left"


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QA2_LOCK_DIR", str(tmp_path))
    return tmp_path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli_main(["lock", *argv])
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def test_on_status_off(shared: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "status") == (0, "analysisUtils is not locked")
    code, text = _run(capsys, "on")
    assert code == 0 and text.startswith("locked analysisUtils (")
    code, text = _run(capsys, "status", "--json")
    holder = json.loads(text)["holder"]
    assert holder["user"] and holder["host"] and holder["since"][:2] == "20"
    code, text = _run(capsys, "status")
    assert f"analysisUtils is locked by {holder['user']}@{holder['host']} since" in text
    code, text = _run(capsys, "on")
    assert code == 2 and "you hold the lock analysisUtils already" in text  # issue 18
    assert "'qa2 lock off'" in text and "ask them" not in text
    assert _run(capsys, "off")[0] == 0
    assert _run(capsys, "status") == (0, "analysisUtils is not locked")


def test_force_breaks_another_users_lock_and_names_it(
    shared: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (shared / "analysisUtils.lock").write_text(
        json.dumps({"user": "marcel", "host": "allegro3", "since": "2014-08-27 17:01", "name": "x"})
    )
    code, text = _run(capsys, "off")
    assert code == 2 and "held by marcel@allegro3 since 2014-08-27 17:01, not by you" in text
    assert "--force" in text
    code, text = _run(capsys, "off", "--force")
    assert (
        code == 0
        and text == "released analysisUtils, held by marcel@allegro3 since 2014-08-27 17:01"
    )
    assert not (shared / "analysisUtils.lock").exists()


def test_without_a_lock_directory(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("QA2_LOCK_DIR", raising=False)
    code, text = _run(capsys, "on")
    assert code == 2 and "no lock directory is set; export QA2_LOCK_DIR=" in text


@pytest.mark.parametrize(
    ("written", "said"),
    [
        (b"[1, 2]", "unknown@unknown since unknown"),
        (b'"marcel"', "unknown@unknown since unknown"),
        (b'{"user": "marcel"}', "unknown@unknown since unknown"),
        (b"\xff", "unknown@unknown since unknown"),
        (b'{"user": 7, "host": "h", "since": "2014-08-27"}', "7@h since 2014-08-27"),
        (
            b'{"user": "m\\u001b[2J", "host": "h\\nx", "since": "s"}',
            "'m\\x1b[2J'@'h\\nx' since s",
        ),
    ],
)
def test_a_lock_file_not_as_lock_writes_it_is_shown_never_obeyed(
    shared: Path, capsys: pytest.CaptureFixture[str], written: bytes, said: str
) -> None:
    """The lock directory is shared: what another user (or an editor) left in a lock file
    names its holder as far as it can, escaped (a terminal's control sequence is printed,
    not obeyed); the lock is still held, and --force still breaks it."""
    (shared / "analysisUtils.lock").write_bytes(written)
    code, text = _run(capsys, "status")
    assert code == 0 and text == f"analysisUtils is locked by {said}", text
    assert "\x1b" not in text
    code, text = _run(capsys, "on")
    assert code == 2 and f"held by {said}" in text
    assert _run(capsys, "off", "--force")[0] == 0
    assert not (shared / "analysisUtils.lock").exists()
