"""append='' replaces only our own packages; 'group' and 'member' add beside what is there."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from almaqa2.cli import main
from almaqa2.testing import reductions as example

from conftest import QA2, Case, listing, make_case, md5sum_check, tree_state

SECOND_SB = """\
X3c9295_X1e0/uid___A002_X3c9295_X1e0.ms/
X3c9295_X1e0/uid___A002_X3c9295_X1e0.ms.scriptForCalibration.py
X3c9295_X1e0/uid___A002_X3c9295_X1e0.ms.split.cal/
X3c9295_X1e0/checklist.txt
X3c9295_X1e0/qa2/qa2_part1.png
Combined/scriptForImaging.py
"""


def _second(case: Case) -> Path:
    return example.build(SECOND_SB.splitlines(), case.origpath.parent / "IRC10216_setup4")


def _append(case: Case, origpath: Path, append: str, mode: str = "copy") -> int:
    argv, _ = case.commands(mode)
    argv[1] = str(origpath)
    return main([*argv, "--append", append])


def _members(case: Case) -> list[str]:
    return sorted(
        p.relative_to(case.packpath).as_posix() for p in case.packpath.glob("*/*/*") if p.is_dir()
    )


def test_replace_our_own_package(case229: Case) -> None:
    assert case229.run_cli("fake") == 0
    (case229.packpath / "sg_ouss_id" / "stale-file").write_text("from an older run")
    assert case229.run_cli("copy") == 0
    assert not (case229.packpath / "sg_ouss_id" / "stale-file").exists()
    assert '"mode": "copy"' in (case229.packpath / ".almaqa2.json").read_text()


def test_refuse_to_replace_a_directory_we_did_not_make(
    case229: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    case229.packpath.mkdir()
    (case229.packpath / "precious.txt").write_text("the PI's thesis")
    before = tree_state(case229.packpath)
    for append in ("", "group", "member"):
        argv, _ = case229.commands("copy")
        assert main([*argv, "--append", append]) == 2
        assert "not made by almaqa2" in capsys.readouterr().err
    assert tree_state(case229.packpath) == before


@pytest.mark.parametrize(
    ("made", "appended", "fix"),
    [
        ("fake", "copy", "package its members again in copy mode"),
        ("ticket", "hard", "package its members again in hard mode"),
        ("copy", "fake", "append in copy or hard mode"),
    ],
)
def test_an_append_never_mixes_placeholders_and_data(
    case229: Case, capsys: pytest.CaptureFixture[str], made: str, appended: str, fix: str
) -> None:
    """A copy appended to a fake package was marked copy and delivered: the fake member's
    empty files listed in its manifest with their (empty) md5s, so verify, tarsplit and
    deliver passed them as data.  Refused before anything is written, in --dry-run too."""
    assert case229.run_cli(made) == 0
    before = tree_state(case229.packpath.parent)
    second = _second(case229)
    capsys.readouterr()
    for dry_run in ([], ["--dry-run"]):
        argv, _ = case229.commands(appended)
        argv[1] = str(second)
        assert main([*argv, "--append", "member", *dry_run]) == 2
        said = " ".join(capsys.readouterr().err.split())
        assert f"the package was made in {made} mode" in said and f"; {fix}" in said
    assert tree_state(case229.packpath.parent) == before
    alike = {"fake": "ticket", "ticket": "fake", "copy": "hard"}[made]
    assert _append(case229, second, "member", alike) == 0, "another mode of its kind is"


def test_append_group_adds_group_ouss_id2(case229: Case) -> None:
    assert case229.run_cli("copy") == 0
    first = tree_state(case229.packpath / "sg_ouss_id" / "group_ouss_id")
    assert _append(case229, _second(case229), "group") == 0
    assert _members(case229) == [
        "sg_ouss_id/group_ouss_id/member_ouss_id",
        "sg_ouss_id/group_ouss_id2/member_ouss_id",
    ]
    assert tree_state(case229.packpath / "sg_ouss_id" / "group_ouss_id") == first


def test_append_member_adds_to_the_highest_group(case229: Case) -> None:
    assert case229.run_cli("copy") == 0
    second = _second(case229)
    assert _append(case229, second, "group") == 0
    assert _append(case229, second, "member") == 0
    assert _append(case229, second, "member") == 0
    assert _members(case229) == [
        "sg_ouss_id/group_ouss_id/member_ouss_id",
        "sg_ouss_id/group_ouss_id2/member_ouss_id",
        "sg_ouss_id/group_ouss_id2/member_ouss_id2",
        "sg_ouss_id/group_ouss_id2/member_ouss_id3",
    ]
    new = case229.packpath / "sg_ouss_id/group_ouss_id2/member_ouss_id3"
    assert (new / "qa" / "X1e0.checklist.txt").is_file()
    assert (new / "README").is_file()


def test_append_keeps_the_manifest_whole(case229: Case) -> None:
    assert case229.run_cli("copy") == 0
    assert _append(case229, _second(case229), "member") == 0
    manifest = (case229.packpath / "manifest.md5").read_text()
    assert "member_ouss_id2/README" in manifest and "member_ouss_id/README" in manifest
    done = md5sum_check(case229.packpath)
    assert done.returncode == 0, done.stdout
    listed = len(manifest.splitlines())
    on_disk = len([p for p in case229.packpath.rglob("*") if p.is_file()]) - 1
    assert listed == on_disk


def test_append_to_nothing_makes_a_fresh_package(case229: Case) -> None:
    argv, _ = case229.commands("fake")
    assert main([*argv, "--append", "member"]) == 0
    assert _members(case229) == ["sg_ouss_id/group_ouss_id/member_ouss_id"]
    assert listing(case229.packpath) == sorted([*case229.expected, "2011.0.00229.S/.almaqa2.json"])


def test_append_member_with_a_known_uid(tmp_path: Path) -> None:
    case = make_case("project229", tmp_path)
    assert case.run_cli("fake") == 0
    argv, _ = case.commands("fake")
    argv[1] = str(_second(case))
    assert main([*argv, "--append", "member", "--mous", "uid://A001/X13e/X1fe"]) == 0
    assert (case.packpath / "sg_ouss_id/group_ouss_id/member.uid___A001_X13e_X1fe").is_dir()
    assert main([*argv, "--append", "member", "--mous", "uid://A001/X13e/X1fe"]) == 2


def test_append_lists_the_existing_package_once(
    case229: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15: an append links the package into staging and takes its files, sizes and
    digests from that one walk (not again for the manifest and the ticket's size)."""
    import os
    from collections import Counter

    assert case229.run_cli("copy") == 0
    old_member = "/sg_ouss_id/group_ouss_id/member_ouss_id/"
    listed: Counter[str] = Counter()  # directories of the old member, in place or linked
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:
        if isinstance(path, str | os.PathLike) and old_member in os.fspath(path) + "/":
            listed[(os.fspath(path) + "/").split(old_member, 1)[1]] += 1
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    assert _append(case229, _second(case229), "member") == 0
    assert len(listed) >= 5, listed  # its subdirectories were walked (to link them)
    assert {p: n for p, n in listed.items() if n > 1} == {}
    monkeypatch.undo()
    done = md5sum_check(case229.packpath)
    assert done.returncode == 0, done.stdout


def _entries(root: Path) -> dict[str, tuple[int, int]]:
    """Every entry below ``root``: (mode, mtime), read without opening any (a pipe would
    be waited on)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            found[os.path.relpath(os.path.join(dirpath, name), root)] = (st.st_mode, st.st_mtime_ns)
    return found


@pytest.mark.parametrize("planted", ["pipe", "link to a directory", "link to a file", "manifest"])
def test_an_append_to_a_package_holding_what_we_never_write_is_refused(
    case229: Case, planted: str
) -> None:
    """A package of ours holds files and directories only; a pipe put in it since made an
    append wait forever (it was read to be hashed), a link to a directory became an empty
    directory, a manifest that is a directory gave the system's bare words.  Each is one
    sentence, exit 2, and the package and its directory are as they were."""
    argv, _ = case229.commands("copy")
    assert main(argv) == 0
    member = next(case229.packpath.glob("*/*/*"))
    if planted == "pipe":
        os.mkfifo(member / "pipe")
    elif planted == "link to a directory":
        (member / "escape").symlink_to("/etc")
    elif planted == "link to a file":
        (member / "escape").symlink_to("/etc/hostname")
    else:
        (case229.packpath / "manifest.md5").unlink()
        (case229.packpath / "manifest.md5").mkdir()
    before = _entries(case229.packpath.parent)
    argv[1] = str(_second(case229))
    done = subprocess.run([*QA2, *argv, "--append", "member", "-q"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    said = " ".join(done.stderr.split())
    assert "Traceback" not in said and said.count("error:") == 1, said
    assert ("cannot be read (Is a directory)" if planted == "manifest" else
            "a package holds only files and directories, and this is not one") in said  # fmt: skip
    assert _entries(case229.packpath.parent) == before
