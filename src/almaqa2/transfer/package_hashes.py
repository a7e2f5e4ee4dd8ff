"""A package's files hashed as they are walked, in two processes at once (``qa2 verify``).

``md5sum -c`` opens each file its manifest names, and nothing else: for the hundred
thousand small files of a reduction's calibration tables that is two or three system
calls a file, and Python's own work per file costs as much again.  So no walk with a
``stat`` per file comes first.  Both processes list each directory (names and types, no
``stat``) in the same order, cut its files into runs numbered in that order (``Run``), and
each run is hashed by whichever process comes to it first (``forked.Shared.claim``), each
file opened through its directory's descriptor.  A file larger than ``manifest.SMALL`` is
only measured: the large ones are hashed afterwards on both cores, largest first
(``manifest.mismatches``), so that neither core is left with the last large file alone.
The helper sends the md5s of its runs as it makes them; this process, which walks every
run, pairs them with the names and the manifest's md5s.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from almaqa2 import forked, manifest, manyfiles
from almaqa2.errors import InputError

log = logging.getLogger(__name__)

_RUN = 256  # files of one directory hashed at once
_OPEN = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC  # (a FIFO in a package does not hang us)

Found = str | int
"""A file's md5, why it could not be read (a string of another length), or its size when
it is large (hashed later)."""


@dataclass(frozen=True, slots=True)
class Run:
    number: int
    folder: str  # below the package, with a trailing "/" ("" at its top)
    names: list[str]


def runs(top_fd: int) -> Iterator[tuple[Run, int]]:
    """The files below the package open as ``top_fd`` (but its manifest), in runs of up to
    ``_RUN`` of one directory, numbered from 0, each with its directory's descriptor (open
    until the next directory's run): each directory's files in sorted order, then its
    directories.  A link is hashed as what it points to; it is never walked into."""
    folders, number = [""], 0
    while folders:
        folder = folders.pop()
        fd = manifest.open_directory(_in_package(folder), top_fd)
        try:
            files, directories = _listed(fd)
            if not folder and manifest.NAME in files:
                files.remove(manifest.NAME)
            folders += reversed([f"{folder}{name}/" for name in directories])
            for start in range(0, len(files), _RUN):
                yield Run(number, folder, files[start : start + _RUN]), fd
                number += 1
        finally:
            os.close(fd)


def _listed(fd: int) -> tuple[list[str], list[str]]:
    """The names of the files and of the directories in the directory open as ``fd``, each
    sorted: listed apart as the directory says which is which (``manyfiles.names``: no
    ``DirEntry`` made per name, which both walking processes paid for, at 5,000 files a
    table)."""
    directories, files = manyfiles.names(fd)
    files.sort()
    directories.sort()
    return files, directories


def _in_package(folder: str) -> str:
    """``folder`` (below the package, with its trailing "/"; "": the package itself) as a
    name to open in the package's directory."""
    return folder.rstrip("/") or "."


def hashed(fd: int, names: list[str]) -> tuple[list[Found], int]:
    """What ``names`` (in the directory open as ``fd``) are found to be (``Found``), and the
    bytes hashed.  One read of a small file takes it whole: a regular file's read returns
    less than asked only at its end.  The files are opened and read by ``manyfiles``, a
    run of them in one call (Python's open, read and close of each were a third of both
    walking processes' work at 10^5 small files); the run's small files are hashed at once
    at the end (``manifest.hashed_at_once``)."""
    found: list[bytes | Found] = manyfiles.read_small(fd, names, manifest.SMALL, _OPEN)
    size = sum(len(item) for item in found if isinstance(item, bytes))
    return manifest.hashed_at_once(found), size


@dataclass
class Outcome:
    """What the two walks found, matched with the manifest: the files listed and found
    (paths below the package), those found but not listed, and the mismatches (path, md5
    listed, md5 found or why unreadable)."""

    checked: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    bad: list[tuple[str, str, str]] = field(default_factory=list)
    large: list[tuple[str, int, str]] = field(default_factory=list)  # path, size, md5 listed
    large_bytes: int = 0

    def take(self, rels: list[str], expected: list[str | None], found: list[Found]) -> None:
        if found == expected:  # (the common case, compared at once)
            return
        for rel, md5, what in zip(rels, expected, found, strict=True):
            if md5 is None:
                continue  # an extra file, counted as walked
            if isinstance(what, int):
                self.large.append((rel, what, md5))
                self.large_bytes += what
            elif what != md5:
                self.bad.append((rel, md5, what))


class Hashing:
    """The package at ``top`` walked and hashed: a helper, forked at once, starts while
    this process reads the manifest; ``compare`` then walks here too and matches both
    walks' md5s with the manifest's.  All is done here where this process may not fork,
    and what a helper that died did not send."""

    def __init__(self, top: str):
        self._top = top
        self._top_fd = manifest.open_directory(top)
        self._shared = forked.Shared()
        self._helper = forked.Helper(_walk_there, self) if forked.may_fork() else None

    def __enter__(self) -> Hashing:
        return self

    def __exit__(self, *_: object) -> None:
        if self._helper is not None:
            self._helper.stop()
        os.close(self._top_fd)
        self._shared.close()

    def compare(
        self, listed: dict[str, str], prefix: str, hashed_bytes: Callable[[int, int], None]
    ) -> Outcome:
        """The package's files matched with ``listed`` (the manifest's entries, their paths
        starting with ``prefix``: each is moved out as it is met, so those left are
        missing), the large files left to be hashed; ``hashed_bytes(done, found)`` as it
        goes and once at the end (``found``: the bytes hashed and the large files' met so
        far)."""
        outcome = Outcome()
        waiting: dict[int, tuple[Run, list[str], list[str | None]]] = {}  # the helper's runs
        answered: dict[int, list[Found]] = {}  # its answers for runs not walked here yet
        walk = runs(self._top_fd)
        theirs = 0

        def mine() -> bool:
            try:
                item = next(walk, None)
            except OSError as exc:  # (the helper stops there too, and says nothing)
                raise InputError(
                    f"a directory of the package cannot be read ({exc.strerror})",
                    os.path.join(self._top, exc.filename or ""),
                    fix="make it readable, then verify again",
                ) from exc
            if item is None:
                return False
            run, fd = item
            rels = [run.folder + name for name in run.names]
            expected = [listed.pop(prefix + rel, None) for rel in rels]
            if None in expected:
                for rel, md5 in zip(rels, expected, strict=True):
                    (outcome.extra if md5 is None else outcome.checked).append(rel)
            else:
                outcome.checked += rels
            if (found := _if_claimed(self._shared, 0, run, fd)) is not None:
                outcome.take(rels, expected, found)
                done = self._shared.done()
                hashed_bytes(done, done + outcome.large_bytes)
            elif run.number in answered:
                outcome.take(rels, expected, answered.pop(run.number))
            else:
                waiting[run.number] = run, rels, expected
            return True

        if self._helper is not None:
            try:
                for number, found in forked.received_pieces(self._helper.pipe, mine):
                    theirs += len(found)
                    if number in waiting:
                        outcome.take(*waiting.pop(number)[1:], found)
                    else:
                        answered[number] = found
            except EOFError:  # it died: what it claimed and did not send is done below
                pass
            finally:
                self._helper.stop()
                self._helper = None
        while mine():
            pass
        files = len(outcome.checked) + len(outcome.extra)
        log.debug("%d of %d files were hashed by a helper", theirs, files)
        for run, rels, expected in waiting.values():
            with manifest.opened_directory(_in_package(run.folder), self._top_fd) as fd:
                outcome.take(rels, expected, _counted(self._shared, 0, fd, run.names))
        done = self._shared.done()  # (both processes' runs, all answered now)
        hashed_bytes(done, done + outcome.large_bytes)
        return outcome


def _if_claimed(shared: forked.Shared, me: int, run: Run, fd: int) -> list[Found] | None:
    """What ``run``'s files are found to be, if process ``me`` claims it (None if the other
    did), its bytes counted as ``me``'s."""
    return _counted(shared, me, fd, run.names) if shared.claim(run.number) else None


def _counted(shared: forked.Shared, me: int, fd: int, names: list[str]) -> list[Found]:
    """``hashed``, its bytes counted as process ``me``'s."""
    found, size = hashed(fd, names)
    shared.add(me, size)
    return found


def _walk_there(pipe: Any, hashing: Hashing) -> None:
    """The helper: the runs it claims, hashed, sent as (number, what was found) as it
    goes; it stops if its parent is gone (``send_pieces``), and at a directory it cannot
    list (this process, which walks it too, says why)."""
    shared = hashing._shared

    def claimed() -> Iterator[tuple[int, list[Found]]]:
        for run, fd in runs(hashing._top_fd):
            if (found := _if_claimed(shared, 1, run, fd)) is not None:
                yield run.number, found

    with contextlib.suppress(OSError):
        forked.send_pieces(pipe, claimed())
