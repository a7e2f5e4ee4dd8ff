"""``qa2 verify``: a package against its manifest, or tar chunks against their md5 files and
the manifest they carry (SPEC §8).

Every problem is collected and reported, none stops the check: a file or chunk listed but
absent is *missing*, one present but not listed is *extra*, one whose bytes differ is
*corrupt* (with the md5 expected and the md5 found).  Paths of files are given as in the
manifest, starting with the project code.  A package's files are hashed on both cores as
they are walked (``package_hashes``).  Several chunks are read by forked helpers, one
per core, each reading a few at once, hashed whole and member by member from the same
bytes, all their streams together (``md5pair``: eight at once where the CPU has AVX2);
the helpers' findings are taken in the chunks' order.  A chunk alone is hashed whole by a
``Follower`` thread while its members are read and hashed on the other core (the two
reads go together, the second from the page cache).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import logging
import os
import stat
import tarfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, cast

from almaqa2 import forked, manifest, md5pair, plainfile
from almaqa2.errors import (
    OUTPUT_REFUSED,
    Almaqa2Error,
    DestinationError,
    InputError,
    no_room,
    shown,
)
from almaqa2.md5pair import Md5
from almaqa2.package import package_dir, pipemanifest
from almaqa2.package.package_dir import ChunkNames, chunks_in
from almaqa2.progress import Progress
from almaqa2.transfer import package_hashes, safetar, tarread

log = logging.getLogger(__name__)

_BLOCK = 1 << 20


class Trouble(StrEnum):
    """What is wrong with a file or chunk (printed and in JSON as its value)."""

    MISSING = "missing"  # listed, not there
    EXTRA = "extra"  # there, not listed
    CORRUPT = "corrupt"  # there, other bytes
    UNSAFE = "unsafe"  # a chunk member untar refuses
    RESTORE = "restore"  # what the PI's restore would not find


@dataclass(frozen=True)
class Problem:
    kind: Trouble
    path: str
    expected: str | None = None
    found: str | None = None

    def __str__(self) -> str:
        text = f"{self.kind}: {shown(self.path)}"
        if self.kind is Trouble.RESTORE:  # what the PI's restore would not find
            return f"{text}: {self.found}"
        if self.expected or self.found:  # (an md5 file's text: it may hold anything)
            expected, found = (shown(s) if s else "nothing" for s in (self.expected, self.found))
            text += f" (expected {expected}, found {found})"
        return text


@dataclass(frozen=True)
class Report:
    what: str  # package | chunks
    paths: tuple[str, ...]  # what was checked
    checked: int  # files and chunks whose bytes were compared
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "paths": list(self.paths),
            "checked": self.checked,
            "ok": self.ok,
            "problems": [{"text": str(p), **vars(p)} for p in self.problems],
        }


class VerificationError(Almaqa2Error):
    """Bytes do not match their checksums: exit code 1, with the whole report."""

    exit_code = 1

    def __init__(self, report: Report):
        self.report = report
        super().__init__(
            f"verification found {len(report.problems)} problem(s), the first: "
            f"{report.problems[0]}",
            fix="see 'qa2 verify' for all of them, and fetch the bad files again",
        )


def verify(paths: Sequence[Path], progress: Progress | None = None) -> Report:
    """Check a package directory (one path holding ``manifest.md5``) or a set of chunks
    (chunk files, or directories holding them, with their ``.md5sum`` files)."""
    for path in paths:
        if not path.exists():
            raise InputError("nothing to verify here", path, fix="give a package or chunks")
    package = package_in(paths)
    if package is not None:
        package = Path(os.path.realpath(package))
        with package_dir.reading(package, "verify"):
            return _package(package, progress)
    return check_chunks(find_chunks(paths), progress)


def package_in(paths: Sequence[Path]) -> Path | None:
    """The package directory given, if it is one: a single path holding a manifest."""
    if len(paths) == 1 and (paths[0] / manifest.NAME).is_file():
        return paths[0]
    return None


# -- a package directory -------------------------------------------------------------------


def _package(package: Path, progress: Progress | None) -> Report:
    """A package against its manifest (see ``package_hashes``): the manifest is read while
    a helper begins to hash; per file, only its path and the md5 listed are held, and the
    mismatches."""
    with package_hashes.Hashing(str(package)) as hashing:
        listed = manifest.read(package / manifest.NAME)
        project = next(iter(listed), package.name).split("/")[0]
        prefix = f"{project}/"
        counter = _Counter(progress)
        found = hashing.compare(listed, prefix, counter.small)
    large = sorted(found.large, key=lambda one: -one[1])  # largest first: both cores busy
    bad = found.bad
    if large:
        rels, sizes, expected = zip(*large, strict=True)
        bad += manifest.mismatches(str(package), rels, sizes, expected, counter.add)
    problems = [Problem(Trouble.CORRUPT, prefix + rel, md5, got) for rel, md5, got in bad]
    problems += [Problem(Trouble.MISSING, path, md5) for path, md5 in listed.items()]
    problems += [
        Problem(Trouble.EXTRA, prefix + rel, None, _what_is(package / rel)) for rel in found.extra
    ]
    problems.sort(key=lambda p: p.path)
    problems += _restore(package, project, found.checked, found.extra)
    return Report("package", (str(package),), len(found.checked), tuple(problems))


def _what_is(path: Path) -> str:
    """What an entry of a package that its manifest does not list is, in words (a link or a
    pipe was called a file)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:  # (gone meanwhile)
        return "a file"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "a file" if stat.S_ISREG(mode) else "a pipe, socket or device"


def _restore(package: Path, project: str, *files: Sequence[str]) -> list[Problem]:
    """What the PI's restore would not find in each member of a pipeline package; ``files``:
    the package's files as already listed (paths below it), not listed again.  Only the
    members holding a pipeline manifest are looked into: two passes of plain strings, as
    they run once per file."""
    by_member: dict[str, list[str]] = {
        "/".join(parts[:3]): []
        for rel in itertools.chain(*files)
        if rel.endswith(".xml") and pipemanifest.NAME.fullmatch(rel.rpartition("/")[2])
        and len(parts := rel.split("/", 3)) == 4
    }  # fmt: skip
    if by_member:
        for rel in itertools.chain(*files):
            parts = rel.split("/", 3)  # <sg>/<gous>/<member>/<subdir>/...
            if len(parts) == 4 and "/" in parts[3] and (m := "/".join(parts[:3])) in by_member:
                by_member[m].append(parts[3])
    return [
        Problem(Trouble.RESTORE, f"{project}/{member}/{rel}", found=why)
        for member, inside in sorted(by_member.items())
        for rel, why in pipemanifest.restore_problems(package / member, inside)
    ]


class _Counter:
    """Bytes hashed, and bytes found (a total that grows as the walk goes on), handed to a
    progress callback from any thread."""

    def __init__(self, progress: Progress | None, total: int = 0):
        self.done, self.total = 0, total
        self._progress = progress
        self._lock = threading.Lock()

    def small(self, done: int, total: int) -> None:
        """Where the hashing as files are walked is: ``done`` of ``total`` bytes."""
        with self._lock:
            self.done, self.total = done, total
            if self._progress:
                self._progress(done, total)

    def add(self, size: int) -> None:
        if self._progress:
            with self._lock:
                self.done += size
                self._progress(self.done, self.total)


# -- chunks --------------------------------------------------------------------------------


@dataclass
class ChunkSet:
    """The chunks of one package (same project and tag) and what their md5 files say."""

    project: str
    tag: str
    folder: Path
    present: dict[str, Path] = field(default_factory=dict)
    expected: dict[str, str] = field(default_factory=dict)  # chunk name -> md5 (when listed)
    totals: set[int] = field(default_factory=set)  # MMM of the numbered chunks: one, if whole
    disputed: dict[str, str] = field(default_factory=dict)  # name -> another md5 file's md5

    def expect(self, md5s: dict[str, str]) -> None:
        """Take in what an md5 file says.  Where the list and a chunk's own file disagree,
        the chunk must match both: ``md5sum -c`` of either fails otherwise."""
        for name, md5 in md5s.items():
            if self.expected.setdefault(name, md5) != md5:
                self.disputed[name] = md5

    @property
    def total(self) -> int:
        return max(self.totals, default=0)

    @property
    def naming(self) -> ChunkNames:
        return ChunkNames(self.project, self.tag)

    def names(self) -> list[str]:
        numbered = [self.naming.numbered(n, self.total) for n in range(1, self.total + 1)]
        return sorted({*numbered, *self.present, *self.expected})


def find_chunks(paths: Iterable[Path]) -> list[ChunkSet]:
    """Chunk sets from chunk files and directories; other tars in a directory (the ticket
    tar beside a package) are left alone, a named file that is no chunk is an error."""
    sets: dict[tuple[str, str], ChunkSet] = {}
    for path in paths:
        if path.is_dir():
            found = chunks_in(path)
            if not found:  # a split may have written none yet
                package_dir.check_not_splitting(path)
        elif ChunkNames.of(path.name):
            found = [path]
        else:
            raise InputError(
                "this is not a chunk named as 'qa2 tarsplit' names them",
                path,
                fix="give <project>_<tag>_NNN_of_MMM.tar files or their directory",
            )
        for chunk in found:
            named = ChunkNames.of(chunk.name)
            assert named is not None
            naming, total = named
            key = (naming.project, naming.tag)
            if key not in sets:
                sets[key] = ChunkSet(*key, chunk.parent)
                listing = chunk.parent / naming.listing
                if listing.is_file():
                    sets[key].expect(manifest.read(listing))
            chunk_set = sets[key]
            try:
                mode = chunk.stat().st_mode
            except FileNotFoundError:  # a link to nothing: the chunk is missing
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # (a directory: unreadable)
                raise InputError(
                    f"this chunk is {plainfile.NOT_PLAIN}, so it was not read",
                    chunk,
                    fix="fetch the chunk again",
                )
            chunk_set.present[chunk.name] = Path(os.path.realpath(chunk))
            if total:
                chunk_set.totals.add(total)
            own = chunk.with_name(f"{chunk.name}.md5sum")
            if own.is_file():
                chunk_set.expect(manifest.read(own))
    for chunk_set in sets.values():  # one still being written is neither whole nor listed
        package_dir.check_not_splitting(chunk_set.folder, chunk_set.naming)
    if not sets:
        raise InputError(
            "neither a package with manifest.md5 nor tar chunks were found",
            ", ".join(map(str, paths)),
            fix="give a package directory, chunk files or the directory holding them",
        )
    return [sets[key] for key in sorted(sets)]


def check_chunks(
    sets: list[ChunkSet], progress: Progress | None = None, into: Extraction | None = None
) -> Report:
    """Every chunk against its md5, every file against the manifest carried inside.

    With ``into``, each chunk is also extracted (as it is read) into a directory, and the
    files are checked there, as written, against the manifest.  A set whose chunks are not
    all as tarsplit writes them is read again, every chunk by tarfile.
    """
    problems: list[Problem] = []
    checked = 0
    sizes = {p: p.stat().st_size for s in sets for p in s.present.values()}
    counter = _Counter(progress, sum(sizes.values()))
    for chunk_set in sets:
        try:
            found, count = _check_set(chunk_set, sizes, counter, into, fast=into is None)
        except tarread.Irregular:
            found, count = _check_set(chunk_set, sizes, counter, into, fast=False)
        problems += found
        checked += count
    return Report(
        "chunks",
        tuple(str(p) for s in sets for p in s.present.values()),
        checked,
        tuple(problems),
    )


def _check_set(
    chunk_set: ChunkSet,
    sizes: dict[Path, int],
    counter: _Counter,
    into: Extraction | None,
    fast: bool,
) -> tuple[list[Problem], int]:
    """(problems, chunks and files checked) of one chunk set (its chunks' ``sizes`` among
    others); ``fast``: read by ``tarread`` (``tarread.Irregular`` if a chunk is not as
    tarsplit writes it)."""
    problems: list[Problem] = []
    checked = 0
    tally = _Tally(chunk_set.project)
    if len(chunk_set.totals) > 1:
        splits = " and ".join(str(n) for n in sorted(chunk_set.totals))
        problems.append(
            Problem(
                Trouble.EXTRA,
                str(chunk_set.folder),
                "one split of the package",
                f"chunks of {len(chunk_set.totals)} splits (of {splits} chunks) mixed:"
                " keep one set",
            )
        )
    present = [chunk_set.present[n] for n in chunk_set.names() if n in chunk_set.present]
    with _apart(present, [sizes[p] for p in present], fast and into is None) as apart:
        for name in chunk_set.names():
            path = chunk_set.present.get(name)
            if path is None:
                problems.append(_missing(chunk_set, name))
                continue
            before = tally.count
            if apart is not None:
                contents = apart.take(path, tally, counter.add)
            else:
                contents = read_chunk(path, counter.add, into, tally, fast)
            checked += 1 + tally.count - before
            problems += _judged(chunk_set, name, path, contents)
            problems += tally.copies
            tally.copies = []
    extracted = into.folder / chunk_set.project if into else None
    if extracted is not None and (extracted / manifest.NAME).is_file():
        report = _package(extracted, None)  # the files as written
        checked += report.checked
        problems += report.problems
    elif extracted is None and tally.listed is not None:
        problems += tally.outcome()
    else:
        problems.append(Problem(Trouble.MISSING, tally.manifest_path))
    return problems, checked


def _missing(chunk_set: ChunkSet, name: str) -> Problem:
    stopped = (chunk_set.folder / f"{name}.part").is_file()
    found = "only its .part, of a split that was stopped: split again" if stopped else None
    return Problem(
        Trouble.MISSING, str(chunk_set.folder / name), chunk_set.expected.get(name), found
    )


def _judged(chunk_set: ChunkSet, name: str, path: Path, contents: ChunkContents) -> list[Problem]:
    """A chunk's problems: its md5 against its md5 files, its tar, its unsafe members."""
    problems: list[Problem] = []
    expected = chunk_set.expected.get(name)
    said = (expected, chunk_set.disputed.get(name))
    unlike = [md5 for md5 in said if md5 is not None and md5 != contents.md5]
    if expected is None:
        problems.append(Problem(Trouble.MISSING, f"{path}.md5sum", found=contents.md5))
    elif unlike:
        problems.append(Problem(Trouble.CORRUPT, str(path), unlike[0], contents.md5))
    elif contents.error:
        problems.append(Problem(Trouble.CORRUPT, str(path), "a tar", contents.error))
    return problems + [
        Problem(Trouble.UNSAFE, member, found=why) for member, why in contents.unsafe.items()
    ]


@contextlib.contextmanager
def _apart(chunks: list[Path], sizes: list[int], fast: bool) -> Iterator[_ReadApart | None]:
    """Chunks (of ``sizes``) read by helpers, one per core, if there are several to read as
    tarsplit writes them, worth it, and this process may fork; else None (read here, one
    by one)."""
    worth = len(chunks) > 1 and sum(sizes) >= _WORTH_HELPERS
    if not (fast and worth and forked.may_fork()):
        yield None
        return
    apart = _ReadApart(chunks, sizes)
    try:
        yield apart
    finally:
        apart.stop()


class _ReadApart:
    """Chunks read whole by forked helpers, one per core (at most ``_AT_ONCE``), taken in
    order; each helper reads a group of up to ``_TOGETHER`` chunks at once, as mapped
    pages, hashed together (``_read_together``).  The cores that are free share the
    largest chunks not begun of the next ``_AHEAD`` (their readings wait until they are
    taken), each chunk to the group that then takes the least time (``_shared``): the
    groups end near the same time, and no core waits idle for the last."""

    def __init__(self, chunks: list[Path], sizes: list[int]):
        self._chunks, self._sizes = chunks, sizes
        self._next = 0  # the index of the chunk taken next
        self._begun: dict[int, tuple[_Group, int]] = {}  # by the chunk's index: its place
        self._cores = min(len(os.sched_getaffinity(0)), _AT_ONCE)
        self._read = forked.Shared(len(chunks))  # the bytes each chunk's reader has read
        self._reported = 0

    def _busy(self) -> list[forked.Later[list[_Apart]]]:
        groups = {id(group): group for group, _ in self._begun.values()}
        return [group.later for group in groups.values() if not group.later.ready()]

    def _begin(self) -> None:
        free = max(self._cores - len(self._busy()), 0)
        near = range(self._next, min(self._next + _AHEAD, len(self._chunks)))
        waiting = sorted((i for i in near if i not in self._begun), key=lambda i: -self._sizes[i])
        for members in _shared(waiting, self._sizes, free):
            group = _Group([(self._chunks[i], i) for i in members], self._read)
            for place, i in enumerate(members):
                self._begun[i] = group, place

    def take(self, chunk: Path, found: Found, read: Callable[[int], None]) -> ChunkContents:
        """``chunk``'s reading (the next in order): its files handed to ``found``;
        tarread.Irregular if it is not as tarsplit writes it.  ``read(size)`` is told of
        the bytes the readers read meanwhile (every ``_EVERY`` seconds)."""
        assert chunk == self._chunks[self._next]
        while True:
            self._begin()
            begun = self._begun.get(self._next)
            if begun is not None and begun[0].later.ready():
                break
            forked.wait_for_any(self._busy(), _EVERY)
            self._tell(read)
        del self._begun[self._next]
        self._next += 1
        group, place = begun
        contents, files = group.result(place)
        files.hand_to(found, chunk)
        self._tell(read)
        return contents

    def _tell(self, read: Callable[[int], None]) -> None:
        """``read`` told of the bytes read since it last was: a chunk taken counts whole
        (if it could not be read to its end, or its reader died and it was read again
        here, the bytes read are not its size)."""
        now = sum(
            size if i < self._next else min(self._read.of(i), size)
            for i, size in enumerate(self._sizes)
        )
        read(now - self._reported)
        self._reported = now

    def stop(self) -> None:
        for group, _ in self._begun.values():
            group.later.stop()
        self._begun.clear()
        self._read.close()


_AT_ONCE = 4  # helpers at work at most
_TOGETHER = 4  # chunks a helper reads at once: their two streams each fill a core's 8 lanes
_EVERY = 0.25  # seconds: how often the bytes the helpers read are told
_WORTH_HELPERS = 64 << 20  # bytes of chunks: fewer are read here (a fork costs more)
_AHEAD = 8  # chunks read ahead at most: each reading holds its chunk's names and md5s


def _shared(largest_first: list[int], sizes: list[int], cores: int) -> list[list[int]]:
    """The first chunks (indices, largest first) in groups for ``cores`` helpers, at most
    ``_TOGETHER`` in a group: each chunk to the group that would then take the least time
    (``_time``; the first of equal ones)."""
    groups: list[list[int]] = [[] for _ in range(min(cores, len(largest_first)))]
    for i in largest_first[: len(groups) * _TOGETHER]:
        open_ = [group for group in groups if len(group) < _TOGETHER]
        least = min(open_, key=lambda group: _time([sizes[j] for j in (*group, i)]))
        least.append(i)
    return groups


_IN_LANES = 0.6
"""How fast a stream is hashed in a vector lane, against one of two interleaved (measured:
313 against 540 MB/s on an AMD EPYC, 373 against 720 on an Intel Xeon)."""


def _time(sizes: list[int]) -> float:
    """About how long a helper takes to read chunks of ``sizes`` at once (in the time of
    a byte hashed for the chunk and its member together, two streams interleaved).
    Without vector lanes, the streams go two by two: the bytes in all.  In lanes, the
    streams of every chunk go at once, each at the lanes' speed, until one chunk is left,
    whose rest goes faster as a pair: the second largest chunk sets the time, and chunks
    much smaller than the largest come nearly for free."""
    if not md5pair.LANES:
        return sum(sizes)
    largest, second, *_ = [*sorted(sizes, reverse=True), 0]
    return second / _IN_LANES + largest - second


class _Group:
    """Chunks read at once by one helper; their readings, each taken once."""

    def __init__(self, chunks: list[tuple[Path, int]], read: forked.Shared):
        self.later = forked.Later(_read_together, chunks, read)
        self._readings: list[_Apart] | None = None

    def result(self, place: int) -> _Apart:
        if self._readings is None:
            self._readings = self.later.result()
        return self._readings[place]


class _Files:
    """A chunk's files as a helper read them, to be handed on in order where it is taken
    (plain lists: quick to send)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.md5s: list[str] = []
        self.manifests: dict[int, bytes] = {}  # index of the file -> its data

    def member(self, name: str, md5: str, chunk: Path) -> None:
        self.names.append(name)
        self.md5s.append(md5)

    def carried(self, data: bytes) -> None:
        self.manifests[len(self.names)] = data  # (said just before its member)

    def hand_to(self, found: Found, chunk: Path) -> None:
        for i, (name, md5) in enumerate(zip(self.names, self.md5s, strict=True)):
            if i in self.manifests:
                found.carried(self.manifests[i])
            found.member(name, md5, chunk)


_Apart = tuple["ChunkContents", _Files]


def _read_together(chunks: list[tuple[Path, int]], read: forked.Shared) -> list[_Apart]:
    """Chunks (path, index) read at once (in a helper), each in a thread of its own by
    ``_read_own``, hashed whole from the same bytes, the buffers of all hashed together
    (``tarread.Together``); the bytes read counted in ``read``'s slot of each index.
    What one of them raised is raised, once all have ended.  A helper reads the chunks
    as mapped pages; its parent, if the helper died, by reading them."""
    log.debug("%s: read at once by process %d", " ".join(c.name for c, _ in chunks), os.getpid())
    together = tarread.Together(len(chunks))
    mapped = forked.in_helper()
    readings: list[_Apart | BaseException] = [RuntimeError("not read")] * len(chunks)

    def one(chunk: Path, me: int) -> _Apart:
        try:
            whole, files = Md5(), _Files()
            counted = functools.partial(read.add, me)
            unsafe, error, unreadable = _read_own(
                chunk, _project_of(chunk), files, whole, counted, together, mapped
            )
        finally:
            together.leave()
        md5 = f"unreadable ({unreadable})" if unreadable else whole.hexdigest()
        return ChunkContents(md5, unsafe, error), files

    def keep(place: int) -> None:
        try:
            readings[place] = one(*chunks[place])
        except BaseException as exc:
            readings[place] = exc

    threads = [  # (daemons: a parent stopped while it reads them, after its helper died, exits)
        threading.Thread(target=keep, args=(place,), daemon=True) for place in range(len(chunks))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for reading in readings:
        if isinstance(reading, BaseException):
            raise reading
    return cast(list[_Apart], readings)


class _Tally:
    """A chunk set's files against the manifest it carries, as they are read.

    Once the manifest is known (tarsplit puts it first) each file is checked as it comes
    and its line in the manifest's dict marked as checked (its md5 replaced by None, the
    string freed); nothing else is kept per file, so a million-file set fits beside its
    manifest."""

    def __init__(self, project: str):
        self.manifest_path = f"{project}/{manifest.NAME}"
        self.listed: dict[str, str | None] | None = None
        self.pending: dict[str, str] = {}  # files read before the manifest
        self.unlisted: set[str] = set()  # files not in the manifest, met
        self.differ: list[Problem] = []  # extra and corrupt files
        self.copies: list[Problem] = []  # second copies, in the order met
        self.count = 0

    def carried(self, data: bytes) -> None:
        """The manifest was read: check the files read before it."""
        self.listed = cast("dict[str, str | None]", manifest.parse(data))  # the same dict
        pending, self.pending = self.pending, {}
        for name, md5 in pending.items():
            self._check(name, md5)

    def member(self, name: str, md5: str, chunk: Path) -> None:
        self.count += 1
        if self.listed is None:
            if name in self.pending:
                self._copy(name, chunk)
            self.pending[name] = md5
        elif name in self.unlisted or (name in self.listed and self.listed[name] is None):
            self._copy(name, chunk)
        else:
            self._check(name, md5)

    def _copy(self, name: str, chunk: Path) -> None:
        self.copies.append(Problem(Trouble.EXTRA, name, found=f"a second copy in {chunk}"))

    def _check(self, name: str, md5: str) -> None:
        assert self.listed is not None
        if name == self.manifest_path or name not in self.listed:  # not a file it lists
            self.unlisted.add(name)
            if name != self.manifest_path:
                self.differ.append(Problem(Trouble.EXTRA, name, None, md5))
            return
        expected, self.listed[name] = self.listed[name], None
        if expected != md5:
            self.differ.append(Problem(Trouble.CORRUPT, name, expected, md5))

    def outcome(self) -> list[Problem]:
        """The files that differ from the manifest, and those it lists that never came."""
        assert self.listed is not None
        missing = [
            Problem(Trouble.MISSING, p, md5) for p, md5 in self.listed.items() if md5 is not None
        ]
        return sorted(self.differ + missing, key=lambda p: p.path)


@dataclass(frozen=True)
class ChunkContents:
    md5: str  # of the whole chunk
    unsafe: dict[str, str]  # member name -> why untar refuses it
    error: str | None  # why the tar could not be read to its end


@dataclass(frozen=True)
class Extraction:
    """Where chunks are extracted, and the package directory every member must lie in."""

    folder: Path
    top: str


def read_chunk(
    path: Path,
    read: Callable[[int], None],
    into: Extraction | None,
    tally: _Tally,
    fast: bool,
) -> ChunkContents:
    """Hash a chunk and each of its members (handed to ``tally``), or with ``into``
    extract them (an unsafe member stops everything: InputError).  ``read(size)`` follows
    the whole-chunk hash; ``fast``: read by ``tarread`` (``tarread.Irregular`` if the
    chunk is not as tarsplit writes it), else by tarfile."""
    follower = manifest.Follower(path, read)
    follower.written(path.stat().st_size)
    top = into.top if into else _project_of(path)
    try:
        if fast:
            unsafe, error, _ = _read_own(path, top, tally)
        else:
            unsafe, error = _read_with_tarfile(path, top, into, tally)
    except BaseException:
        follower.close()
        raise
    try:
        md5 = follower.hexdigest()
    except OSError as exc:
        md5 = f"unreadable ({exc.strerror})"
    return ChunkContents(md5, unsafe, error)


class Found(Protocol):
    """What a chunk's reader hands its files to (``_Tally``)."""

    def member(self, name: str, md5: str, chunk: Path) -> None: ...
    def carried(self, data: bytes) -> None: ...


_Read = tuple[dict[str, str], str | None]  # (unsafe members, why the tar could not be read)


def _read_with_tarfile(path: Path, top: str | None, into: Extraction | None, found: Found) -> _Read:
    """A chunk read by tarfile (any tar; the extraction of ``qa2 untar``): its files'
    md5s handed to ``found``, with ``into`` the members extracted instead.  A member that
    ``qa2 untar`` would refuse is recorded as ``unsafe (why)``; with ``into`` it stops
    everything.  Headers are read by tarfile; a member's data straight from the file at
    its offset (tarfile's stream reader took twice as long)."""
    unsafe: dict[str, str] = {}
    view = memoryview(bytearray(_BLOCK))
    try:
        chunk = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:  # the chunk's fault (a directory in its place), not the output's
        return unsafe, f"an unreadable file ({exc.strerror})"
    try:
        with chunk as f, tarfile.open(fileobj=f, mode="r:") as tar:
            for member in tar:
                why = safetar.why_unsafe(member, top)
                if why is not None:
                    if into is not None:
                        raise safetar.unsafe(path, member.name, why)
                    unsafe[member.name] = why
                elif into is not None:
                    safetar.extract(f.fileno(), member, into.folder, path)
                elif member.isreg():
                    if _carried(member.name):
                        found.carried(os.pread(f.fileno(), member.size, member.offset_data))
                    found.member(member.name, _md5_at(f.fileno(), member, view), path)
    except OSError as exc:
        if into is None:
            return unsafe, f"an unreadable file ({exc.strerror})"
        if exc.errno in OUTPUT_REFUSED:
            raise DestinationError(
                f"could not extract the chunk ({exc.strerror})",
                into.folder.parent,
                fix=f"{no_room(exc.errno, into.folder.parent, 'another --out')}, then run again",
            ) from exc
        raise InputError(
            f"could not extract the chunk: reading it or writing it out failed ({exc.strerror})",
            path,
            fix="check the disk the chunks are on (fetch them again if it fails) and --out's,"
            " then run again",
        ) from exc
    except (tarfile.TarError, EOFError) as exc:
        return unsafe, f"an unreadable tar ({exc})"
    return unsafe, None


def _read_own(
    path: Path,
    top: str | None,
    found: Found,
    whole: Md5 | None = None,
    read: Callable[[int], None] | None = None,
    together: tarread.Together | None = None,
    mapped: bool = False,
) -> tuple[dict[str, str], str | None, str | None]:
    """A chunk as tarsplit writes it, read front to back once (``tarread``), as
    ``_read_with_tarfile`` reads it; ``tarread.Irregular`` if it holds anything else.
    ``whole``: fed the chunk's bytes; ``read``: told of the bytes read; ``together``: the
    chunks read at once in other threads; ``mapped``: read as mapped pages (a helper).
    (unsafe members, why the tar could not be read, why the file could not: its
    system's words)."""
    unsafe: dict[str, str] = {}
    try:
        with open(path, "rb", buffering=0) as f:
            for member in tarread.members(f.fileno(), _carried, whole, read, together, mapped):
                why = safetar.why_unsafe_name(member.name, top)
                if why is not None:
                    unsafe[member.name] = why
                elif member.md5 is not None:
                    if member.data is not None:
                        found.carried(member.data)
                    found.member(member.name, member.md5, path)
    except OSError as exc:
        return unsafe, f"an unreadable file ({exc.strerror})", exc.strerror
    return unsafe, None, None


_CARRIED = f"/{manifest.NAME}"


def _carried(name: str) -> bool:
    """Whether a chunk member is the package's manifest (at the top of the package)."""
    return name.endswith(_CARRIED) and name.count("/") == 1


def _project_of(chunk: Path) -> str | None:
    found = ChunkNames.of(chunk.name)
    return found[0].project if found else None


def _md5_at(fd: int, member: tarfile.TarInfo, view: memoryview) -> str:
    """The md5 of a member's data, read from the tar at its offset."""
    digest = hashlib.md5()
    offset, left = member.offset_data, member.size
    while left:
        n = os.preadv(fd, [view[: min(left, len(view))]], offset)
        if n == 0:
            raise EOFError(f"the tar ends inside {member.name}")
        digest.update(view[:n])
        offset, left = offset + n, left - n
    return digest.hexdigest()
