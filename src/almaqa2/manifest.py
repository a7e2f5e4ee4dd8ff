"""The per-file md5 manifest of a package, in ``md5sum -c`` format.

``<packpath>/manifest.md5`` lists every file of the package (not itself) by a path that
starts with the project code, so ``md5sum -c`` run from packpath's parent checks it.
Hashing runs on a thread pool (hashlib releases the GIL), so that it overlaps with the
copying that produces the files and uses both cores; a ``Follower`` hashes one file (a tar
chunk) on a thread as it is written or read.
"""

from __future__ import annotations

import errno
import hashlib
import io
import multiprocessing
import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from almaqa2.atomic import write_pieces_atomically
from almaqa2.errors import copy_differs

NAME = "manifest.md5"
_BLOCK = 1 << 20
_FOLLOW_BLOCK = 4 << 20
_SMALL = 64 << 10


def md5_file(path: str | Path, buffer: bytearray | None = None) -> str:
    """The md5 of a file, read into ``buffer`` (give one to reuse: no allocation per file)."""
    digest = hashlib.md5()
    view = memoryview(buffer if buffer is not None else bytearray(_BLOCK))
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            digest.update(view[:n])
    return digest.hexdigest()


def _md5_small(path: str) -> str:
    """``md5_file`` for a file of a few KB: bare system calls (a file object costs more
    than the hash), read to its end whatever its size has become."""
    fd = os.open(path, os.O_RDONLY)
    try:
        digest = hashlib.md5()
        while data := os.read(fd, _SMALL):
            digest.update(data)
    finally:
        os.close(fd)
    return digest.hexdigest()


def md5_of_copy(path: str, source: str, buffers: tuple[bytearray, bytearray] | None = None) -> str:
    """The md5 of ``path``, once it is found to hold the bytes of ``source``: the two are
    compared block by block, as bytes (memcmp: a fraction of the cost of a second hash).
    Both are read into ``buffers`` (give two of one size to reuse): no block is allocated,
    which costs a page fault per page where malloc gives large blocks back at once (as
    in a Dask worker, MALLOC_TRIM_THRESHOLD_=64K)."""
    mine, theirs = buffers or (bytearray(_BLOCK), bytearray(_BLOCK))
    view = memoryview(mine)  # hashed without a copy
    digest = hashlib.md5()
    with open(path, "rb", buffering=0) as copy, open(source, "rb", buffering=0) as original:
        while n := copy.readinto(mine):
            if _read_fully(original, theirs, n) != n or _differ(mine, theirs, n):
                raise copy_differs(path, source)
            digest.update(view[:n])
        if original.read(1):  # the source grew while it was copied
            raise copy_differs(path, source)
    return digest.hexdigest()


def _differ(mine: bytearray, theirs: bytearray, n: int) -> bool:
    """Whether the first ``n`` bytes of the two buffers differ, compared as one memcmp: a
    short block as small copies, a long one by giving both the same tail first (slices of
    that size, or memoryviews, cost more than the hash)."""
    if n == len(mine):
        return mine != theirs
    if n <= _SMALL:
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
    """Hash files on worker threads as they are handed over; ``results()`` waits for all.

    A plain queue and long-lived workers: a future per file costs more than hashing a
    small file.  Small files to hash (up to 64 KB, no source to compare) go to one thread
    of their own: hashing them is Python work under the GIL, which two threads would
    only fight over (1.8 s for 100,000 files where one takes 1.0 s); large files release
    the GIL while read and hashed, so they go to ``workers`` threads.  Results are keyed
    by the path string given, less the prefix ``below`` (a package's staging directory:
    its long path is not kept once per file).  Hand the largest files over first when
    they are known: both cores then stay busy to the end.
    """

    def __init__(
        self,
        workers: int | None = None,
        hashed: Callable[[int], None] | None = None,
        below: str = "",
    ):
        """``hashed(size)`` is called (on a worker) after each file, for a progress bar."""
        self._cut = len(below)
        Item = tuple[str, int, str | None] | None
        self._queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._small: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._hashed = hashed
        self._digests: dict[str, str] = {}
        self._errors: dict[str, BaseException] = {}
        queues = [self._queue] * (workers or os.cpu_count() or 2) + [self._small]
        self._threads = [
            (threading.Thread(target=self._work, args=(work,), daemon=True), work)
            for work in queues
        ]
        for thread, _ in self._threads:
            thread.start()

    def _work(self, work: queue.SimpleQueue[tuple[str, int, str | None] | None]) -> None:
        buffers = bytearray(_BLOCK), bytearray(_BLOCK)  # one pair per thread, reused
        while (item := work.get()) is not None:
            path, size, source = item
            key = path[self._cut :]
            try:
                if source is not None:
                    self._digests[key] = md5_of_copy(path, source, buffers)
                elif work is self._small:
                    self._digests[key] = _md5_small(path)
                else:
                    self._digests[key] = md5_file(path, buffers[0])
            except BaseException as exc:  # reported by results() or outcome()
                self._errors[key] = exc
            if self._hashed:
                self._hashed(size)

    def add(
        self, path: str, size: int = 0, source: str | None = None, digest: str | None = None
    ) -> None:
        """Queue ``path``; with ``source``, also check that both hold the same bytes.

        The signature fits materialize's ``done`` callback: a ``digest`` given (the writer
        hashed the file as it made it) is taken as it is, and nothing is read.
        """
        if digest is None:
            small = source is None and 0 <= size <= _SMALL
            (self._small if small else self._queue).put((path, size, source))
            return
        self._digests[path[self._cut :]] = digest
        if self._hashed:
            self._hashed(size)

    def results(self) -> dict[str, str]:
        """{path (less ``below``): md5}, once every file is hashed; raises the first
        error met."""
        self._stop()
        if self._errors:
            raise next(iter(self._errors.values()))
        return self._digests

    def _stop(self) -> None:
        for _, work in self._threads:
            work.put(None)
        for thread, _ in self._threads:
            thread.join()
        self._threads = []

    def __enter__(self) -> Hasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()


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
    take batches (a large file, or up to 256 small ones) from a shared counter, largest
    first, so both stay busy to the end; only the mismatches come back through a pipe.
    ``hashed(size)`` is called here after each batch, with the bytes both have hashed
    since.  In a daemonic process (a worker of ``qa2 batch``, which runs one per core, and
    which may not fork one) all is hashed here."""
    context = multiprocessing.get_context("fork")  # the child reads the lists as they are
    taken, done = context.Value("q", 0), context.Value("q", 0)
    shared = (top, rels, sizes, expected, _batches(sizes), taken, done)
    if multiprocessing.current_process().daemon:  # a batch's Dask worker: a core of its own
        return sorted(_hash_batches(shared, None))
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(
        target=_hash_batches_to, args=(writer, shared, os.getpid()), daemon=True
    )
    child.start()
    writer.close()
    try:
        reported = [0]

        def report() -> None:
            if hashed is not None:
                now = done.value
                hashed(now - reported[0])
                reported[0] = now

        found = _hash_batches(shared, report)
        theirs = reader.recv()
        child.join()
        report()
    except EOFError:
        raise RuntimeError(f"the hashing process stopped (exit {child.exitcode})") from None
    finally:
        if child.is_alive():
            child.terminate()
            child.join()
        reader.close()
    if isinstance(theirs, str):
        raise RuntimeError(f"the hashing process failed: {theirs}")
    return sorted(found + theirs)


_BATCH_FILES, _BATCH_BYTES = 256, 8 << 20


def _batches(sizes: Sequence[int]) -> list[int]:
    """Where each batch starts (and, last, where they all end): a large file alone, small
    ones up to 256 files or 8 MB."""
    bounds, count, size = [0], 0, 0
    for i, one in enumerate(sizes):
        count, size = count + 1, size + one
        if count >= _BATCH_FILES or size >= _BATCH_BYTES:
            bounds.append(i + 1)
            count, size = 0, 0
    if bounds[-1] != len(sizes):
        bounds.append(len(sizes))
    return bounds


def _hash_batches_to(writer: Any, shared: tuple[Any, ...], parent: int) -> None:
    """The forked process: its batches' mismatches, or why it failed, sent to ``writer``;
    it stops after a batch if its parent is gone (killed: nobody is left to tell)."""

    def orphaned() -> None:
        if os.getppid() != parent:
            os._exit(0)

    try:
        writer.send(_hash_batches(shared, orphaned))
    except BaseException as exc:  # said to the parent, whatever it is
        writer.send(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


def _hash_batches(
    shared: tuple[Any, ...], report: Callable[[], None] | None
) -> list[tuple[str, str, str]]:
    """Hash the batches taken from the shared counter until none is left."""
    top, rels, sizes, expected, bounds, taken, done = shared
    found: list[tuple[str, str, str]] = []
    buffer = bytearray(_BLOCK)
    while True:
        with taken.get_lock():
            batch = taken.value
            taken.value = batch + 1
        if batch >= len(bounds) - 1:
            return found
        for i in range(bounds[batch], bounds[batch + 1]):
            path = os.path.join(top, rels[i])
            try:
                digest = _md5_small(path) if sizes[i] <= _SMALL else md5_file(path, buffer)
            except OSError as exc:
                digest = f"unreadable ({exc.strerror})"
            if digest != expected[i]:
                found.append((rels[i], expected[i], digest))
        with done.get_lock():
            done.value += sum(sizes[bounds[batch] : bounds[batch + 1]])
        if report is not None:
            report()


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
    """(path relative to ``top``, size) of every file below it, in sorted order.  Strings
    and scandir, not pathlib: a package may hold a million files."""

    def down(folder: str, prefix: str) -> Iterator[tuple[str, int]]:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from down(entry.path, f"{prefix}{entry.name}/")
            else:
                yield prefix + entry.name, entry.stat().st_size

    return down(str(top), "")


def files_under(top: Path) -> dict[str, int]:
    """The files a package's manifest lists: all below ``top`` but the manifest itself."""
    return dict(listed_files(top))


def listed_files(top: Path) -> Iterator[tuple[str, int]]:
    """``files_under`` one at a time, as ``walk`` finds them."""
    return ((rel, size) for rel, size in walk(top) if rel != NAME)


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", "n": "\n", "r": "\r"}


def _escape(path: str) -> tuple[str, str]:
    """md5sum's escaping: a leading backslash marks a name with ``\\``, CR or LF in it."""
    if any(c in path for c in _ESCAPES):
        return "\\", "".join(_ESCAPES.get(c, c) for c in path)
    return "", path


def format_line(digest: str, path: str) -> str:
    flag, name = _escape(path)
    return f"{flag}{digest}  {name}\n"


def read(path: Path) -> dict[str, str]:
    """A manifest's entries: {path starting with the project code: md5}."""
    with open(path, "rb") as f:
        return _entries(f)


def parse(data: bytes) -> dict[str, str]:
    """The entries of a manifest's bytes (as ``read``; also for one read from a tar)."""
    return _entries(io.BytesIO(data))


def _entries(lines: Iterable[bytes]) -> dict[str, str]:
    """The entries of a manifest's lines, read one at a time: a million-line manifest is
    never held whole beside its dict."""
    entries: dict[str, str] = {}
    for raw in lines:
        line = raw.decode("utf-8", "surrogateescape").rstrip("\n")
        if not line:
            continue
        escaped = line.startswith("\\")
        digest, _, name = line[escaped:].partition("  ")
        if escaped:
            name = re.sub(r"\\(.)", lambda m: _UNESCAPES.get(m[1], m[1]), name)
        entries[name] = digest
    return entries


def write(package: Path, project: str, digests: dict[str, str]) -> Path:
    """Write ``<package>/manifest.md5`` atomically from {path below package: md5}."""
    lines = (format_line(digests[rel], f"{project}/{rel}") for rel in sorted(digests))
    return write_pieces_atomically(package / NAME, lines)
