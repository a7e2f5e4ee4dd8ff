"""The ticket files a DRM reviews without downloading the package.

``<project>[.<SB name>].ticket.zip`` and ``.ticket.tar`` beside packpath hold the README,
every file of ``qa/`` (checklists included) and ``script/``, and ``expected_size.txt``.
In fake mode they are valid archives that hold only a note saying they are dummies.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import tarfile
import tempfile
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from almaqa2.atomic import write_together
from almaqa2.errors import DestinationError, advice
from almaqa2.package.package_dir import ticket_prefix
from almaqa2.package.plan import Plan
from almaqa2.package.readme import readable
from almaqa2.package.rules import REVIEW_NAMES, TICKET_NAMES
from almaqa2.sizes import human_size

DUMMY_NAME = "DUMMY_TICKET.txt"
DUMMY_TEXT = (
    "This ticket file is a dummy: the package was made in fake mode.\n"
    "Run the packager with --mode ticket (or copy/hard) to make a real ticket.\n"
)
EXPECTED_NAME = "expected_size.txt"
_TICKET_DIRS = ("qa", "script")


def _stem(plan: Plan) -> str:
    return plan.project if not plan.sb_name else f"{plan.project}.{plan.sb_name}"


def ticket_names(plan: Plan) -> tuple[str, str]:
    zip_name, tar_name = (name.format(stem=_stem(plan)) for name in TICKET_NAMES)
    return zip_name, tar_name


def expected_size(plan: Plan, sizes: dict[str, int], readme_size: int, others: int) -> str:
    """The delivered package's size per subdirectory of this member, for the member and
    in total, exact in every mode that makes a real ticket (``materialize.TicketWriter``).

    ``others`` is the size of the rest of the package: its bookkeeping files
    (manifest, marker) and any members already there.
    """
    per_dir: dict[str, int] = defaultdict(int)
    for dest, size in sizes.items():
        per_dir[dest.split("/", 1)[0]] += size
    member_total = sum(per_dir.values()) + readme_size
    rows = [(name, per_dir[name]) for name in sorted(per_dir)]
    rows += [(plan.readme_name, readme_size), ("member total", member_total)]
    rows += [("rest of package", others), ("package total", member_total + others)]
    lines = [
        f"Expected size of {plan.project}/{plan.member_path} as delivered (style"
        f" {plan.style.name or '-'}, a copy or hard package; this ticket: mode {plan.mode})",
        "",
        f"{'part':<16} {'bytes':>16}  human",
    ]
    lines += [f"{name:<16} {size:>16}  {human_size(size)}" for name, size in rows]
    return "\n".join(lines) + "\n"


def _contents(plan: Plan, readme_text: str, expected: str) -> list[tuple[str, Path | bytes]]:
    """(name in the archive, source file or bytes), sorted."""
    items: list[tuple[str, Path | bytes]] = [
        (plan.readme_name, readme_text.encode()),
        (EXPECTED_NAME, expected.encode()),
    ]
    items += [
        (p.dest.as_posix(), p.source.path)
        for p in plan.placements
        if p.dest.parts[0] in _TICKET_DIRS and p.bundle is None
    ]
    return sorted(items, key=lambda item: item[0])


def _write_zip(path: Path, items: list[tuple[str, Path | bytes]]) -> None:
    """Zip names are UTF-8: a file name that is not gets its bytes written ``\\xNN``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, strict_timestamps=False) as zf:
        for name, source in ((readable(n), s) for n, s in items):
            if isinstance(source, bytes):
                info = zipfile.ZipInfo(name, time.localtime()[:6])
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, source)
            else:
                zf.write(source, name)


def _write_tar(path: Path, items: list[tuple[str, Path | bytes]]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, source in items:
            if isinstance(source, bytes):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(source), int(time.time()), 0o644
                tf.addfile(info, io.BytesIO(source))
            else:
                tf.add(source, name, recursive=False)


Page = Callable[[list[tuple[str, Path | bytes]], bool], str]
"""Renders the review page of the ticket's items, with images embedded or linked."""


class Review(NamedTuple):
    """What a real ticket holds beside the package's files: ``expected_size.txt`` and the
    review page."""

    expected: str
    page: Page


def write(
    plan: Plan,
    packpath: Path,
    readme_text: str,
    review: Review | None,
    then: Callable[[], None],
) -> tuple[Path, ...]:
    """Write both ticket files, and the review page beside them, under hidden names beside
    ``packpath``, call ``then`` (the package's install), and only then rename them into
    place: a failure on the way leaves neither new tickets nor a new package.  Without a
    ``review`` (fake mode) the tickets are dummies.  Returns their paths."""
    where = packpath.parent
    items: list[tuple[str, Path | bytes]] = (
        [(DUMMY_NAME, DUMMY_TEXT.encode())]
        if review is None
        else _contents(plan, readme_text, review.expected)
    )
    writers: list[tuple[str, Callable[[Path], None]]] = [
        (name, functools.partial(writer, items=items))  # with the review page, added below
        for name, writer in zip(ticket_names(plan), (_write_zip, _write_tar), strict=True)
    ]
    if review is not None:
        inside, beside = REVIEW_NAMES
        items.insert(0, (inside, readable(review.page(items, False)).encode()))
        text = readable(review.page(items[1:], True))  # a name that is not UTF-8: its bytes as \xNN

        def alone(draft: Path) -> None:
            draft.write_text(text)

        writers.append((beside.format(stem=_stem(plan)), alone))
    drafts: list[tuple[Path, Path]] = []
    try:
        for name, make in writers:
            fd, draft = tempfile.mkstemp(prefix=ticket_prefix(packpath), dir=where)
            os.close(fd)
            drafts.append((Path(draft), where / name))
            make(Path(draft))
            os.chmod(draft, 0o644)
        then()
        for written, final in drafts:
            os.replace(written, final)
    finally:
        for written, _ in drafts:
            written.unlink(missing_ok=True)
    return tuple(final for _, final in drafts)


def attach(plan: Plan, written: tuple[Path, ...], folder: Path) -> list[Path]:
    """Fill ``folder`` with what the JIRA ticket needs attached (seed 002's ``JIRA/``):
    the ticket zip, the review page and the checklists, all or none (the package is made
    by then: what failed here is said to be this folder's)."""
    files = {
        folder / p.name: [p.read_bytes()] for p in written if p.name.endswith((".zip", ".html"))
    }
    for p in plan.placements:
        if p.dest.parts[0] == "qa" and "checklist" in p.dest.name.lower():
            files[folder / p.dest.name] = [p.source.path.read_bytes()]
    made = not folder.exists()
    try:
        folder.mkdir(exist_ok=True)
        return write_together(files)
    except OSError as exc:
        if made:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise DestinationError(
            f"the package is made, but its ticket files could not be put into --jira"
            f" ({exc.strerror})",
            exc.filename or folder,
            fix=f"{advice(exc, folder, 'another --jira')}, then run again",
        ) from exc
