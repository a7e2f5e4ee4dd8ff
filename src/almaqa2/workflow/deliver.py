"""``qa2 deliver``: publish a package's chunks for the PI to download (SPEC §9).

The chunks, their ``.md5sum`` files and the ``.md5sums`` list go into a new directory of
the web-served ``--web-root`` whose name ends in a random token, so that only whoever is
given the address finds it; an ``index.html`` lists names, sizes and checksums.  Chunks are
hard-linked (no second copy of terabytes); across file systems they are copied and the
copies checked against their md5s.  Given a package directory, it is split straight into
the new directory.  The directory is built under a hidden name and renamed when complete.
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

from .. import manifest, materialize, tarsplit
from ..copying import copy_file
from ..errors import ChecksumError, InputError, existing_dir
from ..sizes import human_size
from ..verify import ChunkSet, Progress, find_chunks, package_in

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
    with materialize.staging(target) as stage:
        if package:
            split = tarsplit.tarsplit(package, stage, max_size, progress=progress)
            files = [(c.name, c.size, split.digests[c.name]) for c in split.chunks]
        else:
            files = [file for chunk_set in sets for file in _publish(chunk_set, stage)]
        lists = sorted(p.name for p in stage.iterdir() if p.suffix != ".tar")
        published = Published(target, tuple(files), tuple(lists))
        _write_index(stage, project, published)
        os.rename(stage, target)
    return published


def _publish(chunk_set: ChunkSet, stage: Path) -> list[tuple[str, int, str]]:
    """Link (or copy and check) each chunk and its md5 files into ``stage``; returns each
    chunk's name, size and md5."""
    published = []
    for name in chunk_set.names():
        chunk = chunk_set.present.get(name)
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
        _place(chunk, stage / name, chunk_set.expected[name])
        published.append((name, (stage / name).stat().st_size, chunk_set.expected[name]))
        md5_file = chunk.with_name(f"{name}.md5sum")
        if md5_file.is_file():
            _place(md5_file, stage / md5_file.name)
    listing = chunk_set.folder / tarsplit.list_name(chunk_set.project, chunk_set.tag)
    if listing.is_file():
        _place(listing, stage / listing.name)
    return published


def _place(source: Path, dest: Path, md5: str | None = None) -> None:
    """Hard-link ``source`` to ``dest``; where links cannot be made, copy it and check the
    copy against ``md5``."""
    try:
        os.link(source, dest)
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
    copy_file(str(source), str(dest))
    if md5 is not None and manifest.md5_file(dest) != md5:
        raise ChecksumError(
            "the copy differs from its md5", source, fix="check the disks, then deliver again"
        )


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
