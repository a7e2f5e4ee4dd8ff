"""One sorted, read-only walk of a reduction directory.

Directories holding ``table.dat`` are CASA tables (MeasurementSets, calibration tables,
images), and so are directories named like an EB's MeasurementSet even without it (a broken
MS must be reported as one, not walked); ``*.plots`` directories hold plots: both are
kept whole, as one entry with its members, because they are packaged (or ignored) as a
unit.  Every other directory is walked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import logging
import operator
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from almaqa2 import forked, manifest, manyfiles
from almaqa2.errors import InputError

log = logging.getLogger(__name__)

MS_NAME = re.compile(r".*\.ms(\.split(\.cal)?)?")
"""Names of the MeasurementSets of an EB (imported, a priori calibrated, calibrated)."""

FLAG_VERSIONS = ".flagversions"
"""CASA's saved flags of an MS: a plain directory (``FLAG_VERSION_LIST`` and one
``flags.<version>`` table each), kept whole like a table."""


class Kind(Enum):
    FILE = "file"
    TABLE = "table"  # a CASA table directory (holds table.dat)
    PLOTS = "plots"  # a *.plots directory of PNG plots
    ASDM = "asdm"  # raw data: a directory holding ASDM.xml
    LINK = "link"  # a symbolic link to something inside origpath: not packaged twice


class Member(NamedTuple):
    """A file (``size`` set) or directory (``size`` None) inside a table or plots dir (one
    per file of a table, and a reduction may hold a million: a tuple is made in half the
    time of a frozen dataclass, in as little memory)."""

    rel: str  # relative to the table or plots directory, with '/'
    size: int | None
    target: str | None = None  # a file reached through a link: the file itself


@dataclass(frozen=True)
class SourceEntry:
    """Something found under origpath; ``rel`` is where it was found, ``path`` what to read."""

    rel: PurePosixPath
    path: Path
    kind: Kind
    size: int
    dev: int
    members: tuple[Member, ...] = ()
    link_target: str | None = None

    @property
    def name(self) -> str:
        return self.rel.name


def _unreadable(path: str, what: str, exc: OSError | None = None) -> InputError:
    """The error for a file or directory that cannot be read, saying why as the system did."""
    if exc is not None and exc.errno == errno.ELOOP:
        return InputError(f"{what} is a symbolic link loop", path, fix="remove or correct the link")
    if exc is not None and exc.errno == errno.ENOENT:
        return InputError(
            f"{what} is a broken link or vanished while it was read",
            path,
            fix="remove or correct the link, then run again",
        )
    return InputError(
        f"cannot read {what}" + (f" ({exc.strerror})" if exc is not None and exc.strerror else ""),
        path,
        fix="make it readable (chmod/chown), or move it out of the directory given",
    )


def _regular_size(path: str, st: os.stat_result, name: str = "", dir_fd: int | None = None) -> int:
    """The size of the file ``path`` (``name`` in the directory open as ``dir_fd``, if
    given), if it is a regular file this process can read."""
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            "not a regular file, directory or link (a pipe, socket or device), which is never"
            " read or packaged",
            path,
            fix="remove it, or move it out of the directory given",
        )
    if not os.access(name or path, os.R_OK, dir_fd=dir_fd):
        raise _unreadable(path, "this file")
    return st.st_size


def _listing(path: str) -> list[os.DirEntry[str]]:
    """The entries of the directory ``path``, sorted by name."""
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise _unreadable(path, "this directory", exc) from exc


@contextlib.contextmanager
def _directory(path: str, name: str, dir_fd: int | None) -> Iterator[int]:
    """The directory ``path`` (``name`` in the directory open as ``dir_fd``) open."""
    try:
        fd = manifest.open_directory(name, dir_fd)
    except OSError as exc:
        raise _unreadable(path, "this directory", exc) from exc
    try:
        yield fd
    finally:
        os.close(fd)


def members(top: str) -> tuple[tuple[Member, ...], int]:
    """All files and sub-directories of a table or plots directory, sorted, with sizes.

    Links are followed (CASA links the subtables of a multi-MS to the first one's) and
    the files they reach are recorded as such, so that every writer packages the file,
    never the link; a link back to a directory already being walked is an error.  Each
    directory is opened and its files looked at through it (``fstatat``, ``faccessat``):
    the kernel then resolves one name per file, not the whole path.  A plain file of our
    own with its owner's read bit set is readable (the kernel checks no other bits for its
    owner), so most files need no ``faccessat``: it was 1/8 of the walk.  Those are listed
    with their sizes by ``manyfiles``, in one call per directory, and made members as plain
    tuples are (``_member``); only the other names are looked at here, one by one."""
    found: list[Member] = []
    total = 0
    me = os.geteuid()

    def walk(fd: int, path: str, base: str, seen: frozenset[tuple[int, int]]) -> None:
        nonlocal total
        try:
            plain, others = manyfiles.plain_files(fd, base, me)
        except OSError as exc:
            raise _unreadable(path, "this directory", exc) from exc
        found.extend(map(_member, plain))
        total += sum(map(operator.itemgetter(1), plain))
        for name in sorted(others):
            rel = base + name
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                link = stat.S_ISLNK(st.st_mode)
                if link:
                    st = os.stat(name, dir_fd=fd)
            except OSError as exc:
                raise _unreadable(f"{path}/{name}", "this file", exc) from exc
            child_path = f"{path}/{name}"
            if stat.S_ISDIR(st.st_mode):
                if (st.st_dev, st.st_ino) in seen:
                    raise _unreadable(child_path, "this link", OSError(errno.ELOOP, "loop"))
                found.append(_member((rel, None, None)))
                with _directory(child_path, name, fd) as sub:
                    walk(sub, child_path, rel + "/", seen | {(st.st_dev, st.st_ino)})
                continue
            size = _regular_size(child_path, st, name, fd)
            found.append(_member((rel, size, os.path.realpath(child_path) if link else None)))
            total += size

    st = os.stat(top)
    with _directory(top, top, None) as fd:
        walk(fd, top, "", frozenset({(st.st_dev, st.st_ino)}))
    found.sort()  # by rel: no two members have the same
    return tuple(found), total


_member = functools.partial(tuple.__new__, Member)
"""``Member`` of a tuple (rel, size, target), made as a plain tuple is: ``Member(...)``
runs a Python function per file (the helper's listing of 24,000 files was taken in 15 ms,
now 8)."""


def _classify_dir(path: str) -> Kind | None:
    name = os.path.basename(path)
    if MS_NAME.fullmatch(name) or name.endswith(FLAG_VERSIONS):
        return Kind.TABLE  # a flagversions directory has no table.dat, but is one unit
    if os.path.isfile(os.path.join(path, "table.dat")):
        return Kind.TABLE
    if os.path.isfile(os.path.join(path, "ASDM.xml")):
        return Kind.ASDM
    if path.endswith(".plots"):
        return Kind.PLOTS
    return None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def scan(root: Path) -> tuple[SourceEntry, ...]:
    """Walk ``root`` (an absolute, resolved directory) and return its entries, sorted."""
    top = str(root)
    entries: list[SourceEntry] = []

    def visit(dirpath: str, rel: PurePosixPath, seen: frozenset[tuple[int, int]]) -> None:
        for child in _listing(dirpath):
            child_rel = rel / child.name
            path = real = child.path
            link = None
            if child.is_symlink():
                target = os.path.realpath(path)
                if not os.path.exists(target):
                    log.warning("broken symbolic link skipped: %s -> %s", path, os.readlink(path))
                    continue
                if _inside(target, top):
                    entries.append(
                        SourceEntry(child_rel, Path(target), Kind.LINK, 0, 0, link_target=target)
                    )
                    continue
                log.warning("following link to outside the reduction: %s -> %s", path, target)
                real = link = target
            st = os.stat(path)
            if stat.S_ISDIR(st.st_mode):
                kind = _classify_dir(path)
                if (st.st_dev, st.st_ino) in seen:
                    raise _unreadable(path, "this link", OSError(errno.ELOOP, "loop"))
                if kind is None:
                    visit(path, child_rel, seen | {(st.st_dev, st.st_ino)})
                    continue
                if kind is not Kind.ASDM:  # listed afterwards, all at once
                    units.append((len(entries), path, st.st_size))
                size = 0
            else:
                kind, size = Kind.FILE, _regular_size(path, st)
            entries.append(SourceEntry(child_rel, Path(real), kind, size, st.st_dev, (), link))

    units: list[tuple[int, str, int]] = []  # (entry, path, size of the directory itself)
    st = os.stat(top)
    visit(top, PurePosixPath(), frozenset({(st.st_dev, st.st_ino)}))
    listed = _list_units([(path, size) for _i, path, size in units])
    for (i, _path, _size), (inside, size) in zip(units, listed, strict=True):
        entries[i] = dataclasses.replace(entries[i], size=size, members=inside)
    return tuple(entries)


_WORTH_A_HELPER = 64 << 10
"""Bytes of directory entries (a directory's own size grows with the names it holds)
above which the tables and plots directories are listed by two processes."""


def _list_units(units: list[tuple[str, int]]) -> list[Listing]:
    """``members`` of each table or plots directory (path, the directory's own size).

    Listing is a system call or two per file and Python around them: with thousands of
    files, a forked helper lists part of the directories (chosen to balance the two by
    the directories' sizes) and sends each as it is listed, while this process lists its
    own (``forked.shared``; one the helper cannot list is listed again here, which says
    why).  The first problem in the order given is the one raised."""
    theirs = forked.their_share([size for _path, size in units], _WORTH_A_HELPER)
    found = []
    for result in forked.shared(
        [p for p, _size in units], theirs, _listed, _plain, _members, "units were listed"
    ):
        if isinstance(result, InputError):
            raise result
        found.append(result)
    return found


Listing = tuple[tuple[Member, ...], int]
"""What ``members`` returns: the members of a directory, and their bytes."""

Plain = tuple[list[tuple[str, int | None, str | None]], int]
"""``members`` as plain tuples, quick to send."""


def _listed(path: str) -> Listing | InputError:
    try:
        return members(path)
    except InputError as exc:
        return exc


def _plain(path: str) -> Plain:
    found, total = members(path)
    return [(m.rel, m.size, m.target) for m in found], total


def _members(plain: Plain) -> Listing:
    rows, total = plain
    return tuple(map(_member, rows)), total
