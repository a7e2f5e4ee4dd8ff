"""Issue 20: tarsplit builds the tar headers of a package's files itself, in C
(``almaqa2.tarheader``: tarfile's own are ~50 times slower); they must be tarfile's, byte
for byte, whatever the entry."""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath

from hypothesis import given, settings
from hypothesis import strategies as st

from almaqa2.transfer.tarsplit import Entry, header, member_size

_PART = st.text(alphabet=st.characters(blacklist_characters="/\0", blacklist_categories=["Cs"]),
                min_size=1, max_size=60)  # fmt: skip
_ASCII_PART = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=60)


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    parts = draw(st.lists(st.one_of(_ASCII_PART, _ASCII_PART, _PART), min_size=1, max_size=6))
    size = draw(st.one_of(st.just(-1), st.integers(0, 1 << 20), st.integers(8**11 - 2, 8**12)))
    mtime = draw(st.one_of(st.integers(0, 2_000_000_000), st.integers(8**11 - 2, 8**12)))
    mode = draw(st.one_of(st.integers(0, 0o7777), st.integers(0, 0o177777)))  # type bits too
    rel = PurePosixPath("2019.1.01234.S", *parts)
    return Entry(rel.as_posix(), size, mode, mtime)


@settings(max_examples=600, deadline=None)
@given(entries())
def test_headers_are_tarfiles_byte_for_byte(entry: Entry) -> None:
    expected = entry.info().tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    assert header(entry) == expected
    data = -(-max(entry.size, 0) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    assert member_size(entry) == len(expected) + data


def test_a_long_name_and_a_directory_as_gnu_tar_reads_them(tmp_path: Path) -> None:
    import subprocess

    name = "2019.1.01234.S/" + "/".join(["d" * 40] * 4) + "/table.f0"
    entries = [Entry(str(PurePosixPath(name).parent), -1, 0o755, 1_600_000_000),
               Entry(name, 0, 0o644, 1_600_000_000)]  # fmt: skip
    tar = tmp_path / "t.tar"
    tar.write_bytes(b"".join(header(e) for e in entries) + bytes(2 * tarfile.RECORDSIZE))
    listed = subprocess.run(["tar", "tvf", str(tar)], capture_output=True, text=True, check=True)
    assert listed.stdout.splitlines()[1].endswith(name) and listed.stdout.startswith("drwxr-xr-x")
