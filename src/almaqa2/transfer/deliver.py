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
"""

from __future__ import annotations

import errno
import html
import os
import secrets
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from almaqa2.copying import copy_file
from almaqa2.errors import InputError, existing_dir
from almaqa2.package import package_dir
from almaqa2.sizes import human_size
from almaqa2.transfer import tarsplit
from almaqa2.transfer.verify import (
    ChunkSet,
    Progress,
    VerificationError,
    check_chunks,
    find_chunks,
    package_in,
)

INDEX = "index.html"


@dataclass(frozen=True)
class Published:
    folder: Path  # the new directory under the web root
    files: tuple[tuple[str, int, str], ...]  # (chunk name, size, md5)
    lists: tuple[str, ...]  # the md5 files beside them


def deliver(
    paths: Sequence[Path], web_root: Path, max_size: str = "10G", progress: Progress | None = None
) -> Published:
    """Publish the chunks at ``paths`` (or the package at ``paths[0]``) under ``web_root``."""
    web_root = existing_dir(web_root, "the web root", "give the directory the server serves")
    if len(paths) == 1 and paths[0].is_dir():
        tarsplit.check_real(paths[0])
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
    target = web_root / f"{project}-{secrets.token_urlsafe(24)}"
    runs = web_root / f"{project}.deliver"  # names this project's staging and lock
    with package_dir.holding(runs), package_dir.staging(runs, private=True) as stage:
        if package:
            split = tarsplit.tarsplit(package, stage, max_size, progress=progress)
            files = [(c.name, c.size, split.digests[c.name]) for c in split.chunks]
        else:
            files = [file for chunk_set in sets for file in _publish(chunk_set, stage)]
            report = check_chunks(find_chunks([stage]), progress)
            if not report.ok:
                raise VerificationError(report)
        lists = sorted(p.name for p in stage.iterdir() if p.suffix != ".tar")
        published = Published(target, tuple(files), tuple(lists))
        _write_index(stage, project, published)
        package_dir.public(stage)
        package_dir.rename_new(stage, target)
    return published


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


def _write_index(stage: Path, project: str, published: Published) -> None:
    chunks, lists = published.files, published.lists

    def link(name: str) -> str:
        return f'<a href="{html.escape(urllib.parse.quote(name))}">{html.escape(name)}</a>'

    rows = "\n".join(
        f"<tr><td>{link(name)}</td><td>{human_size(size)}</td><td>{size}</td>"
        f"<td><code>{md5}</code></td></tr>"
        for name, size, md5 in chunks
    )
    checks = "\n".join(f"<li>{link(name)}</li>" for name in lists)
    total = human_size(sum(size for _, size, _ in chunks))
    title = f"ALMA data delivery: {html.escape(project)}"
    (stage / INDEX).write_text(
        f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title></head>
<body>
<h1>{title}</h1>
<p>{len(chunks)} file(s), {total} in all. Download every file, check them with
<code>md5sum -c</code> on the checksum files below, then unpack each tar
(<code>tar xf</code>, or <code>qa2 untar *.tar --out DIR</code>, which checks and unpacks).</p>
<table>
<thead><tr><th>file</th><th>size</th><th>bytes</th><th>md5</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<h2>Checksums</h2>
<ul>
{checks}
</ul>
</body>
</html>
"""
    )
