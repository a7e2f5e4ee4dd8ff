"""A small file written whole or not at all: into a hidden file beside it, created anew
(never through an existing name or a planted link), then renamed over it.  One helper for
the manifest, the marker, the md5 lists, allFluxes.txt, the downloaded md5 list and the
ticket files put into --jira (``write_together``: all or none); and, never over what is
there (``write_new``), a batch PLAN and a named lock."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Mapping
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
    return write_together({path: pieces}, mode)[0]


def write_together(files: Mapping[Path, Iterable[str | bytes]], mode: int = 0o644) -> list[Path]:
    """Write each file of ``files`` ({path: its pieces}) as ``write_atomically`` does, all
    or none: every draft is written before the first is renamed into place, so that a
    full disk leaves the files there as they were, not some new and some old; returns the
    paths."""
    if not files:
        return []
    drafts: list[Path] = []
    at = next(iter(files))
    try:
        for at, pieces in files.items():
            drafts.append(_drafted(at, pieces, mode))
        for at, draft in zip(files, drafts, strict=True):
            try:
                os.replace(draft, at)
            except IsADirectoryError:  # (the system's error named the draft, as copied)
                raise DestinationError(
                    "a directory is in the way of this file, which is never written into it",
                    at,
                    fix="move the directory away, or choose another place",
                ) from None
    except BaseException as exc:
        for draft in drafts:
            with contextlib.suppress(FileNotFoundError):
                draft.unlink()
        if isinstance(exc, OSError):  # named as the file, not as its hidden draft
            if exc.filename == str(draft_of(at)):
                exc.filename = None
            give_name(exc, at)
        raise
    return list(files)


def write_new(path: Path, text: str | bytes, mode: int = 0o644) -> Path:
    """``path`` made with ``text``, whole or not at all, and never over what is there
    already (a file or a link: FileExistsError): a draft of a name of its own (two runs
    at once, as two takers of a lock, each have theirs) is linked to ``path``."""
    draft = path.with_name(f".{path.name}.{uuid.uuid4().hex}.almaqa2-part")
    try:
        _drafted(path, [text], mode, draft)
    except OSError as exc:  # named as the file, not as its hidden draft
        if exc.filename == str(draft):
            exc.filename = None
        give_name(exc, path)
        raise
    try:
        os.link(draft, path)
    finally:
        draft.unlink()
    return path


def _drafted(
    path: Path, pieces: Iterable[str | bytes], mode: int, draft: Path | None = None
) -> Path:
    """The draft of ``path`` (``draft``, else ``draft_of``), written; none is left if
    that fails."""
    draft = draft or draft_of(path)
    draft.unlink(missing_ok=True)
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            for piece in pieces:
                out.write(
                    piece.encode("utf-8", "surrogateescape") if isinstance(piece, str) else piece
                )
            os.fchmod(out.fileno(), mode)
    except BaseException:
        draft.unlink(missing_ok=True)
        raise
    return draft
