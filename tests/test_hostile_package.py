"""``qa2 package`` and ``qa2 stage`` against planted links, directories appearing during a
build, damaged markers and failures late in a run (issue 13, items 2, 3, 5, 11, 12)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from almaqa2 import manifest
from almaqa2.cli import main
from almaqa2.package import materialize, package_dir, ticket
from test_append import _append, _second
from test_stage import build_run

from conftest import Case, md5sum_check, tree_state


def _beside(case: Case) -> list[str]:
    return sorted(p.name for p in case.packpath.parent.iterdir())


# -- item 2: the lock file is never written through ------------------------------------------


@pytest.mark.parametrize("planted", ["symlink", "hardlink"])
def test_a_planted_lock_file_is_refused_not_written_through(
    planted: str, case229: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("the PI's data\n")
    lock = case229.packpath.parent / f".{case229.packpath.name}.almaqa2.lock"
    if planted == "symlink":
        lock.symlink_to(victim)
    else:
        os.link(victim, lock)
    assert case229.run_cli("fake") == 2
    assert f"lock file is a {'symbolic' if planted == 'symlink' else 'hard'} link" in (
        capsys.readouterr().err
    )
    assert victim.read_text() == "the PI's data\n"
    assert not case229.packpath.exists()


def test_stage_refuses_a_planted_lock_file(tmp_path: Path) -> None:
    root = build_run(tmp_path)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    staged = tmp_path / "staged" / "2013.1.00456.S"
    staged.parent.mkdir()
    (staged.parent / f".{staged.name}.almaqa2.lock").symlink_to(victim)
    assert main(["stage", str(root), str(staged), "--mode", "fake"]) == 2
    assert victim.read_text() == "precious\n"


# -- item 3: something not ours appearing at packpath during the build ------------------------


def _plant_during_build(monkeypatch: pytest.MonkeyPatch, packpath: Path) -> None:
    """Another process puts its own directory at packpath while the payload is written."""
    real = materialize.write_payload

    def write_and_plant(*args: object, **kwargs: object) -> dict[str, int]:
        sizes = real(*args, **kwargs)  # type: ignore[arg-type]
        if packpath.exists():
            os.rename(packpath, packpath.with_name("moved-away"))
        packpath.mkdir()
        (packpath / "theirs.txt").write_text("not ours\n")
        return sizes

    monkeypatch.setattr(materialize, "write_payload", write_and_plant)


@pytest.mark.parametrize("before", ["nothing", "our package"])
def test_a_directory_appearing_at_packpath_is_left_alone(
    before: str, case229: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    if before == "our package":
        assert case229.run_cli("fake") == 0
    _plant_during_build(monkeypatch, case229.packpath)
    assert case229.run_cli("copy") == 2
    assert (case229.packpath / "theirs.txt").read_text() == "not ours\n"
    assert sorted(p.name for p in case229.packpath.iterdir()) == ["theirs.txt"]
    leftovers = [n for n in _beside(case229) if "almaqa2" in n]
    assert leftovers == [], leftovers


def test_an_empty_directory_appearing_at_packpath_is_not_replaced(
    case229: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = materialize.write_payload

    def write_and_plant(*args: object, **kwargs: object) -> dict[str, int]:
        sizes = real(*args, **kwargs)  # type: ignore[arg-type]
        case229.packpath.mkdir()
        return sizes

    monkeypatch.setattr(materialize, "write_payload", write_and_plant)
    assert case229.run_cli("fake") == 2
    assert case229.packpath.is_dir() and list(case229.packpath.iterdir()) == []


# -- item 5: a packpath that is a link ------------------------------------------------------------


def test_append_through_a_packpath_linked_into_origpath_is_refused(
    case229: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    assert case229.run_cli("fake") == 0
    inside = case229.origpath / "old-package"
    case229.packpath.rename(inside)
    case229.packpath.symlink_to(inside)
    before = tree_state(case229.origpath)
    assert _append(case229, _second(case229), "member", mode="fake") == 2
    assert "symbolic link" in capsys.readouterr().err
    assert tree_state(case229.origpath) == before


# -- item 11: an append is atomic -------------------------------------------------------------


def test_a_full_disk_during_an_append_leaves_the_package_as_it_was(
    case229: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert case229.run_cli("copy") == 0
    before = tree_state(case229.packpath)
    real = manifest.write

    def full(*args: object) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device", str(args[0]))

    monkeypatch.setattr(manifest, "write", full)
    second = _second(case229)
    assert _append(case229, second, "member") == 2
    assert tree_state(case229.packpath) == before
    assert md5sum_check(case229.packpath).returncode == 0
    assert [n for n in _beside(case229) if "almaqa2" in n] == []
    monkeypatch.setattr(manifest, "write", real)
    assert _append(case229, second, "member") == 0
    members = sorted(p.name for p in (case229.packpath / "sg_ouss_id" / "group_ouss_id").iterdir())
    assert members == ["member_ouss_id", "member_ouss_id2"]
    assert main(["verify", str(case229.packpath)]) == 0


def test_a_damaged_marker_is_one_sentence_before_anything_is_written(
    case229: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    assert case229.run_cli("copy") == 0
    marker = case229.packpath / ".almaqa2.json"
    info = json.loads(marker.read_text())
    info["members"] = 5
    marker.write_text(json.dumps(info))
    before = tree_state(case229.packpath)
    assert _append(case229, _second(case229), "member") == 2
    err = capsys.readouterr().err
    assert "damaged" in err and "Traceback" not in err
    assert tree_state(case229.packpath) == before


# -- item 12: a failure after the package is built leaves the old state ------------------------


def test_a_ticket_that_cannot_be_written_leaves_no_new_package(
    case229: Case, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert case229.run_cli("fake") == 0
    before = tree_state(case229.packpath.parent)

    def full(path: Path, items: object) -> None:
        path.write_bytes(b"PK")  # a part written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(ticket, "_write_tar", full)
    assert case229.run_cli("copy") == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "nothing half-written" not in err
    assert tree_state(case229.packpath.parent) == before


def test_tickets_left_by_a_killed_run_are_removed_by_the_next(case229: Case) -> None:
    leftover = case229.packpath.parent / f"{package_dir.ticket_prefix(case229.packpath)}x1y2"
    leftover.write_bytes(b"PK half a zip")
    assert case229.run_cli("fake") == 0
    assert sorted(_beside(case229)) == sorted([case229.packpath.name, *case229.expected_beside])
