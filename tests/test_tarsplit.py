"""``qa2 tarsplit``: chunk names, sizes, independence, reassembly and checksums, checked
with GNU tar and md5sum; an interrupted or failing run leaves no unchecked chunk."""

from __future__ import annotations

import errno
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from almaqa2.cli import main
from almaqa2.errors import InputError
from almaqa2.package.package_dir import ChunkNames
from almaqa2.transfer import tarsplit

from conftest import Case, make_case, wait_for

MOUS = "uid___A001_X13e_X1fe"
P = "2013.1.00123.S"  # the nrao case's project


def _package(case: Case) -> Path:
    assert case.run_cli("copy") == 0
    return case.packpath


def _chunks(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("*.tar") if not p.name.endswith(".ticket.tar"))


def _run(*argv: str) -> int:
    return main(["tarsplit", *argv])


def _gnu(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["tar", *args], cwd=cwd, capture_output=True, text=True)


def test_chunks_named_by_mous_are_small_whole_and_reassemble(tmp_path: Path) -> None:
    pack = _package(make_case("nrao", tmp_path))
    out = tmp_path / "chunks"
    out.mkdir()
    assert _run(str(pack), "--max-size", "20K", "--out", str(out)) == 0
    chunks = _chunks(out)
    total = len(chunks)
    assert total > 2
    assert [c.name for c in chunks] == [
        f"{P}_{MOUS}_{n:03d}_of_{total:03d}.tar" for n in range(1, total + 1)
    ]
    everything = tmp_path / "all"
    everything.mkdir()
    for chunk in chunks:
        assert chunk.stat().st_size <= 20 * 1024
        alone = tmp_path / f"alone-{chunk.stem}"
        alone.mkdir()
        listed = _gnu("tf", str(chunk), cwd=alone)
        assert listed.returncode == 0 and listed.stdout, listed.stderr
        assert all(line.startswith(f"{P}/") for line in listed.stdout.splitlines())
        assert _gnu("xf", str(chunk), cwd=alone).returncode == 0
        assert _gnu("xf", str(chunk), cwd=everything).returncode == 0
    first = _gnu("tf", str(chunks[0]), cwd=tmp_path).stdout.splitlines()
    assert first[0] == f"{P}/manifest.md5"
    check = subprocess.run(
        ["md5sum", "-c", "--strict", f"{P}/manifest.md5"],
        cwd=everything,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    files = sorted(p.relative_to(everything).as_posix() for p in everything.rglob("*"))
    originals = sorted(p.relative_to(pack.parent).as_posix() for p in [pack, *pack.rglob("*")])
    assert files == originals, "every file and directory, nothing else"
    for name in ("--", *[f"{c.name}.md5sum" for c in chunks]):
        if name == "--":
            name = f"{P}_{MOUS}.md5sums"
        done = subprocess.run(["md5sum", "-c", name], cwd=out, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_date_tag_and_sizes_as_planned(case229: Case) -> None:
    pack = _package(case229)
    assert _run(str(pack), "-n", "2012-06-20", "--max-size", "300K") == 0
    chunks = _chunks(pack.parent)
    chunks = [c for c in chunks if "_of_" in c.name]
    assert chunks and all(
        re.fullmatch(rf"2011\.0\.00229\.S_2012_06_20_\d{{3}}_of_{len(chunks):03d}\.tar", c.name)
        for c in chunks
    )
    planned, _ = tarsplit.plan(
        pack, 300 * 1024, ChunkNames(pack.name, "2012_06_20"), auxiliary=False
    )
    assert [(c.name, c.size) for c in planned] == [(c.name, c.stat().st_size) for c in chunks]


def test_a_file_larger_than_the_limit_is_alone_with_a_warning(
    case229: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    (case229.origpath / "casapy-long.log").write_bytes(b"CASA log line\n" * 4000)  # 56 KB
    pack = _package(case229)
    big = next(pack.rglob("casapy-long.log"))
    capsys.readouterr()
    assert _run(str(pack), "-n", "2012-06-20", "--max-size", "20K") == 0
    err = capsys.readouterr().err  # rich wraps long lines, a long path anywhere
    assert big.name in "".join(err.split()) and "alone in its chunk" in " ".join(err.split())
    holders = [
        c for c in _chunks(pack.parent) if big.name in _gnu("tf", str(c), cwd=pack.parent).stdout
    ]
    assert len(holders) == 1
    assert _gnu("tf", str(holders[0]), cwd=pack.parent).stdout.count("\n") == 1


def test_auxiliary_keeps_only_products_in_numbered_chunks(tmp_path: Path) -> None:
    pack = _package(make_case("nrao", tmp_path))
    assert _run(str(pack), "--auxiliary", "--max-size", "20K") == 0
    aux = pack.parent / f"{P}_{MOUS}_auxiliary.tar"
    assert aux.is_file() and (aux.parent / f"{aux.name}.md5sum").is_file()
    numbered = [c for c in _chunks(pack.parent) if "_of_" in c.name]
    assert numbered
    for chunk in numbered:
        names = _gnu("tf", str(chunk), cwd=tmp_path).stdout.split()
        assert names and all("/product/" in n for n in names)
    assert "/product/" not in _gnu("tf", str(aux), cwd=tmp_path).stdout


_KILL_AFTER = """
import os, signal, sys
from almaqa2.transfer import tarsplit
from almaqa2.cli import main
from almaqa2.errors import InputError
real, count = tarsplit.header, [0]
def header(entry):  # every member's header is made as it is written
    count[0] += 1
    if count[0] == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(entry)
tarsplit.header = header
sys.exit(main(["tarsplit", *sys.argv[2:]]))
"""


def _finished_chunks_are_checked(out: Path) -> None:
    for chunk in _chunks(out):
        summed = out / f"{chunk.name}.md5sum"
        assert summed.is_file(), f"{chunk.name} has no .md5sum"
        done = subprocess.run(["md5sum", "-c", summed.name], cwd=out, capture_output=True)
        assert done.returncode == 0


def test_sigkill_leaves_no_finished_looking_chunk_and_a_rerun_succeeds(case229: Case) -> None:
    pack = _package(case229)
    argv = [str(pack), "-n", "2012-06-20", "--max-size", "64K"]
    killed = subprocess.run([sys.executable, "-c", _KILL_AFTER, "30", *argv])
    assert killed.returncode == -9
    out = pack.parent
    assert list(out.glob("*.part")), "the chunk being written stays a .part"
    _finished_chunks_are_checked(out)
    assert _run(*argv) == 0
    assert not list(out.glob("*.part"))
    _finished_chunks_are_checked(out)
    assert (out / "2011.0.00229.S_2012_06_20.md5sums").is_file()


def test_full_disk_names_the_chunk_and_leaves_no_unchecked_tar(
    case229: Case, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = _package(case229)
    real_copy, real_write = tarsplit.copy_bytes, tarsplit.write_all
    written = [0]

    def filled(count: int) -> None:
        written[0] += count
        if written[0] > 150 * 1024:  # the disk fills after 150 KB of tar
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def copy(src: int, dst: int, count: int) -> int:  # a large file, in the kernel
        filled(count)
        return real_copy(src, dst, count)

    def write(fd: int, data: bytes | bytearray) -> None:  # headers and gathered small files
        filled(len(data))
        real_write(fd, data)

    monkeypatch.setattr(tarsplit, "copy_bytes", copy)
    monkeypatch.setattr(tarsplit, "write_all", write)
    assert _run(str(pack), "-n", "2012-06-20", "--max-size", "64K") == 2
    err = capsys.readouterr().err
    named = re.search(r"2011\.0\.00229\.S_2012_06_20_\d{3}_of_\d{3}\.tar", err)
    assert named and "No space left" in err
    assert not (pack.parent / named[0]).exists(), "the chunk that failed is not there"
    assert _chunks(pack.parent), "the chunks before it are finished"
    assert "Traceback" not in err
    assert not list(pack.parent.glob("*.part"))
    _finished_chunks_are_checked(pack.parent)


def test_a_failing_disk_names_the_chunk_and_both_disks(
    case229: Case, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An I/O error while a chunk is written may be the package's disk or the output's
    (the kernel's copy of a large file reads and writes in one call): both are named,
    not 'free some space' alone."""
    pack = _package(case229)

    def failing(fd: int, data: bytes | bytearray) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(tarsplit, "write_all", failing)
    assert _run(str(pack), "-n", "2012-06-20", "--max-size", "64K") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "reading the package or writing the chunk failed (Input/output error)" in err
    assert "check the package's disk and the disk the chunks go to" in err
    assert "free some" not in err
    assert re.search(r"2011\.0\.00229\.S_2012_06_20_\d{3}_of_\d{3}\.tar;", err)
    assert not list(pack.parent.glob("*.part"))
    _finished_chunks_are_checked(pack.parent)


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ("ten", "is not a size"),
        ("-5G", "is not a size"),
        ("0", "smaller than one tar record"),
        ("0.5", "smaller than one tar record"),
        ("9K", "smaller than one tar record"),
    ],
)
def test_bad_size_is_refused(
    case229: Case, bad: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = _package(case229)
    assert _run(str(pack), "--max-size", bad) == 2
    assert said in capsys.readouterr().err


@settings(max_examples=400, deadline=None)
@given(
    name=st.text(
        st.characters(blacklist_characters="\0/", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=40,
    ),
    depth=st.integers(0, 12),
    size=st.one_of(st.integers(-1, 10**6), st.integers(8**11 - 2, 8**11 + 2)),
    mtime=st.one_of(st.integers(0, 2**33), st.integers(-5, -1), st.integers(8**11 - 1, 8**11 + 1)),
)
def test_member_size_is_what_tarfile_writes(name: str, depth: int, size: int, mtime: int) -> None:
    """The planned size of every member, long, non-ASCII or huge, is tarfile's exactly."""
    rel = PurePosixPath(P, *[f"member.{name}"] * depth, name)
    entry = tarsplit.Entry(rel.as_posix(), size, 0o644, mtime)
    header = entry.info().tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    assert tarsplit.member_size(entry) == len(header) + -(-max(size, 0) // 512) * 512


def _tables(top: Path) -> list[Path]:
    """A package-like tree: a manifest, small directories, and four tables of 500 files
    (each large enough to be left to the end of the walk, on ext4 as on tmpfs), each with
    an empty subtable."""
    tables = [top / "sg" / "member" / "calibration" / f"uid.ms.split.cal{t}" for t in range(4)]
    for table in tables:
        (table / "EMPTY").mkdir(parents=True)
        for i in range(500):
            (table / f"table.f{i:04d}.with_a_name_as_long_as_casa_gives_some").write_text(str(i))
    (top / "sg" / "README").write_text("read me")
    (top / "manifest.md5").write_text("")
    return tables


def _walked_by(monkeypatch: pytest.MonkeyPatch, record: Path) -> None:
    """The large directories worth a helper, however few; ``record`` gets the pid of the
    process that walks each directory of the helper's share."""
    monkeypatch.setattr(tarsplit, "_WORTH_A_HELPER", 0)
    columns = tarsplit._walked_in_columns

    def noted(directory: tuple[str, str]) -> tuple[str, bytes]:
        with record.open("a") as out:
            out.write(f"{os.getpid()}\n")
        return columns(directory)

    monkeypatch.setattr(tarsplit, "_walked_in_columns", noted)


def test_large_directories_are_walked_by_two_processes_as_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tables(tmp_path / P)
    monkeypatch.setattr(tarsplit, "_WORTH_A_HELPER", 1 << 60)
    alone = tarsplit.entries_of(tmp_path / P)  # not worth a helper
    assert len(alone) == 2 + 4 * 501 and alone[0].rel == f"{P}/manifest.md5"
    assert sum(entry.size < 0 for entry in alone) == 4  # the empty subtables
    _walked_by(monkeypatch, tmp_path / "walkers")
    assert tarsplit.entries_of(tmp_path / P) == alone
    walkers = [int(pid) for pid in (tmp_path / "walkers").read_text().split()]
    assert len(walkers) == 2 and os.getpid() not in walkers  # two of the four tables


def test_a_bad_file_in_the_helpers_share_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = _tables(tmp_path / P)
    _walked_by(monkeypatch, tmp_path / "walkers")
    theirs = tarsplit.forked.their_share([t.stat().st_size for t in tables], 0)
    fifo = tables[theirs[0]] / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="only files and directories") as raised:
        tarsplit.entries_of(tmp_path / P)
    assert raised.value.path == str(fifo)


@given(members=st.integers(0, 10**8), max_size=st.integers(0, 10**8))
def test_room_is_what_a_tar_of_the_largest_size_holds(members: int, max_size: int) -> None:
    assert (tarsplit.tar_size(members) <= max_size) == (members <= tarsplit.room(max_size))


@pytest.mark.parametrize("size", [-1, 0, 1, 512, 8**11 - 1, 8**11])
def test_member_size_at_every_name_length(size: int) -> None:
    """Every ASCII name length up to 1,100 (the ustar limit, the PAX record's block edges)."""
    for length in range(len(P) + 2, 1100):
        n = length - len(P) - 1
        rel = PurePosixPath(P, "".join("/" if i % 60 == 59 < n - i else "x" for i in range(n)))
        assert len(rel.as_posix()) == length
        entry = tarsplit.Entry(rel.as_posix(), size, 0o644, 1_600_000_000)
        header = entry.info().tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        assert tarsplit.member_size(entry) == len(header) + -(-max(size, 0) // 512) * 512, length


def test_progress_reaches_the_total_in_order(case229: Case, tmp_path: Path) -> None:
    """The bar's callback: bytes of tar written so far, rising, ending at the total."""
    pack = _package(case229)
    chunks, _ = tarsplit.plan(pack, 64 * 1024, ChunkNames(pack.name, "2012_06_20"), auxiliary=False)
    seen: list[tuple[int, int]] = []
    tarsplit.write(chunks, tmp_path, lambda done, total, *_: seen.append((done, total)))
    total = sum(c.size for c in chunks)
    assert len(seen) >= len(chunks) and {t for _, t in seen} == {total}
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1][0] == total


def test_the_tag_is_said_and_today_is_a_warning(
    case229: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 18: --date is the long name of -n; without it and without a MOUS UID, today's
    date is used and said, not silently."""
    import datetime as dt

    assert case229.run_cli("copy") == 0
    out = tmp_path / "chunks"
    out.mkdir()
    capsys.readouterr()
    argv = ["tarsplit", str(case229.packpath), "--out", str(out)]
    assert main([*argv, "--date", "2012-06-20"]) == 0
    assert "named by the date given: 2012_06_20" in capsys.readouterr().out
    assert main(argv) == 0
    said = capsys.readouterr()
    today = dt.date.today().strftime("%Y_%m_%d")
    assert f"named by today's date: {today}" in said.out
    assert "give --date YYYY-MM-DD" in said.err


@pytest.mark.parametrize("size", [100, 200 * 1024], ids=["gathered", "kernel-copied"])
@pytest.mark.parametrize("change", [b"more", None], ids=["grew", "shrank"])
def test_a_file_that_changes_size_while_split_is_refused(
    case229: Case, size: int, change: bytes | None
) -> None:
    """Small files are read into the chunk's buffer, large ones copied in the kernel: a
    file whose size is no longer the planned one stops the split either way."""
    pack = _package(case229)
    victim = next(pack.rglob("README"))
    victim.write_bytes(b"x" * size)
    out = pack.parent / "chunks"
    out.mkdir()
    chunks, _ = tarsplit.plan(pack, 10 << 30, ChunkNames(pack.name, "2012_06_20"), False)
    if change is None:
        victim.write_bytes(b"x" * (size - 1))
    else:
        with victim.open("ab") as f:
            f.write(change)
    with pytest.raises(InputError, match=r"changed while it was being split|shrank"):
        tarsplit.write(chunks, out)
    assert os.listdir(out) == [], "nothing half-written stays"


@pytest.mark.parametrize("when", ["after the plan", "while copied"])
def test_a_large_file_written_in_place_while_split_is_refused(
    case229: Case, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """A file of a hard-mode package is the reduction's own: written in place (its size
    kept) after the plan or while it was copied into the chunk, it went into the chunk
    torn, or under the time the plan gave its header, and only the PI's verify found it."""
    pack = _package(case229)
    victim = next(pack.rglob("README"))
    victim.write_bytes(os.urandom(200 * 1024))
    os.utime(victim, (1.6e9, 1.6e9))
    out = pack.parent / "chunks"
    out.mkdir()
    chunks, _ = tarsplit.plan(pack, 10 << 30, ChunkNames(pack.name, "2012_06_20"), False)

    def written() -> None:  # by someone else, its size kept
        with victim.open("r+b") as f:
            f.write(b"CASA")

    if when == "after the plan":
        written()
    else:
        real_copy = tarsplit.copy_bytes

        def copy_then_written(src: int, dst: int, count: int) -> int:
            copied = real_copy(src, dst, count)
            if os.readlink(f"/proc/self/fd/{src}") == str(victim):
                written()
            return copied

        monkeypatch.setattr(tarsplit, "copy_bytes", copy_then_written)
    with pytest.raises(InputError, match="changed while it was being split") as caught:
        tarsplit.write(chunks, out)
    assert caught.value.path == str(victim)
    assert os.listdir(out) == [], "nothing half-written stays"


def _many_pieces(tmp_path: Path) -> Path:
    """A package-like tree whose one chunk takes many pieces: 900 small files (empty, a
    few bytes, up to a block and a half, just under the kernel-copy size), large files
    between them, and an empty directory."""
    pack = tmp_path / P
    rng = random.Random(20)
    for i in range(900):
        folder = pack / f"table{i // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.choice([0, 7, 512, 700, (64 << 10) - 1])
        (folder / f"f{i:04d}").write_bytes(os.urandom(size))
        if i % 250 == 100:
            (folder / f"f{i:04d}.large").write_bytes(os.urandom((64 << 10) + 1 + i))
    (pack / "empty").mkdir()
    return pack


def _planned(tmp_path: Path) -> tuple[Path, list[tarsplit.Chunk]]:
    """``_many_pieces`` and its plan: one chunk."""
    pack = _many_pieces(tmp_path)
    chunks, _ = tarsplit.plan(pack, 10 << 30, ChunkNames(P, "2012_06_20"), False)
    return pack, chunks


def _as_tarfile_writes_it(tmp_path: Path, chunk: tarsplit.Chunk) -> bytes:
    """The tar tarfile writes of ``chunk``'s members."""
    expected = tmp_path / "expected.tar"
    with tarfile.open(expected, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in chunk.entries:
            if entry.size < 0:
                tar.addfile(entry.info())
            else:
                with open(tmp_path / entry.rel, "rb") as data:
                    tar.addfile(entry.info(), data)
    return expected.read_bytes()


def test_a_chunk_of_many_pieces_is_tarfiles_byte_for_byte(tmp_path: Path) -> None:
    """The pieces of a chunk are written by two processes: the tar is still exactly the one
    tarfile writes for the same members."""
    _, chunks = _planned(tmp_path)
    assert len(chunks) == 1 and len(chunks[0].spans) > 4
    out = tmp_path / "chunks"
    out.mkdir()
    tarsplit.write(chunks, out)
    assert (out / chunks[0].name).read_bytes() == _as_tarfile_writes_it(tmp_path, chunks[0])


def _pieces_logged(
    monkeypatch: pytest.MonkeyPatch,
    log: Path,
    first: Callable[[], None],
    theirs: Callable[[tarsplit.Span], None],
) -> None:
    """Log which process writes each piece (pid, first entry) into ``log``; ``first()``
    runs before this process's first piece, ``theirs(span)`` before each of the helper's."""
    real, here, started = tarsplit._write_piece, os.getpid(), []

    def logged(chunk: tarsplit.Chunk, span: tarsplit.Span, fd: int) -> None:
        if os.getpid() != here:
            theirs(span)
        elif not started:
            started.append(first())
        real(chunk, span, fd)
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {span.start}\n")

    monkeypatch.setattr(tarsplit, "_write_piece", logged)


def _logged(log: Path) -> list[tuple[int, int]]:
    """(pid, first entry) of each piece written, in order."""
    return [(int(pid), int(start)) for pid, start in map(str.split, log.read_text().splitlines())]


def test_both_processes_write_pieces_each_once_where_tarfile_has_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each process takes the next piece the other has not: this one waits at its first
    until the helper has written one, and every piece is written once, by one of them."""
    _, chunks = _planned(tmp_path)
    log = tmp_path / "pieces.log"
    log.touch()

    def helper_wrote() -> bool:
        return any(pid != os.getpid() for pid, _ in _logged(log))

    _pieces_logged(monkeypatch, log, lambda: wait_for(helper_wrote), lambda _: None)
    out = tmp_path / "chunks"
    out.mkdir()
    tarsplit.write(chunks, out)
    assert sorted(start for _, start in _logged(log)) == [s.start for s in chunks[0].spans]
    assert len({pid for pid, _ in _logged(log)}) == 2
    assert (out / chunks[0].name).read_bytes() == _as_tarfile_writes_it(tmp_path, chunks[0])


def test_a_helper_killed_in_the_middle_of_a_piece_leaves_it_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper takes a piece and waits until this process has written all the others,
    then dies (SIGKILL) having written the start of its piece wrong: this process writes
    that piece last, and the tar is tarfile's."""
    _, chunks = _planned(tmp_path)
    spans = chunks[0].spans
    log, started, killed = tmp_path / "pieces.log", tmp_path / "started", tmp_path / "killed"
    log.touch()

    def wrong_then_die(span: tarsplit.Span) -> None:
        started.touch()
        wait_for(lambda: (os.getppid(), spans[-1].start) in _logged(log))
        part = next((tmp_path / "chunks").glob("*.part"))
        with open(part, "r+b") as f:
            f.seek(span.offset)
            f.write(b"\xff" * 700)
        killed.write_text(str(span.start))
        os.kill(os.getpid(), signal.SIGKILL)

    _pieces_logged(monkeypatch, log, lambda: wait_for(started.exists), wrong_then_die)
    out = tmp_path / "chunks"
    out.mkdir()
    tarsplit.write(chunks, out)
    assert sorted(_logged(log)) == [(os.getpid(), s.start) for s in spans]
    assert _logged(log)[-1] == (os.getpid(), int(killed.read_text())), "its piece, last"
    assert (out / chunks[0].name).read_bytes() == _as_tarfile_writes_it(tmp_path, chunks[0])


def test_a_daemonic_process_writes_every_piece_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemonic process (which may not fork) writes all the pieces, in one process, and
    the tar is still tarfile's."""
    _, chunks = _planned(tmp_path)
    log = tmp_path / "pieces.log"
    log.touch()
    _pieces_logged(monkeypatch, log, lambda: None, lambda _: None)
    out = tmp_path / "chunks"
    out.mkdir()
    daemon = multiprocessing.get_context("fork").Process(
        target=tarsplit.write, args=(chunks, out), daemon=True
    )
    daemon.start()
    daemon.join(60)
    assert daemon.exitcode == 0
    assert _logged(log) == [(daemon.pid, s.start) for s in chunks[0].spans]
    assert (out / chunks[0].name).read_bytes() == _as_tarfile_writes_it(tmp_path, chunks[0])


@pytest.mark.parametrize("victim", [5, 300, 899], ids=["first-piece", "second", "last"])
def test_a_file_changed_in_any_piece_stops_the_split(tmp_path: Path, victim: int) -> None:
    """Whichever process builds the piece holding a file that changed size, the split
    stops naming that file, and nothing is left in the output."""
    pack, chunks = _planned(tmp_path)
    changed = pack / f"table{victim // 100}" / f"f{victim:04d}"
    with changed.open("ab") as f:
        f.write(b"grew")
    out = tmp_path / "chunks"
    out.mkdir()
    with pytest.raises(InputError, match="changed while it was being split") as caught:
        tarsplit.write(chunks, out)
    assert caught.value.path == str(changed)
    assert os.listdir(out) == []


@pytest.mark.parametrize("gone", ["small file", "large file", "directory"])
def test_a_file_gone_after_the_plan_stops_the_split_named_by_its_whole_path(
    tmp_path: Path, gone: str
) -> None:
    """A file removed after the plan, or its whole table, stops the split as the
    package's fault, named by its whole path (small files are opened through their
    directory), whichever process came to it; nothing is left in the output."""
    pack, chunks = _planned(tmp_path)
    sizes = {f: f.stat().st_size for f in sorted((pack / "table3").iterdir())}
    if gone == "large file":  # copied in the kernel
        victim = next(f for f, size in sizes.items() if size > 64 << 10)
        victim.unlink()
    else:  # the first of the table that is read
        victim = next(f for f, size in sizes.items() if 0 < size < 64 << 10)
        victim.unlink() if gone == "small file" else shutil.rmtree(victim.parent)
    out = tmp_path / "chunks"
    out.mkdir()
    with pytest.raises(InputError, match="package cannot be read") as caught:
        tarsplit.write(chunks, out)
    named = Path(caught.value.path)  # (without its table, whichever file came first)
    assert named == victim if gone != "directory" else named.parent == victim.parent
    assert os.listdir(out) == []


def test_a_package_without_its_manifest_is_not_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The manifest travels in the first chunk: without it, the chunks would fail every
    check where they arrive (verify: 'missing manifest.md5'), so nothing is split (it
    was), nor delivered."""
    package = _package(make_case("nrao", tmp_path))
    (package / "manifest.md5").unlink()
    out = tmp_path / "chunks"
    out.mkdir()
    web = tmp_path / "web"
    for argv in (["tarsplit", str(package), "--out", str(out)],
                 ["deliver", str(package), "--web-root", str(web)]):  # fmt: skip
        assert main(argv) == 2
        assert "manifest.md5" in capsys.readouterr().err
    assert os.listdir(out) == [] and not web.exists()


@pytest.mark.parametrize("target", ["file", "directory"])
def test_a_link_in_a_package_is_refused_whatever_it_reaches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    """A package holds files and directories only: a link (to a directory too, which a
    walk that does not follow links would pass by, its files missing from the chunks)
    stops the split, named, with nothing written."""
    case = make_case("nrao", tmp_path)
    package = _package(case)
    reached = next(p for p in package.rglob("*") if p.is_dir() == (target == "directory"))
    link = reached.parent / "a-link"
    link.symlink_to(reached)
    out = tmp_path / "chunks"
    out.mkdir()
    assert _run(str(package), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert "not one" in err and str(link) in err
    assert os.listdir(out) == []
