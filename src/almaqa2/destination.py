"""Where a command writes: the one rule for every destination directory.

A destination that exists is used; one whose last level is missing is made, as ``mkdir``
makes it, but never its parents, so that a mistyped parent still fails.  It is made only
when the writing starts, and removed again if the command fails before anything lands
in it: a refused run leaves no empty directory behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from almaqa2.errors import InputError


def planned(path: Path, what: str) -> Path:
    """``path`` as an absolute path, if it is a directory or can be made as its last
    level; else InputError naming ``what``."""
    if path.is_dir():
        return Path(os.path.realpath(path))
    if path.exists() or path.is_symlink():
        raise InputError(f"{what} is not a directory", path, fix="give a directory")
    if not path.parent.is_dir():
        raise InputError(
            f"{what} cannot be made, its parent directory does not exist",
            path,
            fix="check the path, or create the parent first",
        )
    return Path(os.path.realpath(path.parent)) / path.name


@contextlib.contextmanager
def made(path: Path) -> Iterator[Path]:
    """The ``planned`` directory ``path``, made if missing for the writing inside the
    ``with``, and removed again if that fails while it is still empty."""
    try:
        path.mkdir()
    except FileExistsError:
        yield path
        return
    try:
        yield path
    except BaseException:
        with contextlib.suppress(OSError):  # not empty: what landed there is reported
            path.rmdir()
        raise
