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

from almaqa2 import forked, manifest, manyfiles
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
    (``Writer.hands_over``).  A table of a fake package is reported once, whole, by its
    directory (``FakeWriter.mirror``)."""

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
    order = sorted(plan.placements, key=_reduced_last)
    for parent in sorted({(member_dir / p.packaged).parent for p in order}):
        parent.mkdir(parents=True, exist_ok=True)  # all first: a helper may start at once
    units = [p for p in order if p.bundle is None and _mirrored(p, writer)]
    writer.start(member_dir, [(p.source, member_dir / p.dest) for p in units])
    try:
        for placement in order:
            if placement.bundle is not None:
                members = bundles.setdefault(placement.bundle.path, [])
                members.append((placement.bundle.inside, placement))
                continue
            dest = member_dir / placement.dest
            sizes[placement.dest.as_posix()] = _place(placement, dest, writer, done)
        for path, members in sorted(bundles.items()):
            dest = member_dir / path
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


def _mirrored(placement: Placement, writer: Writer) -> bool:
    """Whether ``writer`` makes ``placement`` as a directory of members (``Writer.mirror``)."""
    if placement.transform in ms.MS_TRANSFORMS:
        return writer.mirrors_ms
    return placement.transform not in _REWRITTEN and placement.source.kind is not Kind.FILE


_REWRITTEN = (Transform.GZIP, Transform.MANIFEST)


def _place(placement: Placement, dest: Path, writer: Writer, done: Done | None) -> int:
    source = placement.source
    if _mirrored(placement, writer):
        return writer.mirror(source, dest, done)
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
    writer.file(str(source.path), str(dest))  # a file (see ``_mirrored``)
    if done:
        copied = str(source.path) if writer.copies else None
        done(str(dest), source.size, source.size, copied)
    return source.size


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
    mirrors_ms = False  # True: an MS to reduce is made as its members are (not reduced)
    renames: dict[str, str]  # {source name: delivered name}: what manifests must say
    opened: dict[Path, ms.Opened]  # {an MS to reduce: what its one open found}

    def start(self, member_dir: Path, units: list[tuple[SourceEntry, Path]]) -> None:  # noqa: B027 - optional hook
        """Called once before the first file is written under ``member_dir``, with the
        directories ``mirror`` will be asked for, in that order (every directory that
        holds them is made)."""

    def mirror(self, source: SourceEntry, dest: Path, done: Done | None) -> int:
        """Make the table or plots directory ``dest`` of the members of ``source``."""
        return mirror(source, dest, self, done)

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
    links could share.  The tables and plots directories, which hold nearly all of them,
    are shared with a forked helper (``_Units``): each is made whole by whichever process
    comes to it first, so that both cores make links, with nothing sent between them and
    no two processes linking into one directory."""

    mirrors_ms = True

    def start(self, member_dir: Path, units: list[tuple[SourceEntry, Path]]) -> None:
        self._empty = _Empty(str(member_dir))
        self._units = _Units(str(member_dir), units)
        self.here = 0  # links made here

    def file(self, src: str, dst: str) -> None:
        self._empty.link(dst)
        self.here += 1

    def mirror(self, source: SourceEntry, dest: Path, done: Done | None) -> int:
        """The table or plots directory ``source`` made as ``dest``, unless the helper has
        come to it first: its directories, then its files' links in one call.  Reported
        once, whole, by whichever made it."""
        if self._units.mine(str(dest)):
            dest.mkdir()
            files = []
            for member in source.members:  # (sorted: a directory before what it holds)
                if member.size is None:
                    os.mkdir(f"{dest}/{member.rel}")
                else:
                    files.append(member.rel)
            self._empty.link_all(str(dest), files)
            self.here += len(files)
        if done:
            done(str(dest), source.size, source.size, None)
        return source.size

    def finish(self, failed: bool = False) -> None:
        try:
            there = self._units.close(failed)
        except BaseException:
            failed = True
            raise
        finally:
            self._empty.close(failed)
        log.debug("%d of %d empty files were linked here", self.here, self.here + there)

    def gzip(self, src: str, dst: str) -> int:
        self.file(src, dst)
        return os.stat(src).st_size

    def tgz(self, members: list[tuple[str, Placement]], dst: str) -> int:
        self.file("", dst)
        return sum(p.size for _, p in members)

    def manifest(self, src: str, dst: str) -> int:
        self.file(src, dst)
        return os.stat(src).st_size


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

    mirrors_ms = False

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


class _Empty:
    """Links to an empty file in ``directory``, a fresh one started before the link count
    limit (ext4 allows 65,000 links to one inode): one at a time, or a whole directory's
    in one call (``link_all``)."""

    _MAX_LINKS = 30_000

    def __init__(self, directory: str) -> None:
        self._dir = directory
        self._dir_fd = -1  # (opened with the first empty file)
        self._links = self._MAX_LINKS
        self._name = ""

    def link(self, dst: str) -> None:
        directory, _, name = dst.rpartition("/")
        self.link_all(directory, [name])

    def link_all(self, directory: str, names: list[str]) -> None:
        """Link it as each of ``names`` (relative to ``directory``, whose directories are
        made), a table's files in one call (``manyfiles.links``: one Python call per file
        was most of fake mode's time past the kernel's).  An error names the placeholder
        in the package, never the packager's own empty file."""
        fd = manifest.open_directory(directory)
        try:
            while names:
                self._fresh_when_full()
                room = self._MAX_LINKS - self._links
                batch, names = names[:room], names[room:]
                manyfiles.links(self._dir_fd, self._name, fd, batch)
                self._links += len(batch)
        except OSError as exc:  # (named in ``directory`` by manyfiles)
            exc.filename, exc.filename2 = f"{directory}/{exc.filename}", None
            raise
        finally:
            os.close(fd)

    def _fresh_when_full(self) -> None:
        if self._links >= self._MAX_LINKS:
            if self._dir_fd < 0:
                self._dir_fd = manifest.open_directory(self._dir)
            self._remove()
            fd, path = tempfile.mkstemp(prefix=".almaqa2-empty-", dir=self._dir)
            os.close(fd)
            os.chmod(path, 0o644)
            self._name, self._links = os.path.basename(path), 0

    def close(self, failed: bool = False) -> None:
        """Done linking; the empty file removed, unless the payload is being abandoned: it
        goes with the staging directory, after the error is said (removed first, it would
        free the inode whose lack a full file system's error is about)."""
        if not failed:
            self._remove()
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
            self._dir_fd = -1

    def _remove(self) -> None:
        if self._name:
            os.unlink(self._name, dir_fd=self._dir_fd)
            self._name = ""


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


class _Units:
    """The tables and plots directories of a fake package, made by this process and a
    forked helper (past ``_WORTH_A_HELPER`` files): both come to ``units`` in order, and
    each is made whole by whichever comes to it first (``forked.Shared.claim``).  The
    helper, forked with the plan, needs nothing sent; it links to an empty file of its
    own, and at the end answers its first failure (after which it makes nothing more)
    and the links it made; its empty file is removed, but after a failure (see
    ``_Empty.close``)."""

    _WORTH_A_HELPER = 1024

    def __init__(self, directory: str, units: list[tuple[SourceEntry, Path]]) -> None:
        self._index = {str(dest): i for i, (_source, dest) in enumerate(units)}
        self._shared: forked.Shared | None = None
        self._helper: forked.Helper | None = None
        files = sum(len(source.members) for source, _dest in units)
        if files >= self._WORTH_A_HELPER and forked.may_fork():
            self._shared = forked.Shared()
            self._helper = forked.Helper(_units_for_parent, directory, units, self._shared)

    def mine(self, dest: str) -> bool:
        """Whether this process makes the unit ``dest`` (the helper came to it first: no)."""
        i = self._index.get(dest)
        return self._shared is None or i is None or self._shared.claim(i)

    def close(self, failed: bool) -> int:
        """Wait for the helper to make every unit it came to and remove its empty file,
        then raise its first failure (``failed``: the payload is being abandoned: stop it
        at once); returns the links it made."""
        if self._helper is None or self._shared is None:
            return 0
        try:
            if failed:
                return 0
            try:
                error, made = forked.receive(self._helper.pipe)
            except EOFError:
                error, made = (errno.EPIPE, "the process making links stopped", None), 0
        finally:
            self._helper.stop()
            self._shared.close()
        if error is not None:
            raise OSError(*error)
        return int(made)


def _units_for_parent(
    pipe: Any, directory: str, units: list[tuple[SourceEntry, Path]], shared: forked.Shared
) -> None:
    """The helper of ``_Units``: each unit it comes to first made, then (the first failure
    or None, the links made) answered."""
    writer = FakeWriter()
    writer.start(Path(directory), [])  # (no units: it makes every link itself)
    error = None
    try:
        for i, (source, dest) in enumerate(units):
            if shared.claim(i):
                writer.mirror(source, dest, None)
    except OSError as exc:
        error = (exc.errno, exc.strerror, exc.filename, None, exc.filename2)
    finally:
        writer._empty.close(failed=error is not None)
    pipe.send((error, writer.here))


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
    def start(self, member_dir: Path, units: list[tuple[SourceEntry, Path]]) -> None:
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
