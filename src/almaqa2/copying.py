"""Byte copies done by the kernel where it can: the packager's copies, tarsplit's file data
and deliver's chunks all go through ``copy_bytes``.

``copy_file_range`` copies in the kernel (a reflink where the file system offers one);
across some file systems or kernels it is refused, and a plain buffer takes over from
where it stopped (both advance the same file positions).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat

from almaqa2.errors import copy_differs

_CHUNK = 1 << 24  # 16 MiB per call
_REFUSED = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP)
SMALL = 1 << 20
"""Up to this size ``copy_file`` checks and hashes a copy itself, through the descriptors
that made it: opening both files again costs more than reading them (an open took
~100 us on the machines measured, md5 of 12 KB ~20 us)."""


def copy_bytes(src: int, dst: int, count: int) -> int:
    """Copy up to ``count`` bytes from ``src``'s position to ``dst``'s; returns how many
    were copied (fewer only if ``src`` ended first)."""
    left = count
    try:
        while left and (n := os.copy_file_range(src, dst, min(left, _CHUNK))):
            left -= n
    except OSError as exc:
        if exc.errno not in _REFUSED:
            raise
        while left and (block := os.read(src, min(left, _CHUNK))):
            write_all(dst, block)
            left -= len(block)
    return count - left


def write_all(fd: int, data: bytes | bytearray) -> None:
    """``os.write`` until all of ``data`` is written (it may write less at once)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def copy_file(src: str, dst: str, digest: bool = False) -> str | None:
    """Copy ``src`` to the new file ``dst`` with its permissions and times, as ``cp -a``.

    With ``digest``, a file of up to ``SMALL`` bytes is read back from both descriptors:
    its md5 is returned if the copy holds the source's bytes (else ChecksumError).  Larger
    files, and copies without ``digest``, return None: the caller hashes them elsewhere.
    """
    with open(src, "rb") as fin, open(dst, "x+b" if digest else "xb") as fout:
        st = os.fstat(fin.fileno())
        copy_bytes(fin.fileno(), fout.fileno(), st.st_size)
        copy_metadata(st, fout.fileno())
        if digest and st.st_size <= SMALL:
            return _checked_md5(fin.fileno(), fout.fileno(), st.st_size, src, dst)
    return None


def _checked_md5(src_fd: int, dst_fd: int, size: int, src: str, dst: str) -> str:
    """The md5 of the copy, once it is found to hold the source's bytes (one byte more is
    asked for, to notice a source that grew while it was copied)."""
    copied = os.pread(dst_fd, size + 1, 0)
    if copied != os.pread(src_fd, size + 1, 0):
        raise copy_differs(dst, src)
    return hashlib.md5(copied).hexdigest()


def copy_metadata(st: os.stat_result, fd: int) -> None:
    """Permissions and times of the source, as ``cp -a`` keeps them (by descriptor: no
    second look-up of either path on this per-file path)."""
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
