"""``qa2 lock``: a named lock that outlives the command, so that two reducers do not update
the shared analysis utilities (or package the same thing) at once (SPEC §9, seed 002's
``qa2_lock``).

A lock is the file ``<QA2_LOCK_DIR>/<name>.lock`` holding who took it and when.  It is
made by hard-linking a fully written file to that name: the link either appears whole or
fails because it exists, also on NFS, so of any number of racing reducers exactly one wins.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from almaqa2 import plainfile
from almaqa2.atomic import write_new
from almaqa2.errors import InputError, LockedError, shown

ENV = "QA2_LOCK_DIR"
DEFAULT_NAME = "analysisUtils"


@dataclass(frozen=True)
class Holder:
    user: str
    host: str
    since: str
    name: str

    def __str__(self) -> str:
        return f"{self.user}@{self.host} since {self.since}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def lock_dir(path: Path | None) -> Path:
    """The shared directory of the locks (``--dir``, ``QA2_LOCK_DIR`` or the config)."""
    if path is None:
        raise InputError(
            "no lock directory is set",
            fix=f"export {ENV}=<a directory every reducer can write>, or set dir in the"
            " [lock] table of the config file",
        )
    if not path.is_dir():
        raise InputError("the lock directory does not exist", path, fix="create it")
    return path


def _path(directory: Path, name: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise InputError(f"'{name}' cannot name a lock", fix="use a plain name, e.g. analysisUtils")
    return directory / f"{name}.lock"


def status(directory: Path, name: str = DEFAULT_NAME) -> Holder | None:
    """Who holds the lock ``name``, or None."""
    try:  # what another user wrote (a pipe even): as it can be shown on one line
        with plainfile.opened(_path(directory, name)) as f:
            info = json.loads(f.read())
        user, host, since = (shown(str(info[key])) for key in ("user", "host", "since"))
        return Holder(user, host, since, name)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):  # not what ``take`` writes
        return Holder("unknown", "unknown", "unknown", name)


def take(directory: Path, name: str = DEFAULT_NAME) -> Holder:
    """Take the lock ``name``; LockedError naming the holder if someone has it."""
    target = _path(directory, name)
    me = Holder(getpass.getuser(), socket.gethostname(), time.strftime("%Y-%m-%d %H:%M"), name)
    try:
        write_new(target, json.dumps(me.as_dict()) + "\n")
    except FileExistsError:
        holder = status(directory, name)
        if holder is not None and (holder.user, holder.host) == (me.user, me.host):
            raise LockedError(  # another shell of the same reducer: still one at a time
                f"you hold the lock {name} already ({holder})",
                target,
                fix="finish that work and release it with 'qa2 lock off' first",
            ) from None
        raise LockedError(
            f"the lock {name} is held by {holder or 'someone'}",
            target,
            fix="ask them to release it (qa2 lock off), or break it with --force",
        ) from None
    except OSError as exc:  # named as the lock directory, which is what to see to
        exc.filename = str(directory)
        raise
    return me


def release(directory: Path, name: str = DEFAULT_NAME, force: bool = False) -> Holder | None:
    """Release the lock ``name``; another user's lock only with ``force``.  Returns the
    holder it had (None: it was not held)."""
    holder = status(directory, name)
    if holder is None:
        return None
    if holder.user != getpass.getuser() and not force:
        raise LockedError(
            f"the lock {name} is held by {holder}, not by you",
            _path(directory, name),
            fix="ask them to release it, or break it with --force",
        )
    with contextlib.suppress(FileNotFoundError):
        _path(directory, name).unlink()
    return holder
