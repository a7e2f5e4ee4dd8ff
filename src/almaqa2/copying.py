"""Byte copies done by the kernel where it can: the packager's copies, tarsplit's file data
and deliver's chunks all go through ``copy_bytes``.

``copy_file_range`` copies in the kernel (a reflink where the file system offers one);
across some file systems or kernels it is refused, and a plain buffer takes over from
where it stopped (both advance the same file positions).
"""

from __future__ import annotations

import errno
import os
import stat

from almaqa2.errors import copy_differs, give_name

_CHUNK = 1 << 24  # 16 MiB per call
_REFUSED = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP)


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


def copy_file(src: str, dst: str) -> None:
    """Copy ``src`` to the new file ``dst`` with its permissions and times, as ``cp -a``.
    Bare descriptors: file objects cost a third of a small file's copy.  A failure of
    the copy names both files (the kernel's copy reads and writes in one call, and its
    error names neither)."""
    fin = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(fin)
        fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            copy_bytes(fin, fout, st.st_size)
            copy_metadata(st, fout)
        except OSError as exc:
            give_name(exc, src, dst)
            raise
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def copy_small(src: str, dst: str, limit: int) -> bytes | None:
    """Copy ``src``, if it holds at most ``limit`` bytes, to the new file ``dst`` as
    ``copy_file`` does, through memory (one read): returns the bytes written, once read
    back the same from ``dst`` (by the descriptor that wrote them: no second open);
    None, and nothing written, for a larger file.  A copy read back unlike them raises
    ``ChecksumError``."""
    fin = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(fin)
        data = os.read(fin, limit + 1)
    finally:
        os.close(fin)
    if len(data) > limit:
        return None
    fout = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        write_all(fout, data)
        copy_metadata(st, fout)
        if os.pread(fout, limit + 1, 0) != data:
            raise copy_differs(dst, src)
    finally:
        os.close(fout)
    return data


def copy_metadata(st: os.stat_result, fd: int) -> None:
    """Permissions and times of the source, as ``cp -a`` keeps them (by descriptor: no
    second look-up of either path on this per-file path)."""
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
