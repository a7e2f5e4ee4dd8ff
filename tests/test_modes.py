"""What each mode puts on disk: fake (empty), copy (same bytes), hard (same inode)."""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import multiprocessing
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from almaqa2 import copying, manifest, manyfiles
from almaqa2.cli import main
from almaqa2.errors import ChecksumError, copy_differs
from almaqa2.package import materialize, scan
from almaqa2.package.package_dir import MARKER
from almaqa2.package.scan import Kind, SourceEntry

from conftest import Case, make_case, md5sum_check, tree_state, wait_for


def _payload(case: Case, *, reduced: bool = True) -> list[Path]:
    """The member's files but README; ``reduced=False`` leaves out the MSes that copy and
    hard modes reduce (raw/, calibrated/: tested in test_ms.py)."""
    member = next(case.packpath.glob("*/*/*"))
    return [
        p
        for p in sorted(member.rglob("*"))
        if p.is_file()
        and p.name != "README"
        and (reduced or p.relative_to(member).parts[0] not in ("raw", "calibrated"))
    ]


@pytest.mark.parametrize("mode", ["fake", "ticket"])
def test_fake_files_are_empty_and_tables_are_created(case229: Case, mode: str) -> None:
    assert case229.run_cli(mode) == 0
    files = _payload(case229)
    assert files and all(p.stat().st_size == 0 for p in files)
    tables = [  # subtables left out
        p
        for p in case229.packpath.rglob("table.dat")
        if not (p.parent.parent / "table.dat").exists()
    ]
    assert len(tables) == 8  # 2 raw, 2 calibrated, 4 calibration tables
    assert all(list(t.parent.glob("table.f[0-9]*")) for t in tables)  # their data files


@pytest.mark.parametrize("mode", ["fake", "ticket"])
def test_a_large_fake_package_is_linked_by_two_processes_to_fresh_empty_files(
    case229: Case, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Past 1,024 files, the tables are shared with a helper process, each process
    linking to an empty file of its own, a fresh one every ``_MAX_LINKS`` links (lowered
    here): every file is there and empty, and no empty file of theirs is left over."""
    monkeypatch.setattr(materialize._Empty, "_MAX_LINKS", 100)
    table = case229.origpath / "X8c" / "uid___A002_X3c9295_X8c.ms.split.bandpass"
    for i in range(1500):
        (table / f"table.f{i}_extra").write_bytes(b"x" * 64)
    assert case229.run_cli(mode) == 0
    packaged = next(case229.packpath.rglob(table.name))
    inside = sorted(p.relative_to(table) for p in table.rglob("*") if p.is_file())
    assert sorted(p.relative_to(packaged) for p in packaged.rglob("*") if p.is_file()) == inside
    files = _payload(case229)
    assert all(p.stat().st_size == 0 for p in files)
    assert max(p.stat().st_nlink for p in files) <= 100
    assert len({p.stat().st_ino for p in files}) >= len(files) / 100
    assert not list(case229.packpath.parent.rglob(".almaqa2-empty-*"))


def _units(tmp_path: Path, count: int, files: int) -> list[tuple[SourceEntry, Path]]:
    """``count`` tables of ``files`` files each, as the scan lists them, and where each is
    to be made (their directory made)."""
    out = tmp_path / "out"
    out.mkdir()
    units = []
    for i in range(count):
        table = tmp_path / "src" / f"t{i}.tbl"
        table.mkdir(parents=True)
        for j in range(files):
            (table / f"f{j}").write_bytes(b"x")
        members, size = scan.members(str(table))
        entry = SourceEntry(PurePosixPath(table.name), table, Kind.TABLE, size, 0, members)
        units.append((entry, out / table.name))
    return units


def _refusing(name: str, in_directory: str = "") -> Callable[[int, str, int, list[str]], None]:
    """``manyfiles.links`` as a file system out of inodes makes the links of a directory
    (named ``in_directory``, if given): those before ``name`` made, then ENOSPC for it."""
    real = manyfiles.links

    def links(src_fd: int, src: str, dst_fd: int, names: list[str]) -> None:
        directory = os.readlink(f"/proc/self/fd/{dst_fd}")
        if name in names and (not in_directory or directory.endswith(f"/{in_directory}")):
            real(src_fd, src, dst_fd, names[: names.index(name)])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
        real(src_fd, src, dst_fd, names)

    return links


def _made(units: list[tuple[SourceEntry, Path]]) -> bool:
    """Whether every unit is there, each file of it empty, and no empty file of ours left."""
    for source, dest in units:
        made = sorted(p.name for p in dest.iterdir())
        if made != sorted(m.rel for m in source.members):
            return False
        if any(p.stat().st_size for p in dest.iterdir()):
            return False
    return not list(units[0][1].parent.glob(".almaqa2-empty-*"))


def test_a_fake_package_s_tables_are_made_by_whichever_process_comes_first(
    tmp_path: Path,
) -> None:
    """The helper starts on the first table at once; this process, which waits for it to
    be made, makes the tables the helper has not come to, and every one is made once."""
    units = _units(tmp_path, 40, 60)
    writer = materialize.FakeWriter()
    writer.start(tmp_path / "out", units)
    first = units[0][1] / "f59"
    wait_for(first.exists)
    for source, dest in units:
        writer.mirror(source, dest, None)
    writer.finish()
    assert _made(units)
    assert writer.here <= 39 * 60  # the first (at least) made by the helper


def test_tables_are_made_here_while_the_helper_is_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper stalls in the first table: this process makes every other one; at the
    end the helper makes the rest of its own."""
    parent, go_on = os.getpid(), multiprocessing.get_context("fork").Event()
    real = materialize._Empty.link_all

    def stalled_in_the_helper(self: materialize._Empty, directory: str, names: list[str]) -> None:
        if os.getpid() != parent:
            go_on.wait()
        real(self, directory, names)

    monkeypatch.setattr(materialize._Empty, "link_all", stalled_in_the_helper)
    timer = threading.Timer(20, go_on.set)  # should this process wait on the helper
    timer.daemon = True
    timer.start()
    units = _units(tmp_path, 20, 60)
    writer = materialize.FakeWriter()
    writer.start(tmp_path / "out", units)
    wait_for(units[0][1].exists)  # the helper's, stalled
    for source, dest in units:
        writer.mirror(source, dest, None)
    assert writer.here == 19 * 60
    go_on.set()
    timer.cancel()
    writer.finish()
    assert _made(units)


def test_a_link_the_helper_cannot_make_is_raised_before_anything_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper's first failure is raised here; neither process removes its empty file
    (the staging directory goes, once the error is said: removed first, an empty file
    would free the inode whose lack a full file system's error is about)."""
    parent, real = os.getpid(), manyfiles.links
    full = _refusing("f30", in_directory="t0.tbl")

    def full_in_the_helper(src_fd: int, src: str, dst_fd: int, names: list[str]) -> None:
        (full if os.getpid() != parent else real)(src_fd, src, dst_fd, names)

    monkeypatch.setattr(manyfiles, "links", full_in_the_helper)
    units = _units(tmp_path, 20, 60)  # (past 1,024 files: a helper)
    writer = materialize.FakeWriter()
    writer.start(tmp_path / "out", units)
    wait_for(units[0][1].exists)  # the helper's
    for source, dest in units:
        writer.mirror(source, dest, None)
    with pytest.raises(OSError) as raised:
        writer.finish()
    assert raised.value.errno == errno.ENOSPC
    assert raised.value.filename == str(units[0][1] / "f30")
    assert len(list((tmp_path / "out").glob(".almaqa2-empty-*"))) == 2


def test_copy_has_the_sources_bytes_and_times(case229: Case) -> None:
    assert case229.run_cli("copy") == 0
    files = _payload(case229, reduced=False)
    assert len(files) > 30
    by_md5 = {}
    for path in case229.origpath.rglob("*"):
        if path.is_file():
            by_md5.setdefault(manifest.md5_file(path), []).append(path)
    for packaged in files:
        digest = manifest.md5_file(packaged)
        assert digest in by_md5, packaged
        assert packaged.stat().st_nlink == 1, "copy mode must not link"
        assert any(src.stat().st_mtime_ns == packaged.stat().st_mtime_ns for src in by_md5[digest])


def test_hard_links_share_the_source_inode(case229: Case) -> None:
    assert case229.run_cli("hard") == 0
    source_inodes = {p.stat().st_ino for p in case229.origpath.rglob("*") if p.is_file()}
    files = _payload(case229, reduced=False)
    assert all(p.stat().st_ino in source_inodes for p in files)
    fluxscale = next(case229.packpath.rglob("uid___A002_X3c9295_X8c.ms.split.fluxscale"))
    assert fluxscale.samefile(
        case229.origpath / "X8c" / "uid___A002_X3c9295_X8c.ms.split.fluxscale"
    )


def test_manifest_passes_md5sum_check(case229: Case) -> None:
    assert case229.run_cli("copy") == 0
    listed = manifest.read(case229.packpath / "manifest.md5")
    on_disk = [
        f"{case229.packpath.name}/{p.relative_to(case229.packpath).as_posix()}"
        for p in case229.packpath.rglob("*")
        if p.is_file() and p.name != "manifest.md5"
    ]
    assert sorted(listed) == sorted(on_disk)
    done = md5sum_check(case229.packpath)
    assert done.returncode == 0, done.stdout + done.stderr


def _on_shm() -> Path:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(Path.cwd()).st_dev:
        raise RuntimeError("these tests need /dev/shm as a second file system")
    return shm


def test_hard_across_file_systems_fails_before_writing(
    case229: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _on_shm() / f"almaqa2-test-{os.getpid()}"
    out.mkdir()
    try:
        argv, _ = case229.commands("hard")
        argv[argv.index(str(case229.packpath))] = str(out / case229.packpath.name)
        before = tree_state(case229.origpath)
        assert main(argv) == 2
        assert os.listdir(out) == [], "nothing may be written"
        assert tree_state(case229.origpath) == before
        err = capsys.readouterr().err
        assert "--mode copy" in err and "Traceback" not in err
        argv[argv.index("--mode") + 1] = "copy"
        assert main(argv) == 0
        assert (out / case229.packpath.name / "manifest.md5").exists()
    finally:
        shutil.rmtree(out)


def _fault_keeps_the_previous_package(
    case: Case, capsys: pytest.CaptureFixture[str], mode: str, fault: Callable[[], None]
) -> str:
    """Package in fake mode, inject ``fault``, package in ``mode``: the run must fail with
    exit 2, leave the fake package as it was and nothing beside it; returns stderr."""
    assert case.run_cli("fake") == 0
    previous = tree_state(case.packpath)
    fault()
    assert case.run_cli(mode) == 2
    assert tree_state(case.packpath) == previous, "the previous package stays"
    assert sorted(os.listdir(case.packpath.parent)) == sorted(
        [case.packpath.name, *case.expected_beside]
    )
    assert '"mode": "fake"' in (case.packpath / MARKER).read_text()
    return capsys.readouterr().err


def test_forced_exdev_during_linking_leaves_nothing(
    case229: Case, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A link that fails with EXDEV after the check (e.g. a bind mount) is still clean."""
    real_link = os.link
    calls = []

    def link(src: str, dst: str, **kw: object) -> None:
        calls.append(src)
        if len(calls) > 5:
            raise OSError(errno.EXDEV, "Invalid cross-device link", src)
        real_link(src, dst, **kw)

    err = _fault_keeps_the_previous_package(
        case229, capsys, "hard", lambda: monkeypatch.setattr(os, "link", link)
    )
    assert "--mode copy" in err


def test_manifest_escapes_odd_names_as_md5sum_does(case229: Case) -> None:
    for odd in ("back\\slash.txt", "carriage\rreturn.txt", "new\nline.txt"):
        (case229.origpath / "X8c" / "qa2" / odd).write_text(odd)
    assert case229.run_cli("copy") == 0
    lines = (case229.packpath / "manifest.md5").read_text().split("\n")
    assert any(line.startswith("\\") for line in lines)
    done = md5sum_check(case229.packpath)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "damaged",
    [
        "X528.ms.split.phase_int/table.f0",  # small: checked by the small files' process
        "X8c/qa2/large.bin",  # more than 64 KB: checked by the hashing threads
        "X8c/qa2/huge.bin",  # a block and a long tail, damaged in the tail
        "_extra",  # 1,500 small files of a table: copied where they are hashed
    ],
)
@pytest.mark.parametrize("short", [False, True], ids=["flipped", "short"])
def test_a_copy_that_differs_from_its_source_is_an_error(
    case229: Case,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    damaged: str,
    short: bool,
) -> None:
    """Fault injection: the kernel copy of one file comes out wrong (a bad disk, say), or
    one byte short (as if the source grew while it was copied); so does a small file
    copied through memory where small files are hashed (``copying.write_all``)."""
    (case229.origpath / "X8c" / "qa2" / "large.bin").write_bytes(os.urandom((1 << 20) + 1))
    (case229.origpath / "X8c" / "qa2" / "huge.bin").write_bytes(os.urandom((1 << 20) + 300_000))
    if damaged == "_extra":
        _many_small_files(case229)
    real_copy, real_write_all = copying.copy_bytes, copying.write_all

    def faulty_copy(src: int, dst: int, count: int) -> int:
        if not os.readlink(f"/proc/self/fd/{src}").endswith(damaged):
            return real_copy(src, dst, count)
        copied = real_copy(src, dst, count - short)
        if not short:
            at = 10 if count < (1 << 20) else count - 1000
            os.pwrite(dst, bytes([os.pread(src, 1, at)[0] ^ 0xFF]), at)
        return copied

    def faulty_write_all(fd: int, data: bytes | bytearray) -> None:
        if not os.readlink(f"/proc/self/fd/{fd}").endswith(damaged):
            return real_write_all(fd, data)
        return real_write_all(fd, data[:-1] if short else bytes([data[0] ^ 0xFF]) + data[1:])

    def faults() -> None:  # the many small files: copied through memory where they are hashed
        if damaged != "_extra":
            monkeypatch.setattr(copying, "copy_bytes", faulty_copy)
        monkeypatch.setattr(copying, "write_all", faulty_write_all)

    err = _fault_keeps_the_previous_package(case229, capsys, "copy", faults)
    assert "differs from its source" in err and damaged in err


def test_a_source_written_while_it_is_packaged_is_said_so(
    case229: Case, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file written (by a CASA task still at work, say) just after it was copied: its
    copy differs from it.  It was said to be a disk's fault ("check the disks for
    errors"); its time, no longer the one its copy was given, says it was written."""
    large = case229.origpath / "X8c" / "qa2" / "large.bin"
    large.write_bytes(os.urandom((1 << 20) + 1))
    os.utime(large, (1.6e9, 1.6e9))
    real_copy = copying.copy_bytes

    def copy_then_written(src: int, dst: int, count: int) -> int:
        copied = real_copy(src, dst, count)
        if os.readlink(f"/proc/self/fd/{src}") == str(large):  # written by someone else
            with open(large, "r+b") as other:
                other.write(b"CASA")
        return copied

    def fault() -> None:
        monkeypatch.setattr(copying, "copy_bytes", copy_then_written)

    err = " ".join(_fault_keeps_the_previous_package(case229, capsys, "copy", fault).split())
    assert err == (
        f"error: the file changed while it was being packaged, so what the package holds of"
        f" it is not what it holds: {large}; let whatever is writing it finish (a CASA task?),"
        " then package again."
    ), err


def test_a_source_written_while_hard_mode_hashes_it_is_said_so(
    case229: Case, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hard mode's package shares its files with the reduction: one written while it was
    hashed was listed with an md5 of no version of it, which only a later verify found."""
    large = case229.origpath / "X8c" / "qa2" / "large.bin"
    large.write_bytes(os.urandom(3 << 20))
    real_open = open

    class WrittenMidway(io.FileIO):
        def readinto(self, buffer: Any) -> int | None:
            n = super().readinto(buffer)
            with real_open(large, "r+b") as other:  # by someone else, mid-read
                other.write(b"CASA")
            return n

    def opened(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode == "rb" and os.path.samefile(path, large):
            return WrittenMidway(path, "rb")
        return real_open(path, mode, *args, **kwargs)

    def fault() -> None:
        monkeypatch.setattr(manifest, "open", opened, raising=False)

    err = " ".join(_fault_keeps_the_previous_package(case229, capsys, "hard", fault).split())
    assert re.fullmatch(
        r"error: the file changed while it was being packaged, so what the package holds of"
        rf" it is not what it holds: {re.escape(str(case229.packpath))}/\S+__large\.bin; let"
        r" whatever is writing it finish \(a CASA task\?\), then package again\.",
        err,
    ), err


@pytest.mark.parametrize("mode", ["copy", "hard"])
def test_a_source_removed_while_it_is_packaged_is_said_so(
    case229: Case,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mode: str,
) -> None:
    """A file of the reduction removed (by a CASA task still at work, say) after the
    reduction was read: "No such file or directory: <it>; fix this"."""
    gone = case229.origpath / "X528" / "checklist.txt"
    real_write_payload = materialize.write_payload

    def removed_first(*args: Any, **kwargs: Any) -> dict[str, int]:
        gone.unlink()  # by someone else, once the plan is made
        return real_write_payload(*args, **kwargs)

    def fault() -> None:
        monkeypatch.setattr(materialize, "write_payload", removed_first)

    err = " ".join(_fault_keeps_the_previous_package(case229, capsys, mode, fault).split())
    assert err == (
        f"error: this file of the reduction vanished while it was being packaged: {gone}; let"
        " whatever removes files there finish (a CASA task?), then package again."
    ), err


def _many_small_files(case: Case, count: int = 1500) -> Path:
    """``count`` small files more in a calibration table of ``case``: its copy hands them
    over to be copied where small files are hashed, in batches of 256, by the hashing
    process or here."""
    table = case.origpath / "X8c" / "uid___A002_X3c9295_X8c.ms.split.bandpass"
    for i in range(count):
        (table / f"table.f{i}_extra").write_bytes(os.urandom(64 + i % 7))
    return table


def test_a_table_of_many_small_files_is_copied_whole(case229: Case) -> None:
    table = _many_small_files(case229)
    assert case229.run_cli("copy") == 0
    packaged = next(case229.packpath.rglob(table.name))
    sources = sorted(p for p in table.rglob("*") if p.is_file())
    for source in sources:
        copy = packaged / source.relative_to(table)
        assert copy.read_bytes() == source.read_bytes(), copy
        assert copy.stat().st_mtime_ns == source.stat().st_mtime_ns
        assert copy.stat().st_mode == source.stat().st_mode and copy.stat().st_nlink == 1
    done = md5sum_check(case229.packpath)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_disk_full_midway_through_many_small_files_is_one_sentence(
    case229: Case, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The disk fills up midway through the copies of small files, made where they are
    hashed (by the hashing process, or here when it falls behind): every write fails from
    the 500th on, in either process.  The copy stops within a few batches, the helper is
    stopped, and its end of the pipe closing with data unread (a reset, not an end of
    file) is no traceback of a thread."""
    _many_small_files(case229, 3000)
    real_write_all = copying.write_all
    writes = multiprocessing.get_context("fork").Value("i", 0)  # counted by both processes

    def disk_full_from_the_500th(fd: int, data: bytes | bytearray) -> None:
        with writes.get_lock():
            writes.value += 1
            full = writes.value >= 500
        if full:  # as os.write says it: no file named
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write_all(fd, data)

    monkeypatch.setattr(copying, "write_all", disk_full_from_the_500th)
    assert case229.run_cli("copy") == 2
    assert writes.value < 500 + 6 * 256, "the copy stopped within a few batches of the first"
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    said = " ".join(err.split())
    assert f"could not write here (No space left on device): {case229.packpath.parent};" in said
    assert sorted(os.listdir(case229.packpath.parent)) == []


@pytest.mark.parametrize(
    ("failure", "fix"),
    [
        (errno.EIO, "check that disk (dmesg tells of its errors)"),
        (errno.ENOSPC, "free some space, or choose another place"),
    ],
    ids=["EIO", "full"],
)
def test_a_failing_copy_names_both_files(
    case229: Case,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    failure: int,
    fix: str,
) -> None:
    """The kernel's copy reads and writes in one call, and its error (an I/O error of a
    failing disk) names no file: the sentence names the file copied and its copy, as
    the system could not say which failed."""

    def failing(*args: object) -> int:
        raise OSError(failure, os.strerror(failure))

    monkeypatch.setattr(os, "copy_file_range", failing)
    assert case229.run_cli("copy") == 2
    err = " ".join(capsys.readouterr().err.split())
    said = (
        rf"error: {os.strerror(failure)} making (\S+) from (\S+); {re.escape(fix)} and run again\."
    )
    copied = re.fullmatch(said, err)
    assert copied, err
    copy, source = Path(copied[1]), Path(copied[2])
    assert source.is_relative_to(case229.origpath) and source.is_file()
    assert copy.is_relative_to(case229.packpath) and copy.name == source.name, (
        "the copy named where it was to be in the package, not in the hidden staging"
    )
    assert sorted(os.listdir(case229.packpath.parent)) == []


@pytest.mark.parametrize("mode", ["fake", "hard"])
def test_a_link_the_file_system_refuses_names_the_file_in_the_package(
    case229: Case, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    """Fake and hard mode link, and a full file system (out of inodes) refuses a link.
    Hard mode names the file and its copy as a link makes it; fake mode names the
    placeholder in the package, never the packager's own empty file it links to; neither
    says it was copying."""
    real_link = os.link
    plot = "plot2.png"  # in a plots directory of each EB: packaged under its own name

    def full(src: str, dst: str, **dir_fds: int | None) -> None:
        if os.path.basename(dst) == plot:  # in the helper making links too (forked)
            raise OSError(errno.ENOSPC, "No space left on device", src, None, dst)
        real_link(src, dst, **dir_fds)

    monkeypatch.setattr(os, "link", full)  # hard mode's links
    monkeypatch.setattr(manyfiles, "links", _refusing(plot))  # fake mode's, a table at a time
    assert case229.run_cli(mode) == 2
    said = " ".join(capsys.readouterr().err.split())
    refused = re.fullmatch(r"error: No space left on device(.*); free some space.*", said)
    assert refused, said
    where = refused[1]
    assert ".almaqa2" not in where and "copying" not in where
    if mode == "hard":
        made = re.fullmatch(r" making (\S+) from (\S+)", where)
        assert made, where
        assert Path(made[2]).is_relative_to(case229.origpath) and Path(made[2]).name == plot
    else:
        made = re.fullmatch(r": (\S+)", where)
        assert made, where
    assert Path(made[1]).is_relative_to(case229.packpath) and Path(made[1]).name == plot
    assert sorted(os.listdir(case229.packpath.parent)) == []


@pytest.mark.parametrize("grown", [100, 200_000], ids=["still-small", "now-large"])
def test_a_small_file_that_grew_before_its_copy_is_hashed_whole(tmp_path: Path, grown: int) -> None:
    """The packager hands a copy to the hasher with the size it scanned; a file that grew
    since (a log still written) is compared and hashed whole, whatever its size now."""
    source, copy = tmp_path / "source.log", tmp_path / "copy.log"
    data = os.urandom(grown)
    source.write_bytes(data)
    copy.write_bytes(data)
    with manifest.Hasher() as hasher:
        hasher.add(str(copy), 10, str(source))
        hasher.add(str(source), 10)
        found = hasher.results()
    assert found == {str(copy): hashlib.md5(data).hexdigest(), str(source): found[str(copy)]}
    copy.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    os.utime(copy, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns))  # as copied
    with manifest.Hasher() as hasher, pytest.raises(ChecksumError, match="differs"):
        hasher.add(str(copy), 10, str(source))
        hasher.results()


@pytest.mark.parametrize("unit", [1, 10**3, 10**9], ids=["ns", "us (NFSv3)", "s (Lustre)"])
def test_a_copy_unlike_its_unchanged_source_is_a_disk_s_fault_whatever_its_time_precision(
    tmp_path: Path, unit: int
) -> None:
    """A package's file system may keep times to the microsecond or the second: the time a
    copy was given is then cut short, and a copy a disk spoilt would be said to be of a
    source written meanwhile, whose fix (wait, package again) does not help."""
    source, copy = tmp_path / "source.bin", tmp_path / "copy.bin"
    source.write_bytes(b"what was read")
    copy.write_bytes(b"what was spoilt")
    given = 1_600_000_000_123_456_789
    os.utime(source, ns=(given, given))
    os.utime(copy, ns=(given, given // unit * unit))  # as its file system keeps it
    said = str(copy_differs(str(copy), str(source)))
    assert said.startswith(f"the copy {copy} differs from its source"), said
    os.utime(source, ns=(given + 2 * 10**9, given + 2 * 10**9))  # written meanwhile
    said = str(copy_differs(str(copy), str(source)))
    assert said.startswith("the file changed while it was being packaged"), said


def _tiny_files(folder: Path, batches: int) -> dict[str, str]:
    """``batches`` batches of small files for a ``Hasher``: {path: md5}."""
    found = {}
    for i in range(batches * 256):
        path = folder / f"f{i}"
        path.write_bytes(data := os.urandom(10 + i % 50))
        found[str(path)] = hashlib.md5(data).hexdigest()
    return found


def test_small_files_are_hashed_by_the_helper_while_it_keeps_up(tmp_path: Path) -> None:
    """The writer hands a batch over only once the one before is answered: the helper
    is never behind, and nothing is hashed here (the writer's core is left to write)."""
    files = _tiny_files(tmp_path, 6)
    with manifest.Hasher() as hasher:
        for n, path in enumerate(files, 1):
            hasher.add(path, 60)
            while n % 256 == 0 and len(hasher._digests) < n:
                time.sleep(0.001)
        assert hasher.results() == files
    assert (hasher.here, hasher.small) == (0, len(files))


def test_small_files_are_hashed_here_while_the_helper_is_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper stalls on its first batch: it is given a few, a few more wait for it,
    and this process hashes every batch past those itself, as handed over."""
    files = _tiny_files(tmp_path, 12)
    parent, go_on = os.getpid(), multiprocessing.get_context("fork").Event()
    real = manifest._hash_small

    def stalled_in_the_helper(batch: list[Any]) -> list[Any]:
        if os.getpid() != parent:
            go_on.wait()
        return real(batch)

    monkeypatch.setattr(manifest, "_hash_small", stalled_in_the_helper)
    with manifest.Hasher() as hasher:
        for path in files:
            hasher.add(path, 60)
        assert hasher.here >= (12 - 3 - 4) * 256  # past the helper's 3 and 4 waiting
        go_on.set()  # (then the two share what waits)
        assert hasher.results() == files
    assert hasher.small == len(files)


def test_compressed_images_hold_their_source(tmp_path: Path) -> None:
    case = make_case("flat", tmp_path)
    assert case.run_cli("copy") == 0
    packed = next(case.packpath.rglob("IRC10216.clean.pb.fits.gz"))
    source = case.origpath / "IRC10216.clean.pb.fits"
    assert gzip.decompress(packed.read_bytes()) == source.read_bytes()
    assert packed.stat().st_mtime_ns == source.stat().st_mtime_ns
