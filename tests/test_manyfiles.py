"""``manyfiles``, the C calls of a directory's many files: what it lists and links is what
Python's own calls find, on real directories of every kind of entry."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from almaqa2 import manyfiles
from almaqa2.transfer import package_hashes

ME = os.geteuid()


@contextmanager
def _opened(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


def _as_python_finds(path: Path, base: str) -> tuple[list[tuple[str, int, None]], list[str], int]:
    """What ``plain_files`` must return (sorted), found by ``os.lstat`` name by name, and
    the plain files' bytes (what the scan counts)."""
    rows, others = [], []
    for name in os.listdir(path):
        st_ = os.lstat(path / name)
        if stat.S_ISREG(st_.st_mode) and st_.st_uid == ME and st_.st_mode & stat.S_IRUSR:
            rows.append((base + name, st_.st_size, None))
        else:
            others.append(name)
    return sorted(rows), sorted(others), sum(size for _rel, size, _none in rows)


def _listed(path: Path, base: str) -> tuple[list[tuple[str, int, None]], list[str], int]:
    with _opened(path) as fd:
        rows, others = manyfiles.plain_files(fd, base, ME)
    return sorted(rows), sorted(others), sum(size for _rel, size, _none in rows)


def test_every_kind_of_entry_is_told_apart(tmp_path: Path) -> None:
    """Plain files with their sizes; a directory, links (to a file, to nothing), a FIFO,
    a file without its owner's read bit and another user's file left to the caller."""
    (tmp_path / "table.dat").write_bytes(b"x" * 1234)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "to-file").symlink_to("table.dat")
    (tmp_path / "dangling").symlink_to("nowhere")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "unreadable").write_bytes(b"abc")
    (tmp_path / "unreadable").chmod(0o044)
    (tmp_path / "theirs").write_bytes(b"abcd")
    os.chown(tmp_path / "theirs", ME + 1000, -1)
    rows, others, total = _listed(tmp_path, "t/")
    assert rows == [("t/empty", 0, None), ("t/table.dat", 1234, None)]
    assert others == ["dangling", "pipe", "sub", "theirs", "to-file", "unreadable"]
    assert total == 1234
    assert (rows, others, total) == _as_python_finds(tmp_path, "t/")


def test_names_that_are_not_utf8_are_decoded_as_os_listdir_decodes_them(tmp_path: Path) -> None:
    raw = b"caf\xe9.bin"  # Latin-1, as an old file system may hold it
    with open(os.path.join(os.fsencode(tmp_path), raw), "wb") as f:
        f.write(b"12345")
    rows, others, total = _listed(tmp_path, "")
    assert rows == [(os.fsdecode(raw), 5, None)] and others == [] and total == 5
    assert os.fsdecode(raw) in os.listdir(tmp_path)


def test_a_descriptor_already_read_is_listed_whole(tmp_path: Path) -> None:
    """The directory is read from its start, whatever was read through the descriptor."""
    for i in range(50):
        (tmp_path / f"f{i}").write_bytes(b"x" * i)
    with _opened(tmp_path) as fd:
        assert len(os.listdir(fd)) == 50
        rows, others = manyfiles.plain_files(fd, "", ME)
        assert len(rows) == 50 and others == [] and sum(r[1] for r in rows) == sum(range(50))
        assert len(manyfiles.plain_files(fd, "", ME)[0]) == 50  # and again


def test_what_is_not_a_directory_is_refused_as_the_system_says(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    fd = os.open(tmp_path / "file", os.O_RDONLY)
    try:
        with pytest.raises(NotADirectoryError):
            manyfiles.plain_files(fd, "", ME)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as raised:
        manyfiles.plain_files(12345, "", ME)  # (no such descriptor)
    assert raised.value.errno == errno.EBADF


_NAMES = st.text(
    st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)), min_size=1, max_size=20
).filter(lambda n: n not in (".", ".."))


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(_NAMES, st.sampled_from(["file", "dir", "link", "noread"]), max_size=30))
def test_any_directory_is_listed_as_python_finds_it(
    tmp_path_factory: pytest.TempPathFactory, entries: dict[str, str]
) -> None:
    where = tmp_path_factory.mktemp("any")
    for i, (name, kind) in enumerate(entries.items()):
        path = where / name
        if kind == "dir":
            path.mkdir()
        elif kind == "link":
            path.symlink_to(".")
        else:
            path.write_bytes(b"x" * i)
            if kind == "noread":
                path.chmod(0o200)
    assert _listed(where, "a/b/") == _as_python_finds(where, "a/b/")


def _tar_entries_as_python_finds(
    path: Path, base: str
) -> tuple[list[tuple[str, int, int, int]], list[str]]:
    """What ``tar_entries`` must return (sorted), as tarsplit's walk made it name by name."""
    rows, others = [], []
    for name in os.listdir(path):
        st_ = os.lstat(path / name)
        if stat.S_ISREG(st_.st_mode):
            rows.append((base + name, st_.st_size, st_.st_mode & 0o7777, int(st_.st_mtime)))
        else:
            others.append(name)
    return sorted(rows), sorted(others)


def test_a_tar_entry_is_what_tarsplit_s_walk_made_of_each_regular_file(tmp_path: Path) -> None:
    """Any regular file (another's, unreadable, executable), its permission bits and its
    time's whole seconds, rounded as int(st_mtime) rounds them, before 1970 too; each mode
    one object; everything else left to the caller."""
    times = {"now": None, "old": -86_400 * 365 * 10 - 0.25, "frac": 1_600_000_000.75}
    for name, when in times.items():
        (tmp_path / name).write_bytes(name.encode())
        if when is not None:
            os.utime(tmp_path / name, ns=(int(when * 1e9), int(when * 1e9)))
    (tmp_path / "run.sh").write_bytes(b"#!/bin/sh\n")
    (tmp_path / "run.sh").chmod(0o4755)
    (tmp_path / "theirs").write_bytes(b"x")
    os.chown(tmp_path / "theirs", ME + 1000, -1)
    (tmp_path / "unreadable").write_bytes(b"x")
    (tmp_path / "unreadable").chmod(0)
    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to("now")
    os.mkfifo(tmp_path / "pipe")
    modes: dict[int, int] = {}
    with _opened(tmp_path) as fd:
        rows, others = manyfiles.tar_entries(fd, "P/x/", modes)
    assert (sorted(rows), sorted(others)) == _tar_entries_as_python_finds(tmp_path, "P/x/")
    assert sorted(others) == ["link", "pipe", "sub"] and len(rows) == 6
    assert {rel: size for rel, size, _mode, _mtime in rows}["P/x/run.sh"] == len(b"#!/bin/sh\n")
    by_name = {rel: (mode, mtime) for rel, _size, mode, mtime in rows}
    assert by_name["P/x/old"][1] == int(times["old"]) == -315_360_000  # (toward zero)
    assert by_name["P/x/run.sh"][0] == 0o4755 and by_name["P/x/unreadable"][0] == 0
    assert all(mode is modes[mode] for mode, _mtime in by_name.values())


def test_names_are_told_apart_as_scandir_tells_directories(tmp_path: Path) -> None:
    """Directories apart (a link to one is not one); files, links, pipes and the rest
    together; a name that is not UTF-8 as os.listdir gives it."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "to-sub").symlink_to("sub")
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "dangling").symlink_to("nowhere")
    os.mkfifo(tmp_path / "pipe")
    os.mkdir(os.path.join(os.fsencode(tmp_path), b"d\xe9j\xe0"))
    with _opened(tmp_path) as fd:
        os.listdir(fd)  # (read through once: listed from its start all the same)
        directories, files = manyfiles.names(fd)
    with os.scandir(tmp_path) as listing:
        entries = list(listing)
    assert sorted(directories) == sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
    assert sorted(files) == sorted(e.name for e in entries if not e.is_dir(follow_symlinks=False))
    assert sorted(directories) == sorted(["sub", os.fsdecode(b"d\xe9j\xe0")])
    assert sorted(files) == ["dangling", "file", "pipe", "to-sub"]


def _read_as_verify_read(fd: int, names: list[str], limit: int) -> list[bytes | int | str]:
    """What ``read_small`` must return: verify's former loop, name by name."""
    found: list[bytes | int | str] = []
    for name in names:
        try:
            file = os.open(name, package_hashes._OPEN, dir_fd=fd)
            try:
                data = os.read(file, limit + 1)
                found.append(os.fstat(file).st_size if len(data) > limit else data)
            finally:
                os.close(file)
        except OSError as exc:
            found.append(f"unreadable ({exc.strerror})")
    return found


def test_small_files_are_read_whole_and_the_rest_said_as_verify_said_them(
    tmp_path: Path,
) -> None:
    """Whole up to the limit, the size past it; a directory, a name gone, a dangling link
    and a FIFO without a writer (opened without waiting) as the system says them."""
    limit = 1000
    for name, size in {
        "empty": 0,
        "small": 10,
        "full": limit,
        "over": limit + 1,
        "big": 5000,
    }.items():
        (tmp_path / name).write_bytes(os.urandom(size))
    (tmp_path / "sub").mkdir()
    (tmp_path / "dangling").symlink_to("nowhere")
    os.mkfifo(tmp_path / "pipe")
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9"), "wb") as f:
        f.write(b"latin")
    names = ["empty", "small", "full", "over", "big", "sub", "gone", "dangling", "pipe"]
    names.append(os.fsdecode(b"caf\xe9"))
    with _opened(tmp_path) as fd:
        found = manyfiles.read_small(fd, names, limit, package_hashes._OPEN)
        assert found == _read_as_verify_read(fd, names, limit)
    assert found[:5] == [
        b"",
        (tmp_path / "small").read_bytes(),
        (tmp_path / "full").read_bytes(),
        limit + 1,
        5000,
    ]
    assert found[5:8] == [
        f"unreadable ({os.strerror(errno.EISDIR)})",
        f"unreadable ({os.strerror(errno.ENOENT)})",
        f"unreadable ({os.strerror(errno.ENOENT)})",
    ]
    assert found[8:] == [b"", b"latin"]


def test_one_file_is_linked_under_every_name_in_order(tmp_path: Path) -> None:
    source, dest = tmp_path / "src", tmp_path / "dest"
    source.mkdir()
    (dest / "sub").mkdir(parents=True)
    (source / "empty").write_bytes(b"")
    names = [f"f{i}" for i in range(300)] + ["sub/inner", os.fsdecode(b"caf\xe9")]
    with _opened(source) as src_fd, _opened(dest) as dst_fd:
        manyfiles.links(src_fd, "empty", dst_fd, names)
    inode = (source / "empty").stat().st_ino
    assert sorted(os.listdir(dest)) == sorted([*names[:300], "sub", names[-1]])
    assert all((dest / name).stat().st_ino == inode for name in names)
    assert (source / "empty").stat().st_nlink == 1 + len(names)


def test_a_link_that_fails_is_named_and_those_before_it_are_made(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "b").write_bytes(b"already there")
    with _opened(tmp_path) as src_fd, _opened(tmp_path / "dest") as dst_fd:
        with pytest.raises(FileExistsError) as raised:
            manyfiles.links(src_fd, "empty", dst_fd, ["a", "b", "c"])
        assert raised.value.filename == "b"
        with pytest.raises(FileNotFoundError) as missing:
            manyfiles.links(src_fd, "empty", dst_fd, ["no/such/dir"])
        assert missing.value.filename == "no/such/dir"
    assert sorted(os.listdir(tmp_path / "dest")) == ["a", "b"]
    assert (tmp_path / "dest" / "b").read_bytes() == b"already there"
