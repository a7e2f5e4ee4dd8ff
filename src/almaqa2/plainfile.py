"""Opening a small file that others may have made (a package's marker, a ticket, a shared
lock) without waiting on what stands in its place: a pipe that no process writes to is
waited on for ever by a plain ``open``, so the file is opened without blocking and read
only if it is a regular file."""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

NOT_PLAIN = "not a plain file (a pipe, socket or device)"


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
