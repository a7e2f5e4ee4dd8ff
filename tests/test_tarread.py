"""Issue 20: verify reads a chunk as tarsplit writes it front to back (``tarread``), and any
other tar with tarfile.  The two must judge every tar alike: for random tars, written by
tarsplit and by tarfile in each format with every kind of member, then damaged, the fast
reader gives tarfile's result or hands the tar over (``Irregular``); for tarsplit's own
chunks it never hands over."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from almaqa2.md5pair import Md5
from almaqa2.transfer import tarread, tarsplit
from almaqa2.transfer.verify import _read_own, _read_with_tarfile

TOP = "2019.1.01234.S"
_PART = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-é", min_size=1, max_size=40)
_KINDS = st.sampled_from(["file", "file", "file", "dir", "symlink", "fifo", "hardlink"])


@st.composite
def tars(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A tar's bytes, and whether tarsplit wrote it."""
    count = draw(st.integers(0, 12))
    entries = []
    for i in range(count):
        parts = draw(st.lists(_PART, min_size=1, max_size=5))
        top = draw(st.sampled_from([TOP, TOP, TOP, "elsewhere", "..", "/abs"]))
        name = "/".join([top, *parts, f"f{i}"])
        data = draw(st.binary(max_size=3000))
        entries.append((name, draw(_KINDS), data))
    if draw(st.booleans()):
        entries.insert(0, (f"{TOP}/manifest.md5", "file", b"d41d8cd98f00b204e9800998ecf8427e  x\n"))
    ours = draw(st.booleans())
    raw = _tarsplit_bytes(entries) if ours else _tarfile_bytes(entries, draw(st.sampled_from(
        [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])))  # fmt: skip
    if draw(st.booleans()) and raw:  # damage a byte, or cut the tar short
        at = draw(st.integers(0, len(raw) - 1))
        if draw(st.booleans()):
            raw = raw[:at]
        else:
            raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1 :]
        ours = False
    return raw, ours


def _tarsplit_bytes(entries: list[tuple[str, str, bytes]]) -> bytes:
    out = bytearray()
    for name, kind, data in entries:
        if kind not in ("file", "dir") or not name.startswith(TOP + "/"):
            continue  # tarsplit writes files and directories of the package only
        size = -1 if kind == "dir" else len(data)
        out += tarsplit.header(tarsplit.Entry(name, size, 0o644, 1_600_000_000))
        if kind == "file":
            out += data + bytes(-len(data) % 512)
    return bytes(out) + bytes(tarsplit.tar_size(len(out)) - len(out))


def _tarfile_bytes(entries: list[tuple[str, str, bytes]], form: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=form) as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                         "fifo": tarfile.FIFOTYPE, "hardlink": tarfile.LNKTYPE}[kind]  # fmt: skip
            info.linkname = "target" if kind in ("symlink", "hardlink") else ""
            try:
                tar.addfile(info)
            except ValueError:  # a name this format cannot hold
                continue
    return buffer.getvalue()


class Recorded:
    """What a reader hands over, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def member(self, name: str, md5: str, chunk: Path) -> None:
        self.seen.append((name, md5))

    def carried(self, data: bytes) -> None:
        self.seen.append(("manifest", data))


def _both(chunk: Path, top: str) -> tuple[object, object] | None:
    """(fast, tarfile) readings of ``chunk``: what each handed over and returned; None if
    the fast reader handed the tar over to tarfile."""
    slow, fast, hashing, mapped = Recorded(), Recorded(), Recorded(), Recorded()
    by_tarfile = _read_with_tarfile(chunk, top, None, slow)
    try:
        by_tarread = _read_own(chunk, top, fast)
    except tarread.Irregular:
        return None
    whole, mapped_whole = Md5(), Md5()
    assert _read_own(chunk, top, hashing, whole) == by_tarread  # read alone, hashed whole
    as_pages = _read_own(chunk, top, mapped, mapped_whole, None, None, True)
    assert as_pages == by_tarread
    assert hashing.seen == fast.seen == mapped.seen
    md5 = hashlib.md5(chunk.read_bytes()).hexdigest()
    assert whole.hexdigest() == mapped_whole.hexdigest() == md5
    return (by_tarread[:2], fast.seen), (by_tarfile, slow.seen)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tars())
def test_the_fast_reader_judges_as_tarfile(tmp_path_factory, made: tuple[bytes, bool]) -> None:
    raw, ours = made
    chunk = Path(tmp_path_factory.mktemp("tar")) / f"{TOP}_2019_10_01_001_of_001.tar"
    chunk.write_bytes(raw)
    both = _both(chunk, TOP)
    if both is None:
        assert not ours, "a chunk as tarsplit writes it is read by the fast reader"
        return
    assert both[0] == both[1]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tars(), min_size=1, max_size=6), st.booleans())
def test_tars_read_at_once_in_threads_are_each_as_read_alone(
    tmp_path_factory: pytest.TempPathFactory, made: list[tuple[bytes, bool]], as_pages: bool
) -> None:
    """Several tars read at once, each in a thread, their buffers hashed together
    (``Together``), read or as mapped pages: each gives what it gives read alone, and
    its md5 is hashlib's; one that is not as tarsplit writes it raises in its own thread
    only, the others read on."""
    folder = Path(tmp_path_factory.mktemp("tars"))
    chunks = []
    for n, (raw, _ours) in enumerate(made):
        chunks.append(folder / f"{TOP}_2019_10_01_{n + 1:03d}_of_{len(made):03d}.tar")
        chunks[-1].write_bytes(raw)
    together = tarread.Together(len(chunks))
    found: dict[int, object] = {}

    def read(n: int) -> None:
        seen, whole = Recorded(), Md5()
        try:
            got = _read_own(chunks[n], TOP, seen, whole, None, together, as_pages)
            found[n] = got, seen.seen, whole.hexdigest()
        except tarread.Irregular:
            found[n] = "irregular"
        finally:
            together.leave()

    threads = [threading.Thread(target=read, args=(n,)) for n in range(len(chunks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n, chunk in enumerate(chunks):
        seen = Recorded()
        try:
            alone: object = _read_own(chunk, TOP, seen), seen.seen
        except tarread.Irregular:
            assert found[n] == "irregular"
            continue
        assert found[n] == (*alone, hashlib.md5(chunk.read_bytes()).hexdigest())  # type: ignore[misc]


def test_a_tar_that_cannot_be_mapped_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system that cannot map a file (mmap fails): the chunk is read instead, and
    found as it is, not unreadable."""
    entries = [(f"{TOP}/product/f{n}.fits", "file", bytes([n]) * 70_000) for n in range(5)]
    chunk = tmp_path / f"{TOP}_2019_10_01_001_of_001.tar"
    chunk.write_bytes(_tarsplit_bytes(entries))
    alone = Recorded()
    expected = _read_own(chunk, TOP, alone)

    def refused(*args: object, **kwargs: object) -> None:
        raise OSError(19, "No such device")

    monkeypatch.setattr(tarread.mmap, "mmap", refused)
    mapped, whole = Recorded(), Md5()
    assert _read_own(chunk, TOP, mapped, whole, None, None, True) == expected
    assert mapped.seen == alone.seen and len(alone.seen) == 5
    assert whole.hexdigest() == hashlib.md5(chunk.read_bytes()).hexdigest()


def test_a_real_chunk_is_read_fast_and_alike(nrao_split: Path) -> None:
    for chunk in sorted((nrao_split / "chunks").glob("*.tar")):
        both = _both(chunk, "2013.1.00123.S")
        assert both is not None and both[0] == both[1]
        assert both[0][1], "members were read"


def test_a_set_with_one_chunk_written_by_another_tool_is_read_again_by_tarfile(
    nrao_split: Path, tmp_path: Path
) -> None:
    """The fast reader hands a set over when it meets a chunk it leaves to tarfile, after
    it read others: the set is read again from the start, and judged as tarfile judges
    it (no member counted twice)."""
    import hashlib
    import shutil

    from almaqa2.transfer import verify

    chunks = Path(shutil.copytree(nrao_split / "chunks", tmp_path / "chunks"))
    tars = sorted(chunks.glob("*.tar"))
    assert len(tars) > 2
    last = tars[-1]
    with tarfile.open(last) as old:  # the same members, as GNU tar's format writes them
        members = [(m, old.extractfile(m).read() if m.isreg() else None) for m in old]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as new:
        for member, data in members:
            new.addfile(member, io.BytesIO(data) if data is not None else None)
    last.write_bytes(buffer.getvalue())
    md5 = hashlib.md5(buffer.getvalue()).hexdigest()
    Path(f"{last}.md5sum").write_text(f"{md5}  {last.name}\n")
    listing = next(chunks.glob("*.md5sums"))
    lines = [f"{md5}  {last.name}" if line.endswith(last.name) else line
             for line in listing.read_text().splitlines()]  # fmt: skip
    listing.write_text("\n".join(lines) + "\n")
    with pytest.raises(tarread.Irregular):
        _read_own(last, "2013.1.00123.S", Recorded())
    report = verify.verify([chunks])
    assert report.ok, report.problems
    assert report.checked == verify.verify([nrao_split / "chunks"]).checked


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tars())
def test_read_in_two_halves_the_fast_reader_still_judges_as_tarfile(
    tmp_path_factory, made: tuple[bytes, bool]
) -> None:
    """The same random tars, damaged or not, each read in two processes (a helper from the
    first header past the middle): the same members, or handed over to tarfile."""
    raw, ours = made
    chunk = Path(tmp_path_factory.mktemp("tar")) / f"{TOP}_2019_10_01_001_of_001.tar"
    chunk.write_bytes(raw)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tarread, "_WORTH_A_HELPER", 0)
        both = _both(chunk, TOP)
    if both is None:
        assert not ours, "a chunk as tarsplit writes it is read by the fast reader"
        return
    assert both[0] == both[1]


def _package_like(count: int) -> list[tuple[str, str, bytes]]:
    """A chunk's members: the manifest first, directories, files of 0 to a few blocks,
    every other one named longer than a ustar header holds (a PAX record before it)."""
    entries = [(f"{TOP}/manifest.md5", "file", b"d41d8cd98f00b204e9800998ecf8427e  x\n")]
    for i in range(count):
        if i % 40 == 0:
            entries.append((f"{TOP}/d{i // 40}", "dir", b""))
        long = "n" * 120 if i % 2 else ""
        entries.append((f"{TOP}/d{i // 40}/{long}f{i}", "file", bytes([i % 251]) * (i * 37 % 1500)))
    return entries


@pytest.mark.parametrize("count", range(100, 108))
def test_a_large_chunk_is_read_in_two_halves_alike(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, count: int
) -> None:
    """Wherever the middle falls (in a PAX header or its record, a header, a file's data),
    the helper starts at a member's start, its half is taken, and the members are
    tarfile's."""
    chunk = tmp_path / f"{TOP}_2019_10_01_001_of_001.tar"
    chunk.write_bytes(_tarsplit_bytes(_package_like(count)))
    with pytest.MonkeyPatch.context() as patch, caplog.at_level("DEBUG", "almaqa2"):
        patch.setattr(tarread, "_WORTH_A_HELPER", 0)
        both = _both(chunk, TOP)
    assert both is not None and both[0] == both[1]
    assert len(both[0][1]) > count, "every file read"
    assert "were read by a helper" in caplog.text


def test_a_header_inside_a_file_is_not_taken_for_a_members_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file holding a tar (its headers on the chunk's block boundaries) across the middle:
    the helper starts at a header inside it; this process passes that point inside the
    file, reads on by itself, and the members are tarfile's (not the inner tar's)."""
    inner = _tarsplit_bytes(
        [(f"{TOP}/inner/{'i' * 110}{n}", "file", b"x" * 700) for n in range(40)]
    )
    entries = _package_like(20)
    entries.insert(10, (f"{TOP}/tars/archive.tar", "file", inner))
    chunk = tmp_path / f"{TOP}_2019_10_01_001_of_001.tar"
    chunk.write_bytes(_tarsplit_bytes(entries))
    middle = len(chunk.read_bytes()) // 2
    start = chunk.read_bytes().index(inner)
    assert start < middle < start + len(inner), "the inner tar spans the middle"
    with pytest.MonkeyPatch.context() as patch, caplog.at_level("DEBUG", "almaqa2"):
        patch.setattr(tarread, "_WORTH_A_HELPER", 0)
        both = _both(chunk, TOP)
    assert both is not None and both[0] == both[1]
    assert not any("/inner/" in name for name, _ in both[0][1])
    assert "were read by a helper" not in caplog.text


def test_a_helper_killed_while_it_hands_its_half_over_leaves_the_rest_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The helper's half comes in many pieces, more than a pipe holds; killed after the
    first, this process reads the rest itself from the helper's start, past the members
    it was given: each member once, in order, as tarfile reads them."""
    import multiprocessing

    from almaqa2 import forked

    chunk = tmp_path / f"{TOP}_2019_10_01_001_of_001.tar"
    chunk.write_bytes(_tarsplit_bytes(_package_like(3000)))
    monkeypatch.setattr(tarread, "_WORTH_A_HELPER", 0)
    monkeypatch.setattr(tarread._Half, "_PIECE", 5)
    real, calls, pending = forked.receive, [], []

    def receive_then_kill(pipe, raw=False):  # start, the first piece, then the helper dies
        calls.append(1)
        if len(calls) == 3:  # once its next piece is in the pipe (a loaded machine is slow)
            pending.append(pipe.poll(30))
            for child in multiprocessing.active_children():
                child.kill()
                child.join()
        return real(pipe, raw)

    monkeypatch.setattr(forked, "receive", receive_then_kill)
    with caplog.at_level("DEBUG", "almaqa2"):
        both = _both(chunk, TOP)
    assert pending == [True], "the helper sent no second piece in 30 s"
    assert len(calls) > 3, "the helper's pieces were being received when it was killed"
    assert "were read by a helper" not in caplog.text, "its half did not all come"
    assert both is not None and both[0] == both[1] and len(both[0][1]) > 3000


def test_a_half_of_large_members_is_left_to_this_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large members are hashing, which the chunk's own hash and this process already keep
    both cores busy with: the helper reads a sample of its half, finds them large on
    average, and leaves its half to this process; the members are tarfile's."""
    entries = [(f"{TOP}/product/cube{n}.fits", "file", bytes([n]) * (300 << 10)) for n in range(12)]
    chunk = tmp_path / f"{TOP}_2019_10_01_001_of_001.tar"
    chunk.write_bytes(_tarsplit_bytes(entries))
    monkeypatch.setattr(tarread, "_WORTH_A_HELPER", 0)
    monkeypatch.setattr(tarread, "_SAMPLE", 1 << 20)
    with caplog.at_level("DEBUG", "almaqa2"):
        both = _both(chunk, TOP)
    assert both is not None and both[0] == both[1] and len(both[0][1]) == 12
    assert "were read by a helper" not in caplog.text
    monkeypatch.setattr(tarread, "_SMALL_MEMBERS", 1 << 20)  # these count as small now
    with caplog.at_level("DEBUG", "almaqa2"):
        assert _both(chunk, TOP) == both
    assert "were read by a helper" in caplog.text


@given(st.binary(max_size=1500) | st.integers(0, 1500).map(lambda n: b"\xff" * n))
def test_byte_sum_is_sum(data: bytes) -> None:
    """A header's checksum, summed by adler32 a quarter block at a time, is ``sum``'s."""
    assert tarread.byte_sum(data) == sum(data)


def test_a_manifest_in_the_helpers_half_comes_back_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data of a member the reader keeps (the manifest a chunk carries) comes back from
    the helper too, when it lies in the helper's half."""
    entries = _package_like(60)
    entries.append(entries.pop(0))  # the manifest last
    chunk = tmp_path / f"{TOP}_2019_10_01_001_of_001.tar"
    chunk.write_bytes(_tarsplit_bytes(entries))
    monkeypatch.setattr(tarread, "_WORTH_A_HELPER", 0)
    with caplog.at_level("DEBUG", "almaqa2"):
        both = _both(chunk, TOP)
    assert "were read by a helper" in caplog.text
    assert both is not None and both[0] == both[1]
    assert ("manifest", entries[-1][2]) in both[0][1]
