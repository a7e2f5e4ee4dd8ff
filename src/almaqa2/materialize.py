"""Plan -> disk: the one module that writes the package's payload, always atomically.

Everything is built in a hidden staging directory beside packpath and renamed into place
(an atomic exchange with the previous package where the kernel offers it), so that an
interrupted run leaves the previous package, or nothing, under packpath.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import errno
import logging
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from isal import igzip

from . import fitsio, lock, ms
from .copying import copy_file, copy_metadata
from .errors import DestinationError
from .plan import Placement, Plan
from .rules import Transform
from .scan import Kind, SourceEntry

log = logging.getLogger(__name__)

Done = Callable[[str, int, str | None, str | None], None]
"""Called with each payload file written, the bytes it took from its source, the source
it must equal byte for byte (copies; None for links, fakes and compressed files) and its
md5 if the writer already has it (a small copy, checked as it was made)."""

_RENAME_EXCHANGE = 2
_PREVIOUS = "previous"  # the previous package, inside an -old- directory, during a swap


def staging_prefix(packpath: Path) -> str:
    return f".{packpath.name}.almaqa2-staging-"


def old_prefix(packpath: Path) -> str:
    return f".{packpath.name}.almaqa2-old-"


def ticket_prefix(packpath: Path) -> str:
    """Ticket files being written beside packpath (renamed once the package is in)."""
    return f".{packpath.name}.almaqa2-ticket-"


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


@contextlib.contextmanager
def holding(packpath: Path) -> Iterator[None]:
    """Hold the lock on ``packpath`` and tidy what a killed run left beside it."""
    lock_path = packpath.parent / f".{packpath.name}.almaqa2.lock"
    with lock.hold(lock_path, f"writing {packpath}"):
        recover(packpath)
        yield


def public(path: Path) -> None:
    """Give ``path`` the permissions the umask gives a new directory (mkdtemp's are 700)."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o777 & ~umask)


@contextlib.contextmanager
def staging(packpath: Path, private: bool = False) -> Iterator[Path]:
    """A fresh staging directory beside ``packpath``, removed on the way out whatever
    happens; ``private`` keeps it unreadable to others until the caller publishes it."""
    path = Path(tempfile.mkdtemp(prefix=staging_prefix(packpath), dir=packpath.parent))
    if not private:
        public(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def recover(packpath: Path) -> None:
    """Tidy what a killed run left beside ``packpath`` (call with the packpath lock held).

    Staging directories are half-built packages and ticket files being written are
    half-written tickets: removed.  An ``-old-`` directory is the previous package moved
    aside; if packpath is missing the run died between the two renames of the non-atomic
    fallback, so it is put back, else it is removed.
    """
    parent = packpath.parent
    for name in sorted(os.listdir(parent)):
        path = parent / name
        if name.startswith(ticket_prefix(packpath)):
            log.info("removing an interrupted ticket: %s", path)
            path.unlink(missing_ok=True)
            continue
        if name.startswith(staging_prefix(packpath)):
            log.info("removing an interrupted build: %s", path)
        elif name.startswith(old_prefix(packpath)):
            previous = path / _PREVIOUS
            if not packpath.exists() and previous.is_dir():
                log.warning("restoring the previous package from %s", previous)
                os.rename(previous, packpath)
        else:
            continue
        shutil.rmtree(path, ignore_errors=True)


_RENAME_NOREPLACE = 1


def _renameat2(a: Path, b: Path, flags: int) -> bool:
    """Linux renameat2; False where the kernel or file system does not offer it."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, bytes(a), at_fdcwd, bytes(b), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _appeared(target: Path) -> DestinationError:
    return DestinationError(
        "something not made by almaqa2 appeared at the destination while it was being built,"
        " so it was left there and nothing was installed",
        target,
        fix="find out who wrote it, move it away, then run again",
    )


def rename_new(built: Path, target: Path) -> None:
    """Rename ``built`` to ``target``, which must not exist (not even as an empty
    directory, which a plain rename would silently replace)."""
    try:
        if _renameat2(built, target, _RENAME_NOREPLACE):
            return
    except FileExistsError:
        raise _appeared(target) from None
    if target.exists() or target.is_symlink():
        raise _appeared(target)
    os.rename(built, target)


def install(built: Path, target: Path, ours: Callable[[Path], bool]) -> None:
    """Put the directory ``built`` at ``target``, replacing what is there atomically, but
    only if that is ``ours``: checked after the swap, since another process may have put
    something there during the build (then it is swapped back and nothing changes).

    The previous content ends up at ``built``'s path, for the caller's staging cleanup.
    """
    if not target.exists() and not target.is_symlink():
        rename_new(built, target)
        return
    if _renameat2(built, target, _RENAME_EXCHANGE):
        if built.is_symlink() or not ours(built):
            _renameat2(built, target, _RENAME_EXCHANGE)
            raise _appeared(target)
        return
    if target.is_symlink() or not ours(target):
        raise _appeared(target)
    aside = Path(tempfile.mkdtemp(prefix=old_prefix(target), dir=target.parent))
    os.rename(target, aside / _PREVIOUS)
    os.rename(built, target)
    os.rename(aside / _PREVIOUS, built)
    os.rmdir(aside)


def link_tree(package: Path, into: Path) -> None:
    """Make ``into`` (an empty staging directory) hold the package ``package`` as hard
    links (``cp -al``: directories made anew with their modes and times), so that an
    append is built whole beside it and installed at once.  Nothing is ever written into
    a linked file: new files replace them by rename."""
    top = str(package)
    made: list[tuple[str, str]] = [(top, str(into))]
    for dirpath, dirnames, filenames in os.walk(top):
        here = str(into) + dirpath[len(top) :]
        for name in dirnames:
            os.mkdir(os.path.join(here, name))
            made.append((os.path.join(dirpath, name), os.path.join(here, name)))
        for name in filenames:
            os.link(os.path.join(dirpath, name), os.path.join(here, name), follow_symlinks=False)
    for source, copy in reversed(made):  # deepest first: a child's times touch its parent
        st = os.stat(source)
        os.chmod(copy, stat.S_IMODE(st.st_mode))
        os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))


def write_payload(plan: Plan, member_dir: Path, done: Done | None = None) -> dict[str, int]:
    """Write every placement of ``plan`` under ``member_dir`` in the plan's mode.

    Returns the size each file of the package has as it will be delivered, by its path
    below the member dir (for fake and ticket modes: the size the real package would
    have, as planned).
    """
    writer = _WRITERS[plan.mode]()
    sizes: dict[str, int] = {}
    bundles: dict[PurePosixPath, list[tuple[str, Placement]]] = {}  # tgz: [(inside, ...)]
    writer.start(member_dir)
    try:
        for placement in plan.placements:
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
            sizes[path.as_posix()] = writer.tgz(sorted(members, key=lambda m: m[0]), str(dest))
            if done:
                done(str(dest), sum(p.size for _, p in members), None, None)
    finally:
        writer.finish()
    return sizes


def _place(placement: Placement, dest: Path, writer: Writer, done: Done | None) -> int:
    source = placement.source
    if placement.transform is Transform.GZIP:
        size = writer.gzip(str(source.path), str(dest))
        if done:
            done(str(dest), source.size, None, None)
        return size
    if placement.transform in ms.MS_TRANSFORMS:
        return writer.ms(source, dest, placement.transform, done)
    if source.kind is Kind.FILE:
        digest = writer.file(str(source.path), str(dest))
        if done:
            done(str(dest), source.size, str(source.path) if writer.copies else None, digest)
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
        digest = writer.file(src_dir + member.rel, target)
        if done:
            done(target, member.size, src_dir + member.rel if writer.copies else None, digest)
    return source.size


class Writer(abc.ABC):
    """How a file reaches the package: fake (empty), copy or hard link."""

    copies = False  # True: the file written must equal its source (checked after)

    def start(self, member_dir: Path) -> None:  # noqa: B027 - optional hook
        """Called once before the first file is written under ``member_dir``."""

    def finish(self) -> None:  # noqa: B027 - optional hook
        """Called once after the last file."""

    @abc.abstractmethod
    def file(self, src: str, dst: str) -> str | None:
        """Make ``dst`` (which does not exist yet) from ``src``; returns its md5 if that
        came for free (see ``copying.copy_file``)."""

    def gzip(self, src: str, dst: str) -> int:
        """Compress ``src`` to ``dst`` (a real package writes new data in every mode);
        returns the compressed size."""
        with open(src, "rb") as fin, open(dst, "xb") as fout:
            st = os.fstat(fin.fileno())
            fitsio.compress(fin, fout, st.st_mtime)
            fout.flush()
            copy_metadata(st, fout.fileno())
            return os.fstat(fout.fileno()).st_size

    def tgz(self, members: list[tuple[str, Placement]], dst: str) -> int:
        """Write the tgz ``dst`` of ``members`` ((path inside, placement), sorted; tables
        and plots with their files), reproducibly: no time in the gzip header."""
        with open(dst, "xb") as raw:
            with (
                igzip.IGzipFile(fileobj=raw, mode="wb", compresslevel=fitsio.LEVEL, mtime=0) as gz,
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
            ):
                for inside, placement in members:
                    tar.add(placement.source.path, inside, filter=_anonymous)
            raw.flush()
            return os.fstat(raw.fileno()).st_size

    def ms(self, source: SourceEntry, dest: Path, transform: Transform, done: Done | None) -> int:
        """Write the reduced MS (SPEC §4.2), from copies in every mode: casacore writes
        into it, which must never reach a source through a hard link.  Returns its size.

        Progress counts the whole source MS when the last of its files is reported.
        """
        files = ms.reduce(source.path, dest, transform, copy_file)
        if done:
            for i, written in enumerate(files, 1):
                done(written.path, source.size if i == len(files) else 0, written.source, None)
        return sum(written.size for written in files)


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Tar entries carry no user or group of the reducer's machine."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class FakeWriter(Writer):
    """Empty files, made as hard links to one empty file.

    Creating an inode costs ~20 times more than a link on the file systems measured, and
    a fake package can hold tens of thousands of files; an empty file has nothing that its
    links could share.  A fresh empty file is started before the link count limit.
    """

    _MAX_LINKS = 30_000  # ext4 allows 65,000 links to one inode

    def start(self, member_dir: Path) -> None:
        self._dir = member_dir
        self._links = self._MAX_LINKS
        self._empty = ""

    def file(self, src: str, dst: str) -> None:
        if self._links >= self._MAX_LINKS:
            self.finish()
            fd, self._empty = tempfile.mkstemp(prefix=".almaqa2-empty-", dir=self._dir)
            os.close(fd)
            os.chmod(self._empty, 0o644)
            self._links = 0
        os.link(self._empty, dst)
        self._links += 1

    def finish(self) -> None:
        if self._empty:
            os.unlink(self._empty)
            self._empty = ""

    def gzip(self, src: str, dst: str) -> int:
        self.file(src, dst)
        return os.stat(src).st_size

    def tgz(self, members: list[tuple[str, Placement]], dst: str) -> int:
        self.file("", dst)
        return sum(p.size for _, p in members)

    def ms(self, source: SourceEntry, dest: Path, transform: Transform, done: Done | None) -> int:
        return mirror(source, dest, self, done)


class CopyWriter(Writer):
    copies = True

    def file(self, src: str, dst: str) -> str | None:
        return copy_file(src, dst, digest=True)


class HardWriter(Writer):
    def file(self, src: str, dst: str) -> None:
        try:
            os.link(src, dst)
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
    "ticket": FakeWriter,
    "copy": CopyWriter,
    "hard": HardWriter,
}
