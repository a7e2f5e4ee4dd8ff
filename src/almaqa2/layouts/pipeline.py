"""An ALMA pipeline run (SPEC §3 layout 4, seed 001 "Case 1"):
``<project>_<timestamp>/SOUS_uid___*/GOUS_uid___*/MOUS_uid___*/{working,products,rawdata}``.

The UIDs come from the directory names; the pipeline's XML (the processing request and
the products manifest) names the MOUS again, the project and the EBs.  Those files come
from elsewhere, so they are read with defusedxml: no DTD, no entity expansion.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ..errors import InputError
from ..uid import UID_FS, is_uid, to_fs

log = logging.getLogger(__name__)

LEVELS = ("SOUS", "GOUS", "MOUS")
XML_NAMES = re.compile(r"PPR_.*\.xml|.*\.pprequest\.xml|.*\.pipeline_manifest\.xml")
_PROJECT = re.compile(r"\d{4}\.[0-9A]\.\d{5}\.[A-Z]")

# (element tag, attribute or None for the text) -> the fact it gives.
XML_FACTS: dict[tuple[str, str | None], str] = {
    ("ous", "name"): "mous",  # pipeline_manifest.xml
    ("asdm", "name"): "eb",
    ("OUSStatusRef", "entityId"): "mous",  # PPR / pprequest
    ("ExecBlockId", None): "eb",
    ("AsdmDiskName", None): "eb",
    ("ProposalCode", None): "project",
    ("ProjectCode", None): "project",
}


@dataclass(frozen=True)
class PipelineRun:
    root: Path
    sous: str
    gous: str
    mous: str
    mous_dir: Path
    products: Path
    project: str | None  # from the run's name or its XML
    ebs: tuple[str, ...]  # from the XML, sorted


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
    try:
        root = SafeET.parse(path).getroot()
    except (ParseError, DefusedXmlException) as exc:
        raise InputError(
            f"malformed XML ({exc})",
            path,
            fix="replace it with the file the pipeline wrote, or move it out of the run",
        ) from None
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
    mous_uid = mous.name.removeprefix("MOUS_")
    ebs: set[str] = set()
    projects: list[str] = []
    for xml in sorted(p for p in products.rglob("*.xml") if XML_NAMES.fullmatch(p.name)):
        facts = read_xml(xml)
        for other in set(_uids(facts.get("mous", []))) - {mous_uid}:
            log.warning("%s names the member OUS %s, the directory %s", xml, other, mous_uid)
        ebs.update(_uids(facts.get("eb", [])))
        projects += facts.get("project", [])
    named = _PROJECT.match(root.name)
    project = named.group(0) if named else (projects[0] if projects else None)
    return PipelineRun(
        root,
        sous.name.removeprefix("SOUS_"),
        gous.name.removeprefix("GOUS_"),
        mous_uid,
        mous,
        products,
        project,
        tuple(sorted(ebs)),
    )
