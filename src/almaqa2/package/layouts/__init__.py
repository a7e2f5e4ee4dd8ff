"""Recognising a reduction: which EBs it holds, where, and what its layout reveals.

The manual layouts share the script-generator core (``scriptgen``: EB directories next to
directories of combined products, or a single EB flat in origpath).  The Allegro and NRAO
layouts add what they know: checklists and scriptForPI beside origpath, the SB name, the
MOUS UID written in the directory name; single-dish scripts make it a total-power
reduction (``tp``).  A staged pipeline package (``staged``) and a
pipeline run's products (``pipeline``, for ``qa2 stage``) have no EB directories: their
EBs are read from file names and XML.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from almaqa2.errors import InputError
from almaqa2.package.layouts import allegro, nrao, scriptgen, staged, tp
from almaqa2.package.layouts.scriptgen import EB
from almaqa2.package.scan import SourceEntry, scan
from almaqa2.uid import eb_of_name

MANUAL_PLACES = ("eb", "qa2", "eb-nested", "sb")
"""Places of a manual reduction (the others hold pipeline products: rules.py)."""


@dataclass(frozen=True)
class Reduction:
    """A recognised reduction directory (``root``) and what was learnt about it."""

    root: Path
    layout: str  # "script-generator", "allegro", "nrao", "staged" or "pipeline"
    entries: tuple[SourceEntry, ...]
    ebs: tuple[EB, ...]
    extras: tuple[SourceEntry, ...] = ()  # files from beside origpath (Allegro)
    mous: str | None = None
    sb_name: str | None = None
    sg: str | None = None
    gous: str | None = None
    sd_scripts: tuple[SourceEntry, ...] = ()  # single-dish scripts: a total-power reduction

    @property
    def tp(self) -> bool:
        return bool(self.sd_scripts)

    def place_of(self, entry: SourceEntry) -> tuple[str, EB | None]:
        """Where ``entry`` sits (a place of ``rules``: ``eb``, ``qa2``, ``sb``...), its EB."""
        parts = entry.rel.parts
        if self.layout == "pipeline":
            return "pipeline", None
        if self.layout == "staged":
            if parts[0] in staged.DELIVERY_DIRS or parts == ("README",):
                return "kept", None
            if parts[0] == "calibrated" and len(parts) > 2 and parts[1] in staged.RESTORED:
                return "restore", None
            return "sb", None
        if parts[0] == "..":  # beside origpath (Allegro checklists, scriptForPI)
            return "sb", None
        for eb in self.ebs:
            if eb.dir is None:
                continue
            if eb.dir == PurePosixPath():
                parts = entry.rel.parts
            elif entry.rel.is_relative_to(eb.dir):
                parts = entry.rel.relative_to(eb.dir).parts
            else:
                continue
            if len(parts) == 1:
                return "eb", eb
            if len(parts) == 2 and parts[0] == "qa2":
                return "qa2", eb
            if eb.dir != PurePosixPath():
                return "eb-nested", eb
        return "sb", None


def ebs_named(
    entries: tuple[SourceEntry, ...], root: Path, also: tuple[str, ...] = ()
) -> tuple[EB, ...]:
    """The EBs that file names reveal (``<EB>.ms.calapply.txt``...) and ``also`` those
    known otherwise, for layouts without EB directories; InputError if there are none."""
    named = {uid for e in entries if (uid := eb_of_name(e.name)) is not None}
    uids = sorted(named.union(also))
    if not uids:
        raise InputError(
            "no execution block found (no uid___*.ms.calapply.txt, *.ms.flagversions.tgz"
            " or other file named by an EB)",
            root,
            fix="give the pipeline products of the member OUS",
        )
    return tuple(EB(uid, None) for uid in uids)


def recognise(root: Path) -> Reduction:
    """Scan ``root`` and recognise its layout; raises InputError when no EB is found."""
    reduction = _recognise(root)
    return replace(reduction, sd_scripts=tp.sd_scripts(reduction.entries))


def _recognise(root: Path) -> Reduction:
    found_staged = staged.detect(root)
    if found_staged is not None:
        entries = scan(found_staged.member)
        return Reduction(
            found_staged.member,
            "staged",
            entries,
            ebs_named(entries, found_staged.member),
            mous=found_staged.mous,
            sg=found_staged.sg,
            gous=found_staged.gous,
        )
    entries = scan(root)
    ebs = scriptgen.find_ebs(root, entries)
    found_allegro = allegro.detect(root)
    if found_allegro is not None:
        return Reduction(
            root,
            "allegro",
            entries,
            ebs,
            extras=found_allegro.extras,
            sb_name=found_allegro.sb_name,
        )
    mous = nrao.mous_from_name(root)
    if mous is not None:
        return Reduction(root, "nrao", entries, ebs, mous=mous)
    return Reduction(root, "script-generator", entries, ebs)
