"""The member directory's README: the reducer's header (blank known fields filled), the
reducer's notes for the PI, what each subdirectory holds, and a tree with sizes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from almaqa2.data.fitsio import FitsInfo
from almaqa2.package.facts import EbFacts, Facts
from almaqa2.package.plan import Plan
from almaqa2.package.scan import Kind
from almaqa2.sizes import human_size

TEMPLATE = """\
Atacama Large Millimeter/submillimeter Array (ALMA)
#####
Cycle:
Project code:
SB name:
MOUS UID:
Execution blocks:
Packaging style:
PI name:
Project title:
Configuration:
Proposed rms:
Proposed beam size:
CASA version used for reduction:
QA2 Result:
Comments from Reducer:
#####
"""

# Header labels (lower case, as they start) -> the fact the packager fills in.
FIELDS: tuple[tuple[str, str], ...] = (
    ("project code", "project"),
    ("sb name", "sb_name"),
    ("mous", "mous"),
    ("member ous", "mous"),
    ("execution block", "ebs"),
    ("packaging style", "style"),
    ("cycle", "cycle"),
    ("casa version", "casa"),
)

SUBDIRS: tuple[tuple[str, str], ...] = (
    ("raw", "the a priori calibrated MS of each execution block (DATA column only)"),
    ("calibrated", "the fully calibrated MS of each execution block (calibrated data as DATA)"),
    (
        "calibration",
        "the calibration tables and the text outputs of each execution block, with their plots,"
        " to go from the raw data to the calibrated data",
    ),
    (
        "script",
        "the scripts that calibrated each execution block, combined them and made the images;"
        " scriptForPI.py regenerates the calibrated data from the raw data",
    ),
    ("qa", "the QA2 reports and checklists: plots and text that assess the data quality"),
    ("log", "the CASA log files of the calibration, combination and imaging"),
    ("product", "FITS images of selected products (primary-beam and mask images gzipped)"),
)

ALWAYS = ("script", "qa")
"""Subdirectories every member directory has, even when empty."""

_FIELD_LINE = re.compile(r"^(?P<label>\s*[^:\n]+?)\s*:\s*$")


@dataclass(frozen=True)
class TreeItem:
    dest: PurePosixPath  # relative to the member directory
    is_dir: bool  # a table or plots directory: shown as one leaf with its total size
    size: int | None


def known_facts(plan: Plan, found: Facts) -> dict[str, str]:
    facts = {
        "project": plan.project,
        "sb_name": plan.sb_name or "",
        "mous": plan.uids.mous or "",
        "ebs": ", ".join(eb.uid for eb in plan.reduction.ebs),
        "style": plan.style.name or ("noms=True" if plan.style.noms else "noms=False"),
        "cycle": "" if plan.style.cycle is None else str(plan.style.cycle),
        "casa": ", ".join(found.casa_versions),
    }
    return {k: v for k, v in facts.items() if v}


def fill_header(header: str, facts: dict[str, str]) -> str:
    """Fill the blank ``Label:`` lines of ``header`` whose label the packager knows."""
    lines = []
    for line in header.splitlines():
        blank = _FIELD_LINE.match(line)
        if blank:
            label = blank["label"].strip().lower()
            key = next((k for prefix, k in FIELDS if label.startswith(prefix)), None)
            if key in facts:
                line = f"{blank['label']}: {facts[key]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def tree(root: str, items: Iterable[TreeItem], dirs: Iterable[str] = ()) -> list[str]:
    """An ASCII tree of ``root`` (``|-- name``) holding ``items`` and the (empty) ``dirs``."""
    children: dict[PurePosixPath, dict[str, TreeItem | None]] = {PurePosixPath(): {}}
    for name in dirs:
        children[PurePosixPath()][name] = None
        children[PurePosixPath(name)] = {}
    for item in items:
        parent = PurePosixPath()
        for part in item.dest.parts[:-1]:
            children[parent].setdefault(part, None)
            parent = parent / part
            children.setdefault(parent, {})
        children[parent][item.dest.name] = item
    lines = [f"{root}/"]

    def walk(node: PurePosixPath, indent: str) -> None:
        for name, item in sorted(children[node].items()):
            if item is None:
                lines.append(f"{indent}|-- {name}/")
                walk(node / name, indent + "|   ")
            else:
                suffix = "/" if item.is_dir else ""
                size = "" if item.size is None else f"  ({human_size(item.size)})"
                lines.append(f"{indent}|-- {name}{suffix}{size}")

    walk(PurePosixPath(), "")
    return lines


def eb_section(eb: EbFacts) -> list[str]:
    """One EB's facts as the README shows them."""
    info = eb.info
    if info is None:
        return [f"{eb.uid}: not described ({eb.why_not})"]
    time = "%Y-%m-%d %H:%M:%S"
    lines = [
        f"{eb.uid} (read from {info.ms})",
        f"  Project:           {info.project}",
        f"  Observed:          {info.start:{time}} to {info.end:{time}} UTC",
        f"  Antennas ({len(info.antennas)}):      {' '.join(info.antennas)}",
        f"  Spectral windows ({len(info.spws)}):",
    ]
    lines += [
        f"    {spw.id:>3}  {spw.name}  {spw.channels} channels"
        f"  {spw.low_hz / 1e9:.4f} - {spw.high_hz / 1e9:.4f} GHz"
        for spw in info.spws
    ]
    lines.append("  Fields and scan intents:")
    lines += [f"    {name}: {', '.join(intents) or '-'}" for name, intents in info.fields]
    return lines


def product_line(dest: str, info: FitsInfo) -> list[str]:
    """One FITS product's header facts as the README shows them."""
    facts = [f"object {info.object or '-'}"]
    if info.beam is not None:
        major, minor, angle = info.beam
        median = f" (median of {info.beams} channel beams)" if info.beams else ""
        facts.append(f'beam {major:.3f}" x {minor:.3f}" PA {angle:.1f} deg{median}')
    if info.rest_hz is not None:
        facts.append(f"rest frequency {info.rest_hz / 1e9:.6f} GHz")
    facts.append(f"unit {info.bunit or '-'}")
    axes = " x ".join(str(n) for _t, n in info.shape)
    names = ", ".join(t for t, _n in info.shape)
    facts.append(f"shape {axes} ({names})" if info.shape else "no data")
    return [dest, "  " + "; ".join(facts)]


def render(plan: Plan, header: str, sizes: dict[str, int], facts: Facts) -> str:
    """The README text (pure: ``facts`` holds all that was read); ``sizes`` {dest: bytes}."""
    parts = [fill_header(header, known_facts(plan, facts))]
    if facts.notes:
        parts.append("Notes from the reducer\n======================\n")
        parts.extend(f"--- {name} ---\n{text.rstrip()}\n" for name, text in facts.notes)
    if facts.ebs:
        lines = [line for eb in facts.ebs for line in eb_section(eb)]
        parts.append("Execution blocks\n================\n\n" + "\n".join(lines) + "\n")
    if facts.products:
        lines = [line for dest, info in facts.products for line in product_line(dest, info)]
        parts.append("Products\n========\n\n" + "\n".join(lines) + "\n")
    present = {p.dest.parts[0] for p in plan.placements} | set(ALWAYS)
    member = plan.units.member
    described = "".join(f"- {name}: {text}.\n" for name, text in SUBDIRS if name in present)
    parts.append(
        f"Contents\n========\n\nThe directory {member} holds this README and:\n{described}"
    )
    items = [TreeItem(PurePosixPath(plan.readme_name), False, None)]
    items += [
        TreeItem(p.packaged, p.source.kind is not Kind.FILE and not p.bundle, sizes[path])
        for path, p in {p.packaged.as_posix(): p for p in plan.placements}.items()
    ]
    parts.append("\nDirectory tree\n==============\n")
    parts.append("\n".join(tree(member, items, ALWAYS)) + "\n")
    return readable("\n".join(parts))


def readable(text: str) -> str:
    """``text`` as valid UTF-8 text: a file name that is not UTF-8 (its undecodable bytes
    carried as surrogates) shows those bytes as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
