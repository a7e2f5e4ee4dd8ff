"""SPEC §13: the reduction is never changed, packpath never overlaps it, a killed run
leaves the previous package, and two runs on one packpath do not mix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from almaqa2.cli import main
from almaqa2.testing import reductions as example

from conftest import QA2, Case, listing, tree_state


@pytest.mark.parametrize("where", ["same", "inside", "containing"])
def test_packpath_overlapping_origpath_is_refused(
    case229: Case, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    orig = case229.origpath
    target = {
        "same": orig.parent / "2011.0.00229.S",
        "inside": orig / "2011.0.00229.S",
        "containing": orig.parent,
    }[where]
    if where == "same":
        orig = orig.rename(target)
    elif where == "containing":
        # origpath inside a directory named as a project: packpath would contain it
        new_parent = orig.parent.parent / "2011.0.00229.S"
        orig.parent.rename(new_parent)
        orig, target = new_parent / orig.name, new_parent
    before = tree_state(orig.parent)
    argv, _ = case229.commands("copy")
    argv[1], argv[2] = str(orig), str(target)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "reduction directory" in err and "Traceback" not in err
    assert tree_state(orig.parent) == before


@pytest.mark.parametrize("command", ["package", "stage"])
def test_a_temporary_directory_in_the_reduction_is_refused(
    case229: Case, tmp_path: Path, command: str
) -> None:
    """$TMPDIR in the reduction (a work area set up there): the views MSes are read
    through, and Python's own probe of $TMPDIR, were made in it, and removed."""
    if command == "stage":
        from test_stage import build_run

        origpath = build_run(tmp_path / "pipeline")
        argv = ["stage", str(origpath), str(tmp_path / "staged" / "2013.1.00456.S")]
        (tmp_path / "staged").mkdir()
    else:
        origpath = case229.origpath
        argv, _ = case229.commands("copy")
    temporary = origpath / "tmp"
    temporary.mkdir()
    before = tree_state(origpath)
    done = subprocess.run(
        [*QA2, *argv], env={**os.environ, "TMPDIR": str(temporary)}, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert " ".join(done.stderr.split()) == (
        "error: the temporary directory ($TMPDIR) is in the reduction directory, which is never"
        f" written: {temporary}; set TMPDIR to a directory outside it."
    )
    assert tree_state(origpath) == before


def _slow_reduction(tmp_path: Path) -> Path:
    """A reduction with enough data that copying it takes a moment (~300 MB)."""
    root = example.build(
        ["X8c/uid___A002_X3c9295_X8c.ms.scriptForCalibration.py", "X8c/qa2/a.png"],
        tmp_path / "slow",
    )
    block = os.urandom(1 << 20)
    for i in range(12):
        table = root / "X8c" / f"uid___A002_X3c9295_X8c.ms.split.t{i:02d}"
        table.mkdir()
        (table / "table.dat").write_bytes(b"table")
        with open(table / "table.f0", "wb") as f:
            for _ in range(25):
                f.write(block)
    return root


def _package_cmd(origpath: Path, packpath: Path, readme: Path, mode: str) -> list[str]:
    return [
        *QA2,
        "package",
        str(origpath),
        str(packpath),
        "--readme",
        str(readme),
        "--style",
        "cycle2-nopipe",
        "--mode",
        mode,
    ]


def test_sigkill_mid_copy_keeps_the_previous_package(case229: Case, tmp_path: Path) -> None:
    origpath = _slow_reduction(tmp_path)
    packpath = case229.packpath
    cmd = _package_cmd(origpath, packpath, case229.readme, "fake")
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    previous = listing(packpath)
    previous_state = tree_state(packpath)

    proc = subprocess.Popen(
        _package_cmd(origpath, packpath, case229.readme, "copy"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    staged_bytes = 0
    while time.monotonic() < deadline and staged_bytes < (20 << 20):
        staging = [p for p in packpath.parent.iterdir() if ".almaqa2-staging-" in p.name]
        staged_bytes = (
            sum(f.stat().st_size for s in staging for f in s.rglob("*") if f.is_file())
            if staging
            else 0
        )
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    assert listing(packpath) == previous
    assert tree_state(packpath) == previous_state

    done = subprocess.run(
        _package_cmd(origpath, packpath, case229.readme, "copy"), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in packpath.parent.iterdir()) == sorted(
        [
            packpath.name,
            *(f"{packpath.name}.{end}" for end in ("ticket.tar", "ticket.zip", "review.html")),
        ]
    ), "the next run tidies what the killed one left"
    assert (packpath / "manifest.md5").exists()


def test_sigkill_on_first_run_leaves_nothing_under_packpath(case229: Case, tmp_path: Path) -> None:
    origpath = _slow_reduction(tmp_path)
    proc = subprocess.Popen(
        _package_cmd(origpath, case229.packpath, case229.readme, "copy"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        ".almaqa2-staging-" in p.name for p in case229.packpath.parent.iterdir()
    ):
        time.sleep(0.002)
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not case229.packpath.exists()


def _holding(case: Case, *lines: str) -> subprocess.Popen[str]:
    """A Python process that holds the package's lock, runs ``lines``, then sleeps."""
    script = [
        "import pathlib, time",
        "from almaqa2.package import lockfile as lock",
        f"with lock.hold(pathlib.Path({str(_lock_of(case))!r}), 'packaging'):",
        *(f"    {line}" for line in [*lines, "time.sleep(60)"]),
    ]
    return subprocess.Popen(
        [sys.executable, "-c", "\n".join(script)], stdout=subprocess.PIPE, text=True
    )


def test_concurrent_run_is_refused_naming_the_holder(
    case229: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = _holding(case229, "print('held', flush=True)")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert case229.run_cli("fake") == 2
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and "wait for it to finish" in err
        assert not case229.packpath.exists()
    finally:
        holder.kill()
        holder.communicate()
    assert case229.run_cli("fake") == 0, "a dead holder's lock does not block"


def _lock_of(case: Case) -> Path:
    return case.packpath.parent / f".{case.packpath.name}.almaqa2.lock"


def test_a_split_or_a_verify_never_reads_a_package_a_run_is_writing(
    case229: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A package run installs the new package whole at its end: a split reading the old
    one then met a file gone (a false "cannot be read"), or wrote chunks of a package that
    was no longer there.  While a run holds the package's lock, neither starts."""
    assert case229.run_cli("copy") == 0
    package, chunks = case229.packpath, tmp_path / "chunks"
    writer = _holding(case229, "print('held', flush=True)")
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "held"
        for argv in (
            ["tarsplit", str(package), "--out", str(chunks)],
            ["verify", str(package)],
            ["inspect", str(package)],
        ):
            capsys.readouterr()
            assert main(argv) == 2, argv
            said = " ".join(capsys.readouterr().err.split())
            assert f"writing {package} is in progress by" in said, said
            assert f"pid {writer.pid}," in said
        assert not chunks.exists()
    finally:
        writer.kill()
        writer.communicate()
    left = _lock_of(case229).read_bytes()  # by the killed run, which holds it no more
    assert main(["tarsplit", str(package), "--out", str(chunks)]) == 0
    assert main(["verify", str(package)]) == 0
    assert _lock_of(case229).read_bytes() == left, "a reader writes nothing beside the package"


@pytest.mark.parametrize("command", ["split", "verify"])
def test_a_package_replaced_while_it_is_read_is_said_so(
    case229: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    """A package run that starts after a split or verify began replaces the package under
    it: the reader says so, and a split writes no list of its chunks."""
    from almaqa2.transfer import tarsplit, verify

    assert case229.run_cli("copy") == 0
    argv, _ = case229.commands("copy")
    module, name = {"split": (tarsplit, "write"), "verify": (verify, "_package")}[command]
    reading = getattr(module, name)

    def after_a_package_run(*args: object, **kwargs: object) -> object:
        subprocess.run([*QA2, "-q", *argv], check=True)  # a real run, in another process
        return reading(*args, **kwargs)

    monkeypatch.setattr(module, name, after_a_package_run)
    chunks = tmp_path / "chunks"
    chunks.mkdir()
    qa2 = {"split": ["tarsplit", "--out", str(chunks)], "verify": ["verify"]}[command]
    capsys.readouterr()
    assert main([*qa2, str(case229.packpath)]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert f"a package run replaced the package during the {command}" in said, said
    assert f"run the {command} again" in said
    assert not list(chunks.glob("*.md5sums"))


def test_a_reader_of_someone_s_package_sees_their_run_s_lock(case229: Case, tmp_path: Path) -> None:
    """A DRM splitting a reducer's package, in a directory they may only read: the lock
    file of the reducer's package run (readable by all) stops them all the same."""
    from test_errors import _as_nobody

    if os.geteuid() != 0:
        raise RuntimeError("this test drops root's rights to be a reader of someone's package")
    assert case229.run_cli("copy") == 0
    top = case229.packpath.parent
    for path in [*top.rglob("*"), *[p for p in top.parents if p.is_relative_to("/tmp")], top]:
        path.chmod(path.stat().st_mode | (0o055 if path.is_dir() else 0o044))
    chunks = tmp_path / "chunks"
    chunks.mkdir(mode=0o777)
    chunks.chmod(0o777)
    argv = ["tarsplit", str(case229.packpath), "--out", str(chunks)]
    code, err = _as_nobody(argv)
    assert code == 0, err
    assert not _lock_of(case229).exists() and list(chunks.glob("*.tar"))
    writer = _holding(case229, "print('held', flush=True)")
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "held"
        code, err = _as_nobody(argv)
        assert code == 2 and f"pid {writer.pid}," in err, err
    finally:
        writer.kill()
        writer.communicate()


def test_a_lock_dies_with_its_holder_not_with_the_holders_children(case229: Case) -> None:
    """verify forks a second hashing process while the lock is held: killing the holder must
    free the lock although that child, which shares its open files, still runs."""
    # The child prints its pid from its target, which runs after the fork's hooks: the
    # parent's own print after start() could come before the child has closed its copy.
    holder = _holding(
        case229,
        "import multiprocessing, os",
        "report = lambda: (print(os.getpid(), flush=True), time.sleep(60))",
        "multiprocessing.get_context('fork').Process(target=report).start()",
    )
    assert holder.stdout is not None
    child = int(holder.stdout.readline())
    holder.stdout.close()  # the child has it too: wait for the holder alone
    try:
        holder.kill()
        holder.wait()
        os.kill(child, 0)  # still running, with its copy of every descriptor but the lock's
        assert case229.run_cli("fake") == 0
    finally:
        os.kill(child, signal.SIGKILL)


def test_replace_without_atomic_exchange(case229: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    """File systems without renameat2's exchange get two renames; the result is the same."""
    from almaqa2.package import package_dir

    assert case229.run_cli("fake") == 0
    monkeypatch.setattr(package_dir, "_renameat2", lambda a, b, flags: False)
    assert case229.run_cli("copy") == 0
    assert '"mode": "copy"' in (case229.packpath / ".almaqa2.json").read_text()
    assert sorted(p.name for p in case229.packpath.parent.iterdir()) == sorted(
        [case229.packpath.name, *case229.expected_beside, f"{case229.packpath.name}.review.html"]
    )


def test_a_run_killed_between_the_two_renames_is_recovered(case229: Case) -> None:
    """The state the fallback leaves if killed midway: the previous package set aside."""
    assert case229.run_cli("fake") == 0
    previous = tree_state(case229.packpath)
    aside = case229.packpath.parent / f".{case229.packpath.name}.almaqa2-old-x1"
    aside.mkdir()
    case229.packpath.rename(aside / "previous")
    from almaqa2.package import package_dir

    package_dir.recover(case229.packpath)
    assert tree_state(case229.packpath) == previous
    assert not aside.exists()
