"""Errors the library raises; the CLI turns them into one sentence and an exit code.

Each error names what went wrong, the path concerned and what to do about it, so that the
message alone lets a reducer fix the problem without reading a traceback.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

OUTPUT_REFUSED = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
"""Errors only the place written to gives (full, over quota, read-only).  The kernel's
copy (``copy_file_range``) reads and writes in one call: any other error of it may be
either side's."""

_REFUSED_FIXES = {
    **dict.fromkeys((errno.EACCES, errno.EPERM), "check your rights to it and to its directory"),
    errno.EIO: "check that disk (dmesg tells of its errors)",
    errno.ESTALE: "the file server replaced it meanwhile: let whatever writes there finish",
    errno.ENAMETOOLONG: "choose a shorter path",
}
"""What to do about what the system refused, by its error (but ``OUTPUT_REFUSED``, which
``no_room`` says); anything else: "fix this"."""

_NO_ROOM = {
    errno.ENOSPC: "free some space, or choose {instead}",
    errno.EDQUOT: "free some of your quota (quota -s shows it), or choose {instead}",
    errno.EFBIG: "a file this large is more than the file system there, or ulimit -f, allows:"
    " choose {instead}",
    errno.EROFS: "that file system is mounted read-only: work where it is writable, or choose"
    " {instead}",
}
"""What to do when the place written to refused, by its error (``instead``: another place)."""
_NO_INODES = (
    "its file system holds as many files as it can (df -i): remove some there, or choose {instead}"
)
"""ENOSPC with space left: every inode is used (many small files)."""


class Almaqa2Error(Exception):
    """Base class: ``what`` happened at ``path``; ``fix`` says what to do."""

    exit_code = 2

    def __init__(self, what: str, path: str | Path | None = None, fix: str | None = None):
        self.what = what
        self.path = None if path is None else str(path)
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = self.what
        if self.path is not None:
            text += f": {shown(self.path)}"
        if self.fix:
            text += f"; {self.fix}"
        return text + ("" if text.endswith(".") else ".")


class InputError(Almaqa2Error):
    """The reduction, an option or a file given is not usable as it is."""


class UnclassifiedError(InputError):
    """``--strict``: files were found that no rule places."""


class DestinationError(Almaqa2Error):
    """``packpath`` cannot be written as asked (not ours, overlaps origpath, other disk)."""


class Refused(DestinationError):
    """A write the place written to refused (``OUTPUT_REFUSED``), said as ``refused``
    says it, but at once: removing what was written, as a run that stops does, may free
    what was lacking (inodes), and the advice depends on it."""

    def __init__(self, exc: OSError):
        super().__init__(refused(exc).removesuffix("."))


class LockedError(Almaqa2Error):
    """Someone else holds the lock on this destination."""


class ChecksumError(Almaqa2Error):
    """Bytes written differ from the bytes read: the copy, extraction or download is bad."""


def copy_differs(copy: str, source: str) -> ChecksumError:
    """The packager's copy ``copy`` does not hold the bytes of ``source``: the source was
    written meanwhile (a CASA task still at work on it: its time is not the one the copy
    was given), or a disk failed."""
    try:
        changed = not _same_time(os.stat(source).st_mtime_ns, os.stat(copy).st_mtime_ns)
    except OSError:  # (gone meanwhile: changed as well)
        changed = True
    if changed:
        return changed_while_packaged(source)
    return ChecksumError(
        f"the copy {copy} differs from its source",
        source,
        fix="check the disks for errors, then package again",
    )


def _same_time(source_ns: int, copy_ns: int) -> bool:
    """Whether a copy given the time ``source_ns`` holds it as ``copy_ns``, to the
    precision of the copy's file system, read from the zeros its times end with (Lustre
    keeps whole seconds, NFSv3 microseconds, ext4 and XFS nanoseconds)."""
    for unit in (10**9, 10**3):
        if copy_ns % unit == 0:
            return source_ns // unit == copy_ns // unit
    return source_ns == copy_ns


def changed_while_packaged(path: str) -> ChecksumError:
    return ChecksumError(
        "the file changed while it was being packaged, so what the package holds of it is"
        " not what it holds",
        path,
        fix="let whatever is writing it finish (a CASA task?), then package again",
    )


def existing_dir(path: Path, what: str, fix: str) -> Path:
    """``path`` resolved, if it is a directory; else InputError naming ``what`` is wrong."""
    if not path.is_dir():
        raise InputError(
            f"{what} is not a directory" if path.exists() else f"{what} not found", path, fix=fix
        )
    return Path(os.path.realpath(path))


def give_name(exc: OSError, path: str | Path, copy: str | Path | None = None) -> None:
    """Make ``exc`` name ``path`` (and ``copy``, for a copy of it: ``refused`` names both)
    if the system named no file (Python's writes and the kernel's copy name none: a full
    disk said "No space left on device" and nothing more); re-raise it as it is."""
    if exc.filename is None:
        exc.filename = str(path)
        exc.filename2 = None if copy is None else str(copy)


def refused(exc: OSError) -> str:
    """The one sentence for something the system refused that no check could foresee.
    An error of a copy, a link or a rename names both files (the system did not say
    which failed), in a sentence true of all three: "making <new> from <old>"."""
    where = f": {shown(str(exc.filename))}" if exc.filename else ""
    if exc.filename and exc.filename2:
        where = f" making {shown(str(exc.filename2))} from {shown(str(exc.filename))}"
    fix = advice(exc, exc.filename2 or exc.filename or ".")
    return f"{exc.strerror}{where}; {fix} and run again."


def advice(exc: OSError, written: str | Path, instead: str = "another place") -> str:
    """What to do about what the system refused (``exc``) as ``written`` was written
    (``instead``: where else to write it, if the place refused)."""
    if exc.errno in OUTPUT_REFUSED:
        return no_room(exc.errno, written, instead)
    return _REFUSED_FIXES.get(exc.errno or 0, "fix this")


def no_room(error: int, written: str | Path, instead: str = "another place") -> str:
    """What to do when ``written`` could not be written for ``error`` (one of
    ``OUTPUT_REFUSED``): "No space left on device" is also what a file system whose
    inodes are all used says, with gigabytes free, where freeing space would not help."""
    said = _NO_ROOM[error]
    if error == errno.ENOSPC and _inodes_used_up(Path(written)):
        said = _NO_INODES
    return said.format(instead=instead)


def _inodes_used_up(written: Path) -> bool:
    """Whether the file system of ``written`` (or of its nearest existing parent) has
    space left but no inode (a file system that counts none, as /proc, has space)."""
    for place in (written, *written.parents):
        try:
            room = os.statvfs(place)
        except OSError:
            continue
        return room.f_files > 0 and room.f_favail == 0 and room.f_bavail > 0
    return False


def reason(exc: BaseException) -> str:
    """The first line of a library's exception, to quote inside one of our sentences (of
    the system's refusal, its words only: the sentence names the path)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def shown(path: str) -> str:
    """``path`` as it can be printed on one line: quoted with escapes if it holds a line
    break, another control character or bytes that are not UTF-8."""
    return path if path.isprintable() else repr(path)
