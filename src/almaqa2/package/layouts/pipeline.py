"""An ALMA pipeline run (SPEC §3 layout 4, seed 001 "Case 1"):
``<project>_<timestamp>/SOUS_uid___*/GOUS_uid___*/MOUS_uid___*/{working,products,rawdata}``.

The UIDs come from the directory names; the pipeline's XML (the processing request and
the products manifest) names the MOUS again and the EBs.  Those files come
from elsewhere, so they are read with defusedxml: no DTD, no entity expansion.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from almaqa2.errors import InputError
from almaqa2.package.pipemanifest import parse_xml
from almaqa2.package.scan import Kind, SourceEntry
from almaqa2.uid import UID_FS, is_uid, to_fs

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

log = logging.getLogger(__name__)

LEVELS = ("SOUS", "GOUS", "MOUS")
XML_NAMES = re.compile(r"PPR_.*\.xml|.*\.pprequest\.xml|.*\.pipeline_manifest\.xml")

# (element tag, attribute or None for the text) -> the fact it gives.
XML_FACTS: dict[tuple[str, str | None], str] = {
    ("ous", "name"): "mous",  # pipeline_manifest.xml
    ("asdm", "name"): "eb",
    ("OUSStatusRef", "entityId"): "mous",  # PPR / pprequest
    ("ExecBlockId", None): "eb",
    ("AsdmDiskName", None): "eb",
}


@dataclass(frozen=True)
class PipelineRun:
    """The member OUS of a run, its UIDs from the directory names."""

    sous: str
    gous: str
    mous: str
    products: Path


def looks_like_run(root: Path) -> bool:
    """True if ``root`` holds a ``SOUS_uid___*`` directory: a pipeline run (checked whole
    by ``find_run``)."""
    return any(p.is_dir() for p in root.glob(f"{LEVELS[0]}_uid___*"))


def _only_child(parent: Path, level: str, root: Path) -> Path:
    found = sorted(p for p in parent.glob(f"{level}_uid___*") if p.is_dir())
    if not found:
        raise InputError(
            f"not a pipeline run: no {'/'.join(f'{lv}_uid___*' for lv in LEVELS)} directories",
            root,
            fix="give the top directory of the pipeline run (<project>_<timestamp>)",
        )
    if len(found) > 1:
        raise InputError(
            f"the pipeline run holds {len(found)} {level} directories ({found[0].name}, ...)"
            ", which one to stage is not clear",
            parent,
            fix="stage a run of one member OUS (copy the other ones aside)",
        )
    uid = found[0].name.removeprefix(f"{level}_")
    if not is_uid(uid):
        raise InputError(
            f"{found[0].name} is not named by a UID", found[0], fix="rename it as the pipeline did"
        )
    return found[0]


def read_xml(path: Path) -> dict[str, list[str]]:
    """The facts XML_FACTS names, found in ``path``: {"mous": [...], "eb": [...], ...}."""
    fix = "replace it with the file the pipeline wrote, or move it out of the run"
    root = parse_xml(path.read_bytes(), "XML", path, fix)
    facts: dict[str, list[str]] = {}
    for element in root.iter():
        for (tag, attribute), fact in XML_FACTS.items():
            if _local(element) == tag:
                value = (element.get(attribute) if attribute else element.text) or ""
                facts.setdefault(fact, []).append(value.strip())
    return facts


def _local(element: Element) -> str:
    return str(element.tag).rsplit("}", 1)[-1]


def _uids(values: list[str]) -> list[str]:
    out = []
    for value in values:
        found = UID_FS.search(value)
        try:
            out.append(found.group(0) if found else to_fs(value))
        except InputError:
            log.warning("not a UID in the pipeline XML, ignored: %r", value)
    return out


def find_run(root: Path) -> PipelineRun:
    """Recognise the pipeline run at ``root``; InputError if it is not one."""
    sous = _only_child(root, "SOUS", root)
    gous = _only_child(sous, "GOUS", root)
    mous = _only_child(gous, "MOUS", root)
    products = mous / "products"
    if not products.is_dir():
        raise InputError(
            "the pipeline run has no products directory",
            mous,
            fix="stage a run whose pipeline finished (it exports into products/)",
        )
    return PipelineRun(
        sous.name.removeprefix("SOUS_"),
        gous.name.removeprefix("GOUS_"),
        mous.name.removeprefix("MOUS_"),
        products,
    )


def xml_ebs(entries: tuple[SourceEntry, ...], mous: str) -> tuple[str, ...]:
    """The EBs the run's XML files (among the scanned ``entries``) name, sorted; a file
    naming another member OUS is warned about."""
    ebs: set[str] = set()
    for entry in entries:
        if entry.kind is Kind.FILE and XML_NAMES.fullmatch(entry.name):
            facts = read_xml(entry.path)
            for other in set(_uids(facts.get("mous", []))) - {mous}:
                log.warning("%s names the member OUS %s, not %s", entry.path, other, mous)
            ebs.update(_uids(facts.get("eb", [])))
    return tuple(sorted(ebs))
