"""A chunk read front to back for ``qa2 verify``: each member's header parsed and its data
hashed from one buffer.

tarfile makes a TarInfo per member (some 40 us) and keeps them all (a million members took
a GB).  Here only what ``tarsplit`` writes is read: ustar headers of files and directories,
and PAX records holding a path, as tarfile lays them out.  Anything else (another member
type, a bad checksum, an early end, other PAX keys, a ustar prefix, base-256 numbers)
raises ``Irregular``, and the caller reads that tar with tarfile instead: every tar is
judged as tarfile judges it.  ``tests/test_tarread.py`` holds the two readers equal.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

BLOCK = tarfile.BLOCKSIZE
_READ = 4 << 20
_ZEROS = bytes(BLOCK)
_FILE, _OLD_FILE, _DIR, _PAX = tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.XHDTYPE


class Irregular(Exception):
    """The tar holds something this reader leaves to tarfile."""


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    md5: str | None  # of a file's data; None for a directory
    data: bytes | None  # a file's data, when asked to keep it


class _Buffer:
    """The tar's bytes, read in large blocks into one buffer."""

    def __init__(self, fd: int):
        self.fd = fd
        self.view = memoryview(bytearray(_READ))
        self.start = self.end = 0

    def _fill(self, n: int) -> None:
        """At least ``n`` bytes (at most the buffer's size) ready at ``start``."""
        if self.end - self.start >= n:
            return
        tail = self.end - self.start
        self.view[:tail] = self.view[self.start : self.end]
        self.start, self.end = 0, tail
        while self.end < n:
            got = os.readv(self.fd, [self.view[self.end :]])
            if not got:
                raise Irregular("the tar ends early")
            self.end += got

    def take(self, n: int) -> bytes:
        self._fill(n)
        data = bytes(self.view[self.start : self.start + n])
        self.start += n
        return data

    def pass_on(self, n: int, digest: hashlib._Hash | None, kept: list[bytes] | None) -> None:
        """The next ``n`` bytes into ``digest`` (and ``kept``), or skipped."""
        while n:
            self._fill(1)
            piece = min(n, self.end - self.start)
            chunk = self.view[self.start : self.start + piece]
            if digest is not None:
                digest.update(chunk)
            if kept is not None:
                kept.append(bytes(chunk))
            self.start += piece
            n -= piece


def _checked(block: bytes) -> tuple[bytes, int]:
    """A header block's type and size, its checksum checked; type b"" at the end."""
    if block == _ZEROS:
        return b"", 0
    if _number(block[148:156]) != sum(block) - sum(block[148:156]) + 8 * 32:
        raise Irregular("a bad checksum")
    return block[156:157], _number(block[124:136])


def _number(field: bytes) -> int:
    """A header's octal number, as tarfile's ``nti`` reads it (base-256 left to tarfile)."""
    if field[0] & 0x80:
        raise Irregular("a base-256 number")
    try:
        return int(field.split(b"\0", 1)[0].strip() or b"0", 8)
    except ValueError:
        raise Irregular("not an octal number") from None


def _name(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _path_record(data: bytes) -> str:
    """The path of a PAX header that holds only one (what tarsplit writes)."""
    length, _, rest = data.partition(b" ")
    key, _, value = rest.partition(b"=")
    if not length.isdigit() or key != b"path" or int(length) != len(data.rstrip(b"\0")):
        raise Irregular("a PAX header with other records")
    try:
        return value[:-1].decode("utf-8").rstrip("/")  # tarfile's strict first try
    except UnicodeDecodeError:
        raise Irregular("a PAX path that is not UTF-8") from None


def members(fd: int, keep: Callable[[str], bool] = lambda _: False) -> Iterator[Member]:
    """The members of the tar open at ``fd`` (at its start), in order; ``keep(name)``: the
    files whose data is returned too (the manifest a chunk carries)."""
    buffer = _Buffer(fd)
    path: str | None = None
    checked: dict[bytes, tuple[bytes, int]] = {}  # PAX header blocks repeat: checked once
    while True:
        block = buffer.take(BLOCK)
        if block in checked:
            kind, size = checked[block]
        else:
            kind, size = _checked(block)
            if kind == _PAX:
                checked[block] = kind, size
        if kind == b"":
            if path is not None:
                raise Irregular("a PAX header before the end")
            return
        if block[345] or kind not in (_FILE, _OLD_FILE, _DIR, _PAX):
            raise Irregular("a member tarsplit does not write")
        if kind == _PAX:
            if path is not None or size > _READ // 4:
                raise Irregular("two PAX headers, or a long one")
            data = buffer.take(-(-size // BLOCK) * BLOCK)
            path = _path_record(data[:size])
            continue
        name = path if path is not None else _name(block[:100])
        path = None
        if kind == _OLD_FILE and name.endswith("/"):
            raise Irregular("an old-style directory")
        if kind == _DIR:
            yield Member(name.rstrip("/"), None, None)
            continue
        digest = hashlib.md5()
        kept: list[bytes] | None = [] if keep(name) else None
        buffer.pass_on(size, digest, kept)
        buffer.pass_on(-size % BLOCK, None, None)
        content = b"".join(kept) if kept is not None else None
        kept = None  # not held twice while the caller reads it (a manifest: 130 MB a million)
        yield Member(name, digest.hexdigest(), content)
        content = None
