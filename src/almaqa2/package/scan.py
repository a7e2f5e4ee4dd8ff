"""One sorted, read-only walk of a reduction directory.

Directories holding ``table.dat`` are CASA tables (MeasurementSets, calibration tables,
images), and so are directories named like an EB's MeasurementSet even without it (a broken
MS must be reported as one, not walked); ``*.plots`` directories hold plots: both are
kept whole, as one entry with its members, because they are packaged (or ignored) as a
unit.  Every other directory is walked.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePosixPath

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


@dataclass(frozen=True, slots=True)
class Member:
    """A file (``size`` set) or directory (``size`` None) inside a table or plots dir (one
    per file of a table: slots, as a reduction may hold a million)."""

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
        fix="make it readable (chmod/chown) or move it out of the reduction directory",
    )


def _regular_size(path: str, st: os.stat_result) -> int:
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            "not a regular file, directory or link (a pipe, socket or device) cannot be packaged",
            path,
            fix="remove it from the reduction directory",
        )
    if not os.access(path, os.R_OK):
        raise _unreadable(path, "this file")
    return st.st_size


def _listing(path: str) -> list[os.DirEntry[str]]:
    """The entries of the directory ``path``, sorted by name."""
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise _unreadable(path, "this directory", exc) from exc


def members(top: str) -> tuple[tuple[Member, ...], int]:
    """All files and sub-directories of a table or plots directory, sorted, with sizes.

    Links are followed (CASA links the subtables of a multi-MS to the first one's) and
    the files they reach are recorded as such, so that every writer packages the file,
    never the link; a link back to a directory already being walked is an error."""
    found: list[Member] = []
    total = 0

    def walk(path: str, base: str, seen: frozenset[tuple[int, int]]) -> None:
        nonlocal total
        for child in _listing(path):
            rel = base + child.name
            try:
                st = child.stat()
            except OSError as exc:
                raise _unreadable(child.path, "this file", exc) from exc
            if stat.S_ISDIR(st.st_mode):
                if (st.st_dev, st.st_ino) in seen:
                    raise _unreadable(child.path, "this link", OSError(errno.ELOOP, "loop"))
                found.append(Member(rel, None))
                walk(child.path, rel + "/", seen | {(st.st_dev, st.st_ino)})
                continue
            size = _regular_size(child.path, st)
            target = os.path.realpath(child.path) if child.is_symlink() else None
            found.append(Member(rel, size, target))
            total += size

    st = os.stat(top)
    walk(top, "", frozenset({(st.st_dev, st.st_ino)}))
    found.sort(key=lambda m: m.rel)
    return tuple(found), total


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
                inside, size = ((), 0) if kind is Kind.ASDM else members(path)
            else:
                kind, inside, size = Kind.FILE, (), _regular_size(path, st)
            entries.append(SourceEntry(child_rel, Path(real), kind, size, st.st_dev, inside, link))

    st = os.stat(top)
    visit(top, PurePosixPath(), frozenset({(st.st_dev, st.st_ino)}))
    return tuple(entries)
