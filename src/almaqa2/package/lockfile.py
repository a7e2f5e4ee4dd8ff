"""Named advisory locks that say who holds them, so a refusal can name the holder.

The lock is ``flock`` on a small file holding the holder's user, host, pid and start time.
The kernel drops it when the holder dies (even by SIGKILL), so a stale lock never blocks.
The lock file sits in a directory others may write (beside a package, in a web root), so
it is opened without following a link and must be a regular file with no other name: a
link or hard link planted there is refused, never written through.

A reader (a split or a verify of a package) only looks (``check``): it makes no file beside
what it reads, so it cannot stop a writer that starts after it.

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
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from almaqa2 import signals
from almaqa2.errors import DestinationError, LockedError, give_name

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


def _holder_text(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"{info['user']}@{info['host']} (pid {info['pid']}, since {info['since']})"
    except (OSError, ValueError, KeyError):
        return "another process"


def _locked_error(path: Path, purpose: str) -> LockedError:
    return LockedError(
        f"{purpose} is in progress by {_holder_text(path)}, lock",
        path,
        fix="wait for it to finish, then run again",
    )


@contextlib.contextmanager
def hold(path: Path, purpose: str) -> Iterator[None]:
    """Hold the lock file ``path`` for ``purpose`` or raise LockedError naming its holder."""
    with contextlib.ExitStack() as release:
        with signals.deferred():  # a stop between taking and registering the release
            fd = _take(path, purpose)
            release.callback(_release, path, fd)
        info = {
            "user": getpass.getuser(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "purpose": purpose,
        }
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(info).encode())
        except OSError as exc:  # (a full disk: os.write names no file)
            give_name(exc, path)
            raise
        yield


def _take(path: Path, purpose: str) -> int:
    """The lock file, opened and locked by us; LockedError if someone holds it."""
    while True:
        fd = _open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _close(fd)
            raise _locked_error(path, purpose) from None
        # The previous holder may have unlinked the file between our open and flock.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        _close(fd)


def check(path: Path, purpose: str) -> None:
    """LockedError if someone holds the lock file ``path`` now, doing ``purpose``: a
    reader's look, which makes no file and leaves the lock as it was."""
    try:
        fd = _open(path, readonly=True)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _locked_error(path, purpose) from None
    finally:
        _close(fd)


def _release(path: Path, fd: int) -> None:
    """Remove the lock file if it is still ours, and let go of it."""
    with contextlib.suppress(FileNotFoundError):
        if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
            os.unlink(path)
    _close(fd)


def _close(fd: int) -> None:
    with _opening:
        _held.discard(fd)
        os.close(fd)


def _open(path: Path, readonly: bool = False) -> int:
    """The lock file, opened (``readonly``: only if it is there) if it is a plain file:
    never a link planted there."""
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
