"""A chunk read front to back for ``qa2 verify``: each member's header parsed and its data
hashed from one buffer.

tarfile makes a TarInfo per member (some 40 us) and keeps them all (a million members took
a GB).  Here only what ``tarsplit`` writes is read: ustar headers of files and directories,
and PAX records holding a path, as tarfile lays them out.  Anything else (another member
type, a bad checksum, an early end, other PAX keys, a ustar prefix, base-256 numbers)
raises ``Irregular``, and the caller reads that tar with tarfile instead: every tar is
judged as tarfile judges it.  ``tests/test_tarread.py`` holds the two readers equal.

The bytes of a buffer are hashed together before it is read again (``md5pair``: the
members in it, and with them the chunk's own md5 if asked for), and its members are
given once their md5s are made.  Several chunks read at once, each in a thread, hash
their buffers together (``Together``): a core then hashes up to eight streams at once.

A large chunk is read in two halves at once, the second by a forked helper (``_Half``):
reading many small members is Python work per member, which one core does at half speed.
Or, given the chunk's own md5 to compute (``whole``), it is read front to back: its md5 is
one chain of its bytes in order.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import mmap
import os
import tarfile
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, NamedTuple
from zlib import adler32

from almaqa2 import forked
from almaqa2.md5pair import Md5, update_many

log = logging.getLogger(__name__)
BLOCK = tarfile.BLOCKSIZE
_READ = 4 << 20
_ZEROS = bytes(BLOCK)
_FILE, _OLD_FILE, _DIR, _PAX = tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.XHDTYPE


class Irregular(Exception):
    """The tar holds something this reader leaves to tarfile."""


class Member(NamedTuple):  # (a tuple: made once per member, it costs a third of a dataclass)
    name: str
    md5: str | None  # of a file's data; None for a directory
    data: bytes | None  # a file's data, when asked to keep it


Feeds = list[tuple[Md5, memoryview]]
"""Bytes to hash, each into its md5 (``md5pair.update_many``)."""


class _Buffer:
    """The tar's bytes from ``offset``, read in large blocks into one buffer (``pread``:
    a helper forked with the same descriptor reads too, and they share its position).

    What is taken of it is hashed (``hashing``) before it is read again: the members'
    bytes, and the tar's own md5's (``whole``) if one is asked for.  A member is
    ``finished`` once taken, and ``done`` (given) once its md5 is made."""

    def __init__(
        self,
        fd: int,
        offset: int = 0,
        whole: Md5 | None = None,
        read: Callable[[int], None] | None = None,
        hashing: Callable[[Feeds], None] = update_many,
    ):
        self.fd = fd
        self.read = read  # told the bytes of each read, if given (progress)
        self.view = memoryview(bytearray(_READ))
        self.base = offset  # where in the tar view[0] is
        self.start = self.end = 0
        self.whole = whole  # the tar's md5, fed every byte in order, if one is asked for
        self.hashed = offset  # where in the tar it is fed to (never past ``offset``)
        self.hashing = hashing
        self.feeds: Feeds = []  # taken from the buffer, not hashed yet
        self.finished: list[tuple[str, Md5 | None, bytes | None]] = []  # md5s in ``feeds``
        self.ready: list[Member] = []
        self.taken = 0  # members taken whole

    @property
    def offset(self) -> int:
        """Where in the tar the next byte taken is."""
        return self.base + self.start

    def _fill(self, n: int) -> None:
        """At least ``n`` bytes (at most the buffer's size) ready at ``start``."""
        if self.end - self.start >= n:
            return
        self.flush()  # the bytes taken are about to go
        tail = self.end - self.start
        self.view[:tail] = self.view[self.start : self.end]
        self.base += self.start
        self.start, self.end = 0, tail
        while self.end < n:
            got = os.preadv(self.fd, [self.view[self.end :]], self.base + self.end)
            if not got:
                raise Irregular("the tar ends early")
            self.end += got
            if self.read is not None:
                self.read(got)

    def take(self, n: int) -> bytes:
        self._fill(n)
        data = bytes(self.view[self.start : self.start + n])
        self.start += n
        return data

    def view_of(self, n: int) -> memoryview:
        """The next ``n`` bytes (at most the buffer's size), taken, as a view into the
        buffer (valid until it is read again)."""
        self._fill(n)
        self.start += n
        return self.view[self.start - n : self.start]

    def pass_on(self, n: int, digest: Md5 | None, kept: list[bytes] | None) -> None:
        """The next ``n`` bytes into ``digest`` (and ``kept``), or skipped."""
        while n:
            self._fill(1)
            piece = min(n, self.end - self.start)
            chunk = self.view[self.start : self.start + piece]
            if digest is not None:
                self.feeds.append((digest, chunk))
            if kept is not None:
                kept.append(bytes(chunk))
            self.start += piece
            n -= piece

    def finish(self, name: str, digest: Md5 | None, content: bytes | None) -> None:
        """A member taken whole: given once ``digest`` (None: a directory) is made."""
        self.finished.append((name, digest, content))
        self.taken += 1

    def flush(self) -> None:
        """What was taken hashed: the members finished are then done."""
        feeds = self.feeds
        if self.whole is not None and self.offset > self.hashed:
            feeds.append((self.whole, self.view[self.hashed - self.base : self.start]))
            self.hashed = self.offset
        if feeds:
            self.hashing(feeds)
        self.feeds = []
        self.ready += [
            Member(name, None if digest is None else digest.hexdigest(), content)
            for name, digest, content in self.finished
        ]
        self.finished = []

    def done(self) -> list[Member]:
        """The members whose md5s are made, not given before (asked after every header:
        mostly none)."""
        if not self.ready:
            return self.ready
        ready, self.ready = self.ready, []
        return ready

    def close(self) -> None:
        """Nothing of the file held any more."""

    def feed_rest(self) -> None:
        """The tar's md5 fed the rest of the file: what follows the end of the members
        (the end blocks, the zeros to a whole record) is in the file's md5 too."""
        assert self.whole is not None
        self.start = self.end
        self.flush()
        while got := os.preadv(self.fd, [self.view], self.hashed):
            self.whole.update(self.view[:got])
            self.hashed += got
            if self.read is not None:
                self.read(got)


class _Mapped(_Buffer):
    """The tar's bytes as the file's own pages (``mmap``), taken a window of ``_READ`` at a
    time: nothing is copied, where reading copied every byte once more (on a machine that
    copies at 2 GB/s, half the time of hashing it in lanes).  Pages passed are let go.  A
    file cut short while it is mapped kills the process (SIGBUS): only a forked helper
    reads so, whose work its parent does again, by reading (``forked.Later``)."""

    def __init__(
        self,
        fd: int,
        whole: Md5 | None = None,
        read: Callable[[int], None] | None = None,
        hashing: Callable[[Feeds], None] = update_many,
    ):
        super().__init__(fd, whole=whole, read=read, hashing=hashing)
        self.size = os.fstat(fd).st_size
        self._map = mmap.mmap(fd, self.size, prot=mmap.PROT_READ)
        self._map.madvise(mmap.MADV_SEQUENTIAL)
        self._pages = memoryview(self._map)
        self.view = self._pages[:0]
        self._let_go = 0  # the pages before this are let go

    def _fill(self, n: int) -> None:
        if self.end - self.start >= n:
            return
        self.flush()  # the bytes taken are passed
        covered = self.base + self.end
        self.base += self.start
        self.start, self.end = 0, min(_READ, self.size - self.base)
        if self.end < n:
            raise Irregular("the tar ends early")
        self.view = self._pages[self.base : self.base + self.end]
        if self.read is not None:
            self.read(self.base + self.end - covered)
        passed = self.base // mmap.PAGESIZE * mmap.PAGESIZE
        if passed > self._let_go:
            self._map.madvise(mmap.MADV_DONTNEED, self._let_go, passed - self._let_go)
            self._let_go = passed

    def feed_rest(self) -> None:
        assert self.whole is not None
        covered = self.base + self.end
        self.start = self.end
        self.flush()
        self.whole.update(self._pages[self.hashed :])
        self.hashed = self.size
        if self.read is not None:
            self.read(self.size - covered)

    def close(self) -> None:
        self.view = self._pages = memoryview(b"")
        with contextlib.suppress(BufferError):  # (a view still held: unmapped when it goes)
            self._map.close()


class Together:
    """The buffers of several tars, each read in a thread of its own, hashed in one call
    (``md5pair.update_many``): a reader's ``hash`` waits until each reader still reading
    has given its feeds, and the last to give them hashes them all.  Reading chunks with
    their own md5s, two streams each, four chunks fill the eight lanes of a core.  A
    reader that ends, or fails, must ``leave``."""

    def __init__(self, readers: int):
        self._turn = threading.Condition()
        self._readers = readers
        self._given: Feeds = []
        self._arrived = 0
        self._round = 0
        self._failed: BaseException | None = None

    def hash(self, feeds: Feeds) -> None:
        with self._turn:
            self._given += feeds
            self._arrived += 1
            if self._arrived < self._readers:
                now = self._round
                while self._round == now:
                    self._turn.wait()
                if self._failed is not None:
                    raise RuntimeError("the hashing of the chunks read at once failed")
                return
        self._run()

    def leave(self) -> None:
        with self._turn:
            self._readers -= 1
            if not self._arrived or self._arrived < self._readers:
                return
        self._run()

    def _run(self) -> None:
        """The feeds given hashed, by the last reader to give its own, and the readers
        waiting let go.  (The others all wait meanwhile: none gives feeds.)"""
        with self._turn:
            given, self._given, self._arrived = self._given, [], 0
        try:
            update_many(given)
        except BaseException as exc:
            self._failed = exc
            raise
        finally:
            with self._turn:
                self._round += 1
                self._turn.notify_all()


def _checked(block: bytes) -> tuple[bytes, int]:
    """A header block's type and size, its checksum checked; type b"" at the end."""
    if block == _ZEROS:
        return b"", 0
    if _number(block[148:156]) != byte_sum(block) - sum(block[148:156]) + 8 * 32:
        raise Irregular("a bad checksum")
    return block[156:157], _number(block[124:136])


def byte_sum(data: bytes) -> int:
    """The sum of ``data``'s bytes, five times faster than ``sum`` (a header's checksum):
    adler32's first half is 1 + that sum modulo 65,521, which 256 bytes cannot reach."""
    if len(data) <= 256:
        return (adler32(data) & 0xFFFF) - 1
    if len(data) <= 512:  # (a header block: two halves, spelt out)
        return (adler32(data[:256]) & 0xFFFF) + (adler32(data[256:]) & 0xFFFF) - 2
    return byte_sum(data[:256]) + byte_sum(data[256:])


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


_SMALL = 64 << 10  # a member's data taken from the buffer at once
_WORTH_A_HELPER = 32 << 20  # a smaller tar is read by one process


def members(
    fd: int,
    keep: Callable[[str], bool] = lambda _: False,
    whole: Md5 | None = None,
    read: Callable[[int], None] | None = None,
    together: Together | None = None,
    mapped: bool = False,
) -> Iterator[Member]:
    """The members of the tar open at ``fd``, in order; ``keep(name)``: the files whose
    data is returned too (the manifest a chunk carries); ``whole``, if given, is fed the
    whole file, each byte as its member is hashed (the file is then read by this process
    alone, front to back: its md5 is one chain of the bytes in order); ``read(size)``, if
    given, is told of the bytes this process reads, as it reads them; ``together``: the
    tars read at once in other threads, hashed with this one; ``mapped``: the file read
    as its own pages (``_Mapped``: only in a process whose death its parent survives).

    A tar of ``_WORTH_A_HELPER`` bytes or more is read in two halves at once: a forked
    helper reads from the first header it finds past the middle (if its members are
    small: see ``_read_half``), while this process reads from the start.  When this
    process reaches that header, at the start of a member, the rest is the helper's
    reading, and this process reads on past what it was given if the helper stopped
    before the end; if it is not a member's start (the bytes of a file that look like a
    header), this process reads on by itself.  The members are the same either way."""
    size = os.fstat(fd).st_size
    alone = whole is not None or size < _WORTH_A_HELPER or not forked.may_fork()
    half = None if alone else _Half(fd, size, keep)
    hashing = update_many if together is None else together.hash
    buffer: _Buffer | None = None
    if mapped and size:
        with contextlib.suppress(OSError):  # (a file system that cannot map it: it is read)
            buffer = _Mapped(fd, whole=whole, read=read, hashing=hashing)
    if buffer is None:
        buffer = _Buffer(fd, whole=whole, read=read, hashing=hashing)
    try:
        yield from _read(buffer, keep, half)
        if whole is not None:
            buffer.feed_rest()
    finally:
        buffer.close()
        if half is not None:
            half.stop()


def _read(buffer: _Buffer, keep: Callable[[str], bool], half: _Half | None) -> Iterator[Member]:
    """The members from ``buffer``'s offset, at a member's start, to the tar's end (from
    ``half``'s start on, those it gives, then the rest read here)."""
    path: str | None = None
    checked: dict[bytes, tuple[bytes, int]] = {}  # PAX header blocks repeat: checked once
    theirs = half.start if half is not None else -1  # where the helper's reading starts
    while True:
        if half is not None and buffer.offset >= theirs:
            if buffer.offset == theirs and path is None:  # at a member's start: theirs
                buffer.flush()
                yield from buffer.done()
                given = yield from half.members()
                if given is None:
                    return
                yield from itertools.islice(_read(buffer, keep, None), given, None)
                return
            half.stop()
            half = None
        block = buffer.take(BLOCK)
        yield from buffer.done()
        if block in checked:
            kind, size = checked[block]
        else:
            kind, size = _checked(block)
            if kind == _PAX:
                checked[block] = kind, size
        if kind == b"":
            if path is not None:
                raise Irregular("a PAX header before the end")
            buffer.flush()
            yield from buffer.done()
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
            buffer.finish(name.rstrip("/"), None, None)
            continue
        digest = Md5()
        padded = size + -size % BLOCK
        if padded <= _SMALL:  # the common case: taken from the buffer at once
            bytes_of = buffer.view_of(padded)[:size]
            buffer.feeds.append((digest, bytes_of))
            buffer.finish(name, digest, bytes(bytes_of) if keep(name) else None)
            continue
        kept: list[bytes] | None = [] if keep(name) else None
        buffer.pass_on(size, digest, kept)
        buffer.pass_on(-size % BLOCK, None, None)
        buffer.finish(name, digest, b"".join(kept) if kept is not None else None)
        kept = None  # its pieces not held beside their join (a manifest: 130 MB a million)


class _Half:
    """The second half of a tar, read by a forked helper from the first header past the
    middle (``start``; the tar's size if there is none), its members sent in pieces of
    ``_PIECE`` (names, md5s, kept data: compact) as it reads them."""

    _PIECE = 10_000

    def __init__(self, fd: int, size: int, keep: Callable[[str], bool]):
        self._helper: forked.Helper | None = forked.Helper(_read_half, fd, size, keep)
        self._start: int | None = None
        self._size = size

    @property
    def start(self) -> int:
        if self._start is None:
            try:
                found = forked.receive(self._helper.pipe) if self._helper else None
            except EOFError:
                found = None
            self._start = found if isinstance(found, int) else self._size
        return self._start

    def members(self) -> Generator[Member, None, int | None]:
        """The helper's members; returns None if they are all of them to the tar's end,
        else how many it gave before it stopped (it died, met something this reader
        leaves to tarfile, or found its half not worth it): the rest is read here."""
        given = 0
        try:
            assert self._helper is not None
            for names, md5s, data in forked.received_pieces(self._helper.pipe):
                for i, (name, md5) in enumerate(zip(names, md5s, strict=True)):
                    yield Member(name, md5, data.get(i))
                given += len(names)
            log.debug("the tar's members from byte %d on were read by a helper", self.start)
            return None
        except EOFError:
            return given
        finally:
            self.stop()

    def stop(self) -> None:
        if self._helper is not None:
            self._helper.stop()
            self._helper = None


_SAMPLE, _SMALL_MEMBERS = 32 << 20, 32 << 10


class _NotWorthIt(Exception):
    """The helper's half is of large members: left to the reading process."""


def _read_half(pipe: Any, fd: int, size: int, keep: Callable[[str], bool]) -> None:
    """The helper: where it starts, then its members in pieces (``forked.send_pieces``),
    to the tar's end; no more if it meets what this reader leaves to tarfile (it may
    have started inside a file), or if the members of its first ``_SAMPLE`` bytes are
    ``_SMALL_MEMBERS`` or more on average.  Large members are hashing, which the thread
    hashing the whole chunk and this process's reading already keep both cores busy
    with: a third would only slow them."""
    start = _first_header(fd, size // 2 // BLOCK * BLOCK)
    pipe.send(start)
    if start is not None:
        with contextlib.suppress(Irregular, OSError, _NotWorthIt):
            forked.send_pieces(pipe, _pieces(_Buffer(fd, start), keep))


_Piece = tuple[list[str], list[str | None], dict[int, bytes]]
"""Members as the helper sends them: names, md5s (None: a directory), {index: data kept}."""


def _pieces(buffer: _Buffer, keep: Callable[[str], bool]) -> Iterator[_Piece]:
    """The members from ``buffer``'s offset in pieces; none before the first ``_SAMPLE``
    bytes are read and found worth it (``_NotWorthIt`` if not)."""
    start, sampled = buffer.offset, False
    ready: list[_Piece] = []
    names: list[str] = []
    md5s: list[str | None] = []
    data: dict[int, bytes] = {}
    for member in _read(buffer, keep, None):
        if member.data is not None:
            data[len(names)] = member.data
        names.append(member.name)
        md5s.append(member.md5)
        if len(names) == _Half._PIECE:
            ready.append((names, md5s, data))
            names, md5s, data = [], [], {}
        if not sampled and (read := buffer.offset - start) >= _SAMPLE:
            if read >= buffer.taken * _SMALL_MEMBERS:
                raise _NotWorthIt
            sampled = True
        if sampled and ready:
            yield from ready
            ready = []
    yield from ready
    yield names, md5s, data


def _first_header(fd: int, offset: int) -> int | None:
    """Where the first block at or past ``offset`` is that reads as a header of a member
    tarsplit writes (its magic and checksum right); where its PAX header is if one comes
    just before it (the two make one member).  None if there is none in the next
    ``_SCAN`` bytes: the middle is then in a large member, where a helper is not worth
    it (see ``_read_half``)."""
    window = bytearray(_SCAN)
    got = os.preadv(fd, [window], offset)
    at = window.find(_MAGIC, 257, got - got % BLOCK)
    while at >= 0:
        if (at - 257) % BLOCK == 0 and _a_header(bytes(window[at - 257 : at + 255])):
            return _with_its_pax(fd, offset + at - 257)
        at = window.find(_MAGIC, at + 1, got - got % BLOCK)
    return None


_SCAN = 8 << 20
_MAGIC = tarfile.POSIX_MAGIC  # b"ustar\x0000", at byte 257 of a header


def _a_header(block: bytes) -> bool:
    try:
        kind, _ = _checked(block)
    except Irregular:
        return False
    return kind in (_FILE, _OLD_FILE, _DIR, _PAX) and not block[345]


def _with_its_pax(fd: int, header: int) -> int:
    """``header``, or the PAX header just before it (one holding its path, of up to 8
    blocks) if there is one."""
    for blocks in range(1, 9):
        at = header - (blocks + 1) * BLOCK
        if at < 0:
            break
        block = os.pread(fd, BLOCK, at)
        if (
            _a_header(block)
            and block[156:157] == _PAX
            and -(-_number(block[124:136]) // BLOCK) == blocks
        ):
            return at
    return header
