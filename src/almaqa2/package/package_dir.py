"""The package on disk: the marker that says it is ours, the lock, the staging directory
beside it, and its atomic installation.

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
import errno
import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from almaqa2 import signals
from almaqa2.errors import DestinationError
from almaqa2.package import lockfile as lock

log = logging.getLogger(__name__)

MARKER = ".almaqa2.json"
"""The file at the top of a package that says almaqa2 made it, how and with which members."""


def marker(packpath: Path) -> dict[str, Any] | None:
    """What the marker of ``packpath`` says, or None if it has no readable marker of ours."""
    try:
        info = json.loads((packpath / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("tool") == "almaqa2" else None


def is_ours(packpath: Path) -> bool:
    """True if ``packpath`` holds a package this tool made (it carries our marker)."""
    return marker(packpath) is not None


@dataclass(frozen=True)
class Package:
    """A package directory (on the model of bagit's ``Bag``): what every command that opens
    one asks of it, answered in one place."""

    path: Path

    @property
    def project(self) -> str:
        return self.path.name

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


_RENAME_EXCHANGE = 2
_PREVIOUS = "previous"  # the previous package, inside an -old- directory, during a swap


def staging_prefix(packpath: Path) -> str:
    return f".{packpath.name}.almaqa2-staging-"


def old_prefix(packpath: Path) -> str:
    return f".{packpath.name}.almaqa2-old-"


def ticket_prefix(packpath: Path) -> str:
    """Ticket files being written beside packpath (renamed once the package is in)."""
    return f".{packpath.name}.almaqa2-ticket-"


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
    with contextlib.ExitStack() as cleanup:
        with signals.deferred():  # a stop between making it and registering its removal
            path = Path(tempfile.mkdtemp(prefix=staging_prefix(packpath), dir=packpath.parent))
            cleanup.callback(shutil.rmtree, path, ignore_errors=True)
        if not private:
            public(path)
        yield path


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
