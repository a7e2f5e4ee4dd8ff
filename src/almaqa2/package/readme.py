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
from almaqa2.package.rules import Transform
from almaqa2.package.scan import Kind
from almaqa2.sizes import human_size
from almaqa2.version import __version__

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

SUBDIRS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("raw", (
        ("reduced", "the a priori calibrated MS of each execution block (DATA column only)"),
        ("asdm", "the raw data of each execution block, as ASDMs"),
        ("", "the raw data of each execution block"),
    )),
    ("calibrated", (
        ("reduced", "the fully calibrated MS of each execution block (calibrated data as DATA)"),
        ("", "the calibrated data of each execution block"),
    )),
    ("calibration", (
        ("bundled", "the calibration tables and the text outputs of each execution block, with"
                    " their plots, in .tgz bundles"),
        ("", "the calibration tables and the text outputs of each execution block, with their"
             " plots, to go from the raw data to the calibrated data"),
    )),
    ("script", (
        ("pi-script", "the scripts that calibrated each execution block and made the images;"
                      " the scriptForPI regenerates the calibrated data from the raw data"),
        ("", "the scripts that calibrated each execution block, combined them and made the"
             " images"),
    )),
    ("qa", (("", "the QA2 reports and checklists: plots and text that assess the data quality"),)),
    ("log", (("", "the CASA log files of the calibration, combination and imaging"),)),
    ("product", (
        ("gzipped", "FITS images of selected products (primary-beam and mask images gzipped)"),
        ("", "FITS images of selected products"),
    )),
)  # fmt: skip
"""What each subdirectory holds: the first sentence whose condition (``holds``) the
package meets; the README says nothing its package does not hold."""


REQUIRED = ("PI name", "Project title", "Configuration", "Proposed rms")
"""Header fields only the reducer can fill and the PI and DRM rely on: a copy or hard
package with any of them blank is refused (``--allow-blank-header`` lets it through)."""

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


def header_fields(header: str) -> dict[str, str]:
    """``Label: value`` lines of a README header: {label: value}, the first of each."""
    given: dict[str, str] = {}
    for line in header.splitlines():
        label, colon, value = line.partition(":")
        if colon:
            given.setdefault(label.strip(), value.strip())
    return given


def blank_fields(header: str) -> list[str]:
    """The ``REQUIRED`` fields that ``header`` leaves blank or lacks."""
    given = {label.lower(): value for label, value in header_fields(header).items()}
    return [field for field in REQUIRED if not given.get(field.lower())]


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


def holds(plan: Plan, subdir: str) -> set[str]:
    """The conditions of ``SUBDIRS`` that the package's ``subdir`` meets ("" always)."""
    found = {""}
    for p in plan.placements:
        if p.dest.parts[0] != subdir:
            continue
        if p.transform in (Transform.RAW_MS, Transform.CALIBRATED_MS):
            found.add("reduced")
        if p.transform is Transform.GZIP:
            found.add("gzipped")
        if p.source.kind is Kind.ASDM:
            found.add("asdm")
        if p.bundle is not None:
            found.add("bundled")
        if "scriptForPI" in p.dest.name:
            found.add("pi-script")
    return found


def contents(plan: Plan) -> list[tuple[str, str]]:
    """[(subdirectory, what it holds)] for each subdirectory of the package."""
    present = {p.dest.parts[0] for p in plan.placements} | set(ALWAYS)
    described = []
    for name, sentences in SUBDIRS:
        if name in present:
            met = holds(plan, name)
            described.append((name, next(text for need, text in sentences if need in met)))
    return described


def how_to_use(plan: Plan, facts: Facts, hashed: bool) -> list[str]:
    """The PI's steps, each only where it applies: check, unpack, restore."""
    member = plan.units.member
    steps = []
    if hashed:
        steps.append(
            f"Check the files: in the directory holding {plan.project}/, run\n"
            f"     md5sum -c {plan.project}/manifest.md5\n"
            "   Every line must end in OK."
        )
    if any(p.bundle is not None for p in plan.placements):
        steps.append(
            "Unpack the .tgz bundles where they are, e.g. in calibration/:\n"
            '     for f in *.tgz; do tar xzf "$f"; done'
        )
    script = next((p.dest for p in plan.placements if "scriptForPI" in p.dest.name), None)
    if script is not None:
        versions = facts.casa_versions
        casa = " or ".join(versions) or "the version named in the logs"
        pipeline = plan.style.pipe or plan.reduction.layout == "staged"
        before6 = bool(versions) and all(int(v.split(".")[0]) < 6 for v in versions)
        run = f"execfile('{script.name}')" if before6 else f"exec(open('{script.name}').read())"
        steps.append(
            f"Restore the calibration with the CASA version that made it ({casa}):\n"
            f"     cd {member}/script\n"
            f"     casa{' --pipeline' if pipeline else ''}\n"
            f"     CASA <1>: {run}\n"
            + ("" if versions else f"   (CASA 5 and older: execfile('{script.name}').)\n")
            + "   It reads the raw data (ASDMs) in raw/, as the archive delivers them, and"
            " writes calibrated/."
            + (
                " Before it, SPACESAVING = 1, 2 or 3 keeps less on disk, and DOSPLIT = True"
                " also splits out the calibrated science data."
                if pipeline
                else ""
            )
        )
    elif any(p.transform is Transform.CALIBRATED_MS for p in plan.placements):
        steps.append("The calibrated data are ready in calibrated/ (in the DATA column).")
    return [f"{n}. {text}" for n, text in enumerate(steps, 1)]


def package_tree(plan: Plan, sizes: dict[str, int]) -> list[str]:
    """The member directory's tree with sizes, as the README shows it."""
    items = [TreeItem(PurePosixPath(plan.readme_name), False, None)]
    items += [
        TreeItem(p.packaged, p.source.kind is not Kind.FILE and not p.bundle, sizes[path])
        for path, p in {p.packaged.as_posix(): p for p in plan.placements}.items()
    ]
    return tree(plan.units.member, items, ALWAYS)


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
    member = plan.units.member
    described = "".join(f"- {name}: {text}.\n" for name, text in contents(plan))
    parts.append(
        f"Contents\n========\n\nThe directory {member} holds this README and:\n{described}"
    )
    steps = how_to_use(plan, facts, plan.mode != "fake")  # a ticket shows the delivered one
    if steps:
        parts.append("How to use this delivery\n========================\n\n"
                     + "\n".join(steps) + "\n")  # fmt: skip
    parts.append("\nDirectory tree\n==============\n")
    parts.append("\n".join(package_tree(plan, sizes)) + "\n")
    parts.append(f"Packaged with almaqa2 {__version__}.\n")
    return readable("\n".join(parts))


def readable(text: str) -> str:
    """``text`` as valid UTF-8 text: a file name that is not UTF-8 (its undecodable bytes
    carried as surrogates) shows those bytes as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
