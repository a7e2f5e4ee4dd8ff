"""The pipeline's products manifest (``*pipeline_manifest.xml``): what the PI's restore
reads, kept true when files are renamed, and checked in a delivered package.

The restore (the pipeline's ``hifa_restoredata``, run by the delivered scriptForPI from
``script/``) takes the manifest from ``script/``, copies it to ``calibration/`` and then
copies ``calibrated/products/<name>`` (a link to ``calibration/``) for every name the
manifest gives of the session caltables, and of each EB's final flag versions and apply
commands; it stops at the first name it cannot find.  So whenever a file the manifest
names is delivered under another name (the ``member.<MOUS>.`` prefix, a ``.gz``), the
delivered manifest must say that name.

The manifest is rewritten by replacing ``name="old"`` attribute values only: everything
else in it stays byte for byte.  It is parsed with defusedxml first (it comes from
elsewhere).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from almaqa2 import plainfile
from almaqa2.errors import InputError

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

NAME = re.compile(r".*pipeline_manifest\.xml")
"""A products manifest, by its file name."""

NOT_FILES = frozenset(
    {
        "piperesults", "ous", "session", "asdm", "aux_asdm", "casaversion", "pipeline_version",
        "procedure_name", "execution_environment", "node", "hifa_renorm",
    }
)  # fmt: skip
"""Manifest elements whose ``name`` is not a file (an OUS, a session, an EB, a version)."""

RESTORE_READS: Mapping[str, str] = {
    "caltables": "calibration",
    "aux_caltables": "calibration",
    "finalflags": "calibration",
    "applycmds": "calibration",
    "aux_products_file": "calibration",
}
"""Files the restore copies from ``calibrated/products`` (= ``calibration/``), by element;
every other file the manifest names may be anywhere in the member directory."""

SCRIPT_NEEDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("the pipeline manifest", NAME),
    ("the processing request", re.compile(r".*cal.*pprequest\.xml|.*PPR.*\.xml")),
    ("the pipeline's restore script", re.compile(r".*casa_piperestorescript\.py")),
    ("the scriptForPI", re.compile(r"(member\..*\.)?scriptForPI\.py")),
)
"""What the scriptForPI looks for in ``script/`` (by the globs it uses)."""


@dataclass(frozen=True)
class Named:
    """A file the manifest names: its element and, for an EB's files, the EB."""

    element: str
    name: str
    eb: str | None


def _parse(text: bytes, where: Path | str) -> Element:
    return parse_xml(
        text, "pipeline manifest", where, "replace it with the file the pipeline wrote"
    )


def parse_xml(text: bytes, what: str, where: Path | str, fix: str) -> Element:
    """The XML ``text`` parsed with defusedxml (it comes from outside: no entities
    expanded), or InputError "malformed <what>".  The XML modules are imported here: most
    packages read no XML."""
    from xml.etree.ElementTree import ParseError

    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException

    try:
        root: Element = SafeET.fromstring(text)
    except (ParseError, DefusedXmlException, LookupError, ValueError) as exc:  # Lookup: encoding
        raise InputError(f"malformed {what} ({exc})", where, fix=fix) from None
    return root


def names(text: bytes, where: Path | str = "the manifest") -> list[Named]:
    """Every file the manifest ``text`` names, in document order."""
    found: list[Named] = []

    def walk(element: Element, eb: str | None) -> None:
        tag = str(element.tag).rsplit("}", 1)[-1]
        name = element.get("name")
        if tag in ("asdm", "aux_asdm"):
            eb = name
        elif name and tag not in NOT_FILES:
            found.append(Named(tag, name, eb))
        for child in element:
            walk(child, eb)

    walk(_parse(text, where), None)
    return found


def rename(text: bytes, renames: Mapping[str, str], where: Path | str) -> bytes:
    """``text`` with every file name it gives that ``renames`` maps replaced, and nothing
    else changed."""
    wanted = {n.name for n in names(text, where)} & renames.keys()
    if not wanted:
        return text
    pattern = re.compile(
        rb"""(\sname\s*=\s*)(["'])("""
        + b"|".join(re.escape(n.encode()) for n in sorted(wanted, key=len, reverse=True))
        + rb""")\2"""
    )
    return pattern.sub(lambda m: m[1] + m[2] + renames[m[3].decode()].encode() + m[2], text)


def restore_problems(member: Path, files: Sequence[str]) -> list[tuple[str, str]]:
    """Why the PI's restore would fail on the member directory ``member`` of a pipeline
    package, whose ``files`` (POSIX paths below it, plain strings: a package may hold a
    million) are given, as (path below member, what is wrong); empty if it would find
    everything, or if the member has no pipeline manifest."""
    manifests = sorted(f for f in files if NAME.fullmatch(f.rpartition("/")[2]))
    if not manifests:
        return []
    problems = []
    present = {
        f.removeprefix("script/") for f in files if f.count("/") == 1 and f.startswith("script/")
    }
    for what, pattern in SCRIPT_NEEDS:
        if not any(pattern.fullmatch(n) for n in present):
            problems.append(("script/", f"no {what} where the scriptForPI looks for it"))
    delivered: dict[str, set[str]] = {}
    for f in files:
        delivered.setdefault(f.rpartition("/")[2], set()).add(f.partition("/")[0])
    for rel in manifests:
        try:  # (a pipe in its place is not waited on: it is reported as not a file)
            with plainfile.opened(member / rel) as opened:
                text = opened.read()
        except OSError as exc:
            problems.append((rel, f"cannot be read ({exc.strerror})"))
            continue
        for named in names(text, member / rel):
            places = delivered.get(named.name, set())
            needed = RESTORE_READS.get(named.element)
            of_eb = f" of {named.eb}" if named.eb else ""
            if not places:
                problems.append(
                    (rel, f"names {named.name} ({named.element}{of_eb}), not delivered")
                )
            elif needed and needed not in places:
                problems.append(
                    (rel, f"names {named.name} ({named.element}{of_eb}), not in {needed}/")
                )
    return problems
