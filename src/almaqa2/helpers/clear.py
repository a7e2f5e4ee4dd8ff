"""``qa2 clear``: start a calibration or a combination again from a clean directory (SPEC
§9, seed 002's ``qa2_clear``).

In an EB directory everything goes but the ASDM and the calibration script; in a
``calibrated/`` directory everything but the fluxscale files, the ``*split.cal`` MSes and
the flux-calibration and imaging scripts.

What it promises, whatever the tree holds:

- An ASDM (a directory holding ``ASDM.xml``) is never deleted, at any depth: the planning
  finds them all, and the deletion looks again in every directory just before emptying it.
- Nothing outside the directory is touched: links are removed, never followed, and the
  deletion goes through directory descriptors opened without following links, so a
  directory swapped for a link while it runs is not entered.
- Only a directory that really is one of the two kinds is cleared: an EB directory holds
  the EB's ASDM or MeasurementSet beside its script and no SB-level work (imaging and
  flux-calibration scripts, FITS images: a flat single-EB SB is not an EB directory); a
  ``calibrated/`` directory is a real directory of that name holding ``*split.cal`` or
  fluxscale files.  Anything else is refused.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from almaqa2.errors import InputError
from almaqa2.package.layouts.scriptgen import CALIBRATION_SCRIPTS
from almaqa2.uid import uid_prefix

ASDM_MARK = "ASDM.xml"

KEEP: dict[str, re.Pattern[str]] = {
    "eb": re.compile(".*(" + "|".join(re.escape(s) for s in CALIBRATION_SCRIPTS) + ")"),
    "calibrated": re.compile(
        r".*fluxscale|.*split\.cal|scriptForFluxCalibration\.py|scriptForImaging\.py"
    ),
}
"""What each kind of directory keeps, besides its ASDMs."""

EB_DATA = re.compile(r"uid___[^.]+(\.ms|\.ms\.split)?")
"""An EB's ASDM or MeasurementSet: what makes a directory an EB directory, with its script."""

SB_WORK = re.compile(
    r"scriptFor(Imaging|FluxCalibration|PI).*\.py|.*\.fits(\.gz)?|.*\.image(\..+)?|calibrated"
)
"""Work of a whole SB, never found in an EB directory (a flat single-EB SB has it)."""

NESTED_CALIBRATED = re.compile(r".*(split\.cal|fluxscale)")
"""What a real ``calibrated/`` directory holds (one named so by chance does not)."""


@dataclass(frozen=True)
class Clearing:
    directory: Path
    kind: str  # "eb" or "calibrated"
    keep: tuple[Path, ...]  # the kept entries, ASDMs found deeper among them
    delete: tuple[Path, ...]  # top-level entries: removed whole, but for ASDMs inside


def _is_asdm(path: Path) -> bool:
    """An ASDM directory, or a link to one (``qa2 start`` links them in)."""
    return path.is_dir() and (path / ASDM_MARK).is_file()


def _refuse(directory: Path, why: str) -> InputError:
    return InputError(
        f"not an EB directory nor a calibrated/ directory ({why}), so nothing is deleted",
        directory,
        fix="run it inside the EB directory or the SB's calibrated/ directory",
    )


def _kind(directory: Path, entries: list[Path]) -> str:
    names = [p.name for p in entries]
    if directory.name == "calibrated":
        if any(NESTED_CALIBRATED.fullmatch(n) for n in names):
            return "calibrated"
        raise _refuse(directory, "it holds no *split.cal or fluxscale file")
    scripts = {uid_prefix(n) for n in names if KEEP["eb"].fullmatch(n)}
    data = {
        uid
        for p in entries
        if EB_DATA.fullmatch(p.name) and p.is_dir() and (uid := uid_prefix(p.name)) is not None
    }
    if len(scripts | data) != 1 or None in scripts or not data:
        raise _refuse(directory, "no one EB's ASDM or MeasurementSet beside its script")
    sb_work = [n for n in names if SB_WORK.fullmatch(n)]
    if sb_work:
        raise _refuse(directory, f"it holds SB-level work such as {sb_work[0]}")
    return "eb"


def _asdms_below(path: Path) -> list[Path]:
    """The ASDMs inside the directory ``path`` at any depth (links not followed)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        if ASDM_MARK in filenames:
            found.append(Path(dirpath))
            dirnames.clear()
    return found


def plan(directory: Path) -> Clearing:
    """What clearing ``directory`` keeps and deletes (reads only)."""
    directory = Path(os.path.abspath(directory))
    if directory.is_symlink():
        raise InputError(
            "the directory to clear is a symbolic link, which is not followed",
            directory,
            fix=f"give the directory it points to ({os.path.realpath(directory)}) if you mean it",
        )
    if not directory.is_dir():
        raise InputError("not a directory", directory, fix="give an EB or calibrated/ directory")
    entries = sorted(directory.iterdir())
    kind = _kind(directory, entries)
    keep = [p for p in entries if _is_asdm(p) or KEEP[kind].fullmatch(p.name)]
    delete = tuple(p for p in entries if p not in keep)
    for path in delete:
        if path.is_dir() and not path.is_symlink():
            keep += _asdms_below(path)
    return Clearing(directory, kind, tuple(keep), delete)


def apply(clearing: Clearing) -> None:
    """Delete ``clearing.delete``, looking for ASDMs again in every directory first."""
    try:
        top = os.open(clearing.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise InputError(
            "the directory to clear changed since it was listed",
            clearing.directory,
            fix="run qa2 clear again",
        ) from exc
    try:
        for path in clearing.delete:
            _remove(top, path.name, path)
    finally:
        os.close(top)


def _remove(parent: int, name: str, path: Path) -> None:
    """Remove ``name`` of the directory open at ``parent`` (``path``, to name it): a file
    or link is unlinked, a directory emptied first (an ASDM in it, or appearing in it, is
    left with its ancestors)."""
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=parent)
            return
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # became a link or file: not entered
            return
        raise _undeletable(path, exc) from None
    try:
        if (os.fstat(fd).st_dev, os.fstat(fd).st_ino) != (st.st_dev, st.st_ino):
            return  # swapped while we looked: leave it
        children = os.listdir(fd)
        if ASDM_MARK in children:
            return
        for child in children:
            _remove(fd, child, path / child)
    finally:
        os.close(fd)
    try:
        os.rmdir(name, dir_fd=parent)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
            raise _undeletable(path, exc) from None


def _undeletable(path: Path, exc: OSError) -> InputError:
    """The system's refusal to delete ``path`` (its directory not ours to write, a file
    system mounted read-only): the system named only the last part of its name."""
    fix = "make it and its directory writable by you (or ask their owner)"
    if exc.errno == errno.EROFS:
        fix = "run it where that file system is mounted writable"
    return InputError(
        f"the clearing stopped at what it could not delete ({exc.strerror})",
        path,
        fix=f"{fix}, then run qa2 clear again for the rest",
    )
