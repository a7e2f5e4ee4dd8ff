"""Unpacking tars that arrive from elsewhere (chunks, ASDM tars), without trusting them or
the interpreter's tarfile filters.

A package's chunks and the archive's ASDM tars hold only regular files and directories, so
every other member (links, devices, FIFOs, sparse files) is refused, and so is a name that
is absolute, climbs with ``..``, or (for a package's chunks) lies outside the package's
directory.  The whole tar is checked before anything is written; then files are written by
us, created anew (never through an existing name) from the member's bytes at their offset,
without setuid bits or write access for others.  With no links ever made, a name can only
land where it says, below the directory given.  Python's own ``data`` filter is not relied
upon: its versions before 3.11.13 could be walked around (CVE-2025-4517).
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from almaqa2.copying import copy_bytes
from almaqa2.errors import InputError

SAFE_TYPES = frozenset({tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE})
_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.CONTTYPE: "a contiguous file",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
}
_FILE_MODE, _DIR_MODE = 0o644, 0o755  # at most these bits; the owner may always read/write


def why_unsafe(member: tarfile.TarInfo, top: str | None = None) -> str | None:
    """Why ``member`` must not be extracted (None: it may); ``top``: the one directory
    every member must lie in."""
    if member.type not in SAFE_TYPES:
        return f"{_KINDS.get(member.type, 'a special member')}, not a file or directory"
    if member.sparse is not None:
        return "a sparse file, not a plain file"
    return why_unsafe_name(member.name, top)


def why_unsafe_name(text: str, top: str | None = None) -> str | None:
    """Why a file or directory named ``text`` must not be extracted (None: it may)."""
    parts = text.split("/")
    if (  # a plain relative name (every name a package's chunk holds): its parts as they are
        parts[0] == top
        and "" not in parts
        and "." not in parts
        and ".." not in parts
        and not _breaks_lines(text)
    ):
        return None
    name = PurePosixPath(text)
    if name.is_absolute() or not name.parts:
        return "an absolute or empty name"
    if ".." in name.parts:
        return "a name that climbs out with '..'"
    if _breaks_lines(text):
        return "a name with a line break in it"
    if top is not None and name.parts[0] != top:
        return f"a name outside the package's directory {top}"
    return None


def _breaks_lines(text: str) -> bool:
    """Whether ``text`` holds LF, CR or NUL (three searches: once per member of a chunk)."""
    return "\n" in text or "\r" in text or "\0" in text


def check(members: Iterable[tarfile.TarInfo], tar: Path, top: str | None = None) -> None:
    """InputError naming the first member of ``tar`` that must not be extracted."""
    for member in members:
        why = why_unsafe(member, top)
        if why is not None:
            raise unsafe(tar, member.name, why)


def unsafe(tar: Path, name: str, why: str) -> InputError:
    return InputError(
        f"the tar holds {name!r}, {why}: not safe to extract, so nothing was unpacked from it",
        tar,
        fix="do not unpack it by hand either; ask the sender for a clean copy",
    )


def _clash(tar: Path, name: str, twice: bool) -> InputError:
    """A tar holding ``name`` ``twice`` (a file and a directory, or two files), or below
    a name it holds as a file; none of ours does: found as it is unpacked."""
    what = "twice" if twice else "below a name it holds as a file"
    return InputError(f"the tar holds {name!r} {what}", tar, fix="ask the sender for a clean copy")


def extract(fd: int, member: tarfile.TarInfo, into: Path, tar: Path) -> None:
    """Write the checked ``member`` of the tar open at ``fd`` below the directory ``into``
    (ours, holding no links): a directory, or a new file with the member's bytes."""
    why = why_unsafe(member)
    if why is not None:
        raise unsafe(tar, member.name, why)
    target = into.joinpath(*PurePosixPath(member.name).parts)
    folder = target if member.isdir() else target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:  # a file where a folder is to be
        twice = folder == target and isinstance(exc, FileExistsError)
        raise _clash(tar, member.name, twice) from None
    if member.isdir():
        os.chmod(target, (member.mode & _DIR_MODE) | 0o700)
        return
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        out = os.open(target, flags, (member.mode & _FILE_MODE) | 0o600)
    except FileExistsError:  # a file or a directory of the same name before it
        raise _clash(tar, member.name, twice=True) from None
    try:
        os.lseek(fd, member.offset_data, os.SEEK_SET)
        if copy_bytes(fd, out, member.size) != member.size:
            raise InputError(
                f"the tar ends inside {member.name!r}", tar, fix="fetch the file again"
            )
        os.fchmod(out, (member.mode & _FILE_MODE) | 0o600)
        os.utime(out, (member.mtime, member.mtime))
    finally:
        os.close(out)
