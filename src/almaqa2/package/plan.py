"""Reduction + options -> Plan: where every file of the package comes from (pure).

The Plan is the single description of a package: fake mode, ``--dry-run``, ``--json``,
the README tree and the ticket's expected size are all read from it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from almaqa2.errors import InputError, UnclassifiedError
from almaqa2.package import modern, pipemanifest
from almaqa2.package.layouts import MANUAL_PLACES, Reduction, tp
from almaqa2.package.layouts.scriptgen import EB
from almaqa2.package.modern import Bundle
from almaqa2.package.naming import Existing, Units, units
from almaqa2.package.rules import (
    NEVER,
    NOTES,
    PI_SCRIPT,
    PI_SCRIPT_NAMES,
    README_NAMES,
    STAGE,
    STYLES,
    Classifier,
    Style,
    Transform,
)
from almaqa2.package.scan import Kind, SourceEntry
from almaqa2.uid import check_sb_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Uids:
    """UIDs of the science goal, group and member OUS: given, or found in the reduction."""

    sg: str | None = None
    gous: str | None = None
    mous: str | None = None


@dataclass(frozen=True)
class Placement:
    """One entry of the package: ``source`` goes to ``dest`` (relative to the member dir);
    ``place`` and ``eb``: where the layout found it, and whose it is."""

    source: SourceEntry
    dest: PurePosixPath  # as the older layouts name it (also for bundled entries)
    why: str
    place: str
    eb: EB | None = None
    transform: Transform = Transform.NONE
    bundle: Bundle | None = None  # the tgz it travels in (SPEC §4.1)

    @property
    def packaged(self) -> PurePosixPath:
        """What the package holds for it: its own path, or its tgz."""
        return self.bundle.path if self.bundle else self.dest

    @property
    def size(self) -> int:
        """The size in the package (transformed entries: the source size, an upper bound)."""
        return self.source.size


@dataclass(frozen=True)
class Skip:
    source: SourceEntry
    why: str


@dataclass(frozen=True)
class Plan:
    project: str
    style: Style
    mode: str
    append: str
    units: Units
    uids: Uids
    sb_name: str | None
    reduction: Reduction
    placements: tuple[Placement, ...]
    skipped: tuple[Skip, ...]
    unclassified: tuple[SourceEntry, ...]
    notes: tuple[SourceEntry, ...]

    @property
    def member_path(self) -> PurePosixPath:
        return self.units.member_path

    @property
    def renames(self) -> dict[str, str]:
        """{source file name: the name it is delivered under}, where they differ: what a
        pipeline manifest in the package must say instead."""
        return {
            p.source.name: p.packaged.name
            for p in self.placements
            if p.bundle is None and p.source.kind is Kind.FILE and p.source.name != p.packaged.name
        }

    @property
    def readme_name(self) -> str:
        generation = "modern" if self.style.modern else "older"
        return README_NAMES[generation].format(mous=self.uids.mous or "")

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``--json``, ``--dry-run``)."""
        return {
            "project": self.project,
            "style": self.style.name,
            "mode": self.mode,
            "append": self.append,
            "layout": self.reduction.layout,
            "origpath": str(self.reduction.root),
            "member": self.member_path.as_posix(),
            "uids": {"sg": self.uids.sg, "gous": self.uids.gous, "mous": self.uids.mous},
            "sb_name": self.sb_name,
            "ebs": [
                {"uid": eb.uid, "dir": eb.dir and eb.dir.as_posix()} for eb in self.reduction.ebs
            ],
            "placements": [
                {
                    "source": str(p.source.rel),
                    "dest": p.dest.as_posix(),
                    "kind": p.source.kind.value,
                    "size": p.size,
                    "transform": p.transform.value,
                    "why": p.why,
                    "bundle": p.bundle and p.bundle.path.as_posix(),
                }
                for p in self.placements
            ],
            "skipped": [{"source": str(s.source.rel), "why": s.why} for s in self.skipped],
            "unclassified": [str(e.rel) for e in self.unclassified],
            "notes": [str(e.rel) for e in self.notes],
        }


def pi_script_name(member_dir: str, style: Style) -> str:
    """``member.<uid>.scriptForPI.py`` from Cycle 5 on (and as the pipeline stages it) when
    the member dir carries the MOUS UID; ``scriptForPI.py`` before, as Cycle-4 deliveries
    have it."""
    prefixed = (style.modern or style.cycle is None) and member_dir.startswith("member.")
    return PI_SCRIPT_NAMES["prefixed" if prefixed else "plain"].format(member=member_dir)


def make_plan(
    reduction: Reduction,
    style: Style,
    *,
    project: str,
    mode: str,
    append: str,
    uids: Uids,
    existing: Existing,
    packpath: str,
    readme: Path | None,
    pi_script: SourceEntry | None = None,
    sb_name: str | None = None,
    strict: bool = False,
) -> Plan:
    """Classify every entry of ``reduction`` and decide the package's member directory."""
    style = _style_for(reduction, style)
    found_uids = Uids(
        uids.sg or reduction.sg, uids.gous or reduction.gous, uids.mous or reduction.mous
    )
    if style.modern and not found_uids.mous:
        raise InputError(
            f"the style {style.name} names files by the member OUS UID and none was found",
            reduction.root,
            fix="give it with --mous (mous= in QA_Packager), or name origpath by it",
        )
    shown = uids if not style.uid_names else found_uids
    member_units = units((shown.sg, shown.gous, shown.mous), append, existing, packpath)
    classifier = Classifier(style, tuple(eb.uid for eb in reduction.ebs))

    placements: list[Placement] = []
    skipped: list[Skip] = []
    unclassified: list[SourceEntry] = []
    notes: list[SourceEntry] = []
    pi_found: list[SourceEntry] = []
    for entry in (*reduction.entries, *reduction.extras):
        if entry.kind is Kind.LINK:
            skipped.append(Skip(entry, f"link to {entry.link_target}, packaged from there"))
            continue
        if entry.path == readme:
            skipped.append(Skip(entry, "the README header (given with --readme)"))
            continue
        where, eb = reduction.place_of(entry)
        match = classifier.classify(where, entry.kind, entry.name)
        if match is None:
            unclassified.append(entry)
        elif match.dest is NEVER:
            skipped.append(Skip(entry, match.why))
        elif match.dest == NOTES:
            notes.append(entry)
        elif match.dest == PI_SCRIPT:
            pi_found.append(entry)
        else:
            dest = match.dest.format(
                name=entry.name,
                rel=entry.rel.as_posix(),
                uid=eb.uid if eb else "",
                short=eb.short if eb else "",
            )
            transform = match.transform
            if pipemanifest.NAME.fullmatch(entry.name) and transform is Transform.NONE:
                transform = Transform.MANIFEST
            placement = Placement(entry, PurePosixPath(dest), match.why, where, eb, transform)
            if style.modern:
                placement = _modern(placement, found_uids.mous or "", reduction.root.name)
            placements.append(placement)

    chosen = pi_script or (pi_found[0] if pi_found else None)
    if chosen is not None:
        for extra in pi_found:
            if extra is not chosen:
                skipped.append(Skip(extra, f"another scriptForPI.py is delivered ({chosen.path})"))
        name = pi_script_name(member_units.member, style)
        placements.append(
            Placement(chosen, PurePosixPath("script", name), "script for the PI", "sb")
        )
    elif style.noms:
        log.warning(
            "no scriptForPI.py was given or found: the PI will not be able to regenerate the"
            " calibrated data; give --pi-script"
        )

    _refuse_collisions(placements)
    _refuse_long_names(placements)
    if unclassified:
        listing = ", ".join(str(e.rel) for e in unclassified[:5])
        more = f" and {len(unclassified) - 5} more" if len(unclassified) > 5 else ""
        if strict:
            raise UnclassifiedError(
                f"{len(unclassified)} unclassified file(s) in the reduction ({listing}{more})",
                reduction.root,
                fix="move or delete them, or package without --strict",
            )
        for entry in unclassified:
            log.warning("unclassified, not packaged: %s", entry.path)

    return Plan(
        project=project,
        style=style,
        mode=mode,
        append=append,
        units=member_units,
        uids=found_uids,
        sb_name=check_sb_name(sb_name or reduction.sb_name),
        reduction=reduction,
        placements=tuple(sorted(placements, key=lambda p: p.dest.as_posix())),
        skipped=tuple(skipped),
        unclassified=tuple(unclassified),
        notes=tuple(notes),
    )


def _style_for(reduction: Reduction, style: Style) -> Style:
    """The style as this reduction allows it: a staged package needs a pipe style, a
    total-power reduction overrides the style's MeasurementSets (SPEC §4)."""
    if reduction.layout == "pipeline" and style.name != STAGE.name:
        raise InputError(
            "this is a pipeline run, which is staged before it is packaged",
            reduction.root,
            fix="run qa2 stage on it, then package the staged package with a -pipe style",
        )
    if reduction.layout == "staged" and not style.pipe:
        raise InputError(
            f"this is a staged pipeline package and the style '{style.name}' has no pipeline rules",
            reduction.root,
            fix="package it with a -pipe style: "
            + ", ".join(name for name, s in STYLES.items() if s.pipe),
        )
    if not reduction.tp:
        return style
    for entry in tp.nonstandard(reduction.sd_scripts):
        log.warning("non-standard single-dish script name, packaged as it is: %s", entry.path)
    return replace(style, noms=True, tp=True)


def _modern(placement: Placement, mous: str, root_name: str) -> Placement:
    """Rename or bundle a placement as SPEC §4.1 says; pipeline files are only renamed."""
    rel = placement.source.rel
    nested = len(rel.parts) > 1 and rel.parts[0] != ".."
    top = rel.parts[0] if nested else root_name
    manual = placement.place in MANUAL_PLACES
    bundle = modern.bundle_of(placement.dest, top, mous) if manual else None
    if bundle is not None:
        return replace(placement, bundle=bundle)
    return replace(placement, dest=modern.prefixed(placement.dest, mous))


NAME_MAX = 255
"""The bytes a file name may have on the file systems a package goes to (ext4, XFS...)."""


def _refuse_long_names(placements: list[Placement]) -> None:
    """A name the package gives a file (the member's UID put before it, in the modern
    styles) that no file system takes is refused before anything is written: the run
    failed at that file with "File name too long", which a dry run did not show."""
    for placement in placements:
        name = placement.dest.name
        if len(name) > NAME_MAX // 4 and len(os.fsencode(name)) > NAME_MAX:  # (4: UTF-8's most)
            raise InputError(
                f"the name this file takes in the package, {name}, is longer than file"
                f" systems allow ({NAME_MAX} bytes)",
                placement.source.path,
                fix="give the file a shorter name in the reduction",
            )


def _refuse_collisions(placements: list[Placement]) -> None:
    taken: dict[PurePosixPath, Placement] = {}
    for placement in placements:
        other = taken.setdefault(placement.dest, placement)
        if other is not placement:
            raise InputError(
                f"two files would both become {placement.dest} in the package"
                f" ({other.source.path} and {placement.source.path})",
                placement.source.path,
                fix="rename or remove one of them",
            )
