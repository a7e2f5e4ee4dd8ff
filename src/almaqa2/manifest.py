"""The per-file md5 manifest of a package, in ``md5sum -c`` format.

``<packpath>/manifest.md5`` lists every file of the package (not itself) by a path that
starts with the project code, so ``md5sum -c`` run from packpath's parent checks it.
Hashing runs on a thread pool (the GIL is let go while hashing), so that it overlaps with
the copying that produces the files and uses both cores; each thread hashes two large
files at once (``md5pair``: two md5s' chains interleaved on one core cost little more than
one), and small files are hashed a batch at a time (eight at once where the CPU has vector
lanes).  A ``Follower`` hashes one file (a tar chunk) on a thread as it is written or
read.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import io
import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from stat import S_ISDIR, S_ISLNK
from typing import Any, cast

from almaqa2 import forked
from almaqa2.atomic import write_pieces_atomically
from almaqa2.copying import copy_file, copy_small
from almaqa2.errors import ChecksumError, changed_while_packaged, copy_differs
from almaqa2.md5pair import Md5, hexdigests, update_many

NAME = "manifest.md5"
_BATCH_FILES = 256
_BLOCK = 1 << 20
_FOLLOW_BLOCK = 256 << 10
"""What a ``Follower`` reads at once: less than a core's L2 cache (512 KB here), so the bytes the
kernel copies into it are still in the cache when md5 reads them (with 4 MB, tarsplit
spent a third more system time and ran 10 % slower)."""
SMALL = 64 << 10
_PIECE = 10_000  # lines made at once

log = logging.getLogger(__name__)


def md5_file(path: str | Path, buffer: bytearray | None = None, steady: bool = False) -> str:
    """The md5 of a file, read into ``buffer`` (give one to reuse: no allocation per file).
    ``steady``: the file must not be written meanwhile (its time or size moving), as one
    a package shares with the reduction (hard mode) could be, by a task still at work on
    it: its md5 would then be of no version of it (``ChecksumError``)."""
    digest = hashlib.md5()
    for piece in _pieces(path, buffer or bytearray(_BLOCK), steady):
        digest.update(piece)
    return digest.hexdigest()


def _pieces(path: str | Path, buffer: bytearray, steady: bool) -> Iterator[memoryview]:
    """``md5_file``'s reading: the file's bytes, a buffer at a time (each view valid until
    the next)."""
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        before = os.fstat(f.fileno()) if steady else None
        while n := f.readinto(view):
            yield view[:n]
        if before is not None and moved(before, os.fstat(f.fileno())):
            raise changed_while_packaged(str(path))


def moved(before: os.stat_result, after: os.stat_result) -> bool:
    """Whether a file was written between two looks at it (its time or size moved)."""
    return (before.st_mtime_ns, before.st_size) != (after.st_mtime_ns, after.st_size)


def _small_bytes(path: str, size: int) -> bytes | None:
    """The bytes of a file of a few KB (``size``, as last seen), read in one call with bare
    system calls (a file object costs more than the hash); None if it has grown (hash it
    with ``md5_file``).  A regular file's read returns less than asked only at its end.
    Hash many at once: ``md5pair.hexdigests``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, max(size, 0) + 1)
    finally:
        os.close(fd)
    return data if len(data) <= size else None


def _md5s_of_small(paths: Sequence[str], sizes: Sequence[int]) -> list[str | OSError]:
    """The md5 of each small file (``_small_bytes``), or the OSError met reading it."""
    pairs = zip(paths, sizes, strict=True)
    items: list[_Item] = [(path, size, None, False) for path, size in pairs]
    return cast(list[str | OSError], _hash_small(items))  # no source: none is None


def md5_of_copy(path: str, source: str, buffers: tuple[bytearray, bytearray] | None = None) -> str:
    """The md5 of ``path``, once it is found to hold the bytes of ``source``: the two are
    compared block by block, as bytes (memcmp: a fraction of the cost of a second hash).
    Both are read into ``buffers`` (give two of one size to reuse): no block is allocated,
    which costs a page fault per page where malloc gives large blocks back at once (as
    in a Dask worker, MALLOC_TRIM_THRESHOLD_=64K)."""
    digest = hashlib.md5()
    for piece in _pieces_of_copy(path, source, buffers or (bytearray(_BLOCK), bytearray(_BLOCK))):
        digest.update(piece)
    return digest.hexdigest()


def _pieces_of_copy(
    path: str, source: str, buffers: tuple[bytearray, bytearray]
) -> Iterator[memoryview]:
    """``md5_of_copy``'s reading: the copy's bytes, a buffer at a time, each once found
    equal to the source's."""
    mine, theirs = buffers
    view = memoryview(mine)  # hashed without a copy
    with open(path, "rb", buffering=0) as copy, open(source, "rb", buffering=0) as original:
        while n := copy.readinto(mine):
            if _read_fully(original, theirs, n) != n or _differ(mine, theirs, n):
                raise copy_differs(path, source)
            yield view[:n]
        if original.read(1):  # the source grew while it was copied
            raise copy_differs(path, source)


def _differ(mine: bytearray, theirs: bytearray, n: int) -> bool:
    """Whether the first ``n`` bytes of the two buffers differ, compared as one memcmp: a
    short block as small copies, a long one by giving both the same tail first (slices of
    that size, or memoryviews, cost more than the hash)."""
    if n == len(mine):
        return mine != theirs
    if n <= SMALL:
        return mine[:n] != theirs[:n]
    memoryview(mine)[n:] = memoryview(theirs)[n:]
    return mine != theirs


def _read_fully(f: Any, buffer: bytearray, n: int) -> int:
    """Read ``n`` bytes of ``f`` into ``buffer`` (fewer only at its end)."""
    view, got = memoryview(buffer), 0
    while got < n and (more := f.readinto(view[got:n])):
        got += more
    return got


class Hasher:
    """Hash files as they are handed over; ``results()`` waits for all.

    Large files go to a long-lived thread per core (a plain queue: a future per file
    costs more than hashing a small file); they release the GIL while read and hashed.
    Small files (up to 64 KB, a copy's source compared too) are hashed in batches by a
    forked process of its own (``_Batches``): hashing them is Python work under the GIL,
    which a thread would share with the one writing the package.  This process, which
    also writes the package, hashes a batch itself only when the helper falls behind, and
    at the end takes its share of what is still waiting, so that neither waits for the
    other.  In a daemonic process (a worker of ``qa2 batch``, which has a core of its own
    and may not fork) a thread stands in for the helper.  Results are keyed by the path
    string given, less the prefix ``below`` (a package's staging directory: its long
    path is not kept once per file).  Hand the largest files over first when they are
    known: both cores then stay busy to the end.
    """

    def __init__(self, below: str = ""):
        self._cut = len(below)
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._digests: dict[str, str] = {}
        self._errors: dict[str, BaseException] = {}
        self._batch: list[_Item] = []
        self._small: _Batches | None = None  # started with the first small file
        self.here, self.small = 0, 0  # small files hashed here, and in all
        self._threads = [
            threading.Thread(target=self._work, daemon=True) for _ in range(os.cpu_count() or 2)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        """Hash large files two at a time (``_side_by_side``) until told to stop."""
        _side_by_side(self._queue, self._cut, True, self._digests, self._errors)

    def add(self, path: str, size: int = -1, source: str | None = None, copy: bool = False) -> None:
        """Queue ``path`` (of ``size`` bytes, if known: it says which way it is hashed);
        with ``source``, also check that both hold the same bytes.  ``copy``: ``path``
        is not written yet: ``source``, a small file, is copied to it first, where small
        files are hashed (the copy goes through memory, read once: most of them on the
        second core)."""
        if 0 <= size <= SMALL:
            self._batch.append((path, size, source, copy))
            if len(self._batch) >= _BATCH_FILES:
                self._send()
        else:
            assert not copy, "only small files are copied where they are hashed"
            self._queue.put((path, size, source, False))

    def _send(self) -> None:
        if self._small is None:
            self._small = _Batches(self._answered)
        self.small += len(self._batch)
        self._small.send(self._batch)
        self._batch = []
        if self._small.behind() and (taken := self._small.take()) is not None:
            self._hash_here(taken)
        if self._errors:  # stop now, as a copy that fails in the writer does
            raise next(iter(self._errors.values()))

    def _hash_here(self, batch: list[_Item]) -> None:
        """Hash ``batch`` (one taken back from the helper) here."""
        self._answered(batch, _hash_small(batch))
        self.here += len(batch)

    def _answered(self, batch: list[_Item], found: list[str | OSError | None]) -> None:
        """Keep the md5s of a batch of small files (None: a copy unlike its source)."""
        for (path, _, source, _), got in zip(batch, found, strict=True):
            key = path[self._cut :]
            if isinstance(got, str):
                self._digests[key] = got
            else:
                self._errors[key] = got or copy_differs(path, source or "")

    def results(self) -> dict[str, str]:
        """{path (less ``below``): md5}, once every file is hashed; raises the first
        error met."""
        self._stop()
        if self._errors:
            raise next(iter(self._errors.values()))
        return self._digests

    def _stop(self, abandon: bool = False) -> None:
        if self._batch and not abandon:
            self._send()
        if self._small is not None:
            while not abandon and not self._errors and (taken := self._small.take()):
                self._hash_here(taken)  # the rest shared with the helper
            self._small.close(abandon)
            self._small = None
            log.debug("%d of %d small files were hashed here", self.here, self.small)
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []

    def __enter__(self) -> Hasher:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        self._stop(abandon=kind is not None)


def _side_by_side(
    files: queue.SimpleQueue[_Item | None],
    cut: int,
    steady: bool,
    digests: dict[str, str],
    errors: dict[str, BaseException],
    between: Callable[[], None] = lambda: None,
) -> None:
    """Hash the files of ``files`` until its None, two at a time, a piece of each in turn,
    their md5s' chains interleaved (``md5pair``); one alone while no other is waiting.
    Each md5 goes into ``digests`` (keyed by the path less ``cut`` characters), or what
    went wrong into ``errors``; ``between()`` is called after each piece."""
    slots = [_Hashing(cut, steady), _Hashing(cut, steady)]
    more = True
    while True:
        for slot in slots:
            while more and slot.key is None:
                alone = all(other.key is None for other in slots)
                try:
                    item = files.get() if alone else files.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    more = False
                else:
                    slot.start(item)
        pieces = [(slot, slot.next(digests, errors)) for slot in slots]
        ready = [(slot.digest, piece) for slot, piece in pieces if piece is not None]
        if ready:
            update_many(ready)
        elif not more and all(slot.key is None for slot in slots):
            return
        between()


def _md5s_side_by_side(
    paths: Sequence[str], between: Callable[[], None]
) -> dict[str, str | OSError]:
    """The md5 of each large file of ``paths`` (``_side_by_side``), or the OSError met
    reading it; ``between()`` is called after each piece."""
    files: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
    for path in [*paths, None]:
        files.put(None if path is None else (path, -1, None, False))
    digests: dict[str, str] = {}
    errors: dict[str, BaseException] = {}
    _side_by_side(files, 0, False, digests, errors, between)
    for error in errors.values():
        if not isinstance(error, OSError):  # (a Ctrl-C, say)
            raise error
    return {**digests, **cast(dict[str, OSError], errors)}


class _Hashing:
    """One of the two files being hashed side by side (``key`` None: none); ``steady``:
    as ``md5_file``'s (a package's file, which must not change while it is hashed)."""

    def __init__(self, cut: int, steady: bool):
        self._cut, self._steady = cut, steady
        self._buffers = bytearray(_BLOCK), bytearray(_BLOCK)  # reused, file after file
        self.key: str | None = None
        self.digest = Md5()
        self._pieces: Iterator[memoryview] = iter(())

    def start(self, item: _Item) -> None:
        path, _, source, _ = item
        self.key, self.digest = path[self._cut :], Md5()
        if source is not None:
            self._pieces = _pieces_of_copy(path, source, self._buffers)
        else:
            self._pieces = _pieces(path, self._buffers[0], self._steady)

    def next(self, digests: dict[str, str], errors: dict[str, BaseException]) -> memoryview | None:
        """The file's next piece to hash; None at its end (its md5 put in ``digests``, or
        what went wrong in ``errors``) or if there is no file."""
        if self.key is None:
            return None
        try:
            return next(self._pieces)
        except StopIteration:
            digests[self.key] = self.digest.hexdigest()
        except BaseException as exc:  # reported by results()
            errors[self.key] = exc
        self.key = None
        return None


_Item = tuple[str, int, str | None, bool]
"""(path, size, the source it must equal or None, whether to copy the source to it first)"""


class _Batches:
    """Batches of small files hashed by a forked helper (a thread in a daemonic process),
    answered to ``answered``.  A thread of this process feeds the helper, at most
    ``_AHEAD`` batches at a time: the writer never waits on a full pipe, and the rest wait
    here, where the writer can ``take`` them back to hash itself.  Another thread reads
    the answers."""

    _AHEAD = 3  # batches given to the helper and not yet answered: enough to work on
    # while the feeding thread waits for the GIL (up to 5 ms)
    _BEHIND = 4  # batches waiting here when the helper is behind

    def __init__(self, answered: Callable[[list[_Item], list[str | OSError | None]], None]):
        self._answered = answered
        self._turn = threading.Condition()
        self._waiting: collections.deque[list[_Item]] = collections.deque()
        self._given: collections.deque[list[_Item]] = collections.deque()  # to the helper
        self._alive, self._closing = True, False  # the helper (till its pipe closes); close()
        self._helper = forked.Helper(_answer_batches) if forked.may_fork() else None
        self._pipe: Any = self._helper.pipe if self._helper else _InProcess()
        self._threads = [
            threading.Thread(target=work, daemon=True) for work in (self._feed, self._collect)
        ]
        for thread in self._threads:
            thread.start()

    def send(self, batch: list[_Item]) -> None:
        with self._turn:
            self._waiting.append(batch)
            self._turn.notify_all()

    def behind(self) -> bool:
        return len(self._waiting) > self._BEHIND

    def take(self) -> list[_Item] | None:
        """The batch waiting last, taken back from the helper; None if none waits."""
        with self._turn:
            return self._waiting.pop() if self._waiting else None

    def _feed(self) -> None:
        """The feeding thread: each waiting batch to the helper once it has fewer than it
        may, then (when closed and none waits) the end."""
        while True:
            with self._turn:
                self._turn.wait_for(self._to_give)
                if not self._alive:
                    return
                batch = self._waiting.popleft() if self._waiting else None  # None: closed
                if batch is not None:
                    self._given.append(batch)
            with contextlib.suppress(OSError):  # it died: its batches fail (``_collect``)
                self._pipe.send(batch)
            if batch is None:
                return

    def _to_give(self) -> bool:
        if not self._alive or (self._closing and not self._waiting):
            return True
        return bool(self._waiting) and len(self._given) < self._AHEAD

    def _collect(self) -> None:
        """The answering thread."""
        try:
            while (found := forked.receive(self._pipe)) is not None:
                with self._turn:
                    batch = self._given.popleft()
                    self._turn.notify_all()
                self._answered(batch, found)
        except EOFError:  # the helper died: each file given it fails, the rest wait here
            with self._turn:
                self._alive, lost = False, list(self._given)
                self._turn.notify_all()
            for batch in lost:
                self._answered(batch, [OSError("the hashing process stopped")] * len(batch))

    def close(self, abandon: bool) -> None:
        """Wait for the answers to every batch given (``abandon``: stop the helper now,
        drop those waiting); call it once none waits (``take``), unless abandoning."""
        if abandon and self._helper is not None:
            self._helper.kill()
        with self._turn:
            self._closing = True
            if abandon:
                self._waiting.clear()
            self._turn.notify_all()
        for thread in self._threads:
            thread.join()
        if self._helper is not None:
            self._helper.stop()


class _InProcess:
    """``_Batches``' pipe to a thread of this process, for a process that may not fork."""

    def __init__(self) -> None:
        self._todo: queue.SimpleQueue[list[_Item] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[list[str | OSError | None] | None] = queue.SimpleQueue()
        threading.Thread(target=self._work, daemon=True).start()

    def _work(self) -> None:
        while (batch := self._todo.get()) is not None:
            self._done.put(_hash_small(batch))
        self._done.put(None)

    def send(self, batch: list[_Item] | None) -> None:
        self._todo.put(batch)

    def recv(self) -> list[str | OSError | None] | None:
        return self._done.get()


def _answer_batches(pipe: Any) -> None:
    """The helper: hash each batch of small files that comes, until told to stop."""
    while (batch := forked.receive(pipe)) is not None:
        pipe.send(_hash_small(batch))
    pipe.send(None)


def _hash_small(batch: list[_Item]) -> list[str | OSError | None]:
    """The md5 of each small file of ``batch`` (``_small_data``): None for a copy whose
    bytes are not its source's, the OSError met if it could not be read or written.
    Their bytes are hashed at once at the end (``hashed_at_once``)."""
    found: list[bytes | str | OSError | None] = []
    for path, size, source, copy in batch:
        try:
            found.append(_small_data(path, size, source, copy))
        except ChecksumError:
            found.append(None)
        except OSError as exc:
            found.append(exc)
    return hashed_at_once(found)


def hashed_at_once(found: list[Any]) -> list[Any]:
    """``found`` with each file's bytes in it replaced by their md5, all hashed in one call
    (``hexdigests``, eight at a time where the CPU has vector lanes: four times as fast as
    one md5 after another)."""
    digests = iter(hexdigests([item for item in found if isinstance(item, bytes)]))
    return [next(digests) if isinstance(item, bytes) else item for item in found]


def _small_data(path: str, size: int, source: str | None, copy: bool) -> bytes | str | None:
    """The bytes of the small file ``path`` (of ``size`` bytes, as last seen), to hash;
    with ``source``, once found equal to its bytes (``copy``: once copied from them, read
    once, and read back: ``copy_small``); None if they differ (one byte more is read from
    both, to notice a source that grew while it was copied).  The md5 itself, read a
    block at a time, of a file that grew past small."""
    if source is None:
        data = _small_bytes(path, size)
        return md5_file(path) if data is None else data
    if copy:
        data = copy_small(source, path, SMALL)
        if data is None:
            copy_file(source, path)
            return md5_of_copy(path, source)
        return data
    data = _read_small(path)
    if len(data) > SMALL:  # the source grew before it was copied: compare it all
        return md5_of_copy(path, source)
    return data if data == _read_small(source) else None


def _read_small(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, SMALL + 1)
    finally:
        os.close(fd)


def mismatches(
    top: str,
    rels: Sequence[str],
    sizes: Sequence[int],
    expected: Sequence[str],
    hashed: Callable[[int], None] | None = None,
) -> list[tuple[str, str, str]]:
    """The files of ``rels`` (paths below ``top``, largest first; ``sizes`` and
    ``expected`` md5s in the same order) whose md5 is not the expected one: (rel, the md5
    expected, the md5 found or why it could not be read), sorted.

    Hashed in two processes at once (this one and a forked one that reads the same lists):
    a small file's hash is Python work under the GIL, so threads cannot share it, and
    md5sum -c does the same work in a quarter of the time of one Python thread.  The two
    take batches (two large files, or up to 256 small ones) from a shared counter, largest
    first, so both stay busy to the end; only the mismatches come back through a pipe.
    ``hashed(size)`` is called here after each batch, with the bytes both have hashed
    since.  In a daemonic process (a worker of ``qa2 batch``, which runs one per core, and
    which may not fork one) all is hashed here."""
    with forked.Shared() as counter:
        shared = (top, rels, sizes, expected, _batches(sizes), counter)
        if not forked.may_fork():  # a batch's Dask worker: a core of its own
            return sorted(_hash_batches(shared, 0, _nothing))
        helper = forked.Helper(_hash_batches_to, shared, os.getpid())
        try:
            reported = [0]

            def report() -> None:
                if hashed is not None:
                    now = counter.done()
                    hashed(now - reported[0])
                    reported[0] = now

            found = _hash_batches(shared, 0, report)
            theirs = forked.receive(helper.pipe)
            report()
        except EOFError:
            raise RuntimeError("the hashing process stopped") from None
        finally:
            helper.stop()
    if isinstance(theirs, str):
        raise RuntimeError(f"the hashing process failed: {theirs}")
    return sorted(found + theirs)


def _nothing() -> None:
    pass


_BATCH_BYTES = 8 << 20


def _batches(sizes: Sequence[int]) -> list[int]:
    """Where each batch starts (and, last, where they all end): two large files (hashed
    side by side), small ones up to 256 files or 8 MB."""
    bounds, count, size = [0], 0, 0
    for i, one in enumerate(sizes):
        count, size = count + 1, size + one
        first_of_a_pair = count == 1 and one >= _BATCH_BYTES
        if count >= _BATCH_FILES or (size >= _BATCH_BYTES and not first_of_a_pair):
            bounds.append(i + 1)
            count, size = 0, 0
    if bounds[-1] != len(sizes):
        bounds.append(len(sizes))
    return bounds


def _hash_batches_to(pipe: Any, shared: tuple[Any, ...], parent: int) -> None:
    """The helper: its batches' mismatches, or why it failed, sent through ``pipe``.  It
    stops after a batch if its parent is gone (killed: nobody is left to tell)."""

    def orphaned() -> None:
        if os.getppid() != parent:
            os._exit(0)

    try:
        pipe.send(_hash_batches(shared, 1, orphaned))
    except Exception as exc:  # said to the parent, whatever it is
        pipe.send(f"{type(exc).__name__}: {exc}")


def _hash_batches(
    shared: tuple[Any, ...], me: int, after: Callable[[], None]
) -> list[tuple[str, str, str]]:
    """Hash the batches taken from the shared counter until none is left, counting the
    bytes hashed as process ``me``'s and calling ``after()`` after each batch (and between
    pieces of its large files)."""
    top, rels, sizes, expected, bounds, counter = shared
    found: list[tuple[str, str, str]] = []
    while (batch := counter.take()) < len(bounds) - 1:
        batch_files = range(bounds[batch], bounds[batch + 1])
        found += mismatches_here(top, rels, sizes, expected, batch_files, after)
        counter.add(me, sum(sizes[bounds[batch] : bounds[batch + 1]]))
        after()
    return found


def mismatches_here(
    top: str,
    rels: Sequence[str],
    sizes: Sequence[int],
    expected: Sequence[str],
    which: Iterable[int],
    between: Callable[[], None] = lambda: None,
) -> list[tuple[str, str, str]]:
    """``mismatches`` among the files ``which`` (indices into the lists), hashed in this
    process, two at a time; ``between()`` is called between pieces of large files (a
    helper looks there whether its parent still lives: a batch of two large files is a
    GB or more)."""
    which = list(which)
    small = [i for i in which if sizes[i] <= SMALL]
    md5s = _md5s_of_small([f"{top}/{rels[i]}" for i in small], [sizes[i] for i in small])
    got: dict[int, str | OSError] = dict(zip(small, md5s, strict=True))
    large = {f"{top}/{rels[i]}": i for i in which if sizes[i] > SMALL}
    if large:
        for path, digest in _md5s_side_by_side(list(large), between).items():
            got[large[path]] = digest
    found = []
    for i in which:
        digest = got[i]
        if isinstance(digest, OSError):
            digest = f"unreadable ({digest.strerror})"
        if digest != expected[i]:
            found.append((rels[i], expected[i], digest))
    return found


class Follower:
    """Hashes a file on another thread, reading it by itself as far as it is told.

    tarsplit tells it how far a chunk is written, so the chunk's own bytes are hashed (from
    the page cache) while the writer moves file data in the kernel; verify tells it the
    whole size at once, so a chunk is hashed while its members are read.
    """

    def __init__(self, path: Path, hashed: Callable[[int], None] | None = None):
        """``hashed(size)`` is called after each block, for a progress bar."""
        self._fd = os.open(path, os.O_RDONLY)
        self._hashed = hashed
        self._md5 = hashlib.md5()
        self._queue: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._error: OSError | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        view = memoryview(bytearray(_FOLLOW_BLOCK))
        done = 0
        while (upto := self._queue.get()) is not None:
            try:
                while done < upto and self._error is None and not self._stopped:
                    n = os.preadv(self._fd, [view[: min(len(view), upto - done)]], done)
                    if n == 0:
                        raise OSError(errno.EIO, "the file is shorter than expected")
                    self._md5.update(view[:n])
                    done += n
                    if self._hashed:
                        self._hashed(n)
            except OSError as exc:
                self._error = exc

    def written(self, upto: int) -> None:
        """The first ``upto`` bytes may be hashed."""
        self._queue.put(upto)

    def hexdigest(self) -> str:
        """The md5 of the bytes it was told of, once it has caught up."""
        self._finish()
        if self._error:
            raise self._error
        return self._md5.hexdigest()

    def close(self) -> None:
        """Stop hashing now (after an error elsewhere); nothing more is read."""
        self._stopped = True
        self._finish()

    def _finish(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
            os.close(self._fd)


def sizes_under(top: Path) -> dict[str, int]:
    """Every file below ``top``: {path relative to top: size}, in sorted order."""
    return dict(walk(top))


def walk(top: Path) -> Iterator[tuple[str, int]]:
    """(path relative to ``top``, size) of every file below it, in sorted order; a link is
    not followed into a directory, but its size is its target's.  Strings, not pathlib: a
    package may hold a million files; a stack of listings, not a generator per directory
    level, which would pass each file up through every level.  Each directory is opened
    and its names looked at through it, once each (``fstatat``): the kernel then resolves
    one name per file, not the whole path, and a name list costs less than DirEntries."""
    stack = [_opened_listing(str(top), None, "")]
    try:
        while stack:
            fd, names, prefix = stack[-1]
            for name in names:
                try:
                    info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    if S_ISDIR(info.st_mode):
                        stack.append(_opened_listing(name, fd, f"{prefix}{name}/"))
                        break
                    if S_ISLNK(info.st_mode):
                        info = os.stat(name, dir_fd=fd)
                except OSError as exc:  # the system named the last part of the path only
                    exc.filename = os.path.join(top, prefix + name)
                    raise
                yield prefix + name, info.st_size
            else:
                stack.pop()
                os.close(fd)
    finally:
        for fd, _names, _prefix in stack:
            os.close(fd)


def _opened_listing(name: str, parent: int | None, prefix: str) -> tuple[int, Iterator[str], str]:
    """The directory ``name`` (in the directory open as ``parent``) opened, its names
    sorted (looked at through the descriptor, which stays open for them)."""
    fd = open_directory(name, parent)
    try:
        return fd, iter(sorted(os.listdir(fd))), prefix
    except BaseException:
        os.close(fd)
        raise


def open_directory(name: str, dir_fd: int | None = None) -> int:
    """A descriptor of the directory ``name`` (in the one open as ``dir_fd``), to look at
    its files through (``fstatat``): the kernel then resolves one name per file, not the
    whole path, a third less time on a walk."""
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)


@contextlib.contextmanager
def opened_directory(name: str, dir_fd: int | None = None) -> Iterator[int]:
    """``open_directory``, closed again afterwards."""
    fd = open_directory(name, dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


class Folder:
    """The directory of the file looked up last, kept open to look up the next through it
    if it is in the same one (the files of a table come together): the kernel then
    resolves one name per file, not the whole path, ten directories deep in a package.
    Opening (or linking) the files was the largest cost of splitting and linking small
    ones.  Paths are below ``base``, or absolute if it is not given."""

    def __init__(self, base: str = ""):
        self.base = base
        self._rel: str | None = None
        self._fd = -1

    def at(self, rel: str) -> tuple[int, str]:
        """(a descriptor of the directory of ``rel``, its name in it)."""
        head, slash, name = rel.rpartition("/")
        if head != self._rel:
            opened = open_directory(f"{self.base}/{head}" if self.base else head or slash)
            self.close()
            self._fd, self._rel = opened, head
        return self._fd, name

    def open(self, rel: str) -> int:
        """A descriptor of the file ``rel``, to read."""
        fd, name = self.at(rel)
        return os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._rel, self._fd = None, -1

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def files_under(top: Path) -> dict[str, int]:
    """The files a package's manifest lists: all below ``top`` but the manifest itself."""
    return {rel: size for rel, size in walk(top) if rel != NAME}


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", "n": "\n", "r": "\r"}


def _escaped(text: str) -> bool:
    """Whether md5sum escapes a name in ``text`` (as _ESCAPES, spelt out: it runs often)."""
    return "\\" in text or "\n" in text or "\r" in text


def _escape(path: str) -> tuple[str, str]:
    """md5sum's escaping: a leading backslash marks a name with ``\\``, CR or LF in it."""
    if _escaped(path):
        return "\\", "".join(_ESCAPES.get(c, c) for c in path)
    return "", path


def format_line(digest: str, path: str) -> str:
    flag, name = _escape(path)
    return f"{flag}{digest}  {name}\n"


def _lines(project: str, rels: Sequence[str], digests: dict[str, str]) -> str:
    """The manifest's lines of the files ``rels`` (paths below the package), made at once:
    a manifest's cost is a line per file.  Names md5sum escapes (rare) are made one by one."""
    if _escaped("".join(rels)):
        return "".join(format_line(digests[rel], f"{project}/{rel}") for rel in rels)
    return "".join([f"{digests[rel]}  {project}/{rel}\n" for rel in rels])


def size(project: str, rels: Iterable[str]) -> int:
    """The bytes of a manifest listing the files ``rels`` (paths below the package), as
    ``write`` writes it, counted a piece at a time without making its lines."""
    rels = list(rels)
    return sum(_piece_size(project, rels[n : n + _PIECE]) for n in range(0, len(rels), _PIECE))


def _piece_size(project: str, rels: Sequence[str]) -> int:
    names = "".join(rels)
    if _escaped(names):
        return _length(_lines(project, rels, dict.fromkeys(rels, 32 * "0")))
    return _length(names) + len(rels) * _length(f"{32 * '0'}  {project}/\n")


def _length(text: str) -> int:
    """The bytes of ``text`` as written (a path's string holds its file name's bytes)."""
    return len(text.encode("utf-8", "surrogateescape"))


def read(path: Path) -> dict[str, str]:
    """A manifest's entries: {path starting with the project code: md5}."""
    with open(path, "rb") as f:
        return _entries(f)


def parse(data: bytes) -> dict[str, str]:
    """The entries of a manifest's bytes (as ``read``; also for one read from a tar)."""
    return _entries(io.BytesIO(data))


def _entries(lines: Iterable[bytes]) -> dict[str, str]:
    """The entries of a manifest's lines, read one at a time: a million-line manifest is
    never held whole beside its dict.  A line that names no file (damaged) is passed by:
    its file, if any, is then found unlisted."""
    entries: dict[str, str] = {}
    for raw in lines:
        line = raw.decode("utf-8", "surrogateescape").rstrip("\n")
        escaped = line.startswith("\\")
        digest, _, name = line[escaped:].partition("  ")
        if not name:
            continue
        if escaped:
            name = re.sub(r"\\(.)", lambda m: _UNESCAPES.get(m[1], m[1]), name)
        entries[name] = digest
    return entries


def write(package: Path, project: str, digests: dict[str, str]) -> Path:
    """Write ``<package>/manifest.md5`` atomically from {path below package: md5}."""
    rels = sorted(digests)
    pieces = (_lines(project, rels[n : n + _PIECE], digests) for n in range(0, len(rels), _PIECE))
    return write_pieces_atomically(package / NAME, pieces)
