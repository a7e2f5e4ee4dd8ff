"""Plan -> disk: the one module that writes the package's payload.

It writes into the staging directory ``package_dir`` provides; the package reaches
packpath only by ``package_dir.install``.
"""

from __future__ import annotations

import abc
import errno
import logging
import os
import re
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from isal import igzip

from almaqa2 import forked, manifest
from almaqa2.copying import copy_file, copy_metadata
from almaqa2.data import fitsio, ms
from almaqa2.data.ms import Written
from almaqa2.errors import DestinationError
from almaqa2.package import pipemanifest
from almaqa2.package.plan import Placement, Plan
from almaqa2.package.rules import Transform
from almaqa2.package.scan import Kind, SourceEntry

log = logging.getLogger(__name__)


class Done(Protocol):
    """Called with each payload file written, its size, the bytes of the source it accounts
    for (a reduced MS: all of them with its last file) and the source it must equal byte
    for byte (copies; None for links, fakes and files with new content); ``copy``: the
    file is not written yet, its (small) source is to be copied to it where it is hashed
    (``Writer.hands_over``)."""

    def __call__(
        self, path: str, size: int, counted: int, source: str | None, copy: bool = False
    ) -> None: ...


def check_same_device(plan: Plan, packpath: Path) -> None:
    """Hard links cannot cross file systems: refuse before anything is written."""
    dest_dev = os.stat(packpath.parent).st_dev
    for placement in plan.placements:
        if placement.transform is Transform.NONE and placement.source.dev != dest_dev:
            raise DestinationError(
                "hard links cannot cross file systems and "
                f"{placement.source.path} is not on the file system of",
                packpath.parent,
                fix="package with --mode copy, or choose a packpath on the same file system",
            )


def write_payload(
    plan: Plan,
    member_dir: Path,
    done: Done | None = None,
    opened: dict[Path, ms.Opened] | None = None,
) -> dict[str, int]:
    """Write every placement of ``plan`` under ``member_dir`` in the plan's mode.

    Returns the size each file of the package has as it will be delivered, by its path
    below the member dir (for fake and ticket modes: the size the real package would
    have, as planned).
    """
    writer = _WRITERS[plan.mode]()
    writer.renames = plan.renames
    writer.opened = opened or {}
    sizes: dict[str, int] = {}
    bundles: dict[PurePosixPath, list[tuple[str, Placement]]] = {}  # tgz: [(inside, ...)]
    writer.start(member_dir)
    try:
        for placement in sorted(plan.placements, key=_reduced_last):
            if placement.bundle is not None:
                members = bundles.setdefault(placement.bundle.path, [])
                members.append((placement.bundle.inside, placement))
                continue
            dest = member_dir / placement.dest
            dest.parent.mkdir(parents=True, exist_ok=True)
            sizes[placement.dest.as_posix()] = _place(placement, dest, writer, done)
        for path, members in sorted(bundles.items()):
            dest = member_dir / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            size = writer.tgz(sorted(members, key=lambda m: m[0]), str(dest))
            sizes[path.as_posix()] = size
            if done:
                done(str(dest), size, sum(p.size for _, p in members), None)
    except BaseException:
        writer.finish(failed=True)
        raise
    writer.finish()
    return sizes


def _reduced_last(placement: Placement) -> bool:
    """Sorts the MSes to reduce after the rest: the files linked or copied first are
    hashed on the other core at once, while this process reduces the MSes (casacore's
    work, all here).  Reduced first, they left the other core with nothing to hash; in
    the plan's order, the first EB's did (0.05 to 0.1 s of 2 s, hard and copy mode)."""
    return placement.transform in ms.MS_TRANSFORMS


def _place(placement: Placement, dest: Path, writer: Writer, done: Done | None) -> int:
    source = placement.source
    if placement.transform in ms.MS_TRANSFORMS:
        return writer.ms(source, dest, placement.transform, done)
    rewrite = {Transform.GZIP: writer.gzip, Transform.MANIFEST: writer.manifest}.get(
        placement.transform
    )
    if rewrite is not None:  # new content, hashed from what was written
        size = rewrite(str(source.path), str(dest))
        if done:
            done(str(dest), size, source.size, None)
        return size
    if source.kind is Kind.FILE:
        writer.file(str(source.path), str(dest))
        if done:
            copied = str(source.path) if writer.copies else None
            done(str(dest), source.size, source.size, copied)
        return source.size
    return mirror(source, dest, writer, done)


def mirror(source: SourceEntry, dest: Path, writer: Writer, done: Done | None) -> int:
    """Make the directory ``dest`` hold each member of the table or plots dir ``source``."""
    dest.mkdir()
    src_dir, dest_dir = f"{source.path}/", f"{dest}/"
    for member in source.members:  # plain strings: this loop runs once per file of a table
        target = dest_dir + member.rel
        if member.size is None:
            os.mkdir(target)
            continue
        source_file = member.target or src_dir + member.rel  # a link: the file it reaches
        if done and writer.hands_over(member.size):
            done(target, member.size, member.size, source_file, copy=True)
            continue
        writer.file(source_file, target)
        if done:
            done(target, member.size, member.size, source_file if writer.copies else None)
    return source.size


class Writer(abc.ABC):
    """How a file reaches the package: fake (empty), copy or hard link."""

    copies = False  # True: the file written must equal its source (checked after)
    renames: dict[str, str]  # {source name: delivered name}: what manifests must say
    opened: dict[Path, ms.Opened]  # {an MS to reduce: what its one open found}

    def start(self, member_dir: Path) -> None:  # noqa: B027 - optional hook
        """Called once before the first file is written under ``member_dir``."""

    def finish(self, failed: bool = False) -> None:  # noqa: B027 - optional hook
        """Called once after the last file (``failed``: the payload is being abandoned)."""

    @abc.abstractmethod
    def file(self, src: str, dst: str) -> None:
        """Make ``dst`` (which does not exist yet) from ``src``."""

    def hands_over(self, size: int) -> bool:
        """Whether a file of a table of ``size`` bytes is left to ``Done`` to copy."""
        return False

    def gzip(self, src: str, dst: str) -> int:
        """Compress ``src`` to ``dst`` (a real package writes new data in every mode);
        returns the compressed size."""
        with open(src, "rb") as fin, open(dst, "xb") as fout:
            st = os.fstat(fin.fileno())
            fitsio.compress(fin, fout, st.st_mtime)
            fout.flush()
            copy_metadata(st, fout.fileno())
            return os.fstat(fout.fileno()).st_size

    def manifest(self, src: str, dst: str) -> int:
        """Write the pipeline manifest ``src`` naming files as they are delivered (new
        content in every real mode); returns its size."""
        with open(src, "rb") as fin:
            text = pipemanifest.rename(fin.read(), self.renames, src)
            st = os.fstat(fin.fileno())
        with open(dst, "xb") as fout:
            fout.write(text)
            fout.flush()
            copy_metadata(st, fout.fileno())
        return len(text)

    def tgz(self, members: list[tuple[str, Placement]], dst: str) -> int:
        """Write the tgz ``dst`` of ``members`` ((path inside, placement), sorted; tables
        and plots with their files); returns its size."""
        with open(dst, "xb") as raw:
            _bundle(members, raw)
            raw.flush()
            return os.fstat(raw.fileno()).st_size

    def ms(self, source: SourceEntry, dest: Path, transform: Transform, done: Done | None) -> int:
        """Write the reduced MS (SPEC §4.2), from copies in every mode: casacore writes
        into it, which must never reach a source through a hard link.  Returns its size.

        Progress counts the whole source MS when the last of its files is reported.
        """
        files = ms.reduce(
            source.path, dest, transform, self.ms_file, self.opened[source.path], source.members
        )
        size = sum(written.size for written in files)
        self.reduced(files)
        if done:
            for i, written in enumerate(files, 1):
                counted = source.size if i == len(files) else 0
                done(written.path, written.size, counted, written.source)
        return size

    def reduced(self, files: list[Written]) -> None:  # noqa: B027 - optional hook
        """Called with the files of each reduced MS once it is complete."""

    @staticmethod
    def ms_file(src: str, dst: str) -> None:
        """A file of an MS to reduce, copied as ``cp -a`` (``ms.Place``)."""
        copy_file(src, dst)


def _bundle(members: list[tuple[str, Placement]], raw: fitsio.Sink) -> None:
    """Write the tgz of ``members`` to ``raw``, reproducibly: no time in the gzip header,
    no user or group in the tar."""
    with (
        igzip.IGzipFile(fileobj=raw, mode="wb", compresslevel=fitsio.LEVEL, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, dereference=True) as tar,
    ):
        for inside, placement in members:
            tar.add(placement.source.path, inside, filter=_anonymous)


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Tar entries carry no user or group of the reducer's machine."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class FakeWriter(Writer):
    """Empty files, made as hard links to an empty file (``_Empty``).

    Creating an inode costs ~20 times more than a link on the file systems measured, and
    a fake package can hold tens of thousands of files; an empty file has nothing that its
    links could share.  The links are made in batches of ``_SHARE``: the first here, the
    rest by a forked helper (``_HelperLinks``) unless it is behind, when this process
    makes the batch itself.  The Python around each link is this process's, so the
    helper makes more than half of them: the two cores share the work as it comes.
    """

    def start(self, member_dir: Path) -> None:
        self._dir = str(member_dir)
        self._empty = _Empty(self._dir)
        self._helper: _HelperLinks | None = None
        self._forks = forked.may_fork()
        self._batch: list[str] = []
        self.here = self.files = 0  # links made here, and in all

    def file(self, src: str, dst: str) -> None:
        self._batch.append(dst)
        if len(self._batch) == _SHARE:
            self._hand_over()

    def _hand_over(self) -> None:
        batch, self._batch = self._batch, []
        if self._helper is None and self._forks and self.files:  # past the first batch
            self._helper = _HelperLinks(self._dir)
        self.files += len(batch)
        if self._helper is not None and not self._helper.behind():
            self._helper.send(batch)
            return
        for dst in batch:
            self._empty.link(dst)
        self.here += len(batch)

    def finish(self, failed: bool = False) -> None:
        try:
            if not failed and self._batch:  # the last, short
                self._hand_over()
        except BaseException:
            failed = True
            raise
        finally:
            try:
                if self._helper is not None:
                    self._helper.close(failed)
            finally:
                self._empty.close()
        log.debug("%d of %d empty files were linked here", self.here, self.files)

    def gzip(self, src: str, dst: str) -> int:
        self.file(src, dst)
        return os.stat(src).st_size

    def tgz(self, members: list[tuple[str, Placement]], dst: str) -> int:
        self.file("", dst)
        return sum(p.size for _, p in members)

    def manifest(self, src: str, dst: str) -> int:
        self.file(src, dst)
        return os.stat(src).st_size

    def ms(self, source: SourceEntry, dest: Path, transform: Transform, done: Done | None) -> int:
        return mirror(source, dest, self, done)


class TicketWriter(FakeWriter):
    """Empty files, as in fake mode, with the sizes of the real package, so that the
    ticket's expected size is exact: what gzip, the tgz bundles and the manifest rewrite
    make is counted and not kept, and each reduced MS is made with its data cubes as holes
    of their size (casacore never reads them to drop or rename a column), then emptied."""

    def gzip(self, src: str, dst: str) -> int:
        self.file(src, dst)
        counted = _Counted(dst)
        with open(src, "rb") as fin:
            fitsio.compress(fin, counted, os.fstat(fin.fileno()).st_mtime)
        return counted.size

    def tgz(self, members: list[tuple[str, Placement]], dst: str) -> int:
        self.file("", dst)
        counted = _Counted(dst)
        _bundle(members, counted)
        return counted.size

    def manifest(self, src: str, dst: str) -> int:
        self.file(src, dst)
        with open(src, "rb") as fin:
            return len(pipemanifest.rename(fin.read(), self.renames, src))

    ms = Writer.ms

    def reduced(self, files: list[Written]) -> None:
        for written in files:
            os.truncate(written.path, 0)

    @staticmethod
    def ms_file(src: str, dst: str) -> None:
        """A file of an MS to reduce: a tiled storage manager's cube (``table.f<N>_TSM<k>``,
        nearly all of an MS's bytes) as a hole of its size, any other file copied."""
        if _CUBE.fullmatch(os.path.basename(src)):
            with open(dst, "xb") as hole:
                hole.truncate(os.stat(src).st_size)
        else:
            copy_file(src, dst)


_CUBE = re.compile(r"table\.f\d+_TSM\d+")


class _Counted:
    """A write-only file that keeps nothing but the count of bytes written to it; named as
    the file it stands for, since gzip writes that name into its header."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.size = 0

    def write(self, data: bytes, /) -> int:
        size = memoryview(data).nbytes
        self.size += size
        return size

    def flush(self) -> None:
        pass


_SHARE = 256  # files linked in one batch, by one process


class _Empty:
    """Links to an empty file in ``directory``, a fresh one started before the link count
    limit (ext4 allows 65,000 links to one inode)."""

    _MAX_LINKS = 30_000

    def __init__(self, directory: str) -> None:
        self._dir = directory
        self._links = self._MAX_LINKS
        self._path = ""
        self._linker = _Linker()

    def link(self, dst: str) -> None:
        try:
            if self._links >= self._MAX_LINKS:
                self._remove()
                fd, self._path = tempfile.mkstemp(prefix=".almaqa2-empty-", dir=self._dir)
                os.close(fd)
                os.chmod(self._path, 0o644)
                self._links = 0
            self._linker.link(self._path, dst)
        except OSError as exc:  # the empty file is the packager's own: name the placeholder
            exc.filename, exc.filename2 = dst, None
            raise
        self._links += 1

    def close(self) -> None:
        self._linker.close()
        self._remove()

    def _remove(self) -> None:
        if self._path:
            os.unlink(self._path)
            self._path = ""


class _Linker:
    """``os.link`` through the directories of the last source and destination linked,
    kept open (``manifest.Folder``); errors name both whole paths, as ``os.link``'s do."""

    def __init__(self) -> None:
        self._sources, self._dests = manifest.Folder(), manifest.Folder()

    def link(self, src: str, dst: str) -> None:
        try:
            (src_fd, src_name), (dst_fd, dst_name) = self._sources.at(src), self._dests.at(dst)
            os.link(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        except OSError as exc:  # the system named the names in the directories only
            exc.filename, exc.filename2 = src, dst
            raise

    def close(self) -> None:
        self._sources.close()
        self._dests.close()


class _HelperLinks:
    """Links to an empty file of its own, made by a forked helper from batches of paths
    (their directories already made), each batch answered once made; its first failure
    is raised by ``behind`` or ``close``, as this process's own would have been."""

    _AHEAD = 2  # batches sent and not yet made: more, and the helper is behind

    def __init__(self, directory: str) -> None:
        self._helper = forked.Helper(_link_for_parent, directory)
        self._unanswered = 0

    def send(self, batch: list[str]) -> None:
        self._put(batch)
        self._unanswered += 1

    def _put(self, message: list[str] | None) -> None:
        try:
            self._helper.pipe.send(message)
        except ConnectionError as exc:
            raise OSError(errno.EPIPE, "the process making links stopped") from exc

    def behind(self) -> bool:
        """Whether more than ``_AHEAD`` batches sent are not made yet (the answers that
        have come are read first)."""
        while self._unanswered and forked.waiting(self._helper.pipe):
            self._answer()
        return self._unanswered > self._AHEAD

    def _answer(self) -> None:
        try:
            error = forked.receive(self._helper.pipe)
        except EOFError:
            error = (errno.EPIPE, "the process making links stopped", None)
        self._unanswered -= 1
        if error is not None:
            raise OSError(*error)

    def close(self, failed: bool) -> None:
        """Wait for the helper to make every link sent and remove its empty file, then
        raise its first failure (``failed``: the payload is being abandoned: stop it at
        once)."""
        first = None
        try:
            if not failed:
                self._put(None)
                self._unanswered += 1  # the end: its empty file removed
                while self._unanswered:
                    try:
                        self._answer()
                    except OSError as exc:
                        first = first or exc
        finally:
            self._helper.stop()
        if first is not None:
            raise first


def _link_for_parent(pipe: Any, directory: str) -> None:
    """The helper: each batch linked and answered (None, or the first failure, after which
    nothing more is linked); at the end, its empty file removed, a last None."""
    empty = _Empty(directory)
    error = None
    try:
        while (batch := forked.receive(pipe)) is not None:
            for dst in batch if error is None else ():
                try:
                    empty.link(dst)
                except OSError as exc:
                    error = (exc.errno, exc.strerror, exc.filename, None, exc.filename2)
                    break
            pipe.send(error)
    finally:
        empty.close()
    pipe.send(None)


class CopyWriter(Writer):
    """Copies; the small files of tables are handed over to be copied where they are
    hashed (``manifest.Hasher``: mostly by a forked process), through memory, read once: so
    that both cores copy and hash them."""

    copies = True

    def file(self, src: str, dst: str) -> None:
        copy_file(src, dst)

    def hands_over(self, size: int) -> bool:
        return size <= manifest.SMALL


class HardWriter(Writer):
    def start(self, member_dir: Path) -> None:
        self._linker = _Linker()

    def finish(self, failed: bool = False) -> None:
        self._linker.close()

    def file(self, src: str, dst: str) -> None:
        try:
            self._linker.link(src, dst)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            raise DestinationError(
                "hard links cannot cross file systems, and this file is on another one",
                src,
                fix="package with --mode copy",
            ) from exc


_WRITERS: dict[str, type[Writer]] = {
    "fake": FakeWriter,
    "ticket": TicketWriter,
    "copy": CopyWriter,
    "hard": HardWriter,
}
