"""Opening a small file that others may have made (a package's marker, a ticket, a shared
lock) without waiting on what stands in its place: a pipe that no process writes to is
waited on for ever by a plain ``open``, so the file is opened without blocking and read
only if it is a regular file."""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

from almaqa2.errors import InputError

NOT_PLAIN = "not a plain file (a pipe, socket or device)"

TEXT_AT_MOST = 1 << 20
"""The largest text a README takes whole: its template is 2 KB."""


def opened(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` (links followed) opened to read, if it is a regular file; else OSError,
    ``NOT_PLAIN`` (or the system's words: a directory, nothing there)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, NOT_PLAIN, os.fspath(path))
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def text(path: str | os.PathLike[str], what: str, fix: str = "give the right file") -> str:
    """The text of a file that a README takes whole (its header, the reducer's notes, a
    pipeline README), read as UTF-8; InputError (with ``fix``) if it is larger than
    ``TEXT_AT_MOST`` or holds a NUL byte, as no text does: the wrong file given (a log, an
    image), which was read whole into memory and into the README."""
    with opened(path) as f:
        data = f.read(TEXT_AT_MOST + 1)
    if len(data) > TEXT_AT_MOST:
        raise InputError(
            f"the {what} is larger than {TEXT_AT_MOST >> 20} MB, more than a README takes",
            os.fspath(path),
            fix=f"{fix}, or shorten it",
        )
    if b"\0" in data:
        raise InputError(f"the {what} is not text", os.fspath(path), fix=fix)
    return data.decode("utf-8", "replace")
