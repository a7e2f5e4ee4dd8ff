"""One sorted, read-only walk of a reduction directory.

Directories holding ``table.dat`` are CASA tables (MeasurementSets, calibration tables,
images), and so are directories named like an EB's MeasurementSet even without it (a broken
MS must be reported as one, not walked); ``*.plots`` directories hold plots: both are
kept whole, as one entry with its members, because they are packaged (or ignored) as a
unit.  Every other directory is walked.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePosixPath

from .errors import InputError

log = logging.getLogger(__name__)

MS_NAME = re.compile(r".*\.ms(\.split(\.cal)?)?")
"""Names of the MeasurementSets of an EB (imported, a priori calibrated, calibrated)."""


class Kind(Enum):
    FILE = "file"
    TABLE = "table"  # a CASA table directory (holds table.dat)
    PLOTS = "plots"  # a *.plots directory of PNG plots
    ASDM = "asdm"  # raw data: a directory holding ASDM.xml
    LINK = "link"  # a symbolic link to something inside origpath: not packaged twice


@dataclass(frozen=True)
class Member:
    """A file (``size`` set) or directory (``size`` None) inside a table or plots dir."""

    rel: str  # relative to the table or plots directory, with '/'
    size: int | None


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


def _unreadable(path: str, why: str) -> InputError:
    return InputError(
        f"cannot read {why}",
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


def _members(top: str) -> tuple[tuple[Member, ...], int]:
    """All files and sub-directories of a table or plots directory, sorted, with sizes."""
    found: list[Member] = []
    total = 0
    skip = len(top) + 1
    for dirpath, dirnames, filenames in os.walk(top, onerror=_raise_walk_error, followlinks=True):
        dirnames.sort()
        base = dirpath[skip:] + "/" if len(dirpath) > len(top) else ""
        found.extend(Member(base + d, None) for d in dirnames)
        for f in filenames:
            full = os.path.join(dirpath, f)
            try:
                st = os.stat(full)
            except OSError as exc:
                raise _unreadable(full, "this file") from exc
            size = _regular_size(full, st)
            found.append(Member(base + f, size))
            total += size
    found.sort(key=lambda m: m.rel)
    return tuple(found), total


def _raise_walk_error(exc: OSError) -> None:
    raise _unreadable(str(exc.filename), "this directory") from exc


def _classify_dir(path: str) -> Kind | None:
    named_ms = MS_NAME.fullmatch(os.path.basename(path))
    if named_ms or os.path.isfile(os.path.join(path, "table.dat")):
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

    def visit(dirpath: str, rel: PurePosixPath) -> None:
        try:
            with os.scandir(dirpath) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise _unreadable(dirpath, "this directory") from exc
        for child in children:
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
                if kind is None:
                    visit(path, child_rel)
                    continue
                members, size = ((), 0) if kind is Kind.ASDM else _members(path)
            else:
                kind, members, size = Kind.FILE, (), _regular_size(path, st)
            entries.append(SourceEntry(child_rel, Path(real), kind, size, st.st_dev, members, link))

    visit(top, PurePosixPath())
    return tuple(entries)
