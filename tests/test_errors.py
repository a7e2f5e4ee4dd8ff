"""Bad input: exit code 2 and one sentence that names the path and the fix; no traceback,
nothing written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from almaqa2.cli import main
from almaqa2.testing import reductions as example

from conftest import QA2, Case, refused_on_disk, run_limited, run_on_disk


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def _argv(case: Case, **replace: str) -> list[str]:
    argv, _ = case.commands("copy")
    for option, value in replace.items():
        if option == "origpath":
            argv[1] = value
        else:
            argv[argv.index(f"--{option}") + 1] = value
    return argv


def test_missing_origpath(case229: Case, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(case229.origpath) + "-nope"
    _fails(
        _argv(case229, origpath=missing),
        capsys,
        "origpath not found",
        missing,
        "reduction directory",
    )
    assert not case229.packpath.parent.joinpath(case229.packpath.name).exists()


def test_missing_readme(case229: Case, capsys: pytest.CaptureFixture[str]) -> None:
    _fails(
        _argv(case229, readme="/no/such/README.txt"),
        capsys,
        "/no/such/README.txt",
        "readme-template",
    )


@pytest.mark.parametrize("kind", ["directory", "pipe"])
def test_a_readme_that_is_no_file_is_said_so(
    case229: Case, capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str
) -> None:
    """A README header that is there but is a directory or a pipe is not 'not found'."""
    odd = tmp_path / "odd-README.txt"
    odd.mkdir() if kind == "directory" else os.mkfifo(odd)
    _fails(_argv(case229, readme=str(odd)), capsys, "README header is not a plain file", str(odd))
    assert os.listdir(case229.packpath.parent) == []


@pytest.mark.parametrize(
    ("option", "value", "listed"),
    [("style", "cycle99", "'cycle0-nopipe'"), ("mode", "soft", "'ticket'"),
     ("append", "project", "'member'")],
)  # fmt: skip
def test_an_unknown_choice_lists_the_valid_ones(
    case229: Case, capsys: pytest.CaptureFixture[str], option: str, value: str, listed: str
) -> None:
    """Issue 18: enumerations are click choices (so completion offers them): one sentence."""
    argv = [*_argv(case229), f"--{option}", value]
    _fails(argv, capsys, f"'{value}' is not one of", listed, "qa2 package --help")
    assert os.listdir(case229.packpath.parent) == []


def test_a_mistyped_option_is_one_sentence_with_click_s_suggestion(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """click's suggestion for a mistyped option was a second sentence, then '?; see'."""
    assert main(["fluxscale", "x", "--plo"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert said == (
        "error: No such option '--plo' (did you mean '--plot'?); see 'qa2 fluxscale --help'."
    ), said


def test_the_old_call_names_an_unknown_style_mode_or_append(case229: Case) -> None:
    from almaqa2.errors import InputError
    from almaqa2.package.legacy import QA_Packager

    common = {"origpath": str(case229.origpath), "readme": str(case229.readme),
              "packpath": str(case229.packpath)}  # fmt: skip
    for option, value in (("style", "cycle99"), ("mode", "soft"), ("append", "project")):
        with pytest.raises(InputError, match=f"unknown {option} '{value}'"):
            QA_Packager(**common, **{option: value})


def test_no_eb_found(case229: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = example.build(["Imaging/scriptForImaging.py"], tmp_path / "empty")
    _fails(_argv(case229, origpath=str(empty)), capsys, "no execution block", str(empty))


def test_not_a_project_code(case229: Case, capsys: pytest.CaptureFixture[str]) -> None:
    argv = _argv(case229)
    argv[2] = str(case229.packpath.parent / "my-package")
    _fails(argv, capsys, "not an ALMA project code", "2011.0.00229.S")


def test_special_file_is_refused(case229: Case, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = case229.origpath / "X8c" / "pipe.log"
    os.mkfifo(fifo)
    _fails(_argv(case229), capsys, str(fifo), "remove it")
    assert not case229.packpath.exists()


def _as_nobody(argv: list[str]) -> tuple[int, str]:
    """Run the CLI in a forked child that dropped root's rights (root reads everything)."""
    main(["--help"])  # import what the CLI needs while we may still read the stdlib
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become nobody, run, report through the pipe
        os.close(read_end)
        code = 99
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            sys.stderr = os.fdopen(write_end, "w")
            code = main(argv)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        err = pipe.read()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), err


@pytest.mark.parametrize(
    ("rel", "mode", "owned"),
    [
        ("X8c/qa2/qa2_part1.png", "fake", False),
        ("X8c/uid___A002_X3c9295_X8c.ms.split.cal/table.dat", "copy", False),  # an MS
        # a table's file of the reducer's own, not readable even by its owner
        ("X8c/uid___A002_X3c9295_X8c.ms.split.cal/table.dat", "fake", True),
    ],
)
def test_unreadable_file_is_refused(
    case229: Case, capsys: pytest.CaptureFixture[str], rel: str, mode: str, owned: bool
) -> None:
    if os.geteuid() != 0:
        raise RuntimeError("this test drops root's rights to make a file really unreadable")
    secret = case229.origpath / rel
    top = case229.origpath.parent.parent
    for path in [*top.rglob("*"), *[p for p in top.parents if p.is_relative_to("/tmp")], top]:
        path.chmod(path.stat().st_mode | (0o055 if path.is_dir() else 0o044))
    case229.packpath.parent.chmod(0o777)
    case229.readme.chmod(0o644)
    secret.chmod(0o200 if owned else 0)
    if owned:
        os.chown(secret, 65534, -1)
    argv, _ = case229.commands(mode)
    capsys.readouterr()
    code, err = _as_nobody(argv)
    assert code == 2, err
    assert "cannot read" in err and str(secret) in err
    assert "Traceback" not in err
    assert not case229.packpath.exists()


@pytest.mark.parametrize(
    ("given", "content", "said"),
    [
        ("readme", b"PI name: A\n" * 200_000, "the README header is larger than 1 MB"),
        ("readme", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "the README header is not text"),
        (
            "notes",
            b"SIMPLE  =                    T" + bytes(2850),
            "reducer's notes file is not text",
        ),
    ],
    ids=["large header", "an image as header", "a FITS as notes"],
)
def test_a_text_the_readme_takes_whole_must_be_text_of_a_readme_s_size(
    case229: Case, capsys: pytest.CaptureFixture[str], given: str, content: bytes, said: str
) -> None:
    """The wrong file given as the header (a log, an image) or named as notes was read
    whole into memory (a 2 GB one: a MemoryError traceback) and into the README."""
    path = {
        "readme": case229.readme,
        "notes": case229.origpath / "IRC10216_setup3_b6_runx2.imaging.txt",
    }[given]
    path.write_bytes(content)
    err = _fails(_argv(case229), capsys, said, str(path))
    assert ("rename it" in err) == (given == "notes")
    assert not case229.packpath.exists()


def test_unclassified_files_are_warned_about_and_strict_fails(
    case229: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    stray = case229.origpath / "Combined" / "my_own_plot.eps"
    stray.write_text("%!PS")
    assert main(_argv(case229)) == 0
    err = capsys.readouterr().err
    assert "unclassified" in err and "my_own_plot.eps" in err
    assert not list(case229.packpath.rglob("my_own_plot.eps"))

    err = _fails(
        [*_argv(case229), "--strict"], capsys, "unclassified", "my_own_plot.eps", "without --strict"
    )


def test_link_outside_origpath_is_followed_with_a_warning(
    case229: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "elsewhere.fits"
    example.write_fits(outside, "elsewhere")
    (case229.origpath / "Combined" / "linked.fits").symlink_to(outside)
    assert main(_argv(case229)) == 0
    assert "following link" in capsys.readouterr().err
    packaged = next(case229.packpath.rglob("linked.fits"))
    assert not packaged.is_symlink() and packaged.read_bytes() == outside.read_bytes()


def test_dry_run_writes_nothing_and_shows_the_plan(
    case229: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_argv(case229), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert not case229.packpath.exists()
    assert os.listdir(case229.packpath.parent) == []
    dests = {p["dest"] for p in plan["placements"]}
    assert "qa/X8c.checklist.txt" in dests and "raw/uid___A002_X3c9295_X8c.ms.split" in dests
    skipped = {s["source"]: s["why"] for s in plan["skipped"]}
    assert "X8c/bandpass.last" in skipped and "Combined/calibrated.ms" in skipped
    assert main([*_argv(case229), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "X8c/checklist.txt" in text and "nothing was written" in text


def test_a_directory_the_user_may_not_write_in_is_named_with_what_to_do(
    case229: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    """The system's refusal, named whole, with what to do about a refusal of rights (it
    said 'fix this')."""
    if os.geteuid() != 0:
        raise RuntimeError("this test drops root's rights to make a directory really unwritable")
    top = case229.origpath.parent.parent
    for path in [*top.rglob("*"), *[p for p in top.parents if p.is_relative_to("/tmp")], top]:
        path.chmod(path.stat().st_mode | (0o055 if path.is_dir() else 0o044))
    case229.readme.chmod(0o644)
    argv, _ = case229.commands("copy")
    capsys.readouterr()
    code, err = _as_nobody(argv)
    said = " ".join(err.split())
    assert code == 2 and "Traceback" not in err, err
    assert f"error: Permission denied: {case229.packpath.parent}/" in said
    assert said.endswith("; check your rights to it and to its directory and run again.")
    assert not case229.packpath.exists()


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["verify"], "a directory of the package cannot be read (Permission denied)"),
        (["tarsplit", "--out", "{out}"], "this part of the package cannot be read (Permission"),
        (["inspect"], "Permission denied: "),
    ],
)
def test_a_package_with_a_directory_that_cannot_be_listed_is_named_whole(
    case229: Case,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    said: str,
) -> None:
    """Both of verify's processes walk the package; the one that says why is this one.
    tarsplit and inspect walk it through each directory's descriptor, and said the
    system's 'Permission denied: calibration': the last part of the path only."""
    if os.geteuid() != 0:
        raise RuntimeError("this test drops root's rights to make a directory really unreadable")
    assert case229.run_cli("copy") == 0
    out = tmp_path / "chunks"
    out.mkdir()
    for path in [*case229.packpath.rglob("*"), case229.packpath, out]:
        os.chown(path, 65534, -1, follow_symlinks=False)
    for path in [p for p in case229.packpath.parents if p.is_relative_to("/tmp")]:
        path.chmod(path.stat().st_mode | 0o055)
    secret = next(p for p in case229.packpath.rglob("*") if p.name == "calibration")
    secret.chmod(0)
    capsys.readouterr()
    argv = [command[0], str(case229.packpath), *(a.format(out=out) for a in command[1:])]
    code, err = _as_nobody(argv)
    assert code == 2, err
    assert f"{said}" in err and "Traceback" not in err
    assert f": {secret};" in " ".join(err.split()), err
    assert os.listdir(out) == []


@pytest.mark.parametrize(
    ("argv", "written"),
    [
        (["legacy-module", "--install", "{d}"], "{d}/QA2_Packaging_module.py"),
        (["lock", "on", "--dir", "{d}"], "{d}"),
    ],
    ids=["a file written whole", "the lock"],
)
def test_a_small_file_that_cannot_be_written_is_named_and_not_left(
    tmp_path: Path, argv: list[str], written: str
) -> None:
    """A disk that is full (a real one: Python's write fails naming no file) while a
    small file is written: the sentence names where, and says to free space; no draft is
    left (the lock's stayed, and the error named nothing)."""
    d = tmp_path / "shared"
    d.mkdir()

    said, left = refused_on_disk([a.format(d=d) for a in argv], d, "size=4k", filled="full")
    assert said == (
        f"error: No space left on device: {written.format(d=d)}; free some space, or choose"
        " another place and run again."
    ), said
    assert left == ["full"]


def test_a_file_larger_than_allowed_says_so(tmp_path: Path) -> None:
    """A file larger than the process may write (``ulimit -f``), or than the file system
    holds (FAT's 4 GB): freeing space would not help, as the advice said."""
    done = run_limited(["legacy-module", "--install", str(tmp_path)], 16)
    assert done.returncode == 2, done.stderr
    said = " ".join(done.stderr.split())
    assert said == (
        f"error: File too large: {tmp_path}/QA2_Packaging_module.py; a file this large is more"
        " than the file system there, or ulimit -f, allows: choose another place and run again."
    ), said
    assert os.listdir(tmp_path) == []


def test_a_lock_that_cannot_be_written_is_named_and_not_left(
    nrao_split: Path, tmp_path: Path
) -> None:
    """The lock every writing command takes is the first file it writes: on a full disk
    its write fails as ``os.write`` says it, naming no file, and the sentence named none;
    now it names the lock, and the lock is not left behind."""
    d = tmp_path / "chunks"
    d.mkdir()
    package = nrao_split / "out" / "2013.1.00123.S"
    argv = ["tarsplit", str(package), "--out", str(d)]
    said, left = refused_on_disk(argv, d, "size=4k", filled="full")
    assert re.fullmatch(
        rf"error: No space left on device: {re.escape(str(d))}/\.\S+\.lock; free some space,"
        r" or choose another place and run again\.",
        said,
    ), said
    assert left == ["full"]


@pytest.mark.parametrize("json_too", [[], ["--json"]], ids=["text", "json"])
def test_an_output_that_cannot_be_written_is_named(nrao_split: Path, json_too: list[str]) -> None:
    """``qa2 inspect --json > report.json`` on a full disk (here /dev/full, a device every
    write to which fails so): "No space left on device; free some space", naming no file,
    and with --json a traceback, the envelope failing in its turn."""
    package = nrao_split / "out" / "2013.1.00123.S"
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*QA2, "inspect", str(package), *json_too], stdout=full, stderr=subprocess.PIPE,
            text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert " ".join(done.stderr.split()) == (
        "error: could not write the output (No space left on device): /dev/full; free some"
        " space, or choose another place for it, then run again."
    )


def test_an_error_output_that_cannot_be_written_leaves_the_exit_code_to_say_it(
    tmp_path: Path,
) -> None:
    """Bad input with stderr on a full disk: the sentence cannot be printed, nor the
    traceback of that; the exit code was 1, as of a check that failed."""
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*QA2, "-v", "verify", str(tmp_path / "nothing")], stderr=full, timeout=60
        )
    assert done.returncode == 2


def test_a_log_file_that_cannot_be_written_is_said_once_and_given_up(
    nrao_split: Path, tmp_path: Path
) -> None:
    """A --log-file on a full disk printed logging's traceback on the console for every
    record; now one warning, and the run goes on (a verify, which writes nothing else,
    still checks the package)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    log = disk / "run.log"

    package = nrao_split / "out" / "2013.1.00123.S"
    argv = ["-vv", "--log-file", str(log), "verify", str(package)]
    done, _ = run_on_disk(argv, disk, "size=4k", filled="full")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Logging error" not in done.stderr
    said = " ".join(done.stderr.split())
    assert said.count("warning: the log file cannot be written (No space left on device)") == 1
    assert f"withoutit:{log}" in "".join(said.split()) and "OK" in done.stdout  # (wrapped)
