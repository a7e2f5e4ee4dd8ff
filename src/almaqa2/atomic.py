"""A small file written whole or not at all: into a hidden file beside it, created anew
(never through an existing name or a planted link), then renamed over it.  One helper for
the manifest, the marker, the md5 lists, allFluxes.txt and the downloaded md5 list."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from almaqa2.errors import DestinationError, give_name


def draft_of(path: Path) -> Path:
    """The hidden name ``path`` is written under first; what a killed run left there is
    replaced by the next write of ``path``."""
    return path.with_name(f".{path.name}.almaqa2-part")


def write_atomically(path: Path, text: str | bytes, mode: int = 0o644) -> Path:
    """Replace ``path`` by ``text`` (str: UTF-8, undecodable file-name bytes kept as they
    were) in one rename; returns ``path``."""
    return write_pieces_atomically(path, [text], mode)


def write_pieces_atomically(path: Path, pieces: Iterable[str | bytes], mode: int = 0o644) -> Path:
    """``write_atomically`` of the text made of ``pieces``, written as they come (a
    million-line manifest is never held whole)."""
    draft = draft_of(path)
    draft.unlink(missing_ok=True)
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            for piece in pieces:
                out.write(
                    piece.encode("utf-8", "surrogateescape") if isinstance(piece, str) else piece
                )
            os.fchmod(out.fileno(), mode)
        try:
            os.replace(draft, path)
        except IsADirectoryError:  # (the system's error named the draft, as copied)
            raise DestinationError(
                "a directory is in the way of this file, which is never written into it",
                path,
                fix="move the directory away, or choose another place",
            ) from None
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            draft.unlink()
        if isinstance(exc, OSError):
            give_name(exc, path)
        raise
    return path
