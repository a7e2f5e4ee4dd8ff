"""A real full or read-only disk (a tmpfs of the command's own, ``run_on_disk``, or a
folder mounted read-only, ``run_read_only``): what a write the place refuses is said as,
and that nothing is left on it.

"No space left on device" is also what a file system says when every inode is used, with
space to spare: freeing space would not help, so the advice says which it is.  It is
judged when the write fails, before the run removes what it wrote (which frees inodes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from almaqa2.cli import main

from conftest import Case, refused_on_disk, run_on_disk, run_read_only

CHUNK = r"2011\.0\.00229\.S_2012_06_20_\d{3}_of_\d{3}\.tar"
INODES = "its file system holds as many files as it can (df -i): remove some there, or choose"


def _disk(tmp_path: Path) -> Path:
    disk = tmp_path / "disk"
    disk.mkdir()
    return disk


def _package_on(case: Case, disk: Path, options: str, mode: str = "copy") -> tuple[str, list[str]]:
    argv, _ = case.commands(mode)
    argv[argv.index(str(case.packpath))] = str(disk / case.packpath.name)
    return refused_on_disk(argv, disk, options)


@pytest.mark.parametrize("mode", ["copy", "fake"])
def test_a_package_on_a_disk_out_of_inodes_says_so(
    case229: Case, tmp_path: Path, mode: str
) -> None:
    """It said "free some space", on a disk with megabytes free."""
    disk = _disk(tmp_path)
    said, left = _package_on(case229, disk, "size=8m,nr_inodes=40", mode)
    assert re.fullmatch(
        rf"error: No space left on device: {re.escape(str(disk))}/2011\.0\.00229\.S/\S+;"
        rf" {re.escape(INODES)} another place and run again\.",
        said,
    ), said
    assert left == []


def test_a_large_fake_package_out_of_inodes_says_so(case229: Case, tmp_path: Path) -> None:
    """Its tables shared with a helper, the disk's last inode taken by either process:
    neither frees one before the error is said."""
    table = case229.origpath / "X8c" / "uid___A002_X3c9295_X8c.ms.split.bandpass"
    for i in range(1500):
        (table / f"table.f{i}_extra").write_bytes(b"x")
    disk = _disk(tmp_path)
    said, left = _package_on(case229, disk, "size=64m,nr_inodes=1000", "fake")
    assert said.endswith(f"; {INODES} another place and run again."), said
    assert left == []


def test_a_package_on_a_full_disk_says_to_free_space(case229: Case, tmp_path: Path) -> None:
    disk = _disk(tmp_path)
    said, left = _package_on(case229, disk, "size=64k")
    assert said.startswith(f"error: No space left on device making {disk}/2011.0.00229.S/"), said
    assert said.endswith("; free some space, or choose another place and run again."), said
    assert left == []


def test_a_package_on_a_read_only_disk_says_it_is_read_only(case229: Case, tmp_path: Path) -> None:
    """It said "free some space" there too."""
    disk = _disk(tmp_path)
    said, left = _package_on(case229, disk, "ro")
    assert said == (
        f"error: Read-only file system: {disk}/.2011.0.00229.S.almaqa2.lock; that file"
        " system is mounted read-only: work where it is writable, or choose another place and"
        " run again."
    )
    assert left == []


@pytest.fixture
def package(case229: Case) -> Path:
    assert case229.run_cli("copy") == 0
    return case229.packpath


def test_chunks_on_a_disk_out_of_inodes_say_so(package: Path, tmp_path: Path) -> None:
    """The chunks finished before stay, each with its md5 beside it; the one that failed
    leaves no part."""
    disk = _disk(tmp_path)
    argv = ["-q", "tarsplit", str(package), "-n", "2012-06-20", "--max-size", "64K"]
    argv += ["--out", str(disk)]
    said, left = refused_on_disk(argv, disk, "size=8m,nr_inodes=6")
    assert re.fullmatch(
        rf"error: could not write the chunk \(No space left on device\):"
        rf" {re.escape(str(disk))}/{CHUNK}; {re.escape(INODES)} another place for the chunks,"
        " then run again.",
        said,
    ), said
    assert left, "the chunks before it are finished"
    assert not [name for name in left if name.endswith(".part")]
    assert [f"{name}.md5sum" for name in left if name.endswith(".tar")] == [
        name for name in left if name.endswith(".md5sum")
    ]


def test_untar_onto_a_full_disk_leaves_nothing(package: Path, tmp_path: Path) -> None:
    chunks = tmp_path / "chunks"
    chunks.mkdir()
    assert main(["tarsplit", str(package), "-n", "2012-06-20", "--out", str(chunks)]) == 0
    disk = _disk(tmp_path)
    argv = ["untar", str(chunks), "--out", str(disk / "here")]
    said, left = refused_on_disk(argv, disk, "size=64k")
    assert said == (
        f"error: could not extract the chunk (No space left on device): {disk}/here; free some"
        " space, or choose another --out, then run again."
    )
    assert left == []


def test_a_lock_on_a_disk_out_of_inodes_names_the_lock_directory(tmp_path: Path) -> None:
    """It named the hidden draft it could not make (``.analysisUtils.<hex>.tmp``)."""
    disk = _disk(tmp_path)
    said, left = refused_on_disk(["lock", "on", "--dir", str(disk)], disk, "size=1m,nr_inodes=1")
    assert said == f"error: No space left on device: {disk}; {INODES} another place and run again."
    assert left == []


def test_ticket_files_that_do_not_fit_in_jira_are_all_or_none(
    case229: Case, tmp_path: Path
) -> None:
    """--jira on a full disk: the zip went in, the page did not, and the sentence (the
    system's, as if the package had failed) did not say the package was made."""
    disk = _disk(tmp_path)
    argv, _ = case229.commands("ticket")
    said, left = refused_on_disk([*argv, "--jira", str(disk / "JIRA")], disk, "size=64k")
    assert re.fullmatch(
        r"error: the package is made, but its ticket files could not be put into --jira \(No"
        rf" space left on device\): {re.escape(str(disk))}/JIRA/\S+; free some space, or choose"
        r" another --jira, then run again\.",
        said,
    ), said
    assert left == []
    assert (case229.packpath.parent / "2011.0.00229.S.ticket.zip").is_file()


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["allfluxes", "{r}/X8c"],
            "Read-only file system: {r}/X8c/allFluxes.txt; that file system is mounted"
            " read-only: work where it is writable, or choose another place and run again.",
        ),
        (
            ["clear", "{r}/X8c", "--yes"],
            "the clearing stopped at what it could not delete (Read-only file system):"
            " {r}/X8c/bandpass.last; run it where that file system is mounted writable, then"
            " run qa2 clear again for the rest.",
        ),
        (
            ["lock", "on", "--dir", "{r}"],
            "Read-only file system: {r}; that file system is mounted read-only: work where it"
            " is writable, or choose another place and run again.",
        ),
    ],
    ids=["allfluxes", "clear", "lock"],
)
def test_a_reduction_on_a_read_only_disk_is_said_so(
    case229: Case, argv: list[str], said: str
) -> None:
    """Each named a hidden file of its own (the allFluxes.txt draft, the lock's: the
    removal of a draft never made failed too, and hid the first error), or said to make
    the files writable, or to choose another place, as of a write elsewhere."""
    reduction = case229.origpath
    done = run_read_only([a.format(r=reduction) for a in argv], reduction)
    assert done.returncode == 2, done.stderr
    assert " ".join(done.stderr.split()) == f"error: {said.format(r=reduction)}"


def test_a_temporary_directory_out_of_inodes_is_named_as_such(
    case229: Case, tmp_path: Path
) -> None:
    """MeasurementSets are read through a shadow tree of links in $TMPDIR: one out of
    inodes named the shadow's hidden path, and said to free some space (judged once the
    shadow was removed) or to choose another place, which is no option given."""
    disk = _disk(tmp_path)
    argv, _ = case229.commands("copy")
    said, left = refused_on_disk(argv, disk, "size=1m,nr_inodes=2", env={"TMPDIR": str(disk)})
    assert said == (
        "error: could not make the temporary view MeasurementSets are read through (No space"
        f" left on device): {disk}; {INODES} another temporary directory (TMPDIR=...), then"
        " run again."
    )
    assert left == [] and not case229.packpath.exists()


def test_a_full_dev_shm_is_passed_by(case229: Case, tmp_path: Path) -> None:
    """Shadows go to /dev/shm unless a temporary directory is named: a full one (a
    container's 64 MB, shared) failed every package; the system's is used instead."""
    argv, _ = case229.commands("copy")
    shm = Path("/dev/shm")
    done, left = run_on_disk(argv, shm, "size=4k", filled="full", left=tmp_path / "shm.left")
    assert done.returncode == 0, done.stderr
    assert left == ["full"]
    assert (case229.packpath / "manifest.md5").is_file()


_WHOLE_OR_NOT_AT_ALL = {
    "fluxscale plot": (
        ["fluxscale", "{reduction}", "--plot", "{disk}/fluxes.png"],
        "No space left on device: {disk}/fluxes.png; free some space, or choose another place"
        " and run again.",
    ),
    "reduction area": (
        ["start", "SB1", "--archive", "{archive}", "--into", "{disk}/2013.1.12345.S"],
        "could not write here (No space left on device): {disk}/2013.1.12345.S; free some"
        " space, or choose another place, then run again.",
    ),
    "batch PLAN": (
        ["batch", "{disk}/PLAN.toml", "--init", "{reductions}"],
        "No space left on device: {disk}/PLAN.toml; free some space, or choose another place"
        " and run again.",
    ),
}


@pytest.mark.parametrize("made", list(_WHOLE_OR_NOT_AT_ALL))
def test_a_file_made_on_a_full_disk_is_named_and_not_left(
    case229: Case, tmp_path: Path, made: str
) -> None:
    """Each named no file ("No space left on device"), and matplotlib left half a PNG
    where it was to be, ``qa2 batch --init`` an empty PLAN."""
    for eb in ("uid___A002_X1_X1", "uid___A002_X1_X2"):  # (for qa2 start)
        (tmp_path / "archive" / "SB1" / eb).mkdir(parents=True)
        (tmp_path / "archive" / "SB1" / eb / "ASDM.xml").write_text("<ASDM/>\n")
    disk = _disk(tmp_path)
    places = {
        "disk": disk,
        "reduction": case229.origpath,
        "reductions": case229.origpath.parent,
        "archive": tmp_path / "archive",
    }
    argv, sentence = _WHOLE_OR_NOT_AT_ALL[made]
    said, left = refused_on_disk(
        [a.format(**places) for a in argv], disk, "size=64k", filled="full"
    )
    assert said == f"error: {sentence.format(**places)}"
    assert left == ["full"]
