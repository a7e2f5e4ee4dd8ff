"""Issue 20: verify reads a chunk as tarsplit writes it front to back (``tarread``), and any
other tar with tarfile.  The two must judge every tar alike: for random tars, written by
tarsplit and by tarfile in each format with every kind of member, then damaged, the fast
reader gives tarfile's result or hands the tar over (``Irregular``); for tarsplit's own
chunks it never hands over."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

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
    slow, fast = Recorded(), Recorded()
    by_tarfile = _read_with_tarfile(chunk, top, None, slow)
    try:
        by_tarread = _read_own(chunk, top, fast)
    except tarread.Irregular:
        return None
    return (by_tarread, fast.seen), (by_tarfile, slow.seen)


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
