"""Named advisory locks that say who holds them, so a refusal can name the holder.

The lock is ``flock`` on a small file holding the holder's user, host, pid and start time.
The kernel drops it when the holder dies (even by SIGKILL), so a stale lock never blocks.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import LockedError


def _holder_text(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"{info['user']}@{info['host']} (pid {info['pid']}, since {info['since']})"
    except (OSError, ValueError, KeyError):
        return "another process"


@contextlib.contextmanager
def hold(path: Path, purpose: str) -> Iterator[None]:
    """Hold the lock file ``path`` for ``purpose`` or raise LockedError naming its holder."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(
                f"{purpose} is in progress by {_holder_text(path)}, lock",
                path,
                fix="wait for it to finish, then run again",
            ) from None
        # The previous holder may have unlinked the file between our open and flock.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        info = {
            "user": getpass.getuser(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "purpose": purpose,
        }
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)
