"""The package on disk: the marker that says it is ours, its files and manifest, how its
chunks are named, the lock, the staging directory beside it, and its atomic installation.

Everything is built in a hidden staging directory beside its destination and renamed into
place (an atomic exchange with the previous package where the kernel offers it), so that an
interrupted run leaves the previous package, or nothing, there.  What a killed run left
beside it (staging, tickets being written) is removed by the next run, under the lock.
The same primitives serve every command that writes a directory: package, stage, untar,
deliver and tarsplit.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import json
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from almaqa2 import manifest, plainfile, signals
from almaqa2.errors import (
    OUTPUT_REFUSED,
    Almaqa2Error,
    DestinationError,
    InputError,
    Refused,
    no_room,
)
from almaqa2.package import lockfile as lock
from almaqa2.package.rules import CHUNK_NAMES
from almaqa2.uid import PROJECT_CODE, UID_FS

log = logging.getLogger(__name__)

MARKER = ".almaqa2.json"
"""The file at the top of a package that says almaqa2 made it, how and with which members."""


def check_outside_packages(path: Path, what: str, option: str) -> None:
    """DestinationError if ``path``, where ``what`` is to be written, is in a package: a
    package holds only what its run put there (anything added fails its manifest, and
    would travel in its next split).  ``option`` names the choice to make again."""
    for folder in (path, *path.parents):
        if (folder / MARKER).is_file():
            raise DestinationError(
                f"{what} cannot be inside a package", path, fix=f"choose {option} outside {folder}"
            )


def marker(packpath: Path) -> dict[str, Any] | None:
    """What the marker of ``packpath`` says, or None if it has no readable marker of ours."""
    try:
        with plainfile.opened(packpath / MARKER) as f:
            info = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("tool") == "almaqa2" else None


def is_ours(packpath: Path) -> bool:
    """True if ``packpath`` holds a package this tool made (it carries our marker)."""
    return marker(packpath) is not None


@dataclass(frozen=True)
class Package:
    """A package directory (on the model of bagit's ``Bag``): what every command that opens
    one asks of it, answered in one place.  ``project``: its project code, the directory's
    name unless it is being built in staging."""

    path: Path
    project: str = ""

    def __post_init__(self) -> None:
        if not self.project:
            object.__setattr__(self, "project", self.path.name)

    @property
    def marker(self) -> dict[str, Any] | None:
        return marker(self.path)

    @property
    def mode(self) -> str | None:
        """The mode it was made in (None: not made by almaqa2)."""
        return (self.marker or {}).get("mode")

    def members(self) -> list[str]:
        """The members our marker lists (an append adds one); DestinationError if damaged."""
        members = (self.marker or {}).get("members")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise DestinationError(
                f"the package's {MARKER} is damaged (no list of members)",
                self.path / MARKER,
                fix="package again without --append, or restore the file from a copy",
            )
        return members

    def units(self) -> dict[str, dict[str, list[str]]]:
        """Its directories: {science goal: {group: [members]}} (empty if there is none)."""
        if not self.path.is_dir():
            return {}

        def subdirs(path: Path) -> list[str]:
            return sorted(p.name for p in path.iterdir() if p.is_dir())

        return {
            sg: {g: subdirs(self.path / sg / g) for g in subdirs(self.path / sg)}
            for sg in subdirs(self.path)
        }

    def member_dirs(self) -> list[Path]:
        """Every member directory, sorted."""
        return sorted(p for p in self.path.glob("*/*/*") if p.is_dir())

    def files(self) -> dict[str, int]:
        """{path below the package: size} of every file its manifest lists, sorted: the
        one walk of a package."""
        return manifest.files_under(self.path)

    def digests(self) -> dict[str, str]:
        """What its manifest says: {path below the package: md5} (empty: no manifest)."""
        listed = self.path / manifest.NAME
        if not listed.exists():
            return {}
        prefix = f"{self.project}/"
        try:
            digests = manifest.read(listed)
        except OSError as exc:
            raise DestinationError(
                f"the package's {manifest.NAME} cannot be read ({exc.strerror})",
                listed,
                fix="package again without --append, or restore the file from a copy",
            ) from None
        return {k.removeprefix(prefix): v for k, v in digests.items()}

    def write_digests(self, digests: dict[str, str]) -> Path:
        """Write its manifest, atomically, from {path below the package: md5}."""
        return manifest.write(self.path, self.project, digests)

    def chunk_names(self, date: str | None = None) -> ChunkNames:
        """How its chunks are named: tagged by the MOUS UID when it has exactly one member
        named by it and no ``date`` (YYYY-MM-DD) is given, else by the date (today's)."""
        members = {
            found.group(0)
            for p in self.member_dirs()
            if p.name.startswith("member.") and (found := UID_FS.search(p.name))
        }
        if len(members) == 1 and date is None:
            return ChunkNames(self.project, members.pop())
        if date is None:
            return ChunkNames(self.project, dt.date.today().strftime("%Y_%m_%d"))
        try:
            return ChunkNames(self.project, dt.date.fromisoformat(date).strftime("%Y_%m_%d"))
        except ValueError:
            raise InputError(f"'{date}' is not a date", fix="write it as YYYY-MM-DD") from None

    def link_into(self, into: Path) -> dict[str, int]:
        """Make ``into`` (an empty staging directory) hold this package as hard links
        (``cp -al``: directories made anew with their modes and times), so that an append
        is built whole beside it and installed at once; returns its files as ``files``
        does, from the same walk.  Nothing is ever written into a linked file: new files
        replace them by rename."""
        top = str(self.path)
        again = "remove it, or package again without --append"
        made: list[tuple[str, str]] = [(top, str(into))]
        found: dict[str, int] = {}
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            here = str(into) + dirpath[len(top) :]
            prefix = dirpath[len(top) + 1 :] + "/" if dirpath != top else ""
            for name in dirnames:
                if os.path.islink(os.path.join(dirpath, name)):
                    raise not_a_package_entry(os.path.join(dirpath, name), again)
                os.mkdir(os.path.join(here, name))
                made.append((os.path.join(dirpath, name), os.path.join(here, name)))
            for name in sorted(filenames):
                source = os.path.join(dirpath, name)
                st = os.lstat(source)
                if not stat.S_ISREG(st.st_mode):  # (a pipe would be waited on to hash it)
                    raise not_a_package_entry(source, again)
                os.link(source, os.path.join(here, name), follow_symlinks=False)
                found[prefix + name] = st.st_size
        for source, copy in reversed(made):  # deepest first: a child's times touch its parent
            st = os.stat(source)
            os.chmod(copy, stat.S_IMODE(st.st_mode))
            os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
        found.pop(manifest.NAME, None)
        return found


def not_a_package_entry(path: str, fix: str) -> InputError:
    """The error for an entry that no package of ours holds (a link, a pipe...: put there
    since it was made)."""
    return InputError(
        "a package holds only files and directories, and this is not one", path, fix=fix
    )


CHUNK_NAME = re.compile(
    rf"(?P<project>{PROJECT_CODE.pattern})_(?P<tag>.+)"
    r"_(?:(?P<n>\d{3,})_of_(?P<total>\d{3,})|auxiliary)\.tar"
)
"""What ``ChunkNames`` writes, read back (``fullmatch``): project, tag, number and total
(or auxiliary)."""


@dataclass(frozen=True)
class ChunkNames:
    """The names of one split of a package as the archive names them (``rules``): the
    numbered chunks, the auxiliary tar and the md5 list; ``tag`` is the MOUS UID or a date."""

    project: str
    tag: str

    def numbered(self, n: int, total: int) -> str:
        """``<project>_<tag>_<NNN>_of_<MMM>.tar``.  Past 999 chunks both numbers take the
        total's width, so names still sort in order."""
        width = max(3, len(str(total)))
        return CHUNK_NAMES["numbered"].format(
            project=self.project, tag=self.tag, n=f"{n:0{width}d}", total=f"{total:0{width}d}"
        )

    @property
    def auxiliary(self) -> str:
        return CHUNK_NAMES["auxiliary"].format(project=self.project, tag=self.tag)

    @property
    def listing(self) -> str:
        """The list of the chunks' md5s."""
        return CHUNK_NAMES["list"].format(project=self.project, tag=self.tag)

    @property
    def split(self) -> str:
        """The name whose lock a split of the package into a folder holds there."""
        return f"{self.project}_{self.tag}.split"

    @staticmethod
    def of(chunk: str) -> tuple[ChunkNames, int] | None:
        """The set a chunk's file name belongs to and its total (0: the auxiliary tar), or
        None if it is not named as a chunk."""
        found = CHUNK_NAME.fullmatch(chunk)
        if found is None:
            return None
        return ChunkNames(found["project"], found["tag"]), int(found["total"] or 0)


def chunks_in(folder: Path) -> list[Path]:
    """The chunks in ``folder``, by their names (other tars, such as tickets, left out)."""
    return [p for p in sorted(folder.glob("*.tar")) if CHUNK_NAME.fullmatch(p.name)]


_RENAME_EXCHANGE = 2
_PREVIOUS = "previous"  # the previous package, inside an -old- directory, during a swap


def staging_prefix(packpath: Path) -> str:
    return f".{packpath.name}.almaqa2-staging-"


def old_prefix(packpath: Path) -> str:
    return f".{packpath.name}.almaqa2-old-"


def ticket_prefix(packpath: Path) -> str:
    """Ticket files being written beside packpath (renamed once the package is in)."""
    return f".{packpath.name}.almaqa2-ticket-"


_LOCKED = ".almaqa2.lock"


def lock_path(path: Path) -> Path:
    """The lock file that keeps two runs from writing ``path`` at once, beside it."""
    return path.parent / f".{path.name}{_LOCKED}"


@contextlib.contextmanager
def holding(packpath: Path) -> Iterator[None]:
    """Hold the lock on ``packpath`` and tidy what a killed run left beside it."""
    with lock.hold(lock_path(packpath), _writing(packpath)):
        recover(packpath)
        yield


def _writing(packpath: Path) -> str:
    """What a run holding the lock on ``packpath`` is doing, as its refusals say it."""
    return f"writing {packpath}"


@contextlib.contextmanager
def reading(packpath: Path, doing: str) -> Iterator[None]:
    """Read the package at ``packpath`` for ``doing`` ("split", "verify"): refused while a
    package run writes it, and an error, whatever came of the reading, if one replaced it
    meanwhile (what was read may be of two packages).  A reader makes no file beside the
    package (nothing outside its target), so it cannot keep a run from starting."""
    lock.check(lock_path(packpath), _writing(packpath))
    before = _identity(packpath)
    try:
        yield
    except (Almaqa2Error, OSError) as exc:
        if _identity(packpath) != before:
            raise _replaced(packpath, doing) from exc
        raise
    if _identity(packpath) != before:
        raise _replaced(packpath, doing)


def check_not_splitting(folder: Path, names: ChunkNames | None = None) -> None:
    """LockedError if a split into ``folder`` of the set ``names`` (None: of any package)
    is still writing it: its chunks are then not all there, nor their list.  A look at
    the split's lock: nothing is made."""
    if names is not None:
        splits = [folder / names.split]
    else:  # each split whose lock file is there: .<project>_<tag>.split.almaqa2.lock
        held = folder.glob(f".*.split{_LOCKED}")
        splits = [folder / found.name[1 : -len(_LOCKED)] for found in held]
    for split in splits:
        lock.check(lock_path(split), f"splitting {split.stem} into {folder}")


def _identity(path: Path) -> tuple[int, int] | None:
    """Which directory ``path`` is (a package run installs a new one in its place)."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


def _replaced(packpath: Path, doing: str) -> InputError:
    return InputError(
        f"a package run replaced the package during the {doing}, so what was read may be"
        " of two packages",
        packpath,
        fix=f"run the {doing} again",
    )


def public(path: Path) -> None:
    """Give ``path`` the permissions the umask gives a new directory (mkdtemp's are 700)."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o777 & ~umask)


@contextlib.contextmanager
def staging(packpath: Path, private: bool = False, becomes: Path | None = None) -> Iterator[Path]:
    """A fresh staging directory beside ``packpath``, removed on the way out whatever
    happens; ``private`` keeps it unreadable to others until the caller publishes it.

    An error that names a path inside it names where that path was to be placed: the
    staging directory is hidden, and gone once the error is read.  It ``becomes``
    ``packpath`` unless given (the directory its entries are renamed into, say).  A
    write refused for want of room that names no file (Python's writes say only "No space
    left on device") is said to be where it is: beside ``packpath``.  A write the place
    refuses is said before the staging is removed (``Refused``), which may free what
    was lacking."""
    with contextlib.ExitStack() as cleanup:
        with signals.deferred():  # a stop between making it and registering its removal
            try:
                path = Path(tempfile.mkdtemp(prefix=staging_prefix(packpath), dir=packpath.parent))
            except OSError as exc:  # named as where it is: its own name is a hidden one
                exc.filename = str(packpath.parent)
                if exc.errno in OUTPUT_REFUSED:
                    raise Refused(exc) from exc
                raise
            cleanup.callback(shutil.rmtree, path, ignore_errors=True)
        if not private:
            public(path)
        try:
            yield path
        except OSError as exc:
            if exc.filename is None and exc.errno in OUTPUT_REFUSED:
                raise DestinationError(
                    f"could not write here ({exc.strerror})",
                    packpath.parent,
                    fix=f"{no_room(exc.errno, packpath.parent)}, then run again",
                ) from exc
            _name_placed(exc, path, becomes or packpath)
            if exc.errno in OUTPUT_REFUSED:  # said now: the removal frees what lacked
                raise Refused(exc) from exc
            raise
        except Almaqa2Error as exc:
            _name_placed(exc, path, becomes or packpath)
            raise


def _name_placed(exc: OSError | Almaqa2Error, stage: Path, becomes: Path) -> None:
    """Make ``exc`` name each path inside ``stage`` as the path it was to become."""

    def placed(text: str) -> str:
        return text.replace(str(stage), str(becomes))

    if isinstance(exc, OSError):
        if isinstance(exc.filename, str):
            exc.filename = placed(exc.filename)
        if isinstance(exc.filename2, str):
            exc.filename2 = placed(exc.filename2)
    else:
        exc.what = placed(exc.what)
        exc.path = None if exc.path is None else placed(exc.path)
        exc.fix = None if exc.fix is None else placed(exc.fix)
        exc.args = (str(exc),)


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


def install(built: Path, target: Path) -> None:
    """Put the directory ``built`` at ``target``, replacing what is there atomically, but
    only if that is ours: checked after the swap, since another process may have put
    something there during the build (then it is swapped back and nothing changes).

    The previous content ends up at ``built``'s path, for the caller's staging cleanup.
    """
    if not target.exists() and not target.is_symlink():
        rename_new(built, target)
        return
    if _renameat2(built, target, _RENAME_EXCHANGE):
        if built.is_symlink() or not is_ours(built):
            _renameat2(built, target, _RENAME_EXCHANGE)
            raise _appeared(target)
        return
    if target.is_symlink() or not is_ours(target):
        raise _appeared(target)
    aside = Path(tempfile.mkdtemp(prefix=old_prefix(target), dir=target.parent))
    os.rename(target, aside / _PREVIOUS)
    os.rename(built, target)
    os.rename(aside / _PREVIOUS, built)
    os.rmdir(aside)
