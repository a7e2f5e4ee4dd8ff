"""``qa2 deliver``: publish a package's chunks for the PI to download (SPEC §9).

The chunks, their ``.md5sum`` files and the ``.md5sums`` list go into a new directory of
the web-served ``--web-root`` whose name ends in a random token, so that only whoever is
given the address finds it; an ``index.html`` lists names, sizes and checksums.  Chunks are
hard-linked (no second copy of terabytes); across file systems they are copied.  Either
way what is about to be published is verified as ``qa2 verify`` does (each chunk against
its md5, each file against the manifest it carries): only a complete, real package goes out
(a fake package has no manifest), and a chunk-named link is refused, never followed.  Given
a package directory, it is split straight into the new directory.  The directory is built
under a hidden, private name and made readable and renamed only when complete; what a
killed run left is removed by the next one for the same project.

The page tells the PI what was delivered and how to fetch and check it with ``wget`` or
``curl``, ``md5sum`` and ``tar`` alone; with ``--base-url`` the address to send is known
and a ``files.txt`` of every file's address is published for ``wget -i``.  Each delivery
records itself (``DELIVERY``) so that ``--list`` shows the deliveries of a web root with
their expiry and ``--remove`` takes one away once the PI has the data (seed 002).
"""

from __future__ import annotations

import datetime as dt
import errno
import html
import json
import logging
import os
import re
import secrets
import shutil
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from almaqa2 import destination
from almaqa2.copying import copy_file
from almaqa2.errors import DestinationError, InputError, existing_dir
from almaqa2.package import package_dir
from almaqa2.package.package_dir import ChunkNames
from almaqa2.progress import Progress
from almaqa2.sizes import human_size
from almaqa2.transfer import tarsplit
from almaqa2.transfer.verify import (
    ChunkSet,
    Report,
    VerificationError,
    check_chunks,
    find_chunks,
    package_in,
)

log = logging.getLogger(__name__)

INDEX = "index.html"
DELIVERY = ".delivery.json"  # what the delivery is, for --list and --remove
URLS = "files.txt"  # every file's address, for wget -i (with --base-url)
EXPIRES_DAYS = 30


@dataclass(frozen=True)
class Notice:
    """What the page says beyond the files: where it is, until when, whom to ask."""

    base_url: str | None = None  # the web root's address
    expires_days: int = EXPIRES_DAYS
    contact: str | None = None


@dataclass(frozen=True)
class Published:
    folder: Path  # the new directory under the web root
    files: tuple[tuple[str, int, str], ...]  # (chunk name, size, md5)
    lists: tuple[str, ...]  # the md5 files beside them
    tags: tuple[str, ...] = ()  # the MOUS UIDs (or dates) the chunks are named by
    created: str = ""  # UTC, ISO 8601
    expires: str = ""  # a date
    notice: Notice = field(default_factory=Notice)

    @property
    def url(self) -> str | None:
        """The address to send to the PI (None: no --base-url was given)."""
        base = self.notice.base_url
        return f"{base.rstrip('/')}/{self.folder.name}/" if base else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "url": self.url,
            "files": [{"name": n, "size": size, "md5": md5} for n, size, md5 in self.files],
            "checksum_files": list(self.lists),
            "tags": list(self.tags),
            "created": self.created,
            "expires": self.expires,
            "contact": self.notice.contact,
        }

    def message(self) -> str:
        """A text to paste into the ticket or the email to the PI."""
        project = self.folder.name.split("-", 1)[0]  # the token may hold "-" too
        size = human_size(sum(size for _, size, _ in self.files))
        where = self.url or f"{self.folder}/ (give its web address)"
        return (
            f"The ALMA data of {project} ({', '.join(self.tags)}) are ready: {len(self.files)}"
            f" file(s), {size} in all, until {self.expires}.\n"
            f"Download page: {where}\n"
            + (f"Fetch them all with: wget -i {self.url}{URLS}\n" if self.url else "")
            + "Check them with md5sum -c on the .md5sums file and unpack each .tar with tar xf;"
            " the page says how.\n"
        )


def deliver(
    paths: Sequence[Path],
    web_root: Path,
    max_size: str = "10G",
    progress: Progress | None = None,
    notice: Notice | None = None,
    dry_run: bool = False,
) -> Published:
    """Publish the chunks at ``paths`` (or the package at ``paths[0]``) under ``web_root``;
    ``dry_run``: what would be published (a package's chunks as planned, without md5s),
    and nothing written."""
    notice = notice or Notice()
    if notice.base_url is not None and not re.match(r"https?://[^/\s]+", notice.base_url):
        raise InputError(
            "the base URL is not an http(s) address",
            notice.base_url,
            fix="give the address the web root is served at, like https://host/deliveries",
        )
    web_root = destination.planned(web_root, "the web root")
    if len(paths) == 1 and paths[0].is_dir():
        tarsplit.check_real(paths[0])
    package_dir.check_outside_packages(web_root, "the web root", "a --web-root")
    package = package_in(paths)
    sets = [] if package else find_chunks(paths)
    projects = {package.name} if package else {s.project for s in sets}
    if len(projects) > 1:
        raise InputError(
            "these chunks belong to several projects",
            ", ".join(sorted(projects)),
            fix="deliver one project at a time",
        )
    project = projects.pop()
    if dry_run:
        return _would_publish(web_root / f"{project}-<token>", package, sets, max_size, notice)
    target = web_root / f"{project}-{secrets.token_urlsafe(24)}"
    runs = web_root / f"{project}.deliver"  # names this project's staging and lock
    with (
        destination.made(web_root),
        package_dir.holding(runs),
        package_dir.staging(runs, private=True, becomes=target) as stage,
    ):
        if package:
            split = tarsplit.tarsplit(package, stage, max_size, progress=progress)
            files = [(c.name, c.size, split.digests[c.name]) for c in split.chunks]
        else:
            files = [file for chunk_set in sets for file in _publish(chunk_set, stage)]
        report = check_chunks(find_chunks([stage]), progress)  # what the PI will fetch
        if not report.ok:
            raise VerificationError(_as_given(report, stage, sets))
        lists = sorted(p.name for p in stage.iterdir() if p.suffix != ".tar")
        tags = sorted({named[0].tag for n, _, _ in files if (named := ChunkNames.of(n))})
        now = dt.datetime.now(dt.UTC)
        expires = (now + dt.timedelta(days=notice.expires_days)).date().isoformat()
        published = Published(
            target, tuple(files), tuple(lists), tuple(tags),
            now.strftime("%Y-%m-%dT%H:%M:%SZ"), expires, notice,
        )  # fmt: skip
        _write_index(stage, project, published)
        if published.url:
            names = [n for n, _, _ in files] + lists
            (stage / URLS).write_text("".join(f"{published.url}{n}\n" for n in names))
        (stage / DELIVERY).write_text(json.dumps(published.as_dict(), indent=1) + "\n")
        package_dir.public(stage)
        package_dir.rename_new(stage, target)
    return published


def _would_publish(
    target: Path, package: Path | None, sets: list[ChunkSet], max_size: str, notice: Notice
) -> Published:
    if package is not None:
        split = tarsplit.tarsplit(package, target.parent, max_size, dry_run=True)
        files = [(c.name, c.size, "") for c in split.chunks]
        lists = [split.md5sums.name, *(f"{c.name}.md5sum" for c in split.chunks)]
    else:
        files = [
            (name, path.stat().st_size, chunk_set.expected.get(name, ""))
            for chunk_set in sets
            for name, path in sorted(chunk_set.present.items())
        ]
        lists = [chunk_set.naming.listing for chunk_set in sets]
    return Published(target, tuple(files), tuple(sorted(lists)), notice=notice)


def _publish(chunk_set: ChunkSet, stage: Path) -> list[tuple[str, int, str]]:
    """Link (or copy) each chunk and its md5 files into ``stage``; returns each chunk's
    name, size and md5 (checked by the caller, on the published files)."""
    published = []
    for name in chunk_set.names():
        chunk = chunk_set.present.get(name)
        given = chunk_set.folder / name
        if chunk is None:
            raise InputError(
                "a chunk of the set is missing",
                chunk_set.folder / name,
                fix="run 'qa2 verify' on the chunks, then deliver a complete set",
            )
        if name not in chunk_set.expected:
            raise InputError(
                "the chunk has no md5 beside it",
                chunk,
                fix="split the package again with 'qa2 tarsplit'",
            )
        _place(given, stage / name)
        published.append((name, (stage / name).stat().st_size, chunk_set.expected[name]))
        md5_file = given.with_name(f"{name}.md5sum")
        if md5_file.is_file():
            _place(md5_file, stage / md5_file.name)
    listing = chunk_set.folder / chunk_set.naming.listing
    if listing.is_file():
        _place(listing, stage / listing.name)
    return published


def _as_given(report: Report, stage: Path, sets: list[ChunkSet]) -> Report:
    """``report`` of the published copies naming each chunk and md5 file where it was
    given: the delivery being built is removed with its copies."""
    given = {
        str(stage / f"{name}{suffix}"): str(chunk_set.folder / f"{name}{suffix}")
        for chunk_set in sets
        for name in chunk_set.names()
        for suffix in ("", ".md5sum")
    }
    problems = tuple(replace(p, path=given.get(p.path, p.path)) for p in report.problems)
    return replace(report, problems=problems)


def _place(source: Path, dest: Path) -> None:
    """Hard-link the plain file ``source`` to ``dest``; where links cannot be made, copy
    it.  A link is refused: what it points at may be anybody's file."""
    if source.is_symlink() or not source.is_file():
        raise InputError(
            "a file to publish is a link or not a plain file, which is never published",
            source,
            fix="put the file itself there (qa2 tarsplit writes plain files)",
        )
    try:
        os.link(source, dest, follow_symlinks=False)
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
    copy_file(str(source), str(dest))


_STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 60em; margin: 2em auto;
       padding: 0 1em; color: #1d1d1f; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
code, pre, td.name, a.name { font-family: ui-monospace, monospace; }
a.name { text-decoration: none; border-bottom: 1px dotted #06c; color: #06c; }
pre { background: #f4f4f4; padding: .8em; overflow-x: auto; }
table { border-collapse: collapse; } td, th { padding: .25em .8em; text-align: left; }
td.size { text-align: right; } tr:nth-child(even) { background: #f7f7f7; }
.facts td:first-child { color: #555; }
"""


def _write_index(stage: Path, project: str, published: Published) -> None:
    chunks, lists = published.files, published.lists

    def link(name: str) -> str:
        href = html.escape(urllib.parse.quote(name))
        return f'<a class="name" href="{href}">{html.escape(name)}</a>'

    rows = "\n".join(
        f'<tr><td class="name">{link(name)}</td><td class="size">{human_size(size)}</td>'
        f'<td class="size">{size}</td><td><code>{md5}</code></td></tr>'
        for name, size, md5 in chunks
    )
    total = human_size(sum(size for _, size, _ in chunks))
    title = f"ALMA data delivery: {html.escape(project)}"
    listing = next((n for n in lists if n.endswith(".md5sums")), None)
    fetch = (
        f"wget -i {published.url}{URLS}\n# or: curl -s {published.url}{URLS} | xargs -n 1 curl -O"
        if published.url
        else "wget -r -np -nd -A '*.tar,*.md5sum,*.md5sums' ADDRESS-OF-THIS-PAGE"
    )
    check = f"md5sum -c {listing}" if listing else "md5sum -c *.md5sum"
    facts = [
        ("project", project),
        ("member OUS / tag", ", ".join(published.tags)),
        ("contents", f"{len(chunks)} file(s), {total}"),
        ("published", published.created),
        ("available until", published.expires),
    ]
    if published.notice.contact:
        facts.append(("questions to", published.notice.contact))
    facts_rows = "".join(f"<tr><td>{k}</td><td>{html.escape(v)}</td></tr>" for k, v in facts)
    (stage / INDEX).write_text(
        f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title><style>{_STYLE}</style></head>
<body>
<h1>{title}</h1>
<table class="facts">{facts_rows}</table>
<h2>1. Download every file</h2>
<pre>{html.escape(fetch)}</pre>
<table>
<thead><tr><th>file</th><th>size</th><th>bytes</th><th>md5</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<p>Checksums: {", ".join(link(name) for name in lists)}</p>
<h2>2. Check them</h2>
<pre>{html.escape(check)}</pre>
<p>Every line must end in OK; fetch again any file that does not.</p>
<h2>3. Unpack them</h2>
<pre>for t in *.tar; do tar xf "$t"; done
md5sum -c {html.escape(project)}/manifest.md5</pre>
<p>The second line checks every file of the unpacked package against its manifest.
The README in each member directory describes the data and how to use them.</p>
</body>
</html>
"""
    )


@dataclass(frozen=True)
class Delivery:
    """A delivery found under a web root (its record), for --list and --remove."""

    folder: Path
    record: dict[str, Any]

    @property
    def expired(self) -> bool:
        expires = self.record.get("expires") or "9999-12-31"
        return dt.date.fromisoformat(expires) < dt.datetime.now(dt.UTC).date()

    def as_dict(self) -> dict[str, Any]:
        return {**self.record, "folder": str(self.folder), "expired": self.expired}


def deliveries(web_root: Path) -> list[Delivery]:
    """The deliveries this tool published under ``web_root``, oldest first; a folder whose
    record is not one it writes is passed by, with a warning."""
    web_root = existing_dir(web_root, "the web root", "give the directory the server serves")
    found = []
    for folder in sorted(web_root.iterdir()):
        path = folder / DELIVERY
        if folder.is_dir() and not folder.is_symlink() and path.is_file():
            record = _record(path)
            if record is None:
                log.warning("not a delivery record qa2 deliver writes, passed by: %s", path)
            else:
                found.append(Delivery(folder, record))
    return sorted(found, key=lambda d: str(d.record["created"]))


def _record(path: Path) -> dict[str, Any] | None:
    """The record at ``path`` if it is one ``deliver`` writes (what ``--list`` shows of it
    has the types it wrote), else None."""
    try:
        record = json.loads(path.read_bytes())
        fits = isinstance(record["created"], str) and all(
            type(one["size"]) is int for one in record["files"]
        )
        if record.get("expires"):
            dt.date.fromisoformat(record["expires"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return record if fits else None


def remove(web_root: Path, folder: str) -> Delivery:
    """Take the delivery ``folder`` (its name or path) away from ``web_root``."""
    name = Path(folder).name
    for delivery in deliveries(web_root):
        if delivery.folder.name == name:
            try:
                shutil.rmtree(delivery.folder)
            except OSError as exc:  # (named by its last part only: the folder is said)
                fix = "check your rights to it and to the web root, then remove it again"
                if exc.errno == errno.EROFS:
                    fix = "remove it where the web root is mounted writable"
                raise DestinationError(
                    f"the delivery could not be removed ({exc.strerror})",
                    delivery.folder,
                    fix=fix,
                ) from exc
            return delivery
    raise InputError(
        "no delivery of this name under the web root",
        folder,
        fix="qa2 deliver --list --web-root DIR shows them",
    )
