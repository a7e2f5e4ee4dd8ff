"""``qa2 inspect``: what a delivery holds, for the PI (SPEC §10), from a package directory
or from its tar chunks without unpacking them.

Both are read as one list of (path, size) starting at the project directory; ``describe``
turns that list into the project's tree (pure).  Unpacking several archive tars into one
place leaves the project directory doubled (``2015.1.00956.S/2015.1.00956.S/...``): the
repeated level is collapsed and reported.

``--json`` schema (``Inventory.as_dict``)::

    {"source": "directory" | "chunks", "paths": [str], "doubled": bool,
     "projects": [{"project": str, "size": int, "science_goals": [
       {"name": str, "uid": str | null, "groups": [
         {"name": str, "uid": str | null, "members": [
           {"name": str, "uid": str | null, "calibration": "pipeline" | "manual",
            "ebs": [str], "script_for_pi": str | null, "script_for_pi_creates": [str],
            "split_creates": [str],
            "files": int, "size": int, "sizes": {subdirectory or file: int}}]}]}]}]}
"""

from __future__ import annotations

import contextlib
import html
import re
import tarfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from almaqa2 import plainfile
from almaqa2.errors import InputError, reason
from almaqa2.manifest import sizes_under
from almaqa2.package import package_dir
from almaqa2.package.naming import unit_uid
from almaqa2.package.package_dir import ChunkNames, chunks_in
from almaqa2.package.readme import header_fields
from almaqa2.uid import PROJECT_CODE, eb_of_name

_PIPELINE_REQUEST = re.compile(r".*\.pprequest\.xml|PPR_.*\.xml")
_SCRIPT_FOR_PI = re.compile(r".*scriptForPI\.py")


@dataclass
class MemberOus:
    name: str
    files: int = 0
    size: int = 0
    sizes: dict[str, int] = field(default_factory=dict)
    ebs: set[str] = field(default_factory=set)
    pipeline: bool = False
    script_for_pi: str | None = None

    @property
    def uid(self) -> str | None:
        return unit_uid(self.name, 2)

    def creates(self) -> list[str]:
        """What running the scriptForPI makes (in a ``calibrated/`` beside ``script/``)."""
        if self.script_for_pi is None:
            return []
        if self.pipeline:
            return [f"calibrated/working/{eb}.ms" for eb in sorted(self.ebs)]
        return [f"calibrated/{eb}.ms.split.cal" for eb in sorted(self.ebs)]

    def split_creates(self) -> list[str]:
        """What ``qa2 split calibrated`` then makes of each restored MS (the pipeline's:
        a manual calibration's scriptForPI makes the ``.split.cal`` itself)."""
        if self.script_for_pi is None or not self.pipeline:
            return []
        return [
            f"calibrated/{eb}.ms.split.cal{end}"
            for eb in sorted(self.ebs)
            for end in ("", ".source")
        ]

    def add(self, inside: tuple[str, ...], size: int) -> None:
        self.files += 1
        self.size += size
        self.sizes[inside[0]] = self.sizes.get(inside[0], 0) + size
        for part in inside[1:]:
            eb = eb_of_name(part)
            if eb is not None and eb != self.uid:
                self.ebs.add(eb)
        name = inside[-1]
        if _PIPELINE_REQUEST.fullmatch(name):
            self.pipeline = True
        if inside[0] == "script" and _SCRIPT_FOR_PI.fullmatch(name):
            self.script_for_pi = "/".join(inside)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "uid": self.uid,
            "calibration": "pipeline" if self.pipeline else "manual",
            "ebs": sorted(self.ebs),
            "script_for_pi": self.script_for_pi,
            "script_for_pi_creates": self.creates(),
            "split_creates": self.split_creates(),
            "files": self.files,
            "size": self.size,
            "sizes": dict(sorted(self.sizes.items())),
        }


@dataclass
class Project:
    code: str
    size: int = 0
    tree: dict[str, dict[str, dict[str, MemberOus]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.code,
            "size": self.size,
            "science_goals": [
                {
                    "name": sg,
                    "uid": unit_uid(sg, 0),
                    "groups": [
                        {
                            "name": group,
                            "uid": unit_uid(group, 1),
                            "members": [m.as_dict() for _, m in sorted(members.items())],
                        }
                        for group, members in sorted(groups.items())
                    ],
                }
                for sg, groups in sorted(self.tree.items())
            ],
        }


@dataclass
class Inventory:
    source: str  # "directory" or "chunks"
    paths: list[str]
    doubled: bool = False
    projects: dict[str, Project] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "paths": self.paths,
            "doubled": self.doubled,
            "projects": [p.as_dict() for _, p in sorted(self.projects.items())],
        }


def describe(files: Iterable[tuple[str, int]], source: str, paths: list[str]) -> Inventory:
    """The inventory of ``files`` ((path, size), paths below the project's parent)."""
    inventory = Inventory(source, paths)
    for path, size in files:
        parts = PurePosixPath(path).parts
        start = next((i for i, p in enumerate(parts) if PROJECT_CODE.fullmatch(p)), None)
        if start is None:
            continue
        code = parts[start]
        rest = parts[start + 1 :]
        while rest and rest[0] == code:  # a doubled project directory
            inventory.doubled = True
            rest = rest[1:]
        project = inventory.projects.setdefault(code, Project(code))
        project.size += size
        if len(rest) < 4:  # bookkeeping files above the member directories
            continue
        sg, group, member, *inside = rest
        members = project.tree.setdefault(sg, {}).setdefault(group, {})
        members.setdefault(member, MemberOus(member)).add(tuple(inside), size)
    if not inventory.projects:
        raise InputError(
            "no project directory (named like 2013.1.00123.S) found",
            ", ".join(paths),
            fix="give a package directory, the directory holding it, or its tar chunks",
        )
    return inventory


def _walk(top: Path) -> Iterable[tuple[str, int]]:
    """The files below ``top``, named from the project directory's parent."""
    prefix = f"{top.resolve().name}/" if PROJECT_CODE.fullmatch(top.resolve().name) else ""
    return ((prefix + rel, size) for rel, size in sizes_under(top).items())


def _tar_members(chunks: Sequence[Path]) -> Iterable[tuple[str, int]]:
    for chunk in chunks:
        try:
            with plainfile.opened(chunk) as raw, tarfile.open(fileobj=raw, mode="r:") as tar:
                for member in tar:
                    if member.isfile():
                        yield member.name, member.size
        except (tarfile.TarError, OSError) as exc:
            raise InputError(
                f"cannot read this tar file ({reason(exc)})",
                chunk,
                fix="download it again (qa2 verify checks a set of chunks)",
            ) from None


def inspect(paths: Sequence[Path]) -> Inventory:
    """Inspect a package directory (or the directory holding it) or a set of chunks."""
    shown = [str(p) for p in paths]
    for path in paths:
        if not path.exists():
            raise InputError("not found", path, fix="give a package directory or tar chunks")
    if len(paths) == 1 and paths[0].is_dir() and not chunks_in(paths[0]):
        top = paths[0]
        package_dir.check_not_splitting(top)  # (a split may have written no chunk yet)
        with (  # a package is read as a verify or a split reads it
            package_dir.reading(top.resolve(), "inspection")
            if package_dir.is_ours(top)
            else contextlib.nullcontext()
        ):
            return describe(_walk(top), "directory", shown)
    chunks = [c for p in paths for c in (chunks_in(p) if p.is_dir() else [p])]
    sets = {(c.parent, named[0]) for c in chunks if (named := ChunkNames.of(c.name))}
    for folder, names in sets:  # a set a split is still writing is not yet what it will be
        package_dir.check_not_splitting(folder, names)
    return describe(_tar_members(chunks), "chunks", shown)


# -- a review ticket ------------------------------------------------------------------------

TICKET_NAME = re.compile(r".*\.ticket\.(zip|tar)")
_WARNING = re.compile(r'<p class="warn">(.*?)</p>', re.S)


@dataclass(frozen=True)
class Ticket:
    """What the DRM needs first from a ticket zip or tar, read without unpacking it."""

    path: str
    dummy: bool
    header: dict[str, str]  # the README header's fields
    checklists: list[str]
    plots: list[str]
    scripts: list[str]
    expected_total: int | None  # bytes of the package, from expected_size.txt
    warnings: list[str]  # from the review page

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def ticket(path: Path) -> Ticket:
    """Read the ticket file at ``path`` (``*.ticket.zip`` or ``*.ticket.tar``)."""
    try:
        files = _ticket_files(path)
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise InputError(
            f"cannot read this ticket file ({reason(exc)})", path, fix="make the ticket again"
        ) from None
    names = sorted(files)
    if "DUMMY_TICKET.txt" in files:
        return Ticket(str(path), True, {}, [], [], [], None, [])
    readme = next((files[n] for n in names if n.endswith("README") or "README" in n), b"")
    text = readme.decode("utf-8", "replace")
    fenced = text.split("#####", 2)  # the template's header sits between two fences
    header = header_fields(fenced[1] if len(fenced) == 3 else text.split("\n\n", 1)[0])
    total = re.search(rb"^package total\s+(\d+)", files.get("expected_size.txt", b""), re.M)
    page = files.get("review.html", b"").decode("utf-8", "replace")
    warnings = page.split('id="warnings"', 1)[1].split("</section>", 1)[0] if page else ""
    return Ticket(
        str(path),
        False,
        header,
        [n for n in names if "checklist" in n.lower()],
        [n for n in names if n.lower().endswith((".png", ".jpg", ".jpeg", ".gif", ".svg"))],
        [n for n in names if n.startswith("script/")],
        int(total[1]) if total else None,
        [html.unescape(w) for w in _WARNING.findall(warnings)],
    )


_READ_AT_MOST = 16 << 20
"""Bytes read of each file of a ticket: what is shown of it is at its start (the README's
header; the review page's warnings, before its plots).  A file larger than that is not
read whole into memory: a 3 MB zip held a 600 MB README."""


def _ticket_files(path: Path) -> dict[str, bytes]:
    """The small files of a ticket (README, expected size, review page, checklists) by
    name, up to ``_READ_AT_MOST`` bytes each, and the others by name with no bytes: a
    ticket's plots are not read."""
    wanted = ("README", "expected_size.txt", "review.html", "DUMMY_TICKET.txt")

    def read(name: str) -> bool:
        return name in wanted or "README" in name or "checklist" in name.lower()

    found: dict[str, bytes] = {}
    with plainfile.opened(path) as raw:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(raw) as zf:
                for name in zf.namelist():
                    found[name] = b""
                    if read(name):
                        with zf.open(name) as f:
                            found[name] = f.read(_READ_AT_MOST)
                return found
        with tarfile.open(fileobj=raw, mode="r:") as tar:
            for member in tar:
                if member.isfile():
                    extracted = tar.extractfile(member) if read(member.name) else None
                    found[member.name] = extracted.read(_READ_AT_MOST) if extracted else b""
    return found
