"""``qa2 tarsplit``: a package as tar chunks named as the ALMA archive names them (SPEC §8).

Planning (which file goes in which chunk, and the names) is pure; writing streams each file
once into its chunk while a second thread hashes the chunk's bytes.  A chunk is written as
``<name>.part``; its ``.md5sum`` file is written before the chunk is renamed to its final
name, so a finished-looking ``.tar`` always has its checksum beside it.
"""

from __future__ import annotations

import itertools
import logging
import os
import stat
import tarfile
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from almaqa2 import destination, forked, manifest, manyfiles
from almaqa2.atomic import write_atomically
from almaqa2.copying import copy_bytes, write_all
from almaqa2.errors import OUTPUT_REFUSED, DestinationError, InputError, existing_dir, no_room
from almaqa2.package import package_dir
from almaqa2.package.package_dir import ChunkNames, Package, chunks_in, not_a_package_entry
from almaqa2.package.rules import PLACEHOLDER_MODES
from almaqa2.progress import Progress
from almaqa2.sizes import parse_size
from almaqa2.tarheader import plain as plain_header
from almaqa2.tarheader import plain_size
from almaqa2.uid import check_project_code

log = logging.getLogger(__name__)

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE


class Entry(NamedTuple):
    """A member of a chunk: a tuple of plain strings and numbers, as a package may hold a
    million (a tuple is made in half the time of a frozen dataclass)."""

    rel: str  # inside the tar (POSIX): starts with the project code, as on disk below
    size: int  # bytes of the file; -1 for an (empty) directory entry
    mode: int
    mtime: int

    def info(self) -> tarfile.TarInfo:
        """The tar header of this entry: regular file (or directory), no owner names."""
        info = tarfile.TarInfo(self.rel)
        info.mtime, info.mode = self.mtime, self.mode
        info.uname = info.gname = ""
        if self.size < 0:
            info.type = tarfile.DIRTYPE
        else:
            info.size = self.size
        return info


class Span(NamedTuple):
    """A piece of a chunk, written at once: the headers of entries ``start`` to ``end``
    (excluded), each small file's data and padding after its header, and, if the last
    is a large file (``large``), its data (copied in the kernel) and padding;
    ``offset`` and ``size``: where in the tar, and how many bytes."""

    start: int
    end: int
    offset: int
    size: int
    large: bool

    @property
    def until(self) -> int:
        """Where in the tar the next piece starts."""
        return self.offset + self.size


@dataclass(frozen=True)
class Chunk:
    name: str  # file name of the tar
    entries: tuple[Entry, ...]
    size: int  # bytes of the tar, exactly
    base: str  # the directory holding the package: an entry's file is base/rel
    spans: tuple[Span, ...]  # its pieces, in order: the members, end to end


def member_size(entry: Entry) -> int:
    """Bytes ``entry`` takes in a tar: its header as tarfile writes it (with the PAX header a
    long or non-ASCII name needs) and its data padded to whole blocks.  The common case
    is worked out, not built (``tarheader.plain_size``): planning sizes every file."""
    data = -(-max(entry.size, 0) // BLOCK) * BLOCK
    if (size := plain_size(entry)) is not None:
        return size + data
    return len(header(entry)) + data


def header(entry: Entry) -> bytes:
    """The header(s) of ``entry`` exactly as tarfile writes them in PAX format: the common
    case (every file a package holds) made by ``tarheader``, ~50 times faster
    than tarfile, anything else by tarfile itself.  ``test_tar_headers`` holds the two
    equal."""
    if (made := plain_header(entry)) is not None:
        return made
    return entry.info().tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def tar_size(members: int) -> int:
    """The size of a tar whose members take ``members`` bytes: they, two zero blocks, and
    padding to a whole record."""
    return -(-(members + 2 * BLOCK) // RECORD) * RECORD


def room(max_size: int) -> int:
    """The most bytes of members a tar of at most ``max_size`` bytes holds (the inverse of
    ``tar_size``: ``tar_size(m) <= max_size`` exactly when ``m <= room(max_size)``)."""
    return max_size // RECORD * RECORD - 2 * BLOCK


_LARGE_DIR = 8 << 10
"""Bytes of a directory's own entries above which it is left to the end of the walk, to be
walked by this process or the helper (a directory's size grows with the names it holds)."""

_WORTH_A_HELPER = 64 << 10
"""Bytes of the large directories' entries above which two processes walk them."""


def entries_of(packpath: Path) -> list[Entry]:
    """Every file of the package (the manifest first) and every empty directory, sorted.

    Each directory is opened and its files looked at through it (``fstatat``): the kernel
    then resolves one name per file, not the whole path.  A link is refused like any
    other file that is not a regular file: a package holds no links.  The large
    directories (tables of thousands of files) are walked last, about half of them by a
    forked helper: a ``stat`` per file is most of the time, the files' made in one call
    per directory (``manyfiles.tar_entries``), the other names' here."""
    project = packpath.name
    large: list[tuple[str, str, int]] = []  # (path, rel, bytes of its entries)
    with manifest.opened_directory(str(packpath)) as top:
        found = _walk(top, str(packpath), project, large)
    theirs = forked.their_share([size for _path, _rel, size in large], _WORTH_A_HELPER)
    directories = [(path, rel) for path, rel, _size in large]
    walked = "directories were walked"
    for entries in forked.shared(
        directories, theirs, _walked, _walked_in_columns, _entries, walked
    ):
        found += entries
    found.sort()  # by rel (no two entries have the same): the walk's order but where a
    # directory's name starts a sibling's ("d" and "d.txt") and for the large directories
    first = f"{project}/{manifest.NAME}"
    at = next((i for i, e in enumerate(found) if e.rel == first), None)
    return found if at is None else [found[at], *found[:at], *found[at + 1 :]]


def _walked(directory: tuple[str, str]) -> list[Entry]:
    """The entries under the directory (path, rel)."""
    path, rel = directory
    with manifest.opened_directory(path) as fd:
        return _walk(fd, path, rel)


def _walked_in_columns(directory: tuple[str, str]) -> tuple[str, bytes]:
    """``_walked``, as the helper sends it: the paths in one string, the numbers in one
    array (unpickling a tuple per file and making it an ``Entry`` cost this process a
    third of the walk the helper had saved it)."""
    entries = _walked(directory)
    numbers = array("q", itertools.chain.from_iterable(entry[1:] for entry in entries))
    return "\0".join(entry.rel for entry in entries), numbers.tobytes()


def _entries(columns: tuple[str, bytes]) -> list[Entry]:
    """The entries ``_walked_in_columns`` sent."""
    rels, packed = columns
    numbers = array("q", packed)
    paths = rels.split("\0") if rels else []
    return _as_entries(zip(paths, numbers[0::3], numbers[1::3], numbers[2::3], strict=True))


def _as_entries(rows: Iterable[tuple[str, int, int, int]]) -> list[Entry]:
    """``Entry`` of each row (rel, size, mode, mtime), made as a plain tuple is: a package
    may hold a million."""
    return list(map(tuple.__new__, itertools.repeat(Entry), rows))


def _walk(
    fd: int, path: str, rel: str, large: list[tuple[str, str, int]] | None = None
) -> list[Entry]:
    """The entries under the directory ``path`` (open as ``fd``, ``rel`` in the tar); the
    large directories below it are put in ``large``, if given, instead."""
    found: list[Entry] = []
    modes: dict[int, int] = {}  # one int object per mode, not one per file

    def visit(fd: int, path: str, rel: str) -> None:
        try:
            files, names = manyfiles.tar_entries(fd, f"{rel}/", modes)
        except OSError as exc:
            raise _unreadable(path, exc) from exc
        found.extend(_as_entries(files))
        if not files and not names:
            st = os.fstat(fd)
            found.append(Entry(rel, -1, st.st_mode & 0o7777, int(st.st_mtime)))
        for name in sorted(names):  # (not regular files: directories, or refused)
            try:  # (the system names the last part of the path only; a deeper one is named)
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    if large is not None and st.st_size > _LARGE_DIR:
                        large.append((f"{path}/{name}", f"{rel}/{name}", st.st_size))
                        continue
                    with manifest.opened_directory(name, fd) as sub:
                        visit(sub, f"{path}/{name}", f"{rel}/{name}")
                    continue
            except OSError as exc:
                raise _unreadable(f"{path}/{name}", exc) from exc
            if not stat.S_ISREG(st.st_mode):
                raise not_a_package_entry(
                    f"{path}/{name}", fix="remove it, or package again with qa2 package"
                )
            mode = modes.setdefault(st.st_mode & 0o7777, st.st_mode & 0o7777)
            found.append(Entry(f"{rel}/{name}", st.st_size, mode, int(st.st_mtime)))

    visit(fd, path, rel)
    return found


def plan(
    packpath: Path, max_size: int, names: ChunkNames, auxiliary: bool
) -> tuple[list[Chunk], list[Entry]]:
    """The chunks (with their names) and the files larger than the limit (alone each)."""
    entries = entries_of(packpath)
    base = str(packpath.parent)
    chunks: list[Chunk] = []
    if auxiliary:
        products: list[Entry] = []
        rest = _Gathered()
        for entry in entries:
            if "product" in entry.rel.split("/")[1:]:
                products.append(entry)
            else:
                rest.add(entry, member_size(entry))
        chunks.append(rest.chunk(names.auxiliary, base))
        entries = products
    groups: list[_Gathered] = []
    too_big = []
    group = _Gathered()
    most = room(max_size)
    for entry in entries:
        size = member_size(entry)
        if group.entries and group.bytes + size > most:
            groups.append(group)
            group = _Gathered()
        group.add(entry, size)
        if size > most:  # alone in its chunk: nothing may join it
            too_big.append(entry)
            groups.append(group)
            group = _Gathered()
    if group.entries:
        groups.append(group)
    total = len(groups)
    chunks += [group.chunk(names.numbered(n, total), base) for n, group in enumerate(groups, 1)]
    return chunks, too_big


_PIECE_FILES, _PIECE_BYTES = 256, 1 << 20  # what one piece of a chunk gathers at most
_SMALL_MEMBER = 64 << 10  # a file read into a piece; a larger one is copied in the kernel


class _Gathered:
    """The entries of a chunk as the plan gathers them, with the bytes of their members,
    cut into pieces (``Span``) as they come: a piece ends with a large file (its data is
    copied in the kernel), or at 256 files or a megabyte (one write each: a write per
    file costs more than its bytes)."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.bytes = 0
        self._spans: list[Span] = []
        self._start = self._offset = 0  # the entry the open piece starts with, and where

    def add(self, entry: Entry, size: int) -> None:
        """``entry``, whose member takes ``size`` bytes."""
        self.entries.append(entry)
        self.bytes += size
        if (
            entry.size > _SMALL_MEMBER
            or len(self.entries) - self._start >= _PIECE_FILES
            or self.bytes - self._offset >= _PIECE_BYTES
        ):
            self._close(entry.size > _SMALL_MEMBER)

    def _close(self, large: bool = False) -> None:
        span = Span(self._start, len(self.entries), self._offset, self.bytes - self._offset, large)
        self._spans.append(span)
        self._start, self._offset = span.end, span.until

    def chunk(self, name: str, base: str) -> Chunk:
        if self._start < len(self.entries):
            self._close()
        return Chunk(name, tuple(self.entries), tar_size(self.bytes), base, tuple(self._spans))


def write(chunks: list[Chunk], out: Path, progress: Progress | None = None) -> dict[str, str]:
    """Write every chunk and its ``.md5sum`` into ``out``; returns {chunk name: md5}.

    A chunk's hashing goes on while the next chunk is written, so that two chunks can be
    hashed at once, one per core.  A chunk is renamed from ``.part`` only after its
    ``.md5sum`` is written.  There is no fsync: after a power cut, a damaged chunk would
    still be caught by its md5.
    """
    total = sum(c.size for c in chunks)
    done = [0]

    def advanced(nbytes: int) -> None:
        done[0] += nbytes
        if progress:
            progress(done[0], total, at.name)

    digests: dict[str, str] = {}
    hashing: list[tuple[Chunk, Path, manifest.Follower]] = []  # written, md5 still being computed
    at = chunks[0]  # the chunk being worked on, named if something fails
    try:
        for n, chunk in enumerate(chunks):
            at, part = chunk, out / f"{chunk.name}.part"
            hashing.append((chunk, part, _write_chunk(chunk, part, advanced)))
            while len(hashing) > 1 or (hashing and n == len(chunks) - 1):
                at, part, follower = hashing[0]
                digests[at.name] = follower.hexdigest()
                write_atomically(out / f"{at.name}.md5sum", f"{digests[at.name]}  {at.name}\n")
                os.replace(part, out / at.name)
                hashing.pop(0)
    except BaseException as exc:  # nothing half-written stays
        said = _write_failed(exc, out / at.name) if isinstance(exc, OSError) else None
        for _, part, follower in hashing:
            follower.close()
            part.unlink(missing_ok=True)
        (out / f"{at.name}.part").unlink(missing_ok=True)
        if said is None:
            raise
        raise said from exc
    return digests


def _write_failed(exc: OSError, chunk: Path) -> InputError | DestinationError:
    """The sentence for a chunk that could not be written, said before its part is removed
    (which may free what was lacking: ``no_room``)."""
    if exc.errno not in OUTPUT_REFUSED:
        return InputError(
            "could not write the chunk: reading the package or writing the chunk failed"
            f" ({exc.strerror})",
            chunk,
            fix="check the package's disk and the disk the chunks go to, then run again",
        )
    return DestinationError(
        f"could not write the chunk ({exc.strerror})",
        chunk,
        fix=f"{no_room(exc.errno, chunk, 'another place for the chunks')}, then run again",
    )


def write_list(out: Path, name: str, digests: dict[str, str]) -> Path:
    path = out / name
    write_atomically(path, "".join(f"{d}  {n}\n" for n, d in sorted(digests.items())))
    return path


_FOLLOW = 8 << 20  # tell the follower about new bytes every 8 MB


def _write_chunk(chunk: Chunk, part: Path, advanced: Callable[[int], None]) -> manifest.Follower:
    """Write the tar exactly as tarfile would (same headers, padding, end blocks); returns
    the follower that is hashing it, told as the chunk grows whole from its start (its
    pieces are written where the plan put them, by two processes: ``_Pieces``)."""
    with open(part, "wb", buffering=0) as out, _Pieces(chunk, part) as pieces:
        fd = out.fileno()
        follower = manifest.Follower(part)
        try:
            told = whole = 0  # bytes told to the follower; written from the start on
            for whole in pieces.write(fd):
                if whole - told >= _FOLLOW:
                    follower.written(whole)
                    advanced(whole - told)
                    told = whole
            os.lseek(fd, whole, os.SEEK_SET)  # every member written: the end blocks, and
            write_all(fd, bytes(chunk.size - whole))  # padding to a whole record
        except BaseException:
            follower.close()
            raise
    follower.written(chunk.size)
    advanced(chunk.size - told)
    return follower


def _piece(chunk: Chunk, span: Span) -> bytes:
    """The headers of the entries of ``span``, each small file's bytes and padding after
    its header."""
    gathered = bytearray()
    with manifest.Folder(chunk.base) as folder:
        for entry in chunk.entries[span.start : span.end]:
            gathered += header(entry)
            if 0 < entry.size <= _SMALL_MEMBER:
                gathered += _read_member(entry, folder)
                gathered += bytes(-entry.size % BLOCK)
    return bytes(gathered)


def _write_piece(chunk: Chunk, span: Span, fd: int) -> None:
    """Write ``span``'s piece at its place in the tar open as ``fd`` (the large file it
    ends with, if any, copied in the kernel)."""
    os.lseek(fd, span.offset, os.SEEK_SET)
    write_all(fd, _piece(chunk, span))
    if span.large:
        last = chunk.entries[span.end - 1]
        _copy_member(fd, last, chunk.base)
        write_all(fd, bytes(-last.size % BLOCK))


class _Pieces:
    """A chunk's pieces, written where the plan put them by this process and a forked
    helper at once, each taking the next piece the other has not taken
    (``forked.Shared.claim``): making headers and reading small files is Python work per
    file, which one process does at a third of ``tar``'s speed, and neither then waits
    for the other.  The pieces that end with a large file are this process's: copying
    it is the kernel's work on one core while the thread hashing the chunk keeps the
    other busy, and a second copy at once would only slow both.  The helper writes
    through a descriptor of its own (a position of its own) and says which pieces it has
    written.  A piece it did not (it died, or met a file that changed) is written here,
    which raises the error with its path; a daemonic process (a worker of ``qa2 batch``)
    writes all."""

    def __init__(self, chunk: Chunk, part: Path):
        self._chunk = chunk
        self._done = bytearray(len(chunk.spans))
        self._ready = 0  # the pieces written from the first on
        self._shared = forked.Shared()
        self._helper: forked.Helper | None = None
        if sum(not span.large for span in chunk.spans) > 1 and forked.may_fork():
            theirs = os.open(part, os.O_WRONLY | os.O_CLOEXEC)
            try:
                self._helper = forked.Helper(_write_there, chunk, theirs, self._shared)
            finally:
                os.close(theirs)

    def write(self, fd: int) -> Iterator[int]:
        """Write the pieces this process takes into ``fd``, then those the helper did not
        write; yields, as it goes, the bytes written from the tar's start on."""
        spans, done = self._chunk.spans, self._done
        for n, span in enumerate(spans):
            if not done[n] and (self._helper is None or span.large or self._shared.claim(n)):
                self._write_here(n, fd)
            if self._helper is not None:
                self._news(wait=False)
            yield self._whole()
        while self._helper is not None and 0 in done:
            self._news(wait=True)
            yield self._whole()
        for n in range(len(spans)):  # those of a helper that stopped
            if not done[n]:
                self._write_here(n, fd)
        yield self._whole()

    def _write_here(self, n: int, fd: int) -> None:
        _write_piece(self._chunk, self._chunk.spans[n], fd)
        self._done[n] = 1

    def _whole(self) -> int:
        """The bytes written from the tar's start on: up to the first piece not written."""
        while self._ready < len(self._done) and self._done[self._ready]:
            self._ready += 1
        return self._chunk.spans[self._ready - 1].until if self._ready else 0

    def _news(self, wait: bool) -> None:
        """Mark the pieces the helper says it has written (``wait``: at least one, or its
        end); once it has ended, it is stopped."""
        assert self._helper is not None
        try:
            while wait or forked.waiting(self._helper.pipe):
                self._done[forked.receive(self._helper.pipe)] = 1
                wait = False
        except EOFError:
            self._stop()

    def _stop(self) -> None:
        if self._helper is not None:
            self._helper.stop()
            self._helper = None

    def __enter__(self) -> _Pieces:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()
        self._shared.close()


def _write_there(pipe: Any, chunk: Chunk, fd: int, shared: forked.Shared) -> None:
    """The helper: write each piece it takes (of small files only), and say so; stop at
    the first that fails."""
    for n, span in enumerate(chunk.spans):
        if not span.large and shared.claim(n):
            try:
                _write_piece(chunk, span, fd)
            except (OSError, InputError):
                return
            pipe.send(n)


def _read_member(entry: Entry, folder: manifest.Folder) -> bytes:
    """The bytes of a small file of the package, opened in ``folder``, read at once (its
    whole path is made only to name it when something is wrong)."""
    try:
        fd = folder.open(entry.rel)
        try:  # one byte more than planned: a file that grew is seen (a regular file's
            # read returns less than asked only at its end)
            data = os.read(fd, entry.size + 1)
            while len(data) < entry.size and (more := os.read(fd, entry.size + 1 - len(data))):
                data += more
        finally:
            os.close(fd)
    except OSError as exc:
        raise _unreadable(f"{folder.base}/{entry.rel}", exc) from exc
    if len(data) != entry.size:
        raise _changed(f"{folder.base}/{entry.rel}")
    return data


def _copy_member(fd: int, entry: Entry, base: str) -> None:
    """Copy a large file of the package in ``base`` to ``fd``, in the kernel."""
    path = f"{base}/{entry.rel}"
    try:
        f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    with f:
        before = os.fstat(f.fileno())
        if (before.st_size, int(before.st_mtime)) != (entry.size, entry.mtime):
            raise _changed(path)  # since the plan: its header would say otherwise
        if copy_bytes(f.fileno(), fd, entry.size) != entry.size:
            raise InputError("the file shrank while it was being split", path, fix="run again")
        if manifest.moved(before, os.fstat(f.fileno())):  # (hard mode: the reduction's file)
            raise _changed(path)


def _changed(path: str) -> InputError:
    return InputError(
        "the file changed while it was being split (what writes it is still at work)",
        path,
        fix="let it finish, check the package (qa2 verify), then run again",
    )


def _unreadable(path: str, exc: OSError) -> InputError:
    """A part of the package that the walk or the writing cannot open or read: the
    package's fault, not the output's (which ``write`` says of any other OSError)."""
    return InputError(
        f"this part of the package cannot be read ({exc.strerror})",
        path,
        fix="check the package (qa2 verify), then run again",
    )


@dataclass(frozen=True)
class Split:
    chunks: tuple[Chunk, ...]
    digests: dict[str, str]
    md5sums: Path
    tag: str = ""  # what the chunk names carry
    tagged_by: str = ""  # why: "the MOUS UID", "the date given" or "today's date"


def tarsplit(
    packpath: Path,
    out: Path | None = None,
    max_size: str = "10G",
    date: str | None = None,
    auxiliary: bool = False,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> Split:
    """Split the package at ``packpath`` into chunks in ``out`` (default: beside it);
    ``dry_run``: the chunks it would write, with no md5s, and nothing written.

    One split of a package at a time writes into ``out`` (a lock); a set of chunks of the
    same package and tag already there (another ``--max-size``) is replaced: its chunks
    that the new set does not overwrite are removed once the new set is complete.
    """
    packpath = existing_dir(packpath, "the package directory", "give a packpath")
    check_project_code(packpath.name)
    check_real(packpath)
    if not (packpath / manifest.NAME).is_file():  # (what checks every file where it arrives)
        raise InputError(
            f"this package has no {manifest.NAME} to travel in its first chunk",
            packpath,
            fix="package it with --mode copy or --mode hard, which write it",
        )
    out = destination.planned(out or packpath.parent, "the output directory")
    if out.is_relative_to(packpath):
        raise DestinationError(
            "the chunks cannot be written inside the package they hold",
            out,
            fix="choose an --out outside the package",
        )
    package_dir.check_outside_packages(out, "the chunks", "an --out")
    limit = parse_size(max_size)
    names = Package(packpath).chunk_names(date)
    tagged_by = "the date given" if date else "the MOUS UID"
    if not date and not names.tag.startswith("uid___"):
        tagged_by = "today's date"
        log.warning(
            "the package has no single member named by its MOUS UID, so the chunks carry"
            " today's date (%s); give --date YYYY-MM-DD to choose it",
            names.tag,
        )
    if dry_run:  # the plan only: no lock taken, nothing written
        chunks, _ = plan(packpath, limit, names, auxiliary)
        return Split(tuple(chunks), {}, out / names.listing, names.tag, tagged_by)
    with destination.made(out), package_dir.holding(out / names.split):
        for stale in out.glob(f"{packpath.name}_{names.tag}_*.part"):
            log.info("removing an interrupted chunk: %s", stale)
            stale.unlink()
        older = _set_in(out, names)
        with package_dir.reading(packpath, "split"):  # no list: the chunks may be of two
            chunks, too_big = plan(packpath, limit, names, auxiliary)
            for entry in too_big:
                log.warning(
                    "larger than --max-size %s, so alone in its chunk: %s",
                    max_size,
                    os.path.join(packpath.parent, entry.rel),
                )
            digests = write(chunks, out, progress)
        listing = write_list(out, names.listing, digests)
        for name in sorted(set(older) - set(digests)):
            log.warning("removing a chunk of an earlier split of this package: %s", out / name)
            (out / name).unlink(missing_ok=True)
            (out / f"{name}.md5sum").unlink(missing_ok=True)
    return Split(tuple(chunks), digests, listing, names.tag, tagged_by)


def check_real(packpath: Path) -> None:
    """Only a real package travels: one made in fake or ticket mode holds empty files."""
    mode = Package(packpath).mode  # None: not ours, its manifest speaks for it
    if mode in PLACEHOLDER_MODES:
        raise InputError(
            f"this package was made in {mode} mode (empty files), so it is not split for delivery",
            packpath,
            fix="package it with --mode copy or --mode hard first",
        )


def _set_in(out: Path, names: ChunkNames) -> list[str]:
    """The chunks of the set ``names`` already in ``out``."""
    return [
        p.name for p in chunks_in(out) if (found := ChunkNames.of(p.name)) and found[0] == names
    ]
