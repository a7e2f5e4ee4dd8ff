"""Named advisory locks that say who holds them, so a refusal can name the holder.

The lock is ``flock`` on a small file holding the holder's user, host, pid and start time.
The kernel drops it when the holder dies (even by SIGKILL), so a stale lock never blocks.
The lock file sits in a directory others may write (beside a package, in a web root), so
it is opened without following a link and must be a regular file with no other name: a
link or hard link planted there is refused, never written through.

Readers (a split or a verify of a package) share the lock: any number of them read at once,
and no writer takes it until the last is done, nor they while a writer holds it.

A process forked while a lock is held (verify's second hashing process, split's) would share
the lock and keep it after its parent is killed, so a fork closes the child's copies of the
held locks' descriptors at once: a lock lives as long as the process that took it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import json
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from almaqa2 import signals
from almaqa2.errors import DestinationError, LockedError, give_name

log = logging.getLogger(__name__)

_held: set[int] = set()  # the descriptors of the lock files this process has open
_opening = threading.Lock()  # held by a fork, so no descriptor is opened but not yet in _held


def _forget_held() -> None:
    """In a forked child: close its copies of the lock descriptors (the parent keeps its own)."""
    for fd in _held:
        os.close(fd)
    _held.clear()
    _opening.release()


os.register_at_fork(
    before=_opening.acquire, after_in_parent=_opening.release, after_in_child=_forget_held
)


def _in_progress(path: Path, purpose: str) -> str:
    """"<what its holder does> is in progress by <holder>", as the holder wrote it in the
    lock file (``purpose``, ours, where it wrote nothing we can read)."""
    try:
        info = json.loads(path.read_text())
        holder = f"{info['user']}@{info['host']} (pid {info['pid']}, since {info['since']})"
        return f"{info.get('purpose') or purpose} is in progress by {holder}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"{purpose} is in progress by another process"


@contextlib.contextmanager
def hold(path: Path, purpose: str) -> Iterator[None]:
    """Hold the lock file ``path`` for ``purpose`` or raise LockedError naming its holder."""
    with contextlib.ExitStack() as release:
        with signals.deferred():  # a stop between taking and registering the release
            fd = _take(path, purpose)
            release.callback(_release, path, fd)
        try:
            _sign(fd, purpose)
        except OSError as exc:  # (a full disk: os.write names no file)
            give_name(exc, path)
            raise
        yield


@contextlib.contextmanager
def shared(path: Path, purpose: str) -> Iterator[None]:
    """Hold the lock file ``path`` shared with other readers, for ``purpose``: no writer
    (``hold``) takes it until they are done; LockedError names a writer holding it now.
    A reader that may not make the lock file (in a directory it may only read) honours
    one that is there, and reads unlocked where there is none."""
    with contextlib.ExitStack() as release:
        with signals.deferred():  # a stop between taking and registering the release
            fd = _take_shared(path, purpose)
            if fd is not None:
                release.callback(_release_shared, path, fd)
        if fd is not None:
            with contextlib.suppress(OSError):  # a name for the writers' refusals, if it can
                _sign(fd, purpose)
        yield


def _sign(fd: int, purpose: str) -> None:
    """Write who holds the lock, and why, into its file."""
    info = {
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "purpose": purpose,
    }
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(info).encode())


def _take(path: Path, purpose: str) -> int:
    """The lock file, opened and locked by us alone; LockedError if someone holds it."""
    while True:
        fd = _open(path)
        if _locked(fd, path, fcntl.LOCK_EX, purpose):
            return fd


def _take_shared(path: Path, purpose: str) -> int | None:
    """The lock file, opened and locked by us with other readers; LockedError if a writer
    holds it; None if we may not make it and there is none."""
    while True:
        try:
            fd = _open(path)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            try:
                fd = _open(path, readonly=True)
            except FileNotFoundError:
                log.debug("reading without a lock: %s cannot be made", path)
                return None
        if _locked(fd, path, fcntl.LOCK_SH, purpose):
            return fd


def _locked(fd: int, path: Path, how: int, purpose: str) -> bool:
    """Whether the lock ``how`` was taken on ``fd``, the file still at ``path`` (else the
    file is closed: the previous holder removed it between our open and the lock; open it
    again).  LockedError if it is held."""
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except BlockingIOError:
        _close(fd)
        raise LockedError(
            f"{_in_progress(path, purpose)}, lock",
            path,
            fix="wait for it to finish, then run again",
        ) from None
    try:
        same = os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        _close(fd)
    return same


def _release(path: Path, fd: int) -> None:
    """Remove the lock file if it is still ours, and let go of it."""
    with contextlib.suppress(FileNotFoundError):
        if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
            os.unlink(path)
    _close(fd)


def _release_shared(path: Path, fd: int) -> None:
    """Let go of a shared lock; the last reader (the one that can then lock it alone)
    removes the file, as a writer does."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # another reader still holds it (or a writer just took it)
        _close(fd)
        return
    _release(path, fd)


def _close(fd: int) -> None:
    with _opening:
        _held.discard(fd)
        os.close(fd)


def _open(path: Path, readonly: bool = False) -> int:
    """The lock file, opened (``readonly``: as it is, not made) only if it is a plain
    file: never a link planted there."""
    flags = os.O_RDONLY if readonly else os.O_RDWR | os.O_CREAT
    try:
        with _opening:
            fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            _held.add(fd)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise _planted(path, "a symbolic link") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        _close(fd)
        raise _planted(path, "not a plain file" if st.st_nlink == 1 else "a hard link")
    return fd


def _planted(path: Path, what: str) -> DestinationError:
    return DestinationError(
        f"the lock file is {what}, which is never written through",
        path,
        fix="remove it (someone may have planted it), then run again",
    )
